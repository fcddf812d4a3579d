"""One terminal per data directory: the lock that keeps a second process out.

A second process driving the same terminal (a technician's `kiosk-tool day close` while the
kiosk service runs, say) would recover the first one's transactions in flight as if it had
crashed and share its devices. Each Terminal therefore holds an exclusive flock on
`<data>/terminal.lock` for its lifetime; the kernel drops it when the process ends however it
ends, so a killed terminal never leaves a stale lock behind.
"""

import fcntl
import os
from pathlib import Path

from kiosk.errors import KioskError

LOCK_NAME = "terminal.lock"


class TerminalBusy(KioskError):
    """Another process runs the terminal of this data directory."""


class DataDirectoryLock:
    def __init__(self, data_path: Path) -> None:
        data_path.mkdir(parents=True, exist_ok=True)
        path = data_path / LOCK_NAME
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(self._fd)
            self._fd = None
            raise TerminalBusy(
                f"the terminal of {data_path} is running in another process (pid {holder}): "
                "use its maintenance screen, or stop the kiosk service first"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode("ascii"), 0)

    def release(self) -> None:
        """Let another terminal open the directory (closing the file drops the flock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
