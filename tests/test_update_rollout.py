"""The `update` remote command end to end on one machine: the terminal's side (cohort, window,
spool, reporting, restart) and the privileged updater (TUF fetch over real HTTP, install into
real slots with pip), as two objects sharing the update root and the spool, as the two
processes do. The I/O board sync is tested against a recorded mpremote (no board here)."""

import io
import subprocess
from collections.abc import Sequence
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from firmware_tools.board_sync import sync_board_firmware
from kiosk.updates import SlotStore, UpdateError
from kiosk.updates.link import TerminalUpdates
from kiosk.updates.rollout import cohort_bucket, in_cohort, parse_order
from kiosk.updates.spool import Action, UpdateSpool
from kiosk.updates.worker import Updater, UpdaterSetup
from tests.fixtures.updates import HARDWARE, BundleMaker, ReleaseKeys, UpdateServer, fetch_from

NOW = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)


def _args(**over: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "rollout": "r-1.1.0",
        "version": "1.1.0",
        "target": "kiosk-1.1.0.bundle",
        "cohort_percent": 100,
        "not_before": (NOW - timedelta(hours=1)).isoformat(),
        "not_after": (NOW + timedelta(hours=3)).isoformat(),
    }
    args.update(over)
    return args


def test_cohorts_are_stable_nested_across_stages_and_differ_between_rollouts() -> None:
    terminals = [f"T{n:04d}" for n in range(2000)]
    ten = {t for t in terminals if cohort_bucket("r1", "4401", t) < 10}
    fifty = {t for t in terminals if cohort_bucket("r1", "4401", t) < 50}
    assert ten < fifty and 140 < len(ten) < 260 and 850 < len(fifty) < 1150
    other = {t for t in terminals if cohort_bucket("r2", "4401", t) < 10}
    assert other != ten
    order = parse_order(_args(cohort_percent=10))
    assert {t for t in terminals if in_cohort(order, "4401", t)} == {
        t for t in terminals if cohort_bucket("r-1.1.0", "4401", t) < 10
    }


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"cohort_percent": 0}, "cohort_percent must be a number above 0"),
        ({"cohort_percent": True}, "cohort_percent"),
        ({"version": "one"}, "not a release version"),
        ({"target": "../etc/passwd"}, "target must be a bundle file name"),
        ({"not_after": "2026-01-01T00:00:00"}, "must carry a UTC offset"),
        ({"not_after": NOW.isoformat(), "not_before": NOW.isoformat()}, "must be later"),
        ({"max_starts": 0}, "max_starts"),
        ({"extra": 1}, "unknown args extra"),
    ],
)
def test_a_bad_order_is_refused_with_what_is_wrong(over: dict[str, Any], message: str) -> None:
    with pytest.raises(UpdateError, match=message):
        parse_order(_args(**over))


class Fleet:
    """One terminal: slots with 1.0.0 installed, its spool, its side and the root side."""

    def __init__(
        self, tmp_path: Path, make_bundle: BundleMaker, keys: ReleaseKeys, server: UpdateServer
    ) -> None:
        self.root = tmp_path / "opt-kiosk"
        self.store = SlotStore(self.root)
        self.store.install(make_bundle("1.0.0"), keys.public_pem, hardware=HARDWARE, now=NOW)
        self.spool_dir = tmp_path / "var-lib-kiosk" / "updates"
        self.now = NOW
        self.server = server
        self.terminal_dir = tmp_path / "terminal"
        self.side = self.terminal_side("1.0.0")
        self.updater = Updater(
            UpdaterSetup(
                store=self.store,
                spool=UpdateSpool(self.spool_dir),
                release_public_pem=keys.public_pem,
                hardware=HARDWARE,
                fetch=lambda target, d, progress: fetch_from(
                    server, self.terminal_dir, target, progress
                ),
            ),
            lambda: self.now,
        )

    def terminal_side(self, running: str) -> TerminalUpdates:
        return TerminalUpdates(
            self.root, self.spool_dir, station="4401", terminal="T0001", running_version=running
        )


