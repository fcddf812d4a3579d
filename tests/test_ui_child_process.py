"""Stopping the app's child processes: politely, then for sure, always reaped."""

import signal
import subprocess
import sys

from ui import child_process

STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)


def test_a_child_that_ends_on_sigterm_is_stopped_by_it() -> None:
    process = subprocess.Popen(["sleep", "60"])
    child_process.stop(process)
    assert process.returncode == -signal.SIGTERM


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout_and_reaped() -> None:
    process = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    child_process.stop(process, timeout_s=0.2)
    assert process.returncode == -signal.SIGKILL
    process.stdout.close()
