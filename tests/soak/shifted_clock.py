"""A terminal clock that is off the true time by a settable offset.

The soak models a terminal whose clock is wrong by giving its core this clock (so the
journal carries the wrong times and the clock guard judges them) while the platform
simulator's clock is set off the other way (so the platform sees the skew in the requests,
which the platform client stamps with the machine's time). The settle phase moves it on to
let every retry's backoff pass.
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


class ShiftedClock:
    def __init__(self, tz: str, offset: timedelta = timedelta(0)) -> None:
        self._tz = ZoneInfo(tz)
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(self._tz) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta
