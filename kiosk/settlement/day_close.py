"""The signed end-of-day report (日终轧帐) and catching up days missed while switched off.

A day's report is computed from the journal inside the write transaction that appends it:
the day's totals from its signed tx_close records (kiosk.settlement.calendar: a day is the
span of the journal since the previous day_close), the cash box figure, the deposits, cash
collections and voucher payouts of the span, so an auditor can recompute them from the
journal alone. The float check (kiosk.settlement.float_check) sets the terminal's figures
against the platform's statement read just before; a day that does not balance, or could
not be checked, journals a day_not_balanced alert with its report.
"""

import logging
import sqlite3
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from kiosk.alerts import AlertKind, announce, append_alert
from kiosk.clock_guard import ClockGuard
from kiosk.errors import KioskError
from kiosk.events import EventBus
from kiosk.journal import Journal
from kiosk.journal.record_types import RecordType, VoucherPayoutState
from kiosk.journal.totals import CASH_BOX_REPORT_VERSION, day_totals
from kiosk.ledger.cash_box import CashBox
from kiosk.ledger.float_account import FloatAccount
from kiosk.platform import FloatStatement
from kiosk.settlement.calendar import BusinessCalendar
from kiosk.settlement.days import days_between
from kiosk.settlement.float_check import FloatReading, balance, checked_with_next_day
from kiosk.settlement.pay_methods import payment_method_split
from kiosk.storage import write_transaction
from kiosk.terminal_schema import TERMINAL

log = logging.getLogger(__name__)

# Made by earlier versions; the outbox reads day_close records from the journal itself.
# More missed business days than this are closed only when a technician confirms the clock.
MAX_CATCH_UP_DAYS = 7
# Who closed a day when nobody asked: the cut-off, or the start after days were missed.
CUT_OFF = "cut-off"


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
        *,
        cash_box: CashBox,
        events: EventBus,
        open_transactions: Callable[[], list[str]] = list,
    ) -> None:
        self._conn = conn
        self._journal = journal
        self._calendar = calendar
        self._float = float_account
        self._guard = guard
        self._cash_box = cash_box
        self._events = events
        self._open_transactions = open_transactions
        TERMINAL.migrate(conn)

    def report(self, day: date) -> dict[str, Any]:
        """The journal's figures of one business day so far (without the float check):
        totals from its tx_close records (kiosk.journal.totals, the rule the journal
        verifier recomputes), the cash box, deposits, collections and voucher payouts."""
        start = self._calendar.span_start(day)
        closes = list(self._journal.of_type(RecordType.TX_CLOSE, start))
        totals = day_totals(closes, day.isoformat())
        totals.update(payment_method_split(closes, day.isoformat()))
        deposits = [
            {
                "slip_no": r.get("slip_no"),
                "amount_fen": r.get("amount_fen"),
                "state": r.get("state"),
                "by": r.get("by"),
            }
            for r in self._journal.of_type(RecordType.FLOAT_DEPOSIT, start)
        ]
        collections = [
            {
                "seq": r["seq"],
                "expected_fen": r.get("expected_fen"),
                "counted_fen": r.get("counted_fen"),
                "discrepancy_fen": r.get("discrepancy_fen"),
                "by": r.get("by"),
            }
            for r in self._cash_box.collections_after(start)
        ]
        payouts = [
            r
            for r in self._journal.of_type(RecordType.VOUCHER_PAYOUT, start)
            if r.get("state") == VoucherPayoutState.PAID
        ]
        return {
            **totals,
            "report_version": CASH_BOX_REPORT_VERSION,
            "cash_expected_fen": self._cash_box.expected_fen(),
            "cash_collections": collections,
            "cash_discrepancy_fen": sum(int(str(c["discrepancy_fen"])) for c in collections),
            "deposits_recorded": deposits,
            "vouchers_issued_count": totals["voucher_count"],
            "vouchers_issued_fen": totals["voucher_fen"],
            "vouchers_redeemed_count": len(payouts),
            "vouchers_redeemed_fen": sum(int(str(r.get("amount_fen", 0))) for r in payouts),
        }

    def close(
        self,
        day: date,
        now: datetime,
        *,
        confirmed_by: str | None = None,
        closed_by: str = CUT_OFF,
    ) -> dict[str, object]:
        """Close business day `day`: check the float, sign, journal and report it. Idempotent.

        Days are closed in order: days still open before it are closed first (more than
        MAX_CATCH_UP_DAYS of them only when confirmed_by names who checked the clock). A day
        that has not begun at `now` cannot be closed. closed_by names who asked.
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
        return self._close_days(days, closed_by)[-1]

    def _close_days(self, days: list[date], closed_by: str) -> list[dict[str, object]]:
        """Close days in order; the platform's statement checks the last of them (the float
        figures of the earlier ones are covered by that check: a catch-up)."""
        statement = self._float.statement()
        return [
            self._close_one(each, statement, closed_by, checked_later=each != days[-1])
            for each in days
        ]

    def _existing(self, day: date) -> dict[str, object] | None:
        seq = self._calendar.closing_seq(day)
        if seq is None:
            return None
        return next(self._journal.records(seq))

    def _previous_reading(self) -> FloatReading | None:
        row = self._conn.execute(
            "SELECT reading FROM float_reading ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else FloatReading.from_json(row[0])

    def _close_one(
        self,
        day: date,
        statement: FloatStatement | None,
        closed_by: str,
        *,
        checked_later: bool = False,
    ) -> dict[str, object]:
        # Everything is read in the write transaction that closes the day, so no closing
        # record (nor note, nor payout) can land between the report and the day_close; a
        # close of the same day that got there first (another thread: a remote command,
        # the screen) is the answer. statement is None when the platform did not answer.
        alert = None
        with write_transaction(self._conn):
            closed = self._existing(day)
            if closed is not None:
                return closed
            previous = self._previous_reading()
            turnover = self._journal.turnover_fen()
            report = self.report(day)
            if checked_later:
                figures = checked_with_next_day(previous, turnover)
            else:
                figures = balance(previous, statement, turnover)
            known = self._float.last_known()
            report.update(figures)
            report["float_balance_fen"] = (
                figures["platform_float_fen"]
                if figures["platform_float_fen"] is not None
                else (None if known is None else known.balance_fen)
            )
            report["open_transactions"] = self._open_transactions()
            report["closed_by"] = closed_by
            record = self._journal.append(RecordType.DAY_CLOSE, report, sign=True)
            seq = int(str(record["seq"]))
            self._calendar.mark_closed(day, seq)
            self._cash_box.mark(seq, int(report["cash_expected_fen"]))
            if statement is not None and not checked_later:
                self._conn.execute(
                    "INSERT INTO float_reading (seq, business_day, reading) VALUES (?, ?, ?)",
                    (seq, day.isoformat(), FloatReading(statement, turnover).to_json()),
                )
            if not checked_later and figures["balanced"] is not True:
                alert = append_alert(
                    self._journal,
                    AlertKind.DAY_NOT_BALANCED,
                    business_day=day.isoformat(),
                    day_close_seq=seq,
                    float_check=figures["float_check"],
                    closing_float_fen=figures["closing_float_fen"],
                    platform_float_fen=figures["platform_float_fen"],
                    float_difference_fen=figures["float_difference_fen"],
                    open_transactions=report["open_transactions"],
                )
        if alert is not None:
            announce(self._events, alert)
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
        closed = self._close_days(days, CUT_OFF if confirmed_by is None else confirmed_by)
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
