"""Which business day is open: the day closing transactions belong to, and the days closed.

Owns the day_closed table. A business day is a span of the journal, as a fiscal Z report is:
the day's closing records are every tx_close between the previous day's day_close record
and its own. A transaction therefore belongs to the day that is open when it closes (the
day after the last closed one), not to the day its clock reading falls in: closed after the
cut-off but before the day was closed, it is the old day's; closed after a day was closed
early on demand, it is the next day's. So every closing record is in exactly one day's
report, and an auditor can recompute each report from the records before it.

Never reads a clock itself and never writes outside the caller's write transaction. It
remembers the last closed day between reads (every payment's commit asks for the open day):
only this process closes days, since one process at a time runs a terminal
(kiosk.instance_lock), and closing one forgets it, so a rolled-back close is read again.
"""

import sqlite3
from datetime import date, datetime, time, timedelta

from kiosk.journal import Journal
from kiosk.settlement.days import business_day
from kiosk.terminal_schema import TERMINAL


class BusinessCalendar:
    def __init__(self, conn: sqlite3.Connection, journal: Journal, cutoff: time) -> None:
        self._conn = conn
        self._journal = journal
        self.cutoff = cutoff
        self._first_day: date | None = None
        self._last_closed: tuple[date | None] | None = None  # None: not read yet
        TERMINAL.migrate(conn)

    def day_of(self, moment: datetime) -> date:
        """The business day a clock reading falls in (at or after the cut-off: the next)."""
        return business_day(moment, self.cutoff)

    def first_day(self) -> date | None:
        """The business day the journal started in; None before it started."""
        if self._first_day is None:
            # Read once: the journal's first record never changes.
            start = next(self._journal.records(1), None)
            if start is None:
                return None
            self._first_day = self.day_of(datetime.fromisoformat(str(start["time"])))
        return self._first_day

    def last_closed(self) -> date | None:
        if self._last_closed is None:
            found = self._conn.execute("SELECT max(business_day) FROM day_closed").fetchone()[0]
            self._last_closed = (None if found is None else date.fromisoformat(found),)
        return self._last_closed[0]

    def open_day(self, now: datetime) -> date:
        """The business day a transaction closing now belongs to.

        The day after the last closed one; before any day was closed, the day the journal
        started (now's day if it has not). Read it inside the write transaction that uses it,
        so a day cannot be closed in between.
        """
        last = self.last_closed()
        if last is not None:
            return last + timedelta(days=1)
        first = self.first_day()
        return self.day_of(now) if first is None else first

    def closing_seq(self, day: date) -> int | None:
        """The seq of the day_close record of day, or None while the day is open."""
        found = self._conn.execute(
            "SELECT journal_seq FROM day_closed WHERE business_day = ?", (day.isoformat(),)
        ).fetchone()
        return None if found is None else int(found[0])

    def span_start(self, day: date) -> int:
        """The seq after which day's closing records lie: its previous day's day_close."""
        found = self._conn.execute(
            "SELECT journal_seq FROM day_closed WHERE business_day < ? "
            "ORDER BY business_day DESC LIMIT 1",
            (day.isoformat(),),
        ).fetchone()
        return 0 if found is None else int(found[0])

    def mark_closed(self, day: date, journal_seq: int) -> None:
        self._last_closed = None  # read again: the caller's transaction may yet roll back
        self._conn.execute(
            "INSERT INTO day_closed (business_day, journal_seq) VALUES (?, ?)",
            (day.isoformat(), journal_seq),
        )
