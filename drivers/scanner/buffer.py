"""What a scanner driver keeps between its reading thread and the core's read(): the scans
of the current arming, judged for its purpose (a payment code, or a voucher slip's code),
each distinct code once, misreads in order, and the link's state.

Every scanner implementation (the real drivers and the in-process simulator) keeps its scans
here, so that arming, duplicates, misreads and unplugging behave the same in all of them.
"""

import threading
import time
from collections import deque

from drivers.scanner.assembly import RawScan
from kiosk.devices import (
    ScanMisread,
    ScannedCode,
    ScannedVoucher,
    ScannerUnavailable,
    ScanPurpose,
)
from kiosk.payment_codes import CodeProblem, PaymentCodeInvalid, mask_code, scheme_of
from kiosk.voucher_codes import VoucherCodeInvalid, voucher_id_of_scan

Scanned = ScannedCode | ScannedVoucher

# Scans nobody has read yet; past this the oldest go (a payment needs one code).
MAX_WAITING = 16


class ScanBuffer:
    """Thread-safe: the driver's thread offers, the terminal's thread takes."""

    def __init__(self, kind: str, *, connected: bool = False) -> None:
        self.kind = kind
        self._cond = threading.Condition()
        self._armed: ScanPurpose | None = None
        self._waiting: deque[Scanned | ScanMisread] = deque(maxlen=MAX_WAITING)
        self._given: set[str] = set()  # the codes of this arming, given once each
        self._connected = connected
        self._problem: str | None = None if connected else f"{kind} scanner not opened yet"
        self._counts = {"scans": 0, "misreads": 0, "duplicates": 0, "ignored": 0, "unplugged": 0}

    # ------------------------------------------------------------ the core's side

    def arm(self, purpose: ScanPurpose = ScanPurpose.PAYMENT) -> None:
        with self._cond:
            self._armed = purpose
            self._waiting.clear()
            self._given.clear()

    def disarm(self) -> None:
        with self._cond:
            self._armed = None
            self._waiting.clear()
            self._given.clear()

    def take(self, timeout_s: float = 0.0) -> Scanned | None:
        if timeout_s < 0:
            raise ValueError(f"a read timeout cannot be negative ({timeout_s} s)")
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._waiting:
                if not self._connected:
                    raise ScannerUnavailable(
                        f"the payment-code scanner is not connected ({self._problem}): check "
                        "its cable; it is used again as soon as it is back"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            item = self._waiting.popleft()
        if isinstance(item, ScanMisread):
            raise item
        return item

    def health(self) -> dict[str, object]:
        with self._cond:
            return {
                "device": "scanner",
                "kind": self.kind,
                "connected": self._connected,
                "armed": self._armed is not None,
                "purpose": None if self._armed is None else str(self._armed),
                "waiting": len(self._waiting),
                "last_error": self._problem,
                **self._counts,
            }

    # ------------------------------------------------------------ the driver's side

    def offer(self, scan: RawScan) -> None:
        """A scan the scanner sent: queued while armed (once per code), else dropped."""
        with self._cond:
            self._counts["scans"] += 1
            if self._armed is None:
                self._counts["ignored"] += 1
                return
            item = self._judge(scan, self._armed)
            if item is None:
                self._counts["duplicates"] += 1
                return
            if isinstance(item, ScanMisread):
                self._counts["misreads"] += 1
            self._waiting.append(item)
            self._cond.notify_all()

    def set_connected(self, connected: bool, problem: str | None = None) -> None:
        with self._cond:
            if self._connected and not connected:
                self._counts["unplugged"] += 1
            self._connected = connected
            self._problem = None if connected else (problem or "not connected")
            self._cond.notify_all()

    @property
    def connected(self) -> bool:
        with self._cond:
            return self._connected

    def _judge(self, scan: RawScan, purpose: ScanPurpose) -> Scanned | ScanMisread | None:
        if not scan.complete:
            return ScanMisread(
                CodeProblem.PARTIAL,
                f"the scanner sent a partial code ({mask_code(scan.text)}, "
                f"{len(scan.text)} characters, no end): scan it again",
            )
        item: Scanned
        try:
            if purpose is ScanPurpose.VOUCHER:
                item = ScannedVoucher(voucher_id_of_scan(scan.text))
            else:
                item = ScannedCode(scan.text, scheme_of(scan.text))
        except (PaymentCodeInvalid, VoucherCodeInvalid) as exc:
            return ScanMisread(exc.problem, str(exc))
        if scan.text in self._given:
            return None  # the same code again: a phone or a slip held under the scanner
        self._given.add(scan.text)
        return item
