"""A scanner driver over any line source: its own reading thread, reconnects, the buffer.

The thread opens the source (retrying every reconnect_s while it cannot), reads what comes,
cuts it into scans (assembly.LineAssembler) and offers them to the ScanBuffer, which the
core reads through kiosk.devices.PaymentCodeScanner. A source that fails (unplugged, I/O
error) is closed and reopened; meanwhile read() raises ScannerUnavailable. Nothing here
knows whether the characters came over a serial line or as key events.
"""

import logging
import threading
import time
from typing import Protocol

from drivers.scanner.assembly import LineAssembler
from drivers.scanner.buffer import ScanBuffer
from kiosk.devices import ScannedCode, ScannedVoucher, ScanPurpose

log = logging.getLogger(__name__)

READ_SLICE_S = 0.05  # one wait for characters; stop and pauses are checked between waits
DEFAULT_GAP_S = 0.3  # a scanner sends a whole code within a few tens of milliseconds
DEFAULT_RECONNECT_S = 1.0


class LinkError(Exception):
    """The link to the scanner failed or vanished (unplugged, I/O error, device gone)."""


class LineSource(Protocol):
    kind: str  # "serial" or "hid", for health
    port: str

    def open(self) -> None:
        """Open the scanner; LinkError when it cannot be opened now."""
        ...

    def read(self, wait_s: float) -> str:
        """The characters the scanner sent ("\\r" or "\\n" end a code; undecodable bytes as
        U+FFFD), waiting at most about wait_s for the first; LinkError when the link failed."""
        ...

    def close(self) -> None: ...


class LineScanner:
    """kiosk.devices.PaymentCodeScanner over a LineSource, read on its own thread."""

    def __init__(
        self,
        source: LineSource,
        *,
        gap_s: float = DEFAULT_GAP_S,
        reconnect_s: float = DEFAULT_RECONNECT_S,
        start: bool = True,
    ) -> None:
        self.source = source
        self.kind = source.kind
        self._buffer = ScanBuffer(source.kind)
        self._assembler = LineAssembler(gap_s)
        self._reconnect_s = reconnect_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    # ------------------------------------------------------------ PaymentCodeScanner

    def arm(self, purpose: ScanPurpose = ScanPurpose.PAYMENT) -> None:
        self._buffer.arm(purpose)

    def disarm(self) -> None:
        self._buffer.disarm()

    def read(self, timeout_s: float = 0.0) -> ScannedCode | ScannedVoucher | None:
        return self._buffer.take(timeout_s)

    def health(self) -> dict[str, object]:
        return {**self._buffer.health(), "port": self.source.port}

    # ------------------------------------------------------------ the thread

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"scanner-{self.kind}", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.source.close()
        self._buffer.set_connected(False, "closed")

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._buffer.connected and not self._open():
                self._stop.wait(self._reconnect_s)
                continue
            try:
                text = self.source.read(READ_SLICE_S)
            except LinkError as exc:
                self._lost(str(exc))
                continue
            now = time.monotonic()
            for scan in self._assembler.feed(text, now) if text else self._assembler.expire(now):
                self._buffer.offer(scan)

    def _open(self) -> bool:
        try:
            self.source.open()
        except LinkError as exc:
            self._buffer.set_connected(False, f"{self.source.port}: {exc}")
            return False
        log.info("payment-code scanner on %s connected", self.source.port)
        self._assembler.reset()
        self._buffer.set_connected(True)
        return True

    def _lost(self, problem: str) -> None:
        log.warning("payment-code scanner on %s lost: %s", self.source.port, problem)
        self.source.close()
        partial = self._assembler.expire(float("inf"))  # what came before the link went
        for scan in partial:
            self._buffer.offer(scan)
        self._buffer.set_connected(False, f"{self.source.port}: {problem}")
