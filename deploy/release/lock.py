#!/usr/bin/env python3
"""Write (or check) the hashed dependency lock of each target from setup.cfg, with uv.

Usage:
    deploy/release/lock.py [--check] [--upgrade] [TARGET ...]     (default: every target)
    deploy/release/lock.py --print TARGET                          (the target's requirements)

A target is one extra of setup.cfg plus the install_requires every target shares, resolved
for the machine that runs it (docs/updates.md, "Dependency sets"):
    terminal     the Raspberry Pi: CPython 3.11, manylinux aarch64 (glibc 2.36), wheels only
    backoffice   the operator's Debian 12 x86_64 server
    tools        the release machine (Debian 12 x86_64): firmware build, catalogs, publishing
    dev          development and CI: everything above plus the test tools

uv reads the requirements from a temporary file rather than from setup.cfg itself: with
setup.cfg as input it would build this project for its metadata, which --only-binary (the
terminal's rule: nothing compiled at release) forbids. Versions already in a lock are kept
unless --upgrade is given (uv treats the output file as preferences).
"""

import argparse
import configparser
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SETUP_CFG = REPO / "setup.cfg"
LOCK_DIR = REPO / "requirements"
PROJECT = "kiosk-terminal"
PYTHON = "3.11"


@dataclass(frozen=True)
class Target:
    extra: str
    platform: str
    wheels_only: bool
    # Dependencies a package declares that this target never imports: left out of the lock
    # (uv --no-emit-package); the target installs with pip --no-deps.
    left_out: tuple[str, ...] = ()


TARGETS = {
    # Kivy declares docutils and pygments for its RstDocument and CodeInput widgets (8 MB
    # installed), which the touchscreen does not use: tests/test_update_build.py runs every
    # screen with both unimportable.
    "terminal": Target(
        "terminal",
        "aarch64-manylinux_2_36",
        wheels_only=True,
        left_out=("docutils", "pygments"),
    ),
    "backoffice": Target("backoffice", "x86_64-manylinux_2_36", wheels_only=False),
    "tools": Target("tools", "x86_64-manylinux_2_36", wheels_only=False),
    "dev": Target("dev", "x86_64-manylinux_2_36", wheels_only=False),
}
_SELF = re.compile(rf"^{re.escape(PROJECT)}\[([^\]]+)\]\s*$")
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", re.MULTILINE)


def _lines(value: str) -> list[str]:
    return [
        line.split("#", 1)[0].strip()
        for line in value.splitlines()
        if line.split("#", 1)[0].strip()
    ]


def requirements(target: str) -> list[str]:
    """install_requires plus the target's extra, self-references ([terminal,...]) expanded."""
    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG, encoding="utf-8")
    extras = {name: _lines(value) for name, value in cfg["options.extras_require"].items()}
    wanted = list(_lines(cfg["options"]["install_requires"]))
    pending, seen = [TARGETS[target].extra], set()
    while pending:
        extra = pending.pop(0)
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in extras[extra]:
            match = _SELF.match(requirement)
            if match:
                pending += [e.strip() for e in match.group(1).split(",")]
            elif requirement not in wanted:
                wanted.append(requirement)
    return wanted


def pins(lock_text: str) -> dict[str, str]:
    """{normalised name: version} of a lock file's text."""
    return {
        re.sub(r"[-_.]+", "-", name).lower(): version for name, version in _PIN.findall(lock_text)
    }


def compile_lock(target: str, out: Path, *, upgrade: bool) -> None:
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    spec = TARGETS[target]
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / f"{target}.in"
        source.write_text("\n".join(requirements(target)) + "\n", encoding="utf-8")
        command = [
            uv, "pip", "compile", str(source), "--quiet", "--generate-hashes",
            "--python-version", PYTHON, "--python-platform", spec.platform,
            "--custom-compile-command", f"deploy/release/lock.py {target}",
            "--no-annotate", "--output-file", str(out),
        ]  # fmt: skip
        if spec.wheels_only:
            command += ["--only-binary", ":all:"]
        for package in spec.left_out:
            command += ["--no-emit-package", package]
        if upgrade:
            command.append("--upgrade")
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["uv failed"])[-1]
        sys.exit(f"lock.py: cannot resolve the {target} set: {detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", choices=[*TARGETS, []], metavar="TARGET")
    parser.add_argument("--check", action="store_true", help="fail if a lock is out of date")
    parser.add_argument("--upgrade", action="store_true", help="take the newest versions")
    parser.add_argument("--print", dest="print_target", choices=TARGETS, metavar="TARGET")
    args = parser.parse_args(argv)
    if args.print_target:
        print("\n".join(requirements(args.print_target)))
        return 0
    stale = []
    for target in args.targets or list(TARGETS):
        lock = LOCK_DIR / f"{target}.lock"
        if not args.check:
            LOCK_DIR.mkdir(exist_ok=True)
            compile_lock(target, lock, upgrade=args.upgrade)
            print(f"wrote {lock.relative_to(REPO)} ({len(pins(lock.read_text()))} packages)")
            continue
        with tempfile.TemporaryDirectory() as work:
            fresh = Path(work) / lock.name
            if lock.exists():
                shutil.copy(lock, fresh)  # the committed pins are the preferences
            compile_lock(target, fresh, upgrade=False)
            if not lock.exists() or pins(fresh.read_text()) != pins(lock.read_text()):
                stale.append(target)
    if stale:
        print(
            f"lock.py: the {', '.join(stale)} lock(s) do not match setup.cfg: "
            "run deploy/release/lock.py and commit requirements/",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
