"""A serial payment-code scanner on a pseudo-terminal, for tests and a technician's bench.

It opens a pseudo-terminal, links its slave device at `link` (which a driver opens as it
would /dev/kiosk-scanner) and writes each scan to it the way a scanner in serial mode does:
the code in ASCII, then the suffix (CR by default). Faults: a garbled scan (line noise in
the code), a partial one (the code cut short, no suffix), a code scanned twice, raw bytes,
and unplugging (the link and the pseudo-terminal disappear; the driver's reads fail) and
plugging back in (a new pseudo-terminal at the same link).
"""

import os
import threading
import tty
from pathlib import Path

from simulators.scanner import garbled


class PtyScannerSimulator:
    def __init__(self, link: Path, *, suffix: bytes = b"\r") -> None:
        self.link = link
        self.suffix = suffix
        self._lock = threading.Lock()
        self._master: int | None = None
        self._slave: int | None = None

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def start(self) -> "PtyScannerSimulator":
        self.replug()
        return self

    def stop(self) -> None:
        self.unplug()

    # ------------------------------------------------------------ scans

    def scan(self, code: str) -> None:
        self.send(code.encode("ascii") + self.suffix)

    def scan_twice(self, code: str) -> None:
        self.send((code.encode("ascii") + self.suffix) * 2)

    def scan_garbled(self, code: str) -> None:
        """Line noise in the code: some characters arrive as bytes that are not digits."""
        self.send(garbled(code).encode("ascii").replace(b"?", b"\xff") + self.suffix)

    def scan_partial(self, code: str, keep: int | None = None) -> None:
        """The first keep characters (default half) and no suffix: the rest never comes."""
        keep = len(code) // 2 if keep is None else keep
        self.send(code[:keep].encode("ascii"))

    def send(self, data: bytes) -> None:
        with self._lock:
            if self._master is None:
                raise ConnectionError(f"the simulated scanner at {self.link} is unplugged")
            os.write(self._master, data)

    # ------------------------------------------------------------ the cable

    def unplug(self) -> None:
        """The scanner's cable is pulled: the link goes and the driver's reads fail."""
        with self._lock:
            for fd in (self._master, self._slave):
                if fd is not None:
                    os.close(fd)
            self._master = self._slave = None
            self.link.unlink(missing_ok=True)

    def replug(self) -> None:
        """Plugged (back) in: a new pseudo-terminal at the same link."""
        with self._lock:
            if self._master is not None:
                return
            master, slave = os.openpty()
            tty.setraw(slave)  # bytes as sent: no CR to LF translation, no echo
            self._master, self._slave = master, slave
            self.link.parent.mkdir(parents=True, exist_ok=True)
            self.link.unlink(missing_ok=True)
            self.link.symlink_to(os.ttyname(slave))
