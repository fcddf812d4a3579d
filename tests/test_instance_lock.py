"""One terminal per data directory: a second process is refused before it touches anything."""

import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.instance_lock import DataDirectoryLock, TerminalBusy
from station.composition import build_terminal
from tests.fixtures.engine_hook import engine_of
from tests.fixtures.terminal import TerminalRig

HOLD = (
    "import sys, time; from pathlib import Path; from kiosk.instance_lock import "
    "DataDirectoryLock; DataDirectoryLock(Path(sys.argv[1])); print('held', flush=True); "
    "time.sleep(60)"
)


def test_a_second_process_is_refused_and_a_killed_holder_leaves_no_stale_lock(
    tmp_path: Path,
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(TerminalBusy, match=f"another process \\(pid {holder.pid}\\)"):
            DataDirectoryLock(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    DataDirectoryLock(tmp_path).release()  # the kernel dropped the killed holder's lock


def test_a_terminal_cannot_be_built_on_a_running_terminals_data(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 10_00)
    rig.insert(progress.tx_id, 10_00)
    with pytest.raises(TerminalBusy, match="use its maintenance screen"):
        build_terminal(rig.config)
    # The running terminal's payment is untouched: no second process recovered it.
    assert [r.tx_id for r in engine_of(rig.terminal).store.open_transactions()] == [progress.tx_id]
    assert rig.terminal.finish(progress.tx_id).outcome == "paid"


def test_a_closed_terminal_lets_the_next_one_in(terminal_rig: TerminalRig) -> None:
    terminal_rig.terminal.close()
    terminal, _ = build_terminal(terminal_rig.config)
    terminal.close()
