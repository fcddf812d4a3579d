"""The transaction engine: a customer transaction from its float hold to its receipt.

Order of every step: commit the new state and its journal record (kiosk.transactions.
transitions), then perform the side effect (hold, open inlets, post, write a card, print).
A crash between the two leaves a state that recover() knows how to finish or reverse; see
docs/transactions.md. Each money step lives in its own module: cash (the inlets and what
they counted), holds (the float), posting (sending and settling the payment), card_credits,
vouchers and printing; this module decides the order.
"""

import logging
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from kiosk.catalog import Catalog, Service
from kiosk.clock import Clock, iso
from kiosk.clock_guard import ClockGuard
from kiosk.devices import CardError, CardReader, CashAcceptor, DeviceError, PrepaidCard, Printer
from kiosk.events import EventBus
from kiosk.journal import Journal
from kiosk.payment_codes import scheme_of
from kiosk.platform import InsufficientFloat, OutcomeUnknown, PlatformClient, PlatformRefused
from kiosk.receipts import StationInfo
from kiosk.receipts.identifiers import new_receipt_token
from kiosk.settlement.calendar import BusinessCalendar
from kiosk.signing import SignerError
from kiosk.storage import write_transaction
from kiosk.transactions.card_credits import CardCredits
from kiosk.transactions.cash import CashDesk
from kiosk.transactions.holds import FloatHolds
from kiosk.transactions.kinds import CardCreditState, PayMethod, QrStage, TxKind, TxOutcome
from kiosk.transactions.orders import QrOrders
from kiosk.transactions.outcomes import (
    CloseReason,
    NotEnoughCash,
    Outcome,
    PaymentRefused,
    Progress,
    QrPayment,
)
from kiosk.transactions.posting import Posting
from kiosk.transactions.printing import ReceiptDesk
from kiosk.transactions.retries import Retries
from kiosk.transactions.states import TxState
from kiosk.transactions.store import RetryKind, TxRow, TxStore
from kiosk.transactions.transitions import Transitions, mask_account, write_close
from kiosk.transactions.vouchers import Vouchers

log = logging.getLogger(__name__)

__all__ = [
    "NotEnoughCash",
    "Outcome",
    "PaymentRefused",
    "Progress",
    "QrPayment",
    "TransactionEngine",
    "mask_account",
    "write_close",
]

# A pulse acceptor closes its inlets once the amount due is reached, so a customer can
# overpay by less than the largest note (100 yuan). Services that credit overpayment to
# the account hold this much extra float so the credit can be posted.
OVERPAY_MARGIN_FEN = 100_00 - 1

# A payment by phone is settled in the resident's absence this long after the journey
# timeout (collect_timeout, by default the platform's order lifetime of 5 minutes).
ORDER_EXPIRY_MARGIN = timedelta(minutes=1)

NO_SIGNER = (
    "the signature device (USBKey) is not working, so no payment can start: "
    "a technician must check the token"
)


