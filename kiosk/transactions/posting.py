"""Posting a payment and settling it: only the platform's proof voids a sent money request.

Rules (docs/transactions.md, "Only proof voids"):
- The posting (or card authorisation) is sent once, after POSTING is committed. Its answer
  moves the transaction to POSTED; anything else is settled by asking, never by sending it
  blindly again.
- A transaction whose money request was sent becomes VOIDING only on proof that it never
  will be posted: a `reversed` state from status or reverse, or the `payment_reversed`
  refusal. A refusal of the posting itself is therefore followed by a reverse (which fences
  the key against a copy of the request still on its way) before anything is voided.
- Every other answer while settling (any other refusal, a 5xx, a malformed answer, no answer,
  a token that cannot sign) leaves the transaction in doubt: retried with backoff by
  housekeeping, with an alert through the durable outbox.
- A signer error on the first attempt is the one exception: the client signs before it sends,
  so nothing left the terminal.
"""

import logging
import sqlite3

from kiosk.alerts import AlertKind, announce, append_alert
from kiosk.events import EventBus
from kiosk.journal import Journal
from kiosk.platform import (
    CardCredit,
    MalformedAnswer,
    OutcomeUnknown,
    PaymentStatus,
    PlatformClient,
    PlatformRefused,
)
from kiosk.platform.models import Refusal
from kiosk.signing import SignerError
from kiosk.storage import write_transaction
from kiosk.transactions.kinds import TxKind
from kiosk.transactions.outcomes import CloseReason
from kiosk.transactions.retries import Retries, error_name
from kiosk.transactions.states import TxState
from kiosk.transactions.store import RetryKind, TxRow, TxStore
from kiosk.transactions.transitions import Transitions

log = logging.getLogger(__name__)

UNKNOWN_OUTCOME_REASON = "outcome unknown at terminal"


