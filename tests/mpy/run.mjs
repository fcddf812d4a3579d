// Runs check functions on the real MicroPython (the WebAssembly port) under Node.js.
//
// usage: node run.mjs FIRMWARE_DIR CHECKS_FILE
//
// FIRMWARE_DIR is the firmware source folder or a build's lib/ioboard (compiled .mpy files).
// Copies every file of FIRMWARE_DIR into the interpreter's filesystem as the package
// /lib/ioboard (the layout the board gets), copies CHECKS_FILE to /lib/, imports it and calls
// each of its check_* functions with a fresh working directory. Prints one line per check,
// "PASS name" or "FAIL name: error", then "DONE passed failed"; pytest parses these lines.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";

const [firmwareDir, checksFile] = process.argv.slice(2);
if (!firmwareDir || !checksFile) {
  console.error("usage: node run.mjs FIRMWARE_DIR CHECKS_FILE");
  process.exit(2);
}

const mp = await loadMicroPython({
  heapsize: 16 * 1024 * 1024,
  stdout: (line) => console.log(line),
  stderr: (line) => console.log("STDERR " + line),
});

mp.FS.mkdir("/lib");
mp.FS.mkdir("/lib/ioboard");
for (const name of fs.readdirSync(firmwareDir)) {
  const source = path.join(firmwareDir, name);
  if (fs.statSync(source).isFile() && /\.(py|mpy|json)$/.test(name)) {
    mp.FS.writeFile("/lib/ioboard/" + name, fs.readFileSync(source));
  }
}
const moduleName = path.basename(checksFile, ".py");
mp.FS.writeFile("/lib/" + moduleName + ".py", fs.readFileSync(checksFile));

try {
  mp.runPython(`
import sys, os
sys.path.append("/lib")
import ${moduleName} as checks
passed = failed = 0
for name in sorted(dir(checks)):
    if not name.startswith("check_"):
        continue
    work = "/work_" + name
    os.mkdir(work)
    os.chdir(work)
    try:
        getattr(checks, name)()
        print("PASS", name)
        passed += 1
    except Exception as exc:
        print("FAIL", name + ":", repr(exc))
        sys.print_exception(exc)
        failed += 1
    os.chdir("/")
print("DONE", passed, failed)
`);
} catch (error) {
  console.log("CRASH " + String(error.message).split("\n").join(" | "));
  process.exit(1);
}
