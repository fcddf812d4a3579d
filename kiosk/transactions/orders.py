"""Paying by phone: the payment order a transaction waits on, and its refund.

Owns every order request of a transaction (create, pay by payment code, status, close,
refund, refund status) and what each answer proves. The rules (docs/transactions.md,
"Payments by phone"; docs/platform-api.md, "How the terminal settles an order"):
- the order key (and each refund key) is committed before the first request with it;
- after an unknown outcome nothing is retried or given up before order_status answered;
- the terminal gives up on an order only by a close whose answer it has: `closed` voids
  the transaction; money taken completes it while the resident is at the screen, and is
  refunded otherwise (resident_left is committed before a close sent in their absence);
- money taken by phone goes back by order_refund to the wallet that paid, never in cash or
  by a voucher; a failed refund is alerted and tried again under a new refund key.
Each method is one step: it commits what the answer proved (kiosk.transactions.
transitions) and returns the row; the engine decides what follows.
"""

import logging
import sqlite3

from kiosk.alerts import AlertKind
from kiosk.events import EventBus
from kiosk.platform import (
    CloseReason as OrderCloseReason,
)
from kiosk.platform import (
    Order,
    OrderState,
    OutcomeUnknown,
    PlatformClient,
    PlatformRefused,
    Refund,
    RefundState,
)
from kiosk.platform.models import Refusal, resident_notice
from kiosk.signing import SignerError
from kiosk.transactions.kinds import QrStage
from kiosk.transactions.outcomes import CloseReason, PaymentCodeRefused
from kiosk.transactions.retries import Retries, error_name
from kiosk.transactions.states import TxState
from kiosk.transactions.store import RetryKind, TxRow, TxStore
from kiosk.transactions.transitions import Transitions, mask_account

log = logging.getLogger(__name__)

# The refusals of a payment code that prove it was not charged and leave the order open.
CODE_REFUSALS = frozenset(
    {
        Refusal.PAYMENT_DECLINED,
        Refusal.AUTH_CODE_INVALID,
        Refusal.METHOD_MISMATCH,
        Refusal.ORDER_PENDING,
    }
)
CLOSE_NOTE_PRESENT = "closed at the terminal: the resident cancelled or the screen timed out"
CLOSE_NOTE_ABSENT = "closed at the terminal: the resident left or the terminal restarted"

_CLOSED_REASON = {
    OrderCloseReason.RESIDENT: CloseReason.ORDER_CANCELLED_ON_PHONE,
    OrderCloseReason.EXPIRED: CloseReason.ORDER_EXPIRED,
}


def description(row: TxRow) -> str:
    """What the resident's wallet shows for the order (the same for create and pay)."""
    return f"{row.service} {mask_account(row.account)}"