class Posting:
    def __init__(
        self,
        conn: sqlite3.Connection,
        store: TxStore,
        journal: Journal,
        transitions: Transitions,
        platform: PlatformClient,
        events: EventBus,
        retries: Retries,
    ) -> None:
        self._conn = conn
        self._store = store
        self._journal = journal
        self._moves = transitions
        self._platform = platform
        self._events = events
        self._retries = retries

    # ------------------------------------------------------------------ first attempt

    def send(self, row: TxRow) -> TxRow:
        """Send the posting of a transaction in POSTING; returns it POSTED, VOIDING or still
        POSTING (in doubt)."""
        try:
            ref, credit = self._request(row)
        except SignerError:
            # The client signs before it sends: nothing reached the platform.
            return self._moves.to_not_posted(row, CloseReason.SIGNER_FAILED)
        except PlatformRefused as exc:
            if exc.code == Refusal.PAYMENT_REVERSED:
                return self._moves.to_not_posted(
                    row, CloseReason.POSTING_REVERSED, refusal=exc.code
                )
            # Refused: fence the key before voiding, so no copy of the request can post later.
            return self._fence(row, refusal=exc.code)
        except OutcomeUnknown as exc:
            self._note_mismatch(row, exc)
            return self.resolve(row)
        return self._moves.to_posted(row, ref, credit)

    # ------------------------------------------------------------------ settling

    def resolve(self, row: TxRow) -> TxRow:
        """Ask the platform what became of the posting; act only on proof."""
        assert row.post_key is not None
        try:
            status = self._platform.payment_status(
                row.post_key, amount_fen=row.pay_fen, fee_fen=row.fee_fen
            )
            if status.state == "posted":
                return self._posted(row, status)
            if status.state == "reversed":
                return self._moves.to_not_posted(row, CloseReason.POSTING_REVERSED)
        except PlatformRefused as exc:
            if exc.code == Refusal.PAYMENT_REVERSED:
                return self._moves.to_not_posted(
                    row, CloseReason.POSTING_REVERSED, refusal=exc.code
                )
            return self.in_doubt(row, f"status refused: {exc.code}")
        except (OutcomeUnknown, SignerError) as exc:
            self._note_mismatch(row, exc)
            return self.in_doubt(row, f"status: {type(exc).__name__}")
        # not found: fence the key, so that a request still in flight can never post later.
        return self._fence(row, refusal=None)

    def _posted(self, row: TxRow, status: PaymentStatus) -> TxRow:
        if row.kind == TxKind.CARD_TOPUP:
            # The card credit's MAC comes only with the authorisation, which is idempotent by
            # key: asking again returns the same one.
            try:
                ref, credit = self._request(row, sent_before=True)
            except (PlatformRefused, OutcomeUnknown, SignerError) as exc:
                self._note_mismatch(row, exc)
                return self.in_doubt(row, f"card authorisation again: {error_name(exc)}")
            return self._moves.to_posted(row, ref, credit)
        assert status.ref is not None
        return self._moves.to_posted(row, status.ref, None)

    def _fence(self, row: TxRow, *, refusal: str | None) -> TxRow:
        assert row.post_key is not None
        try:
            status = self._platform.reverse_payment(row.post_key, UNKNOWN_OUTCOME_REASON)
        except PlatformRefused as exc:
            if exc.code == Refusal.PAYMENT_REVERSED:
                return self._moves.to_not_posted(
                    row, CloseReason.POSTING_REVERSED, refusal=exc.code
                )
            return self.in_doubt(row, f"reverse refused: {exc.code}")
        except (OutcomeUnknown, SignerError) as exc:
            self._note_mismatch(row, exc)
            return self.in_doubt(row, f"reverse: {type(exc).__name__}")
        if status.state != "reversed":
            # A reverse answers "reversed" whatever came before; anything else is not proof.
            return self.in_doubt(row, f"reverse answered {status.state}")
        if refusal is not None:
            return self._moves.to_not_posted(row, CloseReason.PLATFORM_REFUSED, refusal=refusal)
        return self._moves.to_not_posted(row, CloseReason.POSTING_REVERSED)

    def in_doubt(self, row: TxRow, problem: str) -> TxRow:
        """Keep the transaction in POSTING, due for another try after a backoff; the
        operator is alerted at once (the resident left with an interim slip)."""
        log.warning("posting of %s still in doubt: %s", row.tx_id, problem)
        self._retries.failed(
            RetryKind.POSTING,
            row.tx_id,
            row.tx_id,
            problem,
            alert=AlertKind.TX_IN_DOUBT,
            alert_now=True,
            amount_fen=row.pay_fen,
            fee_fen=row.fee_fen,
            cash_in_fen=row.cash_in_fen,
        )
        return self._store.get(row.tx_id)

    def due(self, row: TxRow) -> bool:
        """Whether an in-doubt posting's next try is due (always, if it never failed)."""
        assert row.tx_state is TxState.POSTING
        return self._retries.due(RetryKind.POSTING, row.tx_id)

    # ------------------------------------------------------------------ helpers

    def _request(self, row: TxRow, *, sent_before: bool = False) -> tuple[str, CardCredit | None]:
        assert row.post_key is not None
        # Cash is funded by the float's hold; a payment by phone by its paid order.
        funding = {"hold_id": row.hold_id, "order_key": row.order_key}
        if row.kind == TxKind.CARD_TOPUP:
            assert row.card_no is not None and row.card_counter is not None
            credit = self._platform.authorize_card_credit(
                row.post_key,
                **funding,
                service=row.service,
                biller=row.biller,
                card_no=row.card_no,
                counter=row.card_counter,
                amount_fen=row.pay_fen,
                fee_fen=row.fee_fen,
                sent_before=sent_before,
            )
            return credit.ref, credit
        posting = self._platform.post_payment(
            row.post_key,
            **funding,
            service=row.service,
            biller=row.biller,
            account=row.account,
            amount_fen=row.pay_fen,
            fee_fen=row.fee_fen,
            bill_id=row.bill_id,
            sent_before=sent_before,
        )
        return posting.ref, None

    def _note_mismatch(self, row: TxRow, exc: BaseException) -> None:
        """A malformed answer (an amount or fee other than sent, among others) is alerted."""
        if not isinstance(exc, MalformedAnswer):
            return
        with write_transaction(self._conn):
            alert = append_alert(
                self._journal,
                AlertKind.PLATFORM_ANSWER_MISMATCH,
                tx_id=row.tx_id,
                problem=str(exc)[:200],
            )
        announce(self._events, alert)
