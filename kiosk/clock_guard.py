"""Whether the terminal's clock may be trusted with money and signatures.

A power cut can bring a Raspberry Pi back with its clock wrong (no battery-backed clock, or
a bad one): earlier than records already journaled, or far in the future. Signed records
carry the time, business days are decided by it and the platform refuses requests whose
time is 15 minutes off. So (docs/transactions.md, "Clock guard"):
- the clock is wrong while it is earlier than the latest time it was trusted at (a mark the
  guard keeps, which starts at the last journal record: records written while the clock is
  wrong, such as its own alert, carry wrong times and must not become the reference) beyond
  a few seconds of tolerance; or more than FAR_AHEAD after it unless the platform's own
  clock, read from its last answer, confirms it; or while it is more than SKEW_BLOCK away
  from the platform's clock;
- while it is wrong no payment starts, no money request is sent and no transaction or day
  is closed (a closing record is signed); one alert names the problem when it starts;
- a skew of more than SKEW_ALERT is alerted although money still moves.
The rule (judge) is pure; ClockGuard reads the journal's last time and the platform's skew.
"""

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from kiosk.alerts import AlertKind, announce, append_alert
from kiosk.clock import Clock
from kiosk.events import EventBus
from kiosk.journal import Journal
from kiosk.storage import write_transaction
from kiosk.terminal_schema import TERMINAL
from kiosk.transactions.outcomes import PaymentRefused

log = logging.getLogger(__name__)

BEHIND_TOLERANCE = timedelta(seconds=5)
# The latest time the clock was trusted is kept, written at most this often.
MARK_EVERY = timedelta(minutes=1)

FAR_AHEAD = timedelta(days=30)
SKEW_ALERT = timedelta(minutes=2)
SKEW_BLOCK = timedelta(minutes=10)


class ClockVerdict(StrEnum):
    OK = "ok"
    BEHIND_JOURNAL = "behind_journal"  # earlier than the last journal record
    FAR_AHEAD = "far_ahead"  # implausibly far after the last record, not confirmed
    SKEWED = "skewed"  # far from the platform's clock


@dataclass(frozen=True)
class ClockCheck:
    verdict: ClockVerdict
    detail: str = ""
    skew_s: float | None = None  # platform time minus ours, when known

    @property
    def ok(self) -> bool:
        return self.verdict is ClockVerdict.OK


class ClockWrong(PaymentRefused):
    """The clock cannot be trusted now: no payment, no money request, no closing record."""


def judge(now: datetime, last_record: datetime | None, skew: timedelta | None) -> ClockCheck:
    """The verdict on the clock reading `now` (pure)."""
    skew_s = None if skew is None else skew.total_seconds()
    if last_record is not None and now < last_record - BEHIND_TOLERANCE:
        behind = int((last_record - now).total_seconds())
        return ClockCheck(
            ClockVerdict.BEHIND_JOURNAL, f"{behind} s earlier than the last journal record", skew_s
        )
    if skew is not None and abs(skew) > SKEW_BLOCK:
        return ClockCheck(
            ClockVerdict.SKEWED, f"{int(skew.total_seconds())} s from the platform's clock", skew_s
        )
    confirmed = skew is not None  # and within SKEW_BLOCK, tested above
    if last_record is not None and now - last_record > FAR_AHEAD and not confirmed:
        ahead = (now - last_record).days
        return ClockCheck(
            ClockVerdict.FAR_AHEAD,
            f"{ahead} days after the last journal record, not confirmed by the platform",
            skew_s,
        )
    return ClockCheck(ClockVerdict.OK, "", skew_s)


class ClockGuard:
    def __init__(
        self,
        conn: sqlite3.Connection,
        journal: Journal,
        clock: Clock,
        events: EventBus,
        skew: Callable[[], timedelta | None],
    ) -> None:
        self._conn = conn
        self._journal = journal
        self._clock = clock
        self._events = events
        self._skew = skew
        self._reported: ClockVerdict = ClockVerdict.OK
        self._skew_alerted = False
        TERMINAL.migrate(conn)
        found = conn.execute("SELECT trusted_until FROM clock_mark").fetchone()
        self._mark: datetime | None = None if found is None else datetime.fromisoformat(found[0])
        self._mark_written = self._mark

    def check(self) -> ClockCheck:
        """Judge the clock now; alert once when it turns wrong (or skews noticeably)."""
        now = self._clock.now()
        latest = self._latest_trusted()
        check = judge(now, latest, self._skew())
        if check.ok:
            self._trusted(now if latest is None else max(now, latest))
        if check.verdict is not self._reported:
            self._reported = check.verdict
            if check.ok:
                log.warning("the clock is trusted again")
                self._events.publish("clock_ok")
            else:
                self._alert(check)
        elif check.ok and check.skew_s is not None:
            skewed = abs(check.skew_s) > SKEW_ALERT.total_seconds()
            if skewed and not self._skew_alerted:
                self._alert(check)
            self._skew_alerted = skewed
        return check

    def _latest_trusted(self) -> datetime | None:
        # Only the mark: records journaled while the clock was wrong carry wrong times. A
        # database from before the mark existed starts from its last record.
        if self._mark is None:
            self._mark = self._journal.last_time()
        return self._mark

    def _trusted(self, moment: datetime) -> None:
        self._mark = moment
        if self._mark_written is not None and moment - self._mark_written < MARK_EVERY:
            return
        with write_transaction(self._conn):
            self._conn.execute(
                "INSERT INTO clock_mark (id, trusted_until) VALUES (1, ?) "
                "ON CONFLICT(id) DO UPDATE SET trusted_until = excluded.trusted_until",
                (moment.isoformat(),),
            )
        self._mark_written = moment

    def require(self) -> None:
        """Raise ClockWrong (a PaymentRefused) unless the clock may be trusted."""
        check = self.check()
        if not check.ok:
            raise ClockWrong(
                f"the terminal's clock is wrong ({check.detail}): no payment until it is "
                "set right; a technician must check the time synchronisation"
            )

    def confirmed_by_platform(self) -> bool:
        """Whether the platform's last answer confirmed this clock (skew known and small)."""
        skew = self._skew()
        return skew is not None and abs(skew) <= SKEW_ALERT

    def _alert(self, check: ClockCheck) -> None:
        log.warning("clock: %s %s", check.verdict, check.detail)
        with write_transaction(self._conn):
            # Unsigned when the clock is wrong: a signature would vouch for a wrong time.
            record = append_alert(
                self._journal,
                AlertKind.CLOCK_WRONG,
                sign=check.ok,
                verdict=str(check.verdict),
                detail=check.detail,
                skew_s=None if check.skew_s is None else round(check.skew_s),
            )
        announce(self._events, record)
        self._events.publish("clock_wrong", verdict=str(check.verdict), detail=check.detail)