@pytest.fixture
def fleet(
    tmp_path: Path, make_bundle: BundleMaker, release_keys: ReleaseKeys, update_server: UpdateServer
) -> Fleet:
    bundle = make_bundle("1.1.0")
    update_server.publish("kiosk-1.1.0.bundle", bundle.read_bytes() + b"")
    return Fleet(tmp_path, make_bundle, release_keys, update_server)


def test_an_order_is_fetched_installed_restarted_into_confirmed_and_every_step_reported(
    fleet: Fleet,
) -> None:
    answer = fleet.side.handle_command(_args(), NOW)
    assert answer["state"] == "accepted"
    assert fleet.side.restart_wanted() is None

    lines = fleet.updater.run()

    assert "1.1.0 installed" in lines[-1]
    status = fleet.store.status()
    assert status.active is not None and status.active.version == "1.1.0"
    assert status.trial is not None
    published: list[tuple[str, dict[str, Any]]] = []
    restarts: list[str] = []
    fleet.side.poll(lambda kind, data: published.append((kind, dict(data))), restarts.append)
    progress = [d["state"] for k, d in published if k == "update_progress"]
    assert progress[:2] == ["waiting", "downloading"] and progress[-2:] == [
        "installing",
        "installed",
    ]
    assert ("update_installed", "1.1.0") in [(k, d.get("version")) for k, d in published]
    assert restarts == ["update 1.1.0 installed"]
    fleet.side.poll(lambda kind, data: published.append((kind, dict(data))), restarts.append)
    assert len(restarts) == 1, "one restart per installed order"

    # The restart: the boot guard counts the trial start; the new version confirms itself.
    fleet.store.record_start(NOW)
    new_side = fleet.terminal_side("1.1.0")
    assert new_side.confirm(NOW) == "1.1.0"
    fleet.updater.run()
    assert fleet.store.status().trial is None
    seen: list[str] = []
    new_side.poll(lambda kind, data: seen.append(kind), restarts.append)
    assert "update_confirmed" in seen and len(restarts) == 1


def test_a_terminal_outside_the_cohort_does_nothing(fleet: Fleet) -> None:
    rollout = next(f"r{n}" for n in range(1000) if cohort_bucket(f"r{n}", "4401", "T0001") >= 5)
    answer = fleet.side.handle_command(_args(rollout=rollout, cohort_percent=5), NOW)
    assert answer["state"] == "not_in_cohort"
    assert not (fleet.spool_dir / "requests").exists()


def test_an_order_waits_for_its_window_and_expires_when_it_closes(fleet: Fleet) -> None:
    later = _args(not_before=(NOW + timedelta(hours=1)).isoformat())
    fleet.side.handle_command(later, NOW)
    assert "waiting for" in fleet.updater.run()[-1]
    assert fleet.store.status().active.version == "1.0.0"  # type: ignore[union-attr]
    fleet.now = NOW + timedelta(hours=4)
    assert "window closed" in fleet.updater.run()[-1]
    assert fleet.store.status().active.version == "1.0.0"  # type: ignore[union-attr]


def test_a_failed_download_is_tried_again_while_the_window_is_open(fleet: Fleet) -> None:
    fleet.side.handle_command(_args(target="kiosk-9.9.9.bundle", version="9.9.9"), NOW)
    assert "will retry" in fleet.updater.run()[-1]
    assert UpdateSpool(fleet.spool_dir).order()["state"] == "waiting"  # type: ignore[index]
    assert "will retry" in (fleet.updater.run() or ["will retry"])[-1]


def test_an_already_installed_version_and_a_closed_window_are_answered_at_once(
    fleet: Fleet,
) -> None:
    assert fleet.side.handle_command(_args(version="1.0.0"), NOW)["state"] == "already_installed"
    late = NOW + timedelta(days=1)
    assert fleet.side.handle_command(_args(), late)["state"] == "expired"


def test_hostile_spool_files_are_answered_and_removed_without_acting(fleet: Fleet) -> None:
    requests = fleet.spool_dir / "requests"
    requests.mkdir(parents=True)
    (requests / "0123456789abcdef.json").write_text('{"action": "rm -rf"}')
    (requests / "fedcba9876543210.json").write_bytes(b"x" * 20_000)
    spool = UpdateSpool(fleet.spool_dir)
    request = spool.submit(Action.MARK_REPORTED, seq="all")
    lines = fleet.updater.run()
    assert len(lines) == 3 and not list(requests.iterdir())
    assert spool.result("0123456789abcdef") == {
        "ok": False,
        "error": "the request has no known action",
    }
    assert "larger than" in spool.result("fedcba9876543210")["error"]  # type: ignore[index]
    assert spool.result(request) == {"ok": False, "error": "mark_reported needs a whole seq"}


