"""The signed end-of-day report (日终轧帐) and catching up days missed while switched off.

A day's report is computed from the day's signed tx_close records (kiosk.settlement.calendar:
a day is the span of the journal since the previous day_close), so an auditor can recompute
it from the journal alone.
"""

import sqlite3
from datetime import date, datetime, timedelta
from typing import Any

from kiosk.clock_guard import ClockGuard
from kiosk.errors import KioskError
from kiosk.journal import Journal
from kiosk.journal.record_types import RecordType
from kiosk.journal.totals import day_totals
from kiosk.ledger.float_account import FloatAccount
from kiosk.settlement.calendar import BusinessCalendar
from kiosk.settlement.days import days_between
from kiosk.storage import write_transaction

# Made by earlier versions; the outbox reads day_close records from the journal itself.
SCHEMA = "DROP TABLE IF EXISTS upload_queue;"
# More missed business days than this are closed only when a technician confirms the clock.
MAX_CATCH_UP_DAYS = 7


class CatchUpRefused(KioskError):
    """Missed business days are not closed automatically; the message says what is needed."""


class DayCloser:
    def __init__(
        self,
        conn: sqlite3.Connection,
        journal: Journal,
        calendar: BusinessCalendar,
        float_account: FloatAccount,
        guard: ClockGuard,
    ) -> None:
        self._conn = conn
        self._journal = journal
        self._calendar = calendar
        self._float = float_account
        self._guard = guard
        conn.executescript(SCHEMA)

    def report(self, day: date) -> dict[str, Any]:
        """Totals of one business day from its tx_close records (kiosk.journal.totals, the
        rule the journal verifier recomputes), and the float balance last known.

        Those are the tx_close records after the previous day's day_close that carry the day.
        """
        closes = self._journal.of_type(RecordType.TX_CLOSE, self._calendar.span_start(day))
        known = self._float.last_known()
        return {
            **day_totals(closes, day.isoformat()),
            "float_balance_fen": None if known is None else known.balance_fen,
        }

    def close(
        self, day: date, now: datetime, *, confirmed_by: str | None = None
    ) -> dict[str, object]:
        """Close business day `day`: sign, journal and report it. Idempotent.

        Days are closed in order: days still open before it are closed first (more than
        MAX_CATCH_UP_DAYS of them only when confirmed_by names who checked the clock). A day
        that has not begun at `now` cannot be closed.
        """
        closed = self._existing(day)
        if closed is not None:
            return closed
        self._guard.require()
        if day > self._calendar.day_of(now):
            raise KioskError(
                f"business day {day.isoformat()} has not begun: close today's or an earlier day"
            )
        days = days_between(self._calendar.open_day(now), day)
        if not days:
            # Only a journal written before days were closed in order can have such a gap.
            raise KioskError(
                f"business day {day.isoformat()} was passed over without being closed: its "
                "transactions are in the report of the day closed after it"
            )
        if len(days) > MAX_CATCH_UP_DAYS and confirmed_by is None:
            raise CatchUpRefused(
                f"closing {day.isoformat()} closes {len(days)} business days, more than "
                f"{MAX_CATCH_UP_DAYS}: check the clock, then confirm with --catch-up"
            )
        self._float.refresh()
        return [self._close_one(each) for each in days][-1]

    def _existing(self, day: date) -> dict[str, object] | None:
        seq = self._calendar.closing_seq(day)
        if seq is None:
            return None
        return next(self._journal.records(seq))

    def _close_one(self, day: date) -> dict[str, object]:
        # The report is read in the write transaction that closes the day, so no closing
        # record can land between the report and the day_close; a close of the same day that
        # got there first (another thread: a remote command, the screen) is the answer.
        with write_transaction(self._conn):
            closed = self._existing(day)
            if closed is not None:
                return closed
            record = self._journal.append(RecordType.DAY_CLOSE, self.report(day), sign=True)
            self._calendar.mark_closed(day, int(str(record["seq"])))
        return record

    def close_due_days(
        self, now: datetime, *, confirmed_by: str | None = None
    ) -> list[dict[str, object]]:
        """Close every business day before today's that is not closed yet.

        A terminal switched off at cut-off closes the missed days when it starts; days
        without business are closed too, because "no business" is itself reported. A clock
        jumped forward must not sign closes of days that have not happened, so (docs/
        transactions.md, "Clock guard"): nothing closes while the clock is wrong; more than
        one day is caught up only on a clock the platform confirmed; more than
        MAX_CATCH_UP_DAYS only when a technician confirms (confirmed_by names them).
        """
        yesterday = self._calendar.day_of(now) - timedelta(days=1)
        start = self._calendar.open_day(now)
        if start > yesterday:
            return []
        days = days_between(start, yesterday)
        self._guard.require()
        if confirmed_by is None:
            if len(days) > MAX_CATCH_UP_DAYS:
                raise CatchUpRefused(
                    f"{len(days)} business days are due for closing, more than "
                    f"{MAX_CATCH_UP_DAYS}: the clock may have jumped; a technician checks the "
                    "time and confirms (kiosk-tool day close --catch-up)"
                )
            if len(days) > 1 and not self._guard.confirmed_by_platform():
                raise CatchUpRefused(
                    f"{len(days)} business days are due for closing and the platform has not "
                    "confirmed the clock yet: they close once it answers"
                )
        self._float.refresh()
        closed = [self._close_one(day) for day in days]
        if confirmed_by is not None and len(days) > 1:
            with write_transaction(self._conn):
                self._journal.append(
                    RecordType.DAYS_CAUGHT_UP,
                    {
                        "first_day": days[0].isoformat(),
                        "last_day": days[-1].isoformat(),
                        "confirmed_by": confirmed_by,
                    },
                )
        return closed
