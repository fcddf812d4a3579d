"""Every change of a transaction's state, committed together with its journal record.

Owns the order "commit the new state and its record, then perform the side effect": each
method here is one write transaction and performs no device or platform call. The engine's
step modules (cash, holds, posting, card credits, receipts) call these and do the I/O.
"""

import re
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kiosk.clock import Clock, iso
from kiosk.journal import Journal
from kiosk.journal.record_types import RecordType
from kiosk.platform import CardCredit
from kiosk.settlement.calendar import BusinessCalendar
from kiosk.storage import write_transaction
from kiosk.transactions.kinds import CardCreditState, TxOutcome
from kiosk.transactions.outcomes import CloseReason
from kiosk.transactions.states import TxState
from kiosk.transactions.store import RetryKind, TxRow, TxStore

_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")
UNREADABLE_CODE = "unreadable_code"


def mask_account(account: str) -> str:
    """Keep the first two and last four characters: enough to check, not to reuse."""
    if len(account) <= 6:
        return "*" * (len(account) - 2) + account[-2:]
    return account[:2] + "*" * (len(account) - 6) + account[-4:]


def write_close(
    conn: sqlite3.Connection,
    journal: Journal,
    store: TxStore,
    row: TxRow,
    outcome: TxOutcome,
    *,
    now: datetime,
    calendar: BusinessCalendar,
    card_credit: CardCreditState | None = None,
    reason: CloseReason | None = None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[TxRow, dict[str, object]]:
    """The commit path of a transaction: in one write transaction, append the signed tx_close
    record, numbered as a receipt by its seq, and move the row to CLOSED.

    `extra` are further fields of the record (a refusal code, the voucher's id and expiry);
    a caller that must write more in the same transaction opens it around this call.
    Returns the closed row and the record. What follows the commit (holds, printing) is the
    engine's; `make bench` times exactly this function.
    """
    outcome = TxOutcome(outcome)
    paid = outcome is TxOutcome.PAID
    with write_transaction(conn):
        # The day still open, read in this write transaction (kiosk.settlement.calendar).
        day = calendar.open_day(now).isoformat()
        fields: dict[str, Any] = {
            "tx_id": row.tx_id,
            "kind": row.kind,
            "service": row.service,
            "account_masked": mask_account(row.account),
            "amount_fen": row.pay_fen if paid else 0,
            "fee_fen": row.fee_fen if paid else 0,
            "cash_in_fen": row.cash_in_fen,
            "voucher_fen": row.voucher_fen if paid else row.cash_in_fen,
            "credited_fen": row.credited_fen if paid else 0,
            "outcome": str(outcome),
            "platform_ref": row.platform_ref if paid else None,
            "business_day": day,
        }
        if reason is not None:
            fields["reason"] = str(reason)
        if row.card_no is not None:
            fields["card_no_masked"] = mask_account(row.card_no)
            if card_credit is not None:
                fields["card_credit"] = str(card_credit)
        if extra:
            fields.update(extra)
        turnover = fields["amount_fen"] + fields["fee_fen"]
        record = journal.append(
            RecordType.TX_CLOSE,
            fields,
            sign=True,
            turnover_add_fen=turnover,
            numbered_receipt=True,
            at=now,
        )
        closed = store.update(
            row,
            str(record["time"]),  # iso(now), made once
            state=TxState.CLOSED,
            outcome=str(outcome),
            receipt_no=record["receipt_no"],
            business_day=day,
            voucher_fen=fields["voucher_fen"],
            pay_fen=fields["amount_fen"],
            credited_fen=fields["credited_fen"],
        )
    return closed, record


class Transitions:
    """The state moves of the transaction table, each with its journal record."""

    def __init__(
        self, conn: sqlite3.Connection, store: TxStore, journal: Journal, clock: Clock
    ) -> None:
        self._conn = conn
        self.store = store
        self._journal = journal
        self._clock = clock

    def now(self) -> str:
        return iso(self._clock.now())

    def update(self, row: TxRow, **changes: Any) -> TxRow:
        with write_transaction(self._conn):
            return self.store.update(row.tx_id, self.now(), **changes)

    def to_collecting(self, row: TxRow, held_fen: int) -> TxRow:
        with write_transaction(self._conn):
            row = self.store.update(
                row.tx_id, self.now(), state=TxState.COLLECTING, hold_fen=held_fen
            )
            self._journal.append(
                "tx_state", {"tx_id": row.tx_id, "state": "collecting", "hold_fen": held_fen}
            )
        return row

    def to_posting(self, row: TxRow, *, pay_fen: int, credited_fen: int, voucher_fen: int) -> TxRow:
        with write_transaction(self._conn):
            row = self.store.update(
                row.tx_id,
                self.now(),
                state=TxState.POSTING,
                pay_fen=pay_fen,
                credited_fen=credited_fen,
                voucher_fen=voucher_fen,
            )
            self._journal.append(
                "tx_state",
                {
                    "tx_id": row.tx_id,
                    "state": "posting",
                    "post_key": row.post_key,
                    "pay_fen": pay_fen,
                },
            )
        return row

    def to_posted(self, row: TxRow, ref: str, credit: CardCredit | None) -> TxRow:
        """The platform proved the payment posted: record it, and the card credit it owes."""
        with write_transaction(self._conn):
            row = self.store.update(row.tx_id, self.now(), state=TxState.POSTED, platform_ref=ref)
            if credit is not None:
                assert row.card_no is not None
                self.store.add_card_credit(
                    row.tx_id, row.card_no, row.pay_fen, credit.new_counter, credit.mac
                )
            self.store.holds_consumed(row.tx_id)
            self.store.retry_done(RetryKind.POSTING, row.tx_id)
            self._journal.append(
                "tx_state", {"tx_id": row.tx_id, "state": "posted", "platform_ref": ref}
            )
        return row

    def to_voiding(self, row: TxRow, reason: CloseReason, *, refusal: str | None = None) -> TxRow:
        """Not posted and never will be: all cash inserted becomes a voucher.

        refusal: the platform's refusal code, kept only if it has a code's form (it comes
        from outside and must never be text that cannot be stored or printed).
        """
        if refusal is not None and not _CODE.fullmatch(refusal):
            refusal = UNREADABLE_CODE
        fields: dict[str, object] = {"tx_id": row.tx_id, "state": "voiding", "reason": str(reason)}
        if refusal is not None:
            fields["refusal"] = refusal
        with write_transaction(self._conn):
            row = self.store.update(
                row.tx_id,
                self.now(),
                state=TxState.VOIDING,
                pay_fen=0,
                credited_fen=0,
                voucher_fen=row.cash_in_fen,
                close_reason=str(reason),
                refusal=refusal,
            )
            self.store.retry_done(RetryKind.POSTING, row.tx_id)
            self._journal.append("tx_state", fields)
        return row
