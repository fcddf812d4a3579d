"""Cutting the characters a scanner sends into scans: a terminator ends one, a pause a partial.

A scanner sends a code as one burst of characters ended by its suffix (CR, LF or CR LF; a
HID scanner types Enter). A burst that stops without its terminator (the resident moved the
phone away, the link dropped a byte) would otherwise stick to the front of the next scan, so
characters that wait longer than gap_s for the next one are given up as a partial scan.
Pure: the caller passes the time (monotonic seconds), so the rules are tested without sleeping.
"""

from dataclasses import dataclass, field

TERMINATORS = frozenset("\r\n")
# The longest scan: a voucher slip's QR code (a receipt code of at most version 10 at level
# L, kiosk.receipts.qr, holds 395 alphanumeric characters); a payment code is 16 to 24
# digits. More without a terminator is line noise, cut here.
MAX_SCAN_CHARS = 400


@dataclass(frozen=True)
class RawScan:
    """What arrived between two terminators (complete) or before a pause (partial)."""

    text: str = field(repr=False)
    complete: bool


class LineAssembler:
    def __init__(self, gap_s: float) -> None:
        if gap_s <= 0:
            raise ValueError(f"the gap that ends a partial scan must be positive, not {gap_s}")
        self.gap_s = gap_s
        self._chars: list[str] = []
        self._last_at = 0.0

    @property
    def waiting(self) -> bool:
        """Characters have arrived that no terminator has ended yet."""
        return bool(self._chars)

    def feed(self, text: str, now: float) -> list[RawScan]:
        """The scans text completes (a partial first, if the pause before it was too long)."""
        scans = self.expire(now)
        for char in text:
            if char in TERMINATORS:
                # CR LF is one terminator; a terminator with nothing before it (the second
                # half of CR LF, or a scanner's bare suffix) ends no scan.
                if self._chars:
                    scans.append(RawScan("".join(self._chars), complete=True))
                    self._chars.clear()
            else:
                self._chars.append(char)
                if len(self._chars) > MAX_SCAN_CHARS:
                    scans.append(RawScan("".join(self._chars), complete=False))
                    self._chars.clear()
        if text:
            self._last_at = now
        return scans

    def expire(self, now: float) -> list[RawScan]:
        """The partial scan given up because nothing came for gap_s, if any."""
        if self._chars and now - self._last_at > self.gap_s:
            partial = RawScan("".join(self._chars), complete=False)
            self._chars.clear()
            return [partial]
        return []

    def reset(self) -> None:
        """Forget a partial scan (the link went down: its rest will never come)."""
        self._chars.clear()