class TransactionEngine:
    def __init__(
        self,
        *,
        conn: sqlite3.Connection,
        journal: Journal,
        platform: PlatformClient,
        catalog: Callable[[], Catalog],
        cash: CashAcceptor,
        cards: CardReader,
        printer: Printer,
        clock: Clock,
        calendar: BusinessCalendar,
        terminal_id: str,
        station: StationInfo,
        columns: int,
        events: EventBus,
        guard: ClockGuard,
        voucher_valid_days: int = 180,
        collect_timeout: timedelta = timedelta(minutes=5),
    ) -> None:
        self._conn = conn
        self.journal = journal
        self.platform = platform
        self._catalog = catalog
        self.cards = cards
        self.clock = clock
        self.calendar = calendar
        self._terminal_id = terminal_id
        self.events = events
        self._guard = guard
        self._collect_timeout = collect_timeout
        self.store = TxStore(conn)
        self._moves = Transitions(conn, self.store, journal, clock)
        self.cash_desk = CashDesk(conn, self.store, journal, cash, clock, events, terminal_id)
        self.cash_desk.on_orphan = self._close_orphan
        self.cash_desk.on_suspense = self._claim_slip
        retries = Retries(conn, self.store, journal, clock, events)
        self._holds = FloatHolds(conn, self.store, platform, clock, retries)
        self._posting = Posting(conn, self.store, journal, self._moves, platform, events, retries)
        self.qr = QrOrders(conn, self.store, self._moves, platform, events, retries)
        self.card_credits = CardCredits(conn, self.store, journal, cards, events, terminal_id)
        self.vouchers = Vouchers(
            conn,
            self.store,
            journal,
            platform,
            clock,
            events,
            retries,
            terminal_id=terminal_id,
            valid_days=voucher_valid_days,
        )
        self.receipts = ReceiptDesk(
            conn,
            self.store,
            journal,
            printer,
            clock,
            events,
            catalog,
            station=station,
            columns=columns,
        )

    @property
    def cash(self) -> CashAcceptor:
        return self.cash_desk.device

    @property
    def printer(self) -> Printer:
        return self.receipts.printer

    def _progress(self, row: TxRow) -> Progress:
        return Progress(
            row.tx_id,
            row.state,
            row.total_due_fen,
            row.cash_in_fen,
            largest_fen=self.cash_desk.limit,
            suspense=self.cash_desk.suspense_count(row.tx_id),
        )

    def ensure_signing(self) -> None:
        """Refuse a new payment while no signature device works (the journal must sign)."""
        if self.journal.signing_available():
            return
        if self.journal.try_recover_signing() is not None:
            self.events.publish("signer_recovered")
            return
        self.events.publish("signer_outage")
        raise PaymentRefused(NO_SIGNER)

    # ------------------------------------------------------------------ begin

    def _new_row(
        self,
        *,
        kind: TxKind,
        service: Service,
        account: str,
        due_fen: int,
        bill_id: str | None,
        card: PrepaidCard | None,
    ) -> TxRow:
        """The checks and the row every new payment starts with, whatever pays it (cash or
        phone); the caller adds what its method needs and commits the row."""
        self._guard.require()
        self.ensure_signing()
        if self.store.open_transactions():
            raise PaymentRefused("another transaction is still open: finish or cancel it first")
        service.check_amount(due_fen)
        fee_fen = service.fee_on(self.clock.now().date(), due_fen)
        now = iso(self.clock.now())
        tx_id = f"{self._terminal_id}-{uuid.uuid4().hex[:16]}"
        return TxRow(
            tx_id=tx_id,
            kind=str(kind),
            service=service.code,
            biller=service.biller,
            account=account,
            state=str(TxState.NEW),
            due_fen=due_fen,
            fee_fen=fee_fen,
            created=now,
            updated=now,
            bill_id=bill_id,
            post_key=f"{tx_id}-p",
            card_no=card.card_no if card else None,
            card_counter=card.purchase_counter if card else None,
        )

    @staticmethod
    def _open_entry(row: TxRow) -> dict[str, object]:
        """The journal's tx_open entry for a new row (the account masked)."""
        return {
            "tx_id": row.tx_id,
            "kind": row.kind,
            "service": row.service,
            "account_masked": mask_account(row.account),
            "amount_fen": row.due_fen,
            "fee_fen": row.fee_fen,
        }

    def begin(
        self,
        *,
        kind: TxKind,
        service: Service,
        account: str,
        due_fen: int,
        bill_id: str | None = None,
        card: PrepaidCard | None = None,
    ) -> Progress:
        """Create the transaction, hold the float for it, then open the inlets."""
        row = self._new_row(
            kind=kind, service=service, account=account, due_fen=due_fen, bill_id=bill_id, card=card
        )
        tx_id = row.tx_id
        fee_fen = row.fee_fen
        row = replace(row, allows_overpay=int(service.allows_overpay), hold_id=f"{tx_id}-h")
        assert row.hold_id is not None
        with write_transaction(self._conn):
            self.store.insert(row)
            self.store.add_hold(row.hold_id, tx_id)
            self._new_token(tx_id)
            self.journal.append("tx_open", self._open_entry(row))
        margin = OVERPAY_MARGIN_FEN if service.allows_overpay else 0
        try:
            row, held = self._holds.reserve(row, due_fen + fee_fen, margin)
        except InsufficientFloat:
            self.events.publish("low_float", reason="payment refused", wanted_fen=due_fen + fee_fen)
            self._void(row, TxOutcome.REFUSED, CloseReason.FLOAT_TOO_LOW)
            raise PaymentRefused(
                "this service is paused: the station's prepaid float is too low; "
                "please try later or ask the station staff"
            ) from None
        except PlatformRefused as exc:
            self._void(row, TxOutcome.REFUSED, CloseReason.PLATFORM_REFUSED, refusal=exc.code)
            raise PaymentRefused(f"the operator's platform refused ({exc.code})") from None
        except SignerError:
            # The hold request is signed by the token: a token pulled while the terminal
            # was idle shows here first. Name the device, as ensure_signing() does.
            self._void(row, TxOutcome.REFUSED, CloseReason.SIGNER_FAILED)
            self.events.publish("signer_outage")
            raise PaymentRefused(NO_SIGNER) from None
        except OutcomeUnknown:
            self._void(row, TxOutcome.REFUSED, CloseReason.PLATFORM_UNREACHABLE)
            raise PaymentRefused(
                "the operator's platform cannot be reached; please try again later"
            ) from None
        row = self._moves.to_collecting(row, held)
        try:
            self.cash_desk.open_for(row)
        except DeviceError as exc:
            log.warning("cash inlets did not open: %s", exc)
            self.cancel(tx_id, CloseReason.CUSTOMER_CANCELLED)
            raise PaymentRefused(
                "the cash acceptor is not answering: no cash was taken; please try later"
            ) from None
        return self._progress(row)

    # ------------------------------------------------------------------ paying by phone

    def begin_qr(
        self,
        *,
        kind: TxKind,
        service: Service,
        account: str,
        due_fen: int,
        bill_id: str | None = None,
        card: PrepaidCard | None = None,
    ) -> QrPayment:
        """Create a transaction paid by phone: commit it with its order key, then open the
        payment order whose dynamic code the screen shows (no float is held: the paid order
        funds the posting)."""
        row = self._new_row(
            kind=kind, service=service, account=account, due_fen=due_fen, bill_id=bill_id, card=card
        )
        tx_id = row.tx_id
        row = replace(row, pay_method=str(PayMethod.QR), order_key=f"{tx_id}-o")
        with write_transaction(self._conn):
            self.store.insert(row)
            self._new_token(tx_id)
            self.journal.append(
                "tx_open", {**self._open_entry(row), "payment_method": str(PayMethod.QR)}
            )
            row = self._moves.to_awaiting_payment(row)
        try:
            row = self.qr.create(row)
        except PlatformRefused as exc:
            self._void(row, TxOutcome.REFUSED, CloseReason.PLATFORM_REFUSED, refusal=exc.code)
            raise PaymentRefused(f"the operator's platform refused ({exc.code})") from None
        except SignerError:
            self._void(row, TxOutcome.REFUSED, CloseReason.SIGNER_FAILED)
            self.events.publish("signer_outage")
            raise PaymentRefused(NO_SIGNER) from None
        if row.tx_state is TxState.AWAITING_PAYMENT and row.code_url is None:
            # Neither the order nor its status answered: there is no code to show. Close it
            # (fencing the key); housekeeping goes on if this is not answered either.
            row = self.qr.close(row, present=False)
            if row.tx_state is TxState.AWAITING_PAYMENT:
                raise PaymentRefused(
                    "the operator's platform cannot be reached; please try again later"
                )
        return self._qr_after(row, present=True)

    def qr_present_code(self, tx_id: str, code: str) -> QrPayment:
        """The resident's payment code (付款码) read by the scanner: charge it for the order.

        PaymentCodeInvalid (one clear line) for a scan that is not a payment code, before
        anything is sent; PaymentCodeRefused when the platform proves it was not charged.
        """
        scheme_of(code)
        row = self._qr_row(tx_id)
        before = self._doubts(tx_id)
        if row.tx_state is not TxState.AWAITING_PAYMENT:
            return self._qr_after(row, present=True, doubts_before=before)
        self._guard.require()
        row = self.qr.pay_by_code(row, code)
        return self._qr_after(row, present=True, doubts_before=before)

    def qr_poll(self, tx_id: str) -> QrPayment:
        """Ask the platform once where the payment stands, and move it on."""
        row = self._qr_row(tx_id)
        before = self._doubts(tx_id)
        if row.tx_state is TxState.AWAITING_PAYMENT and self._guard.check().ok:
            row = self.qr.status(row)
        return self._qr_after(row, present=True, doubts_before=before)

    def qr_cancel(self, tx_id: str) -> QrPayment:
        """The resident cancels (or the screen timed out while showing): close the order.

        If the resident paid just before the close, the payment completes (they are at the
        screen). If the close is not answered, the payment is settled in their absence (a
        paid order is then refunded) and the resident gets the interim slip.
        """
        row = self._qr_row(tx_id)
        before = self._doubts(tx_id)
        if row.tx_state is not TxState.AWAITING_PAYMENT:
            return self._qr_after(row, present=True, doubts_before=before)
        row = self.qr.close(row, present=True)
        if row.tx_state is TxState.AWAITING_PAYMENT:
            row = self._moves.resident_left(row)
            return self._qr_view(row, self._pending(row, present=True))
        return self._qr_after(row, present=True, doubts_before=before)

    def qr_waiting(self) -> bool:
        """Whether a payment by phone waits for the resident (the scanner is read then)."""
        return any(r.tx_state is TxState.AWAITING_PAYMENT for r in self.store.open_transactions())

    def _qr_row(self, tx_id: str) -> TxRow:
        row = self.store.get(tx_id)
        if row.pay_method != PayMethod.QR:
            raise PaymentRefused(f"transaction {tx_id} is not a payment by phone")
        return row

    def _qr_after(self, row: TxRow, *, present: bool, doubts_before: int = 0) -> QrPayment:
        """Carry a payment by phone on as far as it goes now, and say what the screen shows.

        doubts_before: the failed attempts before the call (_doubts) that got the row here."""
        if row.tx_state is TxState.POSTING and not self._posting.due(row):
            return self._qr_view(row, self._qr_settle(row, present, doubts_before))
        if row.tx_state is TxState.POSTING and not self.store.retry_of(
            RetryKind.POSTING, row.tx_id
        ):
            # Fresh from the order's proof (never attempted): send it; a retry resolves.
            row = self._posting.send(row)
            return self._qr_view_of(row, present, doubts_before)
        if row.tx_state is TxState.AWAITING_PAYMENT:
            return self._qr_view(row, None)
        if row.tx_state is TxState.CLOSED:
            return self._qr_view(row, self._closed_outcome(row))
        return self._qr_view_of(row, present, doubts_before)

    def _qr_view_of(self, row: TxRow, present: bool, doubts_before: int) -> QrPayment:
        if row.tx_state is TxState.REFUNDING and self.qr.due(row):
            row = self.qr.refund(row)
        outcome = self._qr_settle(row, present, doubts_before)
        return self._qr_view(self.store.get(row.tx_id), outcome)

    def _qr_settle(self, row: TxRow, present: bool, doubts_before: int) -> Outcome:
        """_settle for a payment by phone, whose screen polls: a payment still in doubt
        prints its interim slip once, when its first attempt failed, not on every poll."""
        undecided = row.tx_state in (TxState.POSTING, TxState.AWAITING_PAYMENT) or (
            row.tx_state is TxState.REFUNDING and not row.refunded_fen
        )
        if undecided:
            # The slip once: when this very call found the payment in doubt for the first time.
            first = doubts_before == 0 and self._doubts(row.tx_id) > 0
            return self._pending(row, present and first)
        return self._settle(row, present=present)

    def _doubts(self, tx_id: str) -> int:
        """How many attempts of this payment's platform work failed so far."""
        kinds = (RetryKind.ORDER, RetryKind.POSTING, RetryKind.REFUND)
        return sum(r.attempts for k in kinds if (r := self.store.retry_of(k, tx_id)) is not None)

    def _qr_view(self, row: TxRow, outcome: Outcome | None) -> QrPayment:
        if outcome is None:
            stage = QrStage(row.order_stage or QrStage.WAITING)
        elif outcome.outcome is TxOutcome.IN_DOUBT:
            stage = QrStage.IN_DOUBT
        else:
            stage = QrStage.DONE
        expires = row.order_expires or row.created
        return QrPayment(
            tx_id=row.tx_id,
            amount_fen=row.total_due_fen,
            code_url=row.code_url or "",
            expires_at=datetime.fromisoformat(expires),
            stage=stage,
            paid_with=row.paid_with,
            outcome=outcome,
        )

    def _closed_outcome(self, row: TxRow) -> Outcome:
        return Outcome(
            row.tx_id,
            TxOutcome(row.outcome or TxOutcome.CANCELLED),
            row.receipt_no,
            None,
            printed=bool(row.printed),
            print_problem=row.print_problem,
            token=self.store.token_of(row.tx_id),
            total_due_fen=row.total_due_fen,
            paid_with=row.paid_with,
            refunded_fen=row.refunded_fen,
        )

    def _qr_abandoned(self, row: TxRow) -> bool:
        """A payment awaiting the resident that nobody is at the screen for any more: the
        resident left (an unanswered cancel, a restart), or the journey timeout and a margin
        passed since it started. Measured by the terminal's own clock (the order's expiry is
        the platform's, which may differ): the platform closes the order itself by then."""
        if not self.qr.due(row):
            return False
        if row.resident_left:
            return True
        elapsed = self.clock.now() - datetime.fromisoformat(row.created)
        return elapsed >= self._collect_timeout + ORDER_EXPIRY_MARGIN

    def _qr_absent(self, row: TxRow) -> Outcome:
        """Settle a payment awaiting a resident who is gone: ask where the order stands,
        close it if open (money found taken is refunded, never completed)."""
        row = self._moves.resident_left(row)
        row = self.qr.status(row)
        if row.tx_state is TxState.AWAITING_PAYMENT:
            row = self.qr.close(row, present=False)
        if row.tx_state is TxState.AWAITING_PAYMENT:
            return self._pending(row, present=False)
        return self.advance(row, ask_now=True)

    def _new_token(self, tx_id: str) -> None:
        while not self.store.add_token(new_receipt_token(), tx_id):
            continue  # taken by an earlier transaction: draw again

    # ------------------------------------------------------------------ cash

    def reassert_inlets(self) -> None:
        """Open the inlets again if a transaction is collecting (after the acceptor restarted)."""
        self.cash_desk.reassert()

    def drain_cash(self) -> None:
        """Journal every counted note and coin, then acknowledge it to the acceptor."""
        self.cash_desk.drain()

    def collect(self, tx_id: str) -> Progress:
        """Take in what was inserted; narrow the inlets to what is due, close them when paid."""
        self.cash_desk.drain()
        row = self.store.get(tx_id)
        if row.tx_state is TxState.COLLECTING:
            self.cash_desk.limit_for(row)
        return self._progress(row)

    def _claim_slip(self, tx_id: str | None, event_id: str) -> None:
        self.receipts.print_claim_slip(tx_id, event_id)

    def _close_orphan(self, tx_id: str) -> None:
        self._close(
            self.store.get(tx_id),
            TxOutcome.REFUND,
            reason=CloseReason.CASH_OUTSIDE_PAYMENT,
            present=True,
        )

    # ------------------------------------------------------------------ finish

    def finish(self, tx_id: str) -> Outcome:
        """Post a fully paid transaction, close and sign it, write the card, print.

        With the clock wrong nothing is sent (ClockWrong): the resident may cancel, and gets
        an interim slip until the clock is right and the voucher can be signed.
        """
        self._guard.require()
        self.cash_desk.drain()
        row = self.store.get(tx_id)
        if row.tx_state is not TxState.COLLECTING:
            raise PaymentRefused(f"transaction {tx_id} is {row.state}, not collecting cash")
        if row.cash_in_fen < row.total_due_fen:
            raise NotEnoughCash(
                f"still due: {row.total_due_fen - row.cash_in_fen} fen of {row.total_due_fen}"
            )
        # Closing may fail (the board link): the payment goes on, and cash arriving later
        # becomes a refund voucher.
        self.cash_desk.close(tx_id)
        self.cash_desk.drain()  # a coin that fell in while the inlets closed belongs here
        row = self.store.get(tx_id)
        surplus = row.cash_in_fen - row.total_due_fen
        if row.allows_overpay and row.hold_fen - row.total_due_fen >= surplus:
            pay, credited, voucher = row.due_fen + surplus, surplus, 0
        else:
            pay, credited, voucher = row.due_fen, 0, surplus
        row = self._moves.to_posting(row, pay_fen=pay, credited_fen=credited, voucher_fen=voucher)
        row = self._posting.send(row)
        return self._settle(row, present=True)

    def _settle(self, row: TxRow, *, present: bool) -> Outcome:
        """Close a transaction the platform has decided; report one still in doubt."""
        if row.tx_state is TxState.POSTING:
            return self._pending(row, present)
        if row.tx_state is TxState.POSTED:
            card_credit = None
            if row.kind == TxKind.CARD_TOPUP:
                assert row.card_no is not None
                card_credit = self.card_credits.write_for(row.tx_id, row.card_no)
            return self._close(
                self.store.get(row.tx_id), TxOutcome.PAID, card_credit=card_credit, present=present
            )
        if row.tx_state is TxState.REFUNDING:
            if not row.refunded_fen:
                return self._pending(row, present)
            reason = CloseReason(row.close_reason or CloseReason.POSTING_REVERSED)
            return self._close(
                row, TxOutcome.REFUNDED, reason=reason, refusal=row.refusal, present=present
            )
        if row.tx_state is TxState.AWAITING_PAYMENT:
            return self._pending(row, present)
        if row.tx_state is TxState.VOIDING:
            outcome = TxOutcome.FAILED if row.cash_in_fen else TxOutcome.CANCELLED
            reason = CloseReason(row.close_reason or CloseReason.PLATFORM_REFUSED)
            return self._close(row, outcome, reason=reason, refusal=row.refusal, present=present)
        raise PaymentRefused(f"transaction {row.tx_id} is {row.state}; nothing to advance")

    def _pending(self, row: TxRow, present: bool) -> Outcome:
        """Not settled yet: the resident leaves with an interim slip naming the payment."""
        printed, problem = (False, None)
        if present and (row.cash_in_fen or row.pay_method == PayMethod.QR):
            printed, problem = self.receipts.print_interim(row)
        return Outcome(
            row.tx_id,
            TxOutcome.IN_DOUBT,
            None,
            None,
            printed=printed,
            print_problem=problem,
            token=self.store.token_of(row.tx_id),
            cash_in_fen=row.cash_in_fen,
            total_due_fen=row.total_due_fen,
            paid_with=row.paid_with,
        )

    def advance(self, row: TxRow, *, present: bool = False, ask_now: bool = False) -> Outcome:
        """Drive a transaction from POSTING, POSTED or VOIDING towards CLOSED.

        A posting in doubt is asked about when its retry is due, or at once with ask_now
        (a restart, or the resident asking); it is never sent blindly again. present: the
        resident is at the kiosk, so the result is printed.
        """
        if row.tx_state is TxState.POSTING and (ask_now or self._posting.due(row)):
            row = self._posting.resolve(row)
        if row.tx_state is TxState.REFUNDING and (ask_now or self.qr.due(row)):
            row = self.qr.refund(row)
        return self._settle(row, present=present)

    # ------------------------------------------------------------------ cancel and close

    def cancel(self, tx_id: str, reason: CloseReason = CloseReason.CUSTOMER_CANCELLED) -> Outcome:
        """Stop before money is committed; inserted cash becomes a voucher.

        Never stranded by the cash device: if the inlets cannot be closed the payment is
        voided all the same (an alert says so) and cash arriving later becomes a refund.
        """
        row = self.store.get(tx_id)
        if row.tx_state not in (TxState.NEW, TxState.COLLECTING):
            raise PaymentRefused(
                "the payment is already being posted and can no longer be cancelled"
            )
        self.cash_desk.close(tx_id)
        self.cash_desk.drain()
        row = self._moves.to_voiding(self.store.get(tx_id), reason)
        present = reason is not CloseReason.ABANDONED
        return self._close(row, TxOutcome.CANCELLED, reason=reason, present=present)

    def _void(
        self, row: TxRow, outcome: TxOutcome, reason: CloseReason, *, refusal: str | None = None
    ) -> Outcome:
        row = self._moves.to_voiding(row, reason, refusal=refusal)
        return self._close(row, outcome, reason=reason, refusal=refusal, present=True)

    def _close(
        self,
        row: TxRow,
        outcome: TxOutcome,
        *,
        card_credit: CardCreditState | None = None,
        reason: CloseReason | None = None,
        refusal: str | None = None,
        present: bool,
    ) -> Outcome:
        """Write the signed closing record; print the receipt, then release holds and
        register the voucher (a slow platform never delays the receipt)."""
        if not self._guard.check().ok:
            # No closing record is signed with a wrong time: housekeeping closes it later.
            return self._pending(row, present)
        paid = outcome is TxOutcome.PAID
        voucher_fen = row.voucher_fen if paid else row.cash_in_fen
        paper = bool(row.cash_in_fen) or paid or bool(row.refunded_fen)
        with write_transaction(self._conn):
            extra: dict[str, object] = {}
            if refusal is not None:
                extra["refusal"] = refusal
            if voucher_fen:
                extra.update(self.vouchers.issue(row, voucher_fen))
            if paper and not present:
                extra["awaiting_claim"] = True
            row, record = write_close(
                self._conn,
                self.journal,
                self.store,
                row,
                outcome,
                now=self.clock.now(),
                calendar=self.calendar,
                card_credit=card_credit,
                reason=reason,
                extra=extra,
            )
        if "sig" not in record:
            self.events.publish("signer_outage", seq=record["seq"])
        self.events.publish("tx_closed", tx_id=row.tx_id, outcome=str(outcome))
        printed, problem = (False, None)
        if paper and present:
            printed, problem = self.receipts.print_receipt(row.tx_id, copy_no=0)
        self._holds.release_due(max_calls=2)
        if voucher_fen:
            self.vouchers.register_due(max_calls=1)
        return Outcome(
            row.tx_id,
            outcome,
            row.receipt_no,
            record,
            voucher_fen=row.voucher_fen,
            credited_fen=row.credited_fen,
            card_credit=card_credit,
            printed=printed,
            print_problem=problem,
            token=self.store.token_of(row.tx_id),
            cash_in_fen=row.cash_in_fen,
            total_due_fen=row.total_due_fen,
            paid_with=row.paid_with,
            refunded_fen=row.refunded_fen,
        )

    def release_holds(self, max_calls: int | None = None) -> int:
        """Release every float hold of a closed transaction whose retry is due."""
        if not self._guard.check().ok:
            return 0
        return self._holds.release_due(max_calls)

    # ------------------------------------------------------------------ prepaid cards

    def card_inserted(self) -> list[str]:
        """A card came in: finish any credit still pending for it. Returns the tx ids done."""
        card = self.cards.read_prepaid()
        if card is None:
            return []
        return self.card_credits.complete(card)

    # ------------------------------------------------------------------ receipts

    def print_receipt(self, tx_id: str, copy_no: int) -> tuple[bool, str | None]:
        return self.receipts.print_receipt(tx_id, copy_no)

    def closed_by_receipt(self, receipt_no: str) -> TxRow | None:
        """The closed transaction a receipt number names (looked up in the journal)."""
        record = self.journal.by_receipt(receipt_no)
        return None if record is None else self.store.get(str(record["tx_id"]))

    def reprint(self, token: str) -> tuple[bool, str | None]:
        """Print the paper the token entitles to (the original if it was never printed)."""
        return self.receipts.claim(token)

    def reprint_by_number(self, receipt_no: str, *, by: str) -> tuple[bool, str | None]:
        """Station staff: the same, by receipt number."""
        return self.receipts.claim_by_number(receipt_no, by=by)

    # ------------------------------------------------------------------ housekeeping

    def housekeeping(self, max_calls: int = 4) -> None:
        """Settle what is due: abandoned payments, in-doubt postings, holds, vouchers.

        At most about max_calls platform requests per duty, so one round stays short even
        when the platform does not answer. The runtime (kiosk.runtime) runs the same duties
        one at a time through Terminal.housekeeping_duties.
        """
        self.void_abandoned()
        for tx_id in self.settling()[:max_calls]:
            self.settle(tx_id)
        self.release_holds(max_calls)
        self.register_vouchers(max_calls)

    def register_vouchers(self, max_calls: int | None = None) -> int:
        """Register with the platform the vouchers whose registration is due."""
        if not self._guard.check().ok:
            return 0
        return self.vouchers.register_due(max_calls)

    def settling(self) -> list[str]:
        """The open transactions housekeeping should move on now (posted or voiding ones,
        and postings in doubt whose retry is due)."""
        due: list[str] = []
        for row in self.store.open_transactions():
            if row.tx_state in (TxState.POSTED, TxState.VOIDING):
                due.append(row.tx_id)
            elif row.tx_state is TxState.POSTING and self._posting.due(row):
                due.append(row.tx_id)
            elif row.tx_state is TxState.REFUNDING and self.qr.due(row):
                due.append(row.tx_id)
            elif row.tx_state is TxState.AWAITING_PAYMENT and self._qr_abandoned(row):
                due.append(row.tx_id)
        return due

    def settle(self, tx_id: str) -> Outcome | None:
        """Move one open transaction on in the resident's absence (nothing while the clock
        is wrong); None if it is no longer open or not due."""
        if not self._guard.check().ok:
            return None
        row = self.store.get(tx_id)
        if row.tx_state is TxState.AWAITING_PAYMENT:
            if not self._qr_abandoned(row):
                return None
            return self._qr_absent(row)
        if row.tx_state not in (
            TxState.POSTING,
            TxState.POSTED,
            TxState.VOIDING,
            TxState.REFUNDING,
        ):
            return None
        if row.tx_state is TxState.POSTING and not self._posting.due(row):
            return None
        if row.tx_state is TxState.REFUNDING and not self.qr.due(row):
            return None
        return self.advance(row)

    def void_abandoned(self) -> list[Outcome]:
        """Cancel a payment collecting cash that nobody touched for the journey timeout (its
        voucher awaits a claim; while the clock is wrong it waits to be closed)."""
        row = self.store.collecting()
        if row is None:
            return []
        if self.clock.now() - datetime.fromisoformat(row.updated) < self._collect_timeout:
            return []
        log.warning("payment %s abandoned while collecting: cancelling it", row.tx_id)
        return [self.cancel(row.tx_id, CloseReason.ABANDONED)]

    # ------------------------------------------------------------------ recovery

    def recover(self) -> list[Outcome]:
        """Resolve every transaction not closed, after a restart or a lost connection.

        Cash the acceptor still holds is journaled first, so it lands in the transaction
        that was collecting; then each open transaction is finished or reversed by state.
        Results are not printed (nobody may be at the kiosk): they await a claim.
        """
        self.cash_desk.drain()
        outcomes: list[Outcome] = []
        clock_ok = self._guard.check().ok
        for row in self.store.open_transactions():
            state = row.tx_state
            if state is TxState.AWAITING_PAYMENT:
                if clock_ok:
                    outcomes.append(self._qr_absent(row))
            elif state in (TxState.NEW, TxState.COLLECTING):
                self.cash_desk.close(row.tx_id)
                self.cash_desk.drain()
                row = self._moves.to_voiding(self.store.get(row.tx_id), CloseReason.RESTART)
                outcomes.append(
                    self._close(row, TxOutcome.CANCELLED, reason=CloseReason.RESTART, present=False)
                )
            elif clock_ok:
                outcomes.append(self.advance(row, ask_now=True))
        if not clock_ok:
            return outcomes
        self._holds.release_due()
        try:
            self.card_inserted()
        except CardError as exc:
            log.info("pending card credits wait for their card: %s", exc)
        return outcomes
