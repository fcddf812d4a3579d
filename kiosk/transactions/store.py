"""The transaction table: current state and working data of every customer transaction.

The full account number lives here (the platform needs it to retry a posting); the journal
only ever sees it masked. Rows are changed only inside a write transaction that also
appends the matching journal record.
"""

import functools
import sqlite3
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

from kiosk.errors import KioskError
from kiosk.terminal_schema import TERMINAL
from kiosk.transactions.states import TxState, check_transition


class RetryKind(StrEnum):
    POSTING = "posting"  # a posting (or card authorisation) whose outcome is not known
    ORDER = "order"  # a payment order to settle: its status or close not answered
    REFUND = "refund"  # a refund of a paid order not (yet) proven succeeded
    HOLD = "hold"  # a float hold to release
    VOUCHER = "voucher"  # a voucher to register with the platform


@dataclass(frozen=True)
class Retry:
    kind: RetryKind
    key: str
    tx_id: str
    attempts: int
    next_try: str
    problem: str
    alerted: bool


def _retry(row: sqlite3.Row) -> Retry:
    return Retry(
        RetryKind(row[0]),
        str(row[1]),
        str(row[2]),
        int(row[3]),
        str(row[4]),
        str(row[5]),
        bool(row[6]),
    )


class StaleTransaction(KioskError):
    """A transaction row changed since the caller read it (a bug in the caller, never input)."""


# The condition of the partial index tx_open, spelled as the index spells it: SQLite uses a
# partial index only for a query whose WHERE contains its condition literally.
_OPEN = "state != 'closed'"
assert str(TxState.CLOSED) == "closed", "tx_open's condition names the closed state literally"


@dataclass
class TxRow:
    """One row of the tx table. A new transaction names what it is; the rest starts empty."""

    tx_id: str
    kind: str
    service: str
    biller: str
    account: str
    state: str
    due_fen: int
    fee_fen: int
    created: str
    updated: str
    bill_id: str | None = None
    allows_overpay: int = 0
    hold_id: str | None = None
    hold_fen: int = 0
    cash_in_fen: int = 0
    pay_fen: int = 0
    credited_fen: int = 0
    voucher_fen: int = 0
    post_key: str | None = None
    platform_ref: str | None = None
    card_no: str | None = None
    card_counter: int | None = None
    outcome: str | None = None
    receipt_no: str | None = None
    business_day: str | None = None
    printed: int = 0
    print_problem: str | None = None
    close_reason: str | None = None
    refusal: str | None = None
    pay_method: str = "cash"
    order_key: str | None = None
    code_url: str | None = None
    order_expires: str | None = None
    order_stage: str | None = None
    paid_with: str | None = None
    provider_ref: str | None = None
    paid_in_fen: int = 0
    refund_key: str | None = None
    refunds_tried: int = 0
    refunded_fen: int = 0
    resident_left: int = 0

    @property
    def tx_state(self) -> TxState:
        return TxState(self.state)

    @property
    def total_due_fen(self) -> int:
        return self.due_fen + self.fee_fen


_COLUMNS = [f.name for f in fields(TxRow)]
# Columns by name, never "*": a later release may have added columns this one does not know
# (a rollback to the previous slot, docs/updates.md "Schema versions").
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM tx"


@functools.cache
def _update_statement(columns: tuple[str, ...]) -> str:
    """The compare-and-set UPDATE of these columns (a handful of shapes, each built once)."""
    unknown = set(columns).difference(_COLUMNS)
    if unknown:
        raise KeyError(f"the transaction table has no column {', '.join(sorted(unknown))}")
    assignments = ", ".join(f"{name} = ?" for name in columns)
    return f"UPDATE tx SET {assignments} WHERE tx_id = ? AND state = ?"


class TxStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        TERMINAL.migrate(conn)

    def insert(self, row: TxRow) -> None:
        placeholders = ", ".join("?" for _ in _COLUMNS)
        values = [getattr(row, c) for c in _COLUMNS]
        self._conn.execute(
            f"INSERT INTO tx ({', '.join(_COLUMNS)}) VALUES ({placeholders})", values
        )

    def get(self, tx_id: str) -> TxRow:
        found = self._conn.execute(f"{_SELECT} WHERE tx_id = ?", (tx_id,)).fetchone()
        if found is None:
            raise KeyError(f"no transaction {tx_id}")
        return TxRow(**dict(found))

    def update(self, tx: str | TxRow, now: str, **changes: Any) -> TxRow:
        """Change columns of one row; a 'state' change must be a legal transition.

        Given the row itself (the commit path holds it), the row is not read again: the
        UPDATE matches only while the stored state is still the row's, so a stale row is
        refused instead of moving a transaction from a state it has left.
        """
        row = self.get(tx) if isinstance(tx, str) else tx
        if "state" in changes:
            check_transition(row.tx_state, TxState(changes["state"]))
            changes["state"] = str(changes["state"])
        changes["updated"] = now
        changed = self._conn.execute(
            _update_statement(tuple(changes)), [*changes.values(), row.tx_id, row.state]
        ).rowcount
        if changed != 1:
            raise StaleTransaction(
                f"transaction {row.tx_id} is no longer {row.state}: read it again to change it"
            )
        # A changed copy: the caller's row stays as it was if the write transaction fails.
        return replace(row, **changes)

    def open_transactions(self) -> list[TxRow]:
        found = self._conn.execute(f"{_SELECT} WHERE {_OPEN} ORDER BY created, tx_id").fetchall()
        return [TxRow(**dict(r)) for r in found]

    def collecting(self) -> TxRow | None:
        found = self._conn.execute(
            f"{_SELECT} WHERE {_OPEN} AND state = ? ORDER BY created LIMIT 1",
            (str(TxState.COLLECTING),),
        ).fetchone()
        return None if found is None else TxRow(**dict(found))

    def cash_event_known(self, event_id: str) -> bool:
        found = self._conn.execute("SELECT 1 FROM cash_event WHERE event_id = ?", (event_id,))
        return found.fetchone() is not None

    def add_cash_event(
        self, event_id: str, tx_id: str, kind: str, value_fen: int, journal_seq: int
    ) -> None:
        self._conn.execute(
            "INSERT INTO cash_event (event_id, tx_id, kind, value_fen, journal_seq) "
            "VALUES (?, ?, ?, ?, ?)",
            (event_id, tx_id, kind, value_fen, journal_seq),
        )

    # -- prepaid card credits

    def add_card_credit(
        self, tx_id: str, card_no: str, amount_fen: int, new_counter: int, mac: bytes
    ) -> None:
        self._conn.execute(
            "INSERT OR IGNORE INTO card_credit "
            "(tx_id, card_no, amount_fen, new_counter, mac, state) "
            "VALUES (?, ?, ?, ?, ?, 'pending')",
            (tx_id, card_no, amount_fen, new_counter, mac),
        )

    def card_credits(self, card_no: str | None = None, state: str = "pending") -> list[sqlite3.Row]:
        if card_no is None:
            query = "SELECT * FROM card_credit WHERE state = ? ORDER BY new_counter"
            return self._conn.execute(query, (state,)).fetchall()
        query = "SELECT * FROM card_credit WHERE state = ? AND card_no = ? ORDER BY new_counter"
        return self._conn.execute(query, (state, card_no)).fetchall()

    def set_card_credit_state(self, tx_id: str, state: str) -> None:
        self._conn.execute("UPDATE card_credit SET state = ? WHERE tx_id = ?", (state, tx_id))

    # -- float holds (the platform's reservations, released once their transaction closed)

    def add_hold(self, hold_id: str, tx_id: str) -> None:
        """Remember a hold before it is requested: a crash after the request still releases it."""
        self._conn.execute(
            "INSERT OR IGNORE INTO hold_release (hold_id, tx_id) VALUES (?, ?)", (hold_id, tx_id)
        )

    def holds_consumed(self, tx_id: str) -> None:
        """The posting consumed the transaction's hold: nothing is left to release."""
        self._conn.execute("DELETE FROM hold_release WHERE tx_id = ?", (tx_id,))

    def holds_to_release(self, now: str) -> list[tuple[str, str]]:
        """(hold id, tx id) of every hold whose transaction closed, unless its retry waits."""
        return [
            (str(r[0]), str(r[1]))
            for r in self._conn.execute(
                "SELECT h.hold_id, h.tx_id FROM hold_release h JOIN tx ON tx.tx_id = h.tx_id "
                "LEFT JOIN platform_retry r ON r.kind = 'hold' AND r.key = h.hold_id "
                "WHERE tx.state = ? AND (r.next_try IS NULL OR r.next_try <= ?) "
                "ORDER BY h.rowid",
                (str(TxState.CLOSED), now),
            ).fetchall()
        ]

    def hold_released(self, hold_id: str) -> None:
        self._conn.execute("DELETE FROM hold_release WHERE hold_id = ?", (hold_id,))
        self.retry_done(RetryKind.HOLD, hold_id)

    def open_holds(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM hold_release").fetchone()[0])

    # -- work the platform still owes an answer to

    def retry_later(
        self, kind: RetryKind, key: str, tx_id: str, *, next_try: str, problem: str
    ) -> Retry:
        """Count one more failed attempt; returns the row as it is now."""
        found = self._conn.execute(
            "INSERT INTO platform_retry (kind, key, tx_id, attempts, next_try, problem) "
            "VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT(kind, key) DO UPDATE SET "
            "attempts = attempts + 1, next_try = excluded.next_try, problem = excluded.problem "
            "RETURNING attempts, alerted",
            (str(kind), key, tx_id, next_try, problem),
        ).fetchone()
        return Retry(kind, key, tx_id, int(found[0]), next_try, problem, bool(found[1]))

    def retry_alerted(self, kind: RetryKind, key: str) -> None:
        self._conn.execute(
            "UPDATE platform_retry SET alerted = 1 WHERE kind = ? AND key = ?", (str(kind), key)
        )

    def retry_done(self, kind: RetryKind, key: str) -> None:
        self._conn.execute(
            "DELETE FROM platform_retry WHERE kind = ? AND key = ?", (str(kind), key)
        )

    def retry_of(self, kind: RetryKind, key: str) -> Retry | None:
        found = self._conn.execute(
            "SELECT kind, key, tx_id, attempts, next_try, problem, alerted FROM platform_retry "
            "WHERE kind = ? AND key = ?",
            (str(kind), key),
        ).fetchone()
        return None if found is None else _retry(found)

    def retries(self, kind: RetryKind | None = None) -> list[Retry]:
        query = "SELECT kind, key, tx_id, attempts, next_try, problem, alerted FROM platform_retry"
        if kind is None:
            found = self._conn.execute(query + " ORDER BY next_try").fetchall()
        else:
            found = self._conn.execute(
                query + " WHERE kind = ? ORDER BY next_try", (str(kind),)
            ).fetchall()
        return [_retry(r) for r in found]

    # -- the resident's token

    def add_token(self, token: str, tx_id: str) -> bool:
        """Give tx_id its token; False if the token is taken (draw another)."""
        added = self._conn.execute(
            "INSERT OR IGNORE INTO tx_token (token, tx_id) VALUES (?, ?)", (token, tx_id)
        ).rowcount
        return added == 1

    def token_of(self, tx_id: str) -> str | None:
        found = self._conn.execute(
            "SELECT token FROM tx_token WHERE tx_id = ?", (tx_id,)
        ).fetchone()
        return None if found is None else str(found[0])

    def tx_of_token(self, token: str) -> str | None:
        found = self._conn.execute(
            "SELECT tx_id FROM tx_token WHERE token = ?", (token,)
        ).fetchone()
        return None if found is None else str(found[0])

    # -- vouchers

    def add_voucher(self, voucher_id: str, tx_id: str, amount_fen: int, expires: str) -> None:
        self._conn.execute(
            "INSERT INTO voucher (voucher_id, tx_id, amount_fen, expires, state) "
            "VALUES (?, ?, ?, ?, 'issued')",
            (voucher_id, tx_id, amount_fen, expires),
        )

    def voucher(self, voucher_id: str) -> sqlite3.Row | None:
        found: sqlite3.Row | None = self._conn.execute(
            "SELECT * FROM voucher WHERE voucher_id = ?", (voucher_id,)
        ).fetchone()
        return found

    def voucher_of(self, tx_id: str) -> sqlite3.Row | None:
        found: sqlite3.Row | None = self._conn.execute(
            "SELECT * FROM voucher WHERE tx_id = ?", (tx_id,)
        ).fetchone()
        return found

    def set_voucher_state(self, voucher_id: str, state: str) -> None:
        self._conn.execute("UPDATE voucher SET state = ? WHERE voucher_id = ?", (state, voucher_id))

    # -- counters

    def next_counter(self, name: str) -> int:
        value: int = self._conn.execute(
            "INSERT INTO counter (name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
            (name,),
        ).fetchone()[0]
        return value