class QrOrders:
    def __init__(
        self,
        conn: sqlite3.Connection,
        store: TxStore,
        transitions: Transitions,
        platform: PlatformClient,
        events: EventBus,
        retries: Retries,
    ) -> None:
        self._conn = conn
        self._store = store
        self._moves = transitions
        self._platform = platform
        self._events = events
        self._retries = retries

    # ------------------------------------------------------------------ the resident's steps

    def create(self, row: TxRow) -> TxRow:
        """Open the order for the dynamic code (AWAITING_PAYMENT committed before).

        Raises PlatformRefused or SignerError (nothing was made: the caller voids). An
        unknown outcome is settled by order_status; if that too is unknown the row stays
        AWAITING_PAYMENT without a code, and housekeeping closes the order.
        """
        assert row.order_key is not None
        try:
            order = self._platform.create_order(
                row.order_key,
                amount_fen=row.total_due_fen,
                service=row.service,
                description=description(row),
                method=None,
            )
        except OutcomeUnknown as exc:
            log.warning("order %s not answered: %s", row.order_key, exc)
            return self.status(row)
        return self.apply(row, order)

    def pay_by_code(self, row: TxRow, code: str) -> TxRow:
        """Charge the resident's payment code for the order.

        PaymentCodeRefused when the platform proves the code was not charged (the order
        stays open); an unknown outcome is settled by order_status.
        """
        assert row.order_key is not None
        try:
            order = self._platform.pay_order_by_code(
                row.order_key,
                auth_code=code,
                amount_fen=row.total_due_fen,
                service=row.service,
                description=description(row),
                sent_before=True,  # the order key went out with create_order before
            )
        except PlatformRefused as exc:
            if exc.code in CODE_REFUSALS:
                # The message is the resident's notice (a message id of payments.po).
                raise PaymentCodeRefused(exc.code, resident_notice(exc)) from None
            log.warning("payment code refused (%s): asking the order's status", exc.code)
            return self.status(row)
        except OutcomeUnknown as exc:
            log.warning("payment code for %s not answered: %s", row.order_key, exc)
            return self.status(row)
        return self.apply(row, order)

    # ------------------------------------------------------------------ settling

    def status(self, row: TxRow) -> TxRow:
        """Ask where the order stands and act on the answer; in doubt: retried later."""
        assert row.order_key is not None
        try:
            order = self._platform.order_status(row.order_key, amount_fen=row.total_due_fen)
        except (PlatformRefused, OutcomeUnknown, SignerError) as exc:
            return self._later(row, f"order status: {error_name(exc)}")
        return self.apply(row, order)

    def close(self, row: TxRow, *, present: bool) -> TxRow:
        """Give the order up by a close whose answer the terminal has (fences a key the
        platform never saw). present: the resident is at the screen, so money found taken
        completes the payment; else it is refunded."""
        assert row.order_key is not None
        if not present:
            row = self._moves.resident_left(row)
        assert row.order_key is not None
        try:
            order = self._platform.close_order(
                row.order_key,
                CLOSE_NOTE_PRESENT if present else CLOSE_NOTE_ABSENT,
                amount_fen=row.total_due_fen,
                sent_before=True,
            )
        except (PlatformRefused, OutcomeUnknown, SignerError) as exc:
            return self._later(row, f"order close: {error_name(exc)}")
        return self.apply(row, order)

    def apply(self, row: TxRow, order: Order) -> TxRow:
        """Move a transaction awaiting payment by what the platform's order proves."""
        if row.tx_state is not TxState.AWAITING_PAYMENT:
            return row
        state = order.state
        if state is OrderState.CREATED:
            return self._moves.order_seen(row, order, QrStage.WAITING)
        if state is OrderState.PENDING:
            return self._moves.order_seen(row, order, QrStage.CONFIRMING)
        if order.money_taken:
            self._events.publish(
                "order_paid", tx_id=row.tx_id, paid_with=str(order.paid_with or "")
            )
            if state is OrderState.PAID and not row.resident_left:
                return self._moves.to_order_posting(row, order)
            return self._moves.to_refunding(row, CloseReason.PAID_AFTER_LEAVING, order=order)
        if state is OrderState.CLOSED:
            reason = _CLOSED_REASON.get(order.closed_reason) if order.closed_reason else None
            if reason is None:
                left = bool(row.resident_left)
                reason = CloseReason.ABANDONED if left else CloseReason.CUSTOMER_CANCELLED
            self._events.publish("order_closed", tx_id=row.tx_id, reason=str(reason))
            return self._moves.to_voiding(row, reason)
        # not_found: the platform never saw the key; only a close (which fences it) decides.
        return self._later(row, "order not found: to be closed")

    def _later(self, row: TxRow, problem: str) -> TxRow:
        log.warning("order of %s not settled: %s", row.tx_id, problem)
        self._retries.failed(
            RetryKind.ORDER,
            row.tx_id,
            row.tx_id,
            problem,
            alert=AlertKind.TX_IN_DOUBT,
            amount_fen=row.total_due_fen,
            order_key=row.order_key,
        )
        return self._store.get(row.tx_id)

    def due(self, row: TxRow) -> bool:
        kind = RetryKind.REFUND if row.tx_state is TxState.REFUNDING else RetryKind.ORDER
        return self._retries.due(kind, row.tx_id)

    # ------------------------------------------------------------------ refunds

    def refund(self, row: TxRow) -> TxRow:
        """Refund a REFUNDING transaction's order to the wallet that paid; returns the row
        with refunded_fen set once the platform proved the refund succeeded."""
        assert row.tx_state is TxState.REFUNDING and row.order_key is not None
        if row.refunded_fen:
            return row
        asked_before = row.refund_key is not None
        if row.refund_key is None:
            row = self._moves.new_refund_key(row)
        assert row.refund_key is not None and row.order_key is not None
        try:
            if asked_before:
                refund = self._platform.refund_status(
                    row.refund_key, order_key=row.order_key, amount_fen=row.paid_in_fen
                )
            else:
                refund = self._refund_request(row, sent_before=False)
        except PlatformRefused as exc:
            if exc.code == Refusal.REFUND_NOT_FOUND:
                # The request never arrived: send it (again) under the same key.
                return self._resend(row)
            if exc.code == Refusal.ORDER_ALREADY_REFUNDED:
                return self._by_order(row)
            return self._refund_later(row, f"refund refused: {exc.code}", alert_now=True)
        except (OutcomeUnknown, SignerError) as exc:
            return self._refund_later(row, f"refund: {error_name(exc)}")
        return self._by_refund(row, refund.state)

    def _refund_request(self, row: TxRow, *, sent_before: bool) -> Refund:
        assert row.refund_key is not None and row.order_key is not None
        return self._platform.refund_order(
            row.refund_key,
            order_key=row.order_key,
            amount_fen=row.paid_in_fen,
            reason=str(row.close_reason or "not completed"),
            sent_before=sent_before,
        )

    def _resend(self, row: TxRow) -> TxRow:
        try:
            refund = self._refund_request(row, sent_before=True)
        except PlatformRefused as exc:
            if exc.code == Refusal.ORDER_ALREADY_REFUNDED:
                return self._by_order(row)
            return self._refund_later(row, f"refund refused: {exc.code}", alert_now=True)
        except (OutcomeUnknown, SignerError) as exc:
            return self._refund_later(row, f"refund: {error_name(exc)}")
        return self._by_refund(row, refund.state)

    def _by_refund(self, row: TxRow, state: RefundState) -> TxRow:
        if state is RefundState.SUCCEEDED:
            return self._moves.refunded(row)
        if state is RefundState.PROCESSING:
            return self._refund_later(row, "refund processing")
        # Failed at the provider: alert the operator, and try again under a new key.
        row = self._refund_later(row, "refund failed at the provider", alert_now=True)
        return self._moves.refund_failed(row)

    def _by_order(self, row: TxRow) -> TxRow:
        """Another refund key of this order is under way or done (an earlier one of ours)."""
        assert row.order_key is not None
        try:
            order = self._platform.order_status(row.order_key, amount_fen=row.paid_in_fen)
        except (PlatformRefused, OutcomeUnknown, SignerError) as exc:
            return self._refund_later(row, f"order status: {error_name(exc)}")
        if order.state is OrderState.REFUNDED:
            return self._moves.refunded(row)
        return self._refund_later(row, f"order {order.state} under another refund key")

    def _refund_later(self, row: TxRow, problem: str, *, alert_now: bool = False) -> TxRow:
        log.warning("refund of %s not done: %s", row.tx_id, problem)
        self._retries.failed(
            RetryKind.REFUND,
            row.tx_id,
            row.tx_id,
            problem,
            alert=AlertKind.REFUND_FAILED,
            alert_now=alert_now,
            amount_fen=row.paid_in_fen,
            order_key=row.order_key,
            refund_key=row.refund_key,
        )
        return self._store.get(row.tx_id)