# ---------------------------------------------------------------------- the I/O board


class RecordedBoard:
    """mpremote as the boot guard sees it (mock: no board can run here): files and hashes."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = dict(files or {})
        self.commands: list[list[str]] = []

    def __call__(self, command: Sequence[str]) -> "subprocess.CompletedProcess[str]":
        command = list(command)
        self.commands.append(command)
        action = command[command.index("connect") + 2 :]
        stdout = ""
        if action[:2] == ["fs", "cp"]:
            self.files[action[3].removeprefix(":")] = Path(action[2]).read_bytes()
        elif action[0] == "exec" and "HASHES" in action[1]:
            files = self.files

            def board_open(path: str, mode: str = "r") -> io.BytesIO:
                if path not in files:
                    raise OSError(2, "ENOENT")
                return io.BytesIO(files[path])

            buffer = io.StringIO()
            with redirect_stdout(buffer):
                exec(action[1], {"open": board_open})
            stdout = buffer.getvalue()
        return subprocess.CompletedProcess(command, 0, stdout, "")


def _firmware_build(directory: Path, version: str) -> Path:
    import hashlib
    import json

    directory.mkdir(parents=True)
    code = f"VERSION = '{version}'\n".encode()
    (directory / "board.mpy").write_bytes(code)
    manifest = {
        "firmware_version": version,
        "protocol_version": 2,
        "mip": {},
        "files": [
            {
                "local": "board.mpy",
                "device": "/lib/ioboard/board.mpy",
                "size": len(code),
                "sha256": hashlib.sha256(code).hexdigest(),
            }
        ],
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def test_the_boot_guard_flashes_the_slots_firmware_only_when_the_board_differs(
    tmp_path: Path,
) -> None:
    port = tmp_path / "ttyACM0"
    port.touch()
    new = _firmware_build(tmp_path / "b" / "ioboard", "2.0.0")
    old = _firmware_build(tmp_path / "a" / "ioboard", "1.0.0")
    board = RecordedBoard({"/lib/ioboard/board.mpy": b"VERSION = '1.0.0'\n"})
    stopped: list[str] = []

    result = sync_board_firmware(new, str(port), lambda line: None, board, stopped.append)
    assert result.event == "ioboard_flashed" and result.fields == {"firmware_version": "2.0.0"}
    assert board.files["/lib/ioboard/board.mpy"] == b"VERSION = '2.0.0'\n"

    copies = len([c for c in board.commands if "cp" in c])
    again = sync_board_firmware(new, str(port), lambda line: None, board, stopped.append)
    assert again.event is None and "already" in again.text
    assert len([c for c in board.commands if "cp" in c]) == copies

    # A rollback to slot a puts firmware 1.0.0 back: the old host speaks to the board again.
    back = sync_board_firmware(old, str(port), lambda line: None, board, stopped.append)
    assert back.fields == {"firmware_version": "1.0.0"}
    assert board.files["/lib/ioboard/board.mpy"] == b"VERSION = '1.0.0'\n"
    assert stopped == [str(port)] * 3


def test_a_board_that_cannot_be_flashed_does_not_stop_the_start(tmp_path: Path) -> None:
    port = tmp_path / "ttyACM0"
    port.touch()
    build = _firmware_build(tmp_path / "ioboard", "2.0.0")

    def broken(command: Sequence[str]) -> "subprocess.CompletedProcess[str]":
        return subprocess.CompletedProcess(list(command), 1, "", "could not enter raw repl")

    result = sync_board_firmware(build, str(port), lambda line: None, broken, lambda p: None)
    assert result.event == "ioboard_flash_failed"
    assert "kiosk-tool ioboard flash" in result.text
    missing = sync_board_firmware(build, str(tmp_path / "none"), print, broken, lambda p: None)
    assert missing.event is None and "no I/O board" in missing.text
