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
from kiosk.journal.totals import tx_close_turnover_fen
from kiosk.platform import CardCredit, Order
from kiosk.settlement.calendar import BusinessCalendar
from kiosk.storage import write_transaction
from kiosk.transactions.kinds import CardCreditState, PayMethod, QrStage, TxOutcome
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
        fields["payment_method"] = row.pay_method
        if row.pay_method == PayMethod.QR:
            # Paid by phone: no cash, never a voucher; money is conserved between what the
            # order took and what went back (paid: paid_in = amount + fee; else all back).
            # (the order key is not repeated: it is the tx id + "-o", and the receipt code
            # must fit a QR symbol a phone reads from paper)
            fields["paid_with"] = row.paid_with
            fields["provider_ref"] = row.provider_ref
            fields["paid_in_fen"] = row.paid_in_fen
            fields["refunded_fen"] = row.refunded_fen
        if reason is not None:
            fields["reason"] = str(reason)
        if row.card_no is not None:
            fields["card_no_masked"] = mask_account(row.card_no)
            if card_credit is not None:
                fields["card_credit"] = str(card_credit)
        if extra:
            fields.update(extra)
        turnover = tx_close_turnover_fen(fields)
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
            self.store.retry_done(RetryKind.ORDER, row.tx_id)
            self._journal.append("tx_state", fields)
        return row

    # ------------------------------------------------------------------ paying by phone

    def to_awaiting_payment(self, row: TxRow) -> TxRow:
        """The order key is committed (it is the row's): the order may now be requested."""
        with write_transaction(self._conn):
            row = self.store.update(
                row.tx_id, self.now(), state=TxState.AWAITING_PAYMENT, order_stage=QrStage.WAITING
            )
            self._journal.append(
                "tx_state",
                {"tx_id": row.tx_id, "state": "awaiting_payment", "order_key": row.order_key},
            )
        return row

    def order_seen(self, row: TxRow, order: Order, stage: QrStage) -> TxRow:
        """What the platform said of a waiting order: its code, expiry and stage."""
        changes: dict[str, Any] = {"order_stage": str(stage)}
        if order.code_url is not None:
            changes["code_url"] = order.code_url
        if order.expires_at is not None:
            changes["order_expires"] = order.expires_at.isoformat()
        if all(getattr(row, k) == v for k, v in changes.items()):
            return row
        with write_transaction(self._conn):
            row = self.store.update(row, self.now(), **changes)
            self.store.retry_done(RetryKind.ORDER, row.tx_id)
        return row

    def resident_left(self, row: TxRow) -> TxRow:
        """Committed before a close sent in the resident's absence: money found taken by it
        (or after a restart) is refunded, never completed (docs/platform-api.md)."""
        if row.resident_left:
            return row
        with write_transaction(self._conn):
            row = self.store.update(row, self.now(), resident_left=1)
            self._journal.append("tx_state", {"tx_id": row.tx_id, "resident_left": True})
        return row

    def to_order_posting(self, row: TxRow, order: Order) -> TxRow:
        """The order is proven paid: commit the posting intent it funds (order key)."""
        assert order.amount_fen == row.total_due_fen and order.paid_with is not None
        with write_transaction(self._conn):
            row = self.store.update(
                row,
                self.now(),
                state=TxState.POSTING,
                pay_fen=row.due_fen,
                credited_fen=0,
                voucher_fen=0,
                paid_with=str(order.paid_with),
                provider_ref=order.provider_ref,
                paid_in_fen=order.amount_fen,
                order_stage=None,
            )
            self.store.retry_done(RetryKind.ORDER, row.tx_id)
            self._journal.append(
                "tx_state",
                {
                    "tx_id": row.tx_id,
                    "state": "posting",
                    "post_key": row.post_key,
                    "order_key": row.order_key,
                    "paid_with": row.paid_with,
                    "pay_fen": row.pay_fen,
                },
            )
        return row

    def to_refunding(
        self,
        row: TxRow,
        reason: CloseReason,
        *,
        refusal: str | None = None,
        order: Order | None = None,
    ) -> TxRow:
        """Money was taken by phone and the service will not be given: refund the order."""
        if refusal is not None and not _CODE.fullmatch(refusal):
            refusal = UNREADABLE_CODE
        changes: dict[str, Any] = {
            "state": TxState.REFUNDING,
            "pay_fen": 0,
            "credited_fen": 0,
            "voucher_fen": 0,
            "close_reason": str(reason),
            "refusal": refusal,
            "order_stage": None,
        }
        if order is not None and order.paid_with is not None:
            changes.update(
                paid_with=str(order.paid_with),
                provider_ref=order.provider_ref,
                paid_in_fen=order.amount_fen,
            )
        fields: dict[str, object] = {
            "tx_id": row.tx_id,
            "state": "refunding",
            "reason": str(reason),
        }
        if refusal is not None:
            fields["refusal"] = refusal
        with write_transaction(self._conn):
            row = self.store.update(row.tx_id, self.now(), **changes)
            self.store.retry_done(RetryKind.POSTING, row.tx_id)
            self.store.retry_done(RetryKind.ORDER, row.tx_id)
            self._journal.append("tx_state", fields)
        return row

    def to_not_posted(
        self, row: TxRow, reason: CloseReason, *, refusal: str | None = None
    ) -> TxRow:
        """Proven never to post: cash becomes a voucher (VOIDING), money paid by phone goes
        back to its wallet (REFUNDING)."""
        if row.pay_method == PayMethod.QR:
            return self.to_refunding(row, reason, refusal=refusal)
        return self.to_voiding(row, reason, refusal=refusal)

    def new_refund_key(self, row: TxRow) -> TxRow:
        """Commit the key of the next refund request before it is sent."""
        tried = row.refunds_tried + 1
        with write_transaction(self._conn):
            row = self.store.update(
                row, self.now(), refund_key=f"{row.tx_id}-r{tried}", refunds_tried=tried
            )
            self._journal.append(
                "tx_state", {"tx_id": row.tx_id, "state": "refunding", "refund_key": row.refund_key}
            )
        return row

    def refund_failed(self, row: TxRow) -> TxRow:
        """The provider failed the refund: the next try goes under a new refund key."""
        with write_transaction(self._conn):
            row = self.store.update(row, self.now(), refund_key=None)
            self._journal.append(
                "tx_state", {"tx_id": row.tx_id, "state": "refunding", "refund_failed": True}
            )
        return row

    def refunded(self, row: TxRow) -> TxRow:
        """The platform proved the whole order went back to the wallet that paid."""
        with write_transaction(self._conn):
            row = self.store.update(row, self.now(), refunded_fen=row.paid_in_fen)
            self.store.retry_done(RetryKind.REFUND, row.tx_id)
        return row
