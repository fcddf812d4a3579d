"""A private X server (Debian xvfb) for running the app without a screen.

Owns picking a free display number, waiting for the server's socket and stopping the
server: for the screenshot tool, the benchmark and the UI tests. Mesa's llvmpipe draws GL on
it. It never touches Kivy's settings.
"""

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ui import child_process

START_TIMEOUT_S = 15.0
SCREEN = "1280x800x24"


class XvfbFailed(RuntimeError):
    """Xvfb is missing, or did not start."""


def free_display(first: int) -> int:
    """The first display number from `first` that no X server holds (socket or lock file)."""
    for number in range(first, 200):
        if (
            not Path(f"/tmp/.X11-unix/X{number}").exists()
            and not Path(f"/tmp/.X{number}-lock").exists()
        ):
            return number
    raise XvfbFailed(f"no free X display number between :{first} and :199")


@contextmanager
def private_xvfb(first: int = 100) -> Iterator[str]:
    """Start Xvfb on a free display (searched from `first`: callers that may run at the same
    time start apart), point DISPLAY at it while inside, and stop it after."""
    if shutil.which("Xvfb") is None:
        raise XvfbFailed("Xvfb is not installed: apt-get install xvfb")
    number = free_display(first)
    process = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", SCREEN, "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise XvfbFailed(f"Xvfb :{number} did not start")
        time.sleep(0.05)
    previous = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = f":{number}"
    try:
        yield f":{number}"
    finally:
        if previous is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = previous
        child_process.stop(process)


@contextmanager
def display(first: int = 100) -> Iterator[None]:
    """DISPLAY as it is, or a private Xvfb for the run; one clear line if neither is there."""
    if os.environ.get("DISPLAY"):
        yield
        return
    try:
        with private_xvfb(first):
            yield
    except XvfbFailed as exc:
        raise SystemExit(f"no DISPLAY, and {exc} (or run on a desktop)") from None
