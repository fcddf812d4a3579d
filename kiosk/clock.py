"""Time for the terminal: always timezone-aware, in the station's configured zone."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    def __init__(self, tz: str = "Asia/Shanghai") -> None:
        self._tz = ZoneInfo(tz)

    def now(self) -> datetime:
        return datetime.now(self._tz)


class FixedClock:
    """A clock that only moves when told to: for tests and simulations."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware start time")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta


class PlatformTime:
    """A clock corrected by the operator platform's clock, as last read (platform time minus
    ours; the uncorrected clock while it is unknown).

    For judging times set by the back office, such as a remote command's expiry: its clock
    and the platform's are kept right by the operator, while a terminal's may have drifted
    (kiosk.clock_guard).
    """

    def __init__(self, clock: Clock, skew: Callable[[], timedelta | None]) -> None:
        self._clock = clock
        self._skew = skew

    def now(self) -> datetime:
        return self._clock.now() + (self._skew() or timedelta(0))


def iso(moment: datetime) -> str:
    """ISO 8601 with offset and second precision, as the journal format requires."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")
