"""kiosk-tool ioboard build / flash / status, and the build's manifest and verification.

No board can be emulated for mpremote, so flashing is tested through its command list and its
verification against a recorded board filesystem; the built .mpy files themselves are run on
the real MicroPython (WebAssembly port) to prove the board can load what the build makes.
"""

import hashlib
import io
import json
import subprocess
import sys
from collections.abc import Sequence
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from drivers.ioboard.build import (
    FirmwareBuildError,
    build_firmware,
    flash_firmware,
    hash_script,
    parse_hashes,
    read_manifest,
)
from drivers.ioboard.firmware import FIRMWARE_VERSION, link
from simulators.ioboard_board import BoardHarness, wait_for
from tests.fixtures.ioboard import FIRMWARE_DIR, MPY_DIR, RunChecks


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    build_firmware(out)
    return out


def kiosk_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "firmware_tools.cli", "ioboard", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_build_compiles_every_firmware_file_and_hashes_it_in_the_manifest(build: Path) -> None:
    manifest = json.loads((build / "manifest.json").read_text())

    sources = {p.name for p in FIRMWARE_DIR.iterdir() if p.suffix in (".py", ".json")}
    assert {entry["source"] for entry in manifest["files"]} == sources
    assert manifest["firmware_version"] == FIRMWARE_VERSION
    assert manifest["protocol_version"] == link.PROTOCOL_VERSION
    assert "mpy" in manifest["mpy_cross"]
    for entry in manifest["files"]:
        data = (build / entry["local"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        if entry["source"] not in ("main.py", "config.json"):
            assert entry["device"].endswith(".mpy") and data[:1] == b"M"
    assert {"device": "/main.py"}.items() <= next(
        e for e in manifest["files"] if e["source"] == "main.py"
    ).items()


def test_the_built_mpy_files_run_the_firmware_checks_on_micropython(
    build: Path, micropython_runner: RunChecks
) -> None:
    results = micropython_runner(MPY_DIR / "firmware_checks.py", build / "lib" / "ioboard")

    assert len(results) > 30
    assert {name: error for name, error in results.items() if error} == {}


def test_a_build_file_changed_after_the_build_is_refused_before_flashing(
    build: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    build_firmware(copy)
    (copy / "lib" / "ioboard" / "link.mpy").write_bytes(b"M\x06tampered")

    with pytest.raises(FirmwareBuildError, match="does not match the build manifest"):
        read_manifest(copy)


class RecordedBoard:
    """mpremote as seen from the tool: commands recorded, files kept, hashes reported."""

    def __init__(self, corrupt: str | None = None) -> None:
        self.files: dict[str, bytes] = {}
        self.commands: list[list[str]] = []
        self.corrupt = corrupt

    def __call__(self, command: Sequence[str]) -> subprocess.CompletedProcess[str]:
        command = list(command)
        self.commands.append(command)
        action = command[command.index("connect") + 2 :]
        stdout = ""
        if action[:2] == ["fs", "cp"]:
            data = Path(action[2]).read_bytes()
            device = action[3].removeprefix(":")
            if device == self.corrupt:
                data = data[:-1] + bytes([data[-1] ^ 1])
            self.files[device] = data
        elif action[0] == "exec" and "HASHES" in action[1]:
            buffer = io.StringIO()
            # The verification script is plain MicroPython that CPython also runs; here it
            # reads this recording's files through a patched open().
            files = self.files

            def board_open(path: str, mode: str = "r") -> io.BytesIO:
                if path not in files:
                    raise OSError(2, "ENOENT")
                return io.BytesIO(files[path])

            with redirect_stdout(buffer):
                exec(action[1], {"open": board_open})
            stdout = buffer.getvalue()
        return subprocess.CompletedProcess(command, 0, stdout, "")


def test_flashing_copies_every_file_reads_the_hashes_back_and_resets(build: Path) -> None:
    board = RecordedBoard()
    lines: list[str] = []

    flash_firmware(build, "/dev/ttyACM7", lines.append, runner=board)

    manifest = read_manifest(build)
    assert set(board.files) == {entry["device"] for entry in manifest["files"]}
    assert all(command[3:5] == ["connect", "/dev/ttyACM7"] for command in board.commands)
    assert board.commands[-1][-1] == "reset"
    assert lines[0].startswith("[1/") and "verifying" in lines[-2]
    assert any("copying /lib/ioboard/board.mpy" in line for line in lines)


def test_a_file_written_wrong_on_the_board_fails_the_verification(build: Path) -> None:
    board = RecordedBoard(corrupt="/lib/ioboard/store.mpy")

    with pytest.raises(FirmwareBuildError, match="store.mpy differs from the build"):
        flash_firmware(build, "/dev/ttyACM0", lambda line: None, runner=board)

    assert board.commands[-1][-1] != "reset"


def test_a_missing_file_on_the_board_is_named() -> None:
    script = hash_script(["/nowhere.mpy"])
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        exec(script, {})

    assert parse_hashes(buffer.getvalue()) == {"/nowhere.mpy": None}
    with pytest.raises(FirmwareBuildError, match="did not report"):
        parse_hashes("Traceback (most recent call last):")


def test_kiosk_tool_ioboard_build_prints_the_manifest_as_json(tmp_path: Path) -> None:
    result = kiosk_tool("build", "--out", str(tmp_path / "out"), "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["firmware_version"] == FIRMWARE_VERSION


def test_kiosk_tool_ioboard_status_reads_the_board(ioboard_harness: BoardHarness) -> None:
    result = kiosk_tool("status", "--port", ioboard_harness.port, "--json")

    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["online"] is True and status["firmware_version"] == FIRMWARE_VERSION


def test_kiosk_tool_ioboard_status_without_a_board_is_one_clear_line(tmp_path: Path) -> None:
    result = kiosk_tool("status", "--port", str(tmp_path / "ttyACM9"))

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "USB cable" in result.stderr


def test_flash_and_console_first_ask_the_firmware_to_hand_the_port_to_the_repl(
    ioboard_harness: BoardHarness,
) -> None:
    from firmware_tools.commands.ioboard import _stop_link_loop

    _stop_link_loop(ioboard_harness.port)

    wait_for(lambda: ioboard_harness.board.stop_requested, "leave its link loop")
