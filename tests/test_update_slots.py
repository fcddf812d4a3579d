"""A/B slots in a temporary root: install, boot counting, confirmation and rollback.

Wheels are installed by the real pip into each slot, and the version that "runs" is read by
importing the canary package through ROOT/current, as the kiosk service's PYTHONPATH does.
"""

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from firmware_tools.cli import main as kiosk_tool
from kiosk.updates import SlotStore, UpdateError
from tests.fixtures.updates import HARDWARE, BundleMaker, ReleaseKeys

NOW = datetime.now(UTC)


def running_version(root: Path, link: str = "current") -> str:
    """What `python -m ...` with the unit's PYTHONPATH would import right now."""
    site = str(root / link / "site-packages")
    result = subprocess.run(
        [sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]);"
         "import kiosk_canary; print(kiosk_canary.VERSION)", site],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def tree_digest(directory: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        sha.update(path.relative_to(directory).as_posix().encode())
        if path.is_file():
            sha.update(path.read_bytes())
    return sha.hexdigest()


@pytest.fixture
def terminal(tmp_path: Path) -> Path:
    """A terminal's data and configuration, which live outside the update root."""
    outside = tmp_path / "terminal"
    (outside / "var/lib/kiosk").mkdir(parents=True)
    (outside / "var/lib/kiosk/terminal.sqlite3").write_bytes(b"SQLite format 3\x00journal")
    (outside / "etc/kiosk").mkdir(parents=True)
    (outside / "etc/kiosk/kiosk.toml").write_text('data_dir = "/var/lib/kiosk"\n')
    (outside / "etc/kiosk/token-pin").write_text("123456\n")
    return outside


@pytest.fixture
def store(tmp_path: Path, make_bundle: BundleMaker, release_keys: ReleaseKeys) -> SlotStore:
    """A root with version 1.0.0 installed (the factory install) and running."""
    slots = SlotStore(tmp_path / "opt-kiosk")
    slots.install(make_bundle("1.0.0"), release_keys.public_pem, hardware=HARDWARE, now=NOW)
    return slots


def test_the_first_install_runs_at_once_without_a_trial(store: SlotStore) -> None:
    status = store.status()
    assert status.active is not None and status.active.version == "1.0.0"
    assert status.trial is None and status.good == status.active.name == "a"
    assert running_version(store.root) == "1.0.0"
    assert store.record_start(NOW).action == "normal"


def test_install_boot_confirm_switches_to_the_new_version_for_good(
    store: SlotStore, make_bundle: BundleMaker, release_keys: ReleaseKeys, terminal: Path
) -> None:
    before = tree_digest(terminal)
    status = store.install(
        make_bundle("1.1.0"), release_keys.public_pem, hardware=HARDWARE, now=NOW, max_starts=2
    )
    assert status.trial is not None and status.trial.slot == "b" and status.trial.fallback == "a"
    assert running_version(store.root) == "1.1.0"
    # Until confirmed, the boot guard still runs from the old, known-good slot.
    assert running_version(store.root, "good") == "1.0.0"
    # Each slot has its own prepared font faces, where kiosk.service's KIOSK_FONT_DIR points.
    face = "fonts/NotoSansCJK-Regular-SC.otf"
    assert (store.root / "current" / face).read_bytes() == b"OTTO1.1.0"
    assert (store.root / "good" / face).read_bytes() == b"OTTO1.0.0"

    decision = store.record_start(NOW)
    assert (decision.action, decision.version, decision.starts) == ("trial", "1.1.0", 1)
    assert store.confirm(NOW) == "1.1.0"
    assert store.confirm(NOW) is None  # the terminal may confirm at every healthy start

    for _ in range(5):
        assert store.record_start(NOW).action == "normal"
    assert running_version(store.root) == running_version(store.root, "good") == "1.1.0"
    assert [e["type"] for e in store.status().events] == [
        "update_installed",
        "update_installed",
        "update_confirmed",
    ]
    assert tree_digest(terminal) == before


def test_a_version_that_never_confirms_is_rolled_back_after_its_starts(
    store: SlotStore, make_bundle: BundleMaker, release_keys: ReleaseKeys, terminal: Path
) -> None:
    before = tree_digest(terminal)
    store.install(
        make_bundle("1.1.0"), release_keys.public_pem, hardware=HARDWARE, now=NOW, max_starts=3
    )
    decisions = [store.record_start(NOW) for _ in range(3)]
    assert [(d.action, d.starts) for d in decisions] == [("trial", 1), ("trial", 2), ("trial", 3)]
    assert running_version(store.root) == "1.1.0"

    fourth = store.record_start(NOW)
    assert (fourth.action, fourth.version, fourth.rolled_back_from) == (
        "rolled_back",
        "1.0.0",
        "1.1.0",
    )
    assert running_version(store.root) == "1.0.0"
    assert store.record_start(NOW).action == "normal"
    event = store.status().events[-1]
    assert event["type"] == "update_rolled_back"
    assert (event["from_version"], event["to_version"], event["starts"], event["reason"]) == (
        "1.1.0",
        "1.0.0",
        3,
        "not_confirmed",
    )
    assert tree_digest(terminal) == before


def test_telemetry_gets_each_update_event_until_it_marks_it_reported(store: SlotStore) -> None:
    pending = store.pending_events()
    assert [e["type"] for e in pending] == ["update_installed"]
    store.mark_reported(pending[-1]["seq"])
    assert store.pending_events() == []


def test_another_install_is_refused_while_a_version_is_on_trial(
    store: SlotStore, make_bundle: BundleMaker, release_keys: ReleaseKeys
) -> None:
    store.install(make_bundle("1.1.0"), release_keys.public_pem, hardware=HARDWARE, now=NOW)
    with pytest.raises(UpdateError, match="1.1.0 is still on trial"):
        store.install(make_bundle("1.2.0"), release_keys.public_pem, hardware=HARDWARE, now=NOW)
    # The known-good slot was not overwritten.
    assert running_version(store.root, "good") == "1.0.0"


def test_a_refused_bundle_leaves_both_slots_as_they_were(
    store: SlotStore, make_bundle: BundleMaker, release_keys: ReleaseKeys
) -> None:
    store.install(make_bundle("1.1.0"), release_keys.public_pem, hardware=HARDWARE, now=NOW)
    store.confirm(NOW)
    before = store.status()
    with pytest.raises(UpdateError, match="not signed"):
        store.install(
            make_bundle("1.2.0", sign=False), release_keys.public_pem, hardware=HARDWARE, now=NOW
        )
    assert store.status().slots == before.slots
    # The older version is still there to roll back to.
    store.rollback(NOW)
    assert running_version(store.root) == "1.0.0"


def test_an_install_that_fails_midway_leaves_an_empty_slot_not_a_half_one(
    store: SlotStore, make_bundle: BundleMaker, release_keys: ReleaseKeys
) -> None:
    def broken_pip(wheels: object, target: Path) -> None:
        target.mkdir(parents=True)
        (target / "half.py").write_text("")
        raise UpdateError("installing the bundle's wheels failed: disk full")

    with pytest.raises(UpdateError, match="disk full"):
        store.install(
            make_bundle("1.1.0"),
            release_keys.public_pem,
            hardware=HARDWARE,
            now=NOW,
            wheel_installer=broken_pip,
        )
    status = store.status()
    assert [s.version for s in status.slots] == ["1.0.0", None]
    assert not (store.root / "slots" / "b").exists()
    assert status.trial is None and running_version(store.root) == "1.0.0"


def test_a_technician_rollback_runs_the_other_version_and_is_reported(
    store: SlotStore, make_bundle: BundleMaker, release_keys: ReleaseKeys
) -> None:
    with pytest.raises(UpdateError, match="no other version"):
        store.rollback(NOW)
    store.install(make_bundle("1.1.0"), release_keys.public_pem, hardware=HARDWARE, now=NOW)
    decision = store.rollback(NOW)
    assert (decision.version, decision.rolled_back_from) == ("1.0.0", "1.1.0")
    assert running_version(store.root) == running_version(store.root, "good") == "1.0.0"
    assert store.status().events[-1]["reason"] == "technician"


def test_links_follow_the_state_even_after_a_crash_between_the_two(
    store: SlotStore, make_bundle: BundleMaker, release_keys: ReleaseKeys
) -> None:
    store.install(make_bundle("1.1.0"), release_keys.public_pem, hardware=HARDWARE, now=NOW)
    # A power cut after state.json was replaced but before the link was: the link is stale.
    (store.root / "current").unlink()
    os.symlink("slots/a", store.root / "current")
    assert store.record_start(NOW).version == "1.1.0"
    assert running_version(store.root) == "1.1.0"


def test_the_state_file_is_plain_json_a_technician_can_read(store: SlotStore) -> None:
    state = json.loads((store.root / "state.json").read_text())
    assert state["active"] == "a" and state["slots"]["a"]["version"] == "1.0.0"


def test_the_cli_runs_the_whole_cycle_and_reports_a_rollback(
    tmp_path: Path,
    make_bundle: BundleMaker,
    release_keys: ReleaseKeys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "root"
    (root / "keys").mkdir(parents=True)
    (root / "keys" / "release.pub.pem").write_bytes(release_keys.public_pem)
    (root / "hardware").write_text(HARDWARE + "\n")
    r = ["--root", str(root)]
    assert kiosk_tool(["update", "install", "--in", str(make_bundle("1.0.0")), *r]) == 0
    assert kiosk_tool(["update", "install", "--in", str(make_bundle("1.1.0")),
                       "--max-starts", "1", *r]) == 0  # fmt: skip
    capsys.readouterr()
    assert kiosk_tool(["update", "start", "--json", *r]) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "trial"
    assert kiosk_tool(["update", "start", "--json", *r]) == 0
    assert json.loads(capsys.readouterr().out)["rolled_back_from"] == "1.1.0"
    assert kiosk_tool(["update", "status", *r]) == 0
    out = capsys.readouterr().out
    assert "running slot a: version 1.0.0" in out and "update_rolled_back" in out
    # A fixed version after the rollback installs and confirms; an older one is refused.
    assert kiosk_tool(["update", "install", "--in", str(make_bundle("1.1.1")), *r]) == 0
    assert kiosk_tool(["update", "confirm", *r]) == 0
    assert "1.1.1 confirmed healthy" in capsys.readouterr().out
    assert kiosk_tool(["update", "install", "--in", str(make_bundle("1.0.5")), *r]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not newer than the installed 1.1.1" in err
