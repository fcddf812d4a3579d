"""The signed end-of-day report (日终轧帐) and catching up days missed while switched off."""

import sqlite3
from datetime import date, datetime, time, timedelta
from typing import Any

from kiosk.journal import Journal
from kiosk.ledger.float_account import FloatAccount
from kiosk.settlement.days import business_day, days_between
from kiosk.storage import write_transaction
from kiosk.transactions.store import TxStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS day_closed (
    business_day TEXT PRIMARY KEY,
    journal_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS upload_queue (
    journal_seq INTEGER PRIMARY KEY,  -- a record the back office must receive (outbox)
    kind TEXT NOT NULL,
    queued TEXT NOT NULL
);
"""


class DayCloser:
    def __init__(
        self,
        conn: sqlite3.Connection,
        journal: Journal,
        store: TxStore,
        float_account: FloatAccount,
        cutoff: time,
    ) -> None:
        self._conn = conn
        self._journal = journal
        self._store = store
        self._float = float_account
        self._cutoff = cutoff
        conn.executescript(SCHEMA)

    def is_closed(self, day: date) -> bool:
        found = self._conn.execute(
            "SELECT 1 FROM day_closed WHERE business_day = ?", (day.isoformat(),)
        ).fetchone()
        return found is not None

    def last_closed(self) -> date | None:
        found = self._conn.execute("SELECT max(business_day) FROM day_closed").fetchone()[0]
        return None if found is None else date.fromisoformat(found)

    def report(self, day: date) -> dict[str, Any]:
        """Totals of one business day from the closed transactions of that day."""
        services: dict[str, dict[str, int]] = {}
        cash_in = vouchers = voucher_count = credited = 0
        outcomes: dict[str, int] = {}
        for row in self._store.closed_on(day.isoformat()):
            outcome = row.outcome or "unknown"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            cash_in += row.cash_in_fen
            if row.voucher_fen:
                vouchers += row.voucher_fen
                voucher_count += 1
            if outcome == "paid":
                totals = services.setdefault(
                    row.service, {"count": 0, "amount_fen": 0, "fee_fen": 0}
                )
                totals["count"] += 1
                totals["amount_fen"] += row.pay_fen
                totals["fee_fen"] += row.fee_fen
                credited += row.credited_fen
        known = self._float.last_known()
        return {
            "business_day": day.isoformat(),
            "services": services,
            "outcomes": outcomes,
            "paid_count": sum(s["count"] for s in services.values()),
            "paid_fen": sum(s["amount_fen"] + s["fee_fen"] for s in services.values()),
            "cash_in_fen": cash_in,
            # Pulse acceptors give no change: all cash taken stays in the box.
            "cash_expected_fen": cash_in,
            "voucher_count": voucher_count,
            "voucher_fen": vouchers,
            "credited_fen": credited,
            "float_balance_fen": None if known is None else known.balance_fen,
        }

    def close(self, day: date) -> dict[str, object]:
        """Close one business day: sign, journal and queue its report. Idempotent."""
        existing = self._conn.execute(
            "SELECT journal_seq FROM day_closed WHERE business_day = ?", (day.isoformat(),)
        ).fetchone()
        if existing is not None:
            for record in self._journal.records(int(existing[0])):
                return record
        self._float.refresh()
        report = self.report(day)
        with write_transaction(self._conn):
            record = self._journal.append("day_close", report, sign=True)
            seq = record["seq"]
            self._conn.execute(
                "INSERT INTO day_closed (business_day, journal_seq) VALUES (?, ?)",
                (day.isoformat(), seq),
            )
            self._conn.execute(
                "INSERT OR IGNORE INTO upload_queue (journal_seq, kind, queued) "
                "VALUES (?, 'day_close', datetime('now'))",
                (seq,),
            )
        return record

    def close_due_days(self, now: datetime, first_day: date) -> list[dict[str, object]]:
        """Close every business day before today's that is not closed yet.

        A terminal switched off at cut-off closes the missed days when it starts; days
        without business are closed too, because "no business" is itself reported.
        """
        today = business_day(now, self._cutoff)
        last = self.last_closed()
        start = first_day if last is None else last + timedelta(days=1)
        return [self.close(day) for day in days_between(start, today - timedelta(days=1))]
