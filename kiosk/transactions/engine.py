"""The transaction engine: the steps every kind of customer transaction shares.

Order of every step: commit the new state and its journal record, then perform the side
effect (hold, open inlets, post, write a card, print). A crash between the two leaves a
state that recover() knows how to finish or reverse; see docs/transactions.md.
"""

import logging
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kiosk.catalog import Catalog, Service
from kiosk.clock import Clock, iso
from kiosk.devices import (
    CardError,
    CardReader,
    CardRemoved,
    CashAcceptor,
    CashEvent,
    DeviceError,
    PrepaidCard,
    Printer,
    PrinterError,
)
from kiosk.errors import KioskError
from kiosk.events import EventBus
from kiosk.i18n import bilingual
from kiosk.journal import Journal
from kiosk.platform import (
    CardCredit,
    InsufficientFloat,
    MalformedAnswer,
    PlatformClient,
    PlatformRefused,
    PlatformUnavailable,
)
from kiosk.receipts import receipt_document, receipt_from_record
from kiosk.settlement.calendar import BusinessCalendar
from kiosk.signing import SignerError
from kiosk.storage import write_transaction
from kiosk.transactions.states import TxState
from kiosk.transactions.store import TxRow, TxStore

log = logging.getLogger(__name__)

# A pulse acceptor closes its inlets once the amount due is reached, so a customer can
# overpay by less than the largest note (100 yuan). Services that credit overpayment to
# the account hold this much extra float so the credit can be posted.
OVERPAY_MARGIN_FEN = 100_00 - 1


class PaymentRefused(KioskError):
    """A payment cannot start or continue; nothing was taken from the customer."""


class NotEnoughCash(KioskError):
    """finish() was asked for before the amount due was inserted."""


@dataclass(frozen=True)
class Progress:
    tx_id: str
    state: str
    total_due_fen: int
    cash_in_fen: int

    @property
    def still_due_fen(self) -> int:
        return max(0, self.total_due_fen - self.cash_in_fen)


@dataclass(frozen=True)
class Outcome:
    tx_id: str
    outcome: str  # paid | cancelled | refused | failed | refund | in_doubt
    receipt_no: str | None
    record: dict[str, Any] | None
    voucher_fen: int = 0
    credited_fen: int = 0
    card_credit: str | None = None  # written | pending (prepaid card top-ups)
    printed: bool = False
    print_problem: str | None = None


NO_SIGNER = (
    "the signature device (USBKey) is not working, so no payment can start: "
    "a technician must check the token"
)


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
    outcome: str,
    *,
    now: datetime,
    calendar: BusinessCalendar,
    card_credit: str | None = None,
    reason: str = "",
) -> tuple[TxRow, dict[str, object]]:
    """The commit path of a transaction: in one write transaction, append the signed tx_close
    record, numbered as a receipt by its seq, and move the row to CLOSED.

    Returns the closed row and the record. What follows the commit (holds, printing) is the
    engine's; `make bench` times exactly this function.
    """
    paid = outcome == "paid"
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
            "outcome": outcome,
            "platform_ref": row.platform_ref if paid else None,
            "business_day": day,
        }
        if reason:
            fields["reason"] = reason
        if row.card_no is not None:
            fields["card_no_masked"] = mask_account(row.card_no)
            if card_credit is not None:
                fields["card_credit"] = card_credit
        turnover = fields["amount_fen"] + fields["fee_fen"]
        record = journal.append(
            "tx_close", fields, sign=True, turnover_add_fen=turnover, numbered_receipt=True, at=now
        )
        closed = store.update(
            row,
            str(record["time"]),  # iso(now), made once
            state=TxState.CLOSED,
            outcome=outcome,
            receipt_no=record["receipt_no"],
            business_day=day,
            voucher_fen=fields["voucher_fen"],
            pay_fen=fields["amount_fen"],
            credited_fen=fields["credited_fen"],
        )
    return closed, record


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
        station_name: str,
        columns: int,
        events: EventBus,
    ) -> None:
        self._conn = conn
        self.journal = journal
        self.platform = platform
        self._catalog = catalog
        self.cash = cash
        self.cards = cards
        self.printer = printer
        self.clock = clock
        self.calendar = calendar
        self._terminal_id = terminal_id
        self._station_name = station_name
        self._columns = columns
        self.events = events
        self.store = TxStore(conn)

    # ------------------------------------------------------------------ helpers

    def _now(self) -> str:
        return iso(self.clock.now())

    def _service(self, code: str) -> Service:
        return self._catalog().service(code)

    def _progress(self, row: TxRow) -> Progress:
        return Progress(row.tx_id, row.state, row.total_due_fen, row.cash_in_fen)

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

    def begin(
        self,
        *,
        kind: str,
        service: Service,
        account: str,
        due_fen: int,
        bill_id: str | None = None,
        card: PrepaidCard | None = None,
    ) -> Progress:
        """Create the transaction, hold the float for it, then open the inlets."""
        self.ensure_signing()
        if self.store.open_transactions():
            raise PaymentRefused("another transaction is still open: finish or cancel it first")
        service.check_amount(due_fen)
        fee_fen = service.fee_on(self.clock.now().date(), due_fen)
        now = self._now()
        tx_id = f"{self._terminal_id}-{uuid.uuid4().hex[:16]}"
        row = TxRow(
            tx_id=tx_id,
            kind=kind,
            service=service.code,
            biller=service.biller,
            account=account,
            bill_id=bill_id,
            state=str(TxState.NEW),
            due_fen=due_fen,
            fee_fen=fee_fen,
            allows_overpay=int(service.allows_overpay),
            hold_id=f"{tx_id}-h",
            hold_fen=0,
            cash_in_fen=0,
            pay_fen=0,
            credited_fen=0,
            voucher_fen=0,
            post_key=f"{tx_id}-p",
            platform_ref=None,
            card_no=card.card_no if card else None,
            card_counter=card.purchase_counter if card else None,
            outcome=None,
            receipt_no=None,
            business_day=None,
            printed=0,
            print_problem=None,
            created=now,
            updated=now,
        )
        with write_transaction(self._conn):
            self.store.insert(row)
            self._conn.execute(
                "INSERT OR IGNORE INTO hold_release (hold_id, tx_id) VALUES (?, ?)",
                (row.hold_id, tx_id),
            )
            self.journal.append(
                "tx_open",
                {
                    "tx_id": tx_id,
                    "kind": kind,
                    "service": service.code,
                    "account_masked": mask_account(account),
                    "amount_fen": due_fen,
                    "fee_fen": fee_fen,
                },
            )
        total = due_fen + fee_fen
        wanted = total + (OVERPAY_MARGIN_FEN if service.allows_overpay else 0)
        assert row.hold_id is not None
        try:
            try:
                self.platform.hold_float(row.hold_id, wanted)
                held = wanted
            except InsufficientFloat:
                if wanted == total:
                    raise
                # Enough for the payment but not for an overpayment credit: hold exactly the
                # total; a surplus will then become a voucher.
                self.platform.release_float(row.hold_id)
                row = self._update(row, hold_id=f"{tx_id}-h2")
                with write_transaction(self._conn):
                    self._conn.execute(
                        "INSERT OR IGNORE INTO hold_release (hold_id, tx_id) VALUES (?, ?)",
                        (row.hold_id, tx_id),
                    )
                assert row.hold_id is not None
                self.platform.hold_float(row.hold_id, total)
                held = total
        except InsufficientFloat:
            self.events.publish("low_float", reason="payment refused", wanted_fen=total)
            self._void(row, "refused", "the station's prepaid float cannot cover this payment")
            raise PaymentRefused(
                "this service is paused: the station's prepaid float is too low; "
                "please try later or ask the station staff"
            ) from None
        except PlatformRefused as exc:
            self._void(row, "refused", str(exc))
            raise PaymentRefused(f"the operator's platform refused: {exc}") from None
        except SignerError:
            # The hold request is signed by the token: a token pulled while the terminal
            # was idle shows here first. Name the device, as ensure_signing() does.
            self._void(row, "refused", "signature device failed")
            self.events.publish("signer_outage")
            raise PaymentRefused(NO_SIGNER) from None
        except (PlatformUnavailable, MalformedAnswer):
            self._void(row, "refused", "operator platform unreachable")
            raise PaymentRefused(
                "the operator's platform cannot be reached; please try again later"
            ) from None
        with write_transaction(self._conn):
            row = self.store.update(tx_id, self._now(), state=TxState.COLLECTING, hold_fen=held)
            self.journal.append(
                "tx_state", {"tx_id": tx_id, "state": "collecting", "hold_fen": held}
            )
        self.cash.set_accepting(True)
        return self._progress(row)

    def _update(self, row: TxRow, **changes: Any) -> TxRow:
        with write_transaction(self._conn):
            return self.store.update(row.tx_id, self._now(), **changes)

    # ------------------------------------------------------------------ cash

    def reassert_inlets(self) -> None:
        """Open the inlets again if a transaction is collecting (after the acceptor restarted)."""
        if any(r.tx_state == TxState.COLLECTING for r in self.store.open_transactions()):
            try:
                self.cash.set_accepting(True)
            except DeviceError as exc:
                log.warning("cash inlets not reopened after a restart: %s", exc)

    def drain_cash(self) -> None:
        """Journal every counted note and coin, then acknowledge it to the acceptor.

        An event already journaled (re-sent after a restart) is only acknowledged again.
        Cash counted while no transaction collects becomes a refund voucher at once.
        """
        try:
            events = self.cash.pending()
        except DeviceError as exc:
            log.warning("cash acceptor not answering: %s", exc)
            return
        for event in events:
            if not self.store.cash_event_known(event.event_id):
                self._journal_cash(event)
            self.cash.acknowledge(event.event_id)

    def _journal_cash(self, event: CashEvent) -> None:
        collecting = self.store.collecting()
        if collecting is None:
            self._refund_orphan_cash(event)
            return
        with write_transaction(self._conn):
            total = collecting.cash_in_fen + event.value_fen
            record = self.journal.append(
                "cash_in",
                {
                    "tx_id": collecting.tx_id,
                    "event_id": event.event_id,
                    "cash_kind": event.kind,
                    "value_fen": event.value_fen,
                    "cash_in_fen": total,
                },
            )
            seq = record["seq"]
            assert isinstance(seq, int)
            self.store.add_cash_event(
                event.event_id, collecting.tx_id, event.kind, event.value_fen, seq
            )
            self.store.update(collecting.tx_id, self._now(), cash_in_fen=total)

    def _refund_orphan_cash(self, event: CashEvent) -> None:
        now = self._now()
        tx_id = f"{self._terminal_id}-{uuid.uuid4().hex[:16]}"
        row = TxRow(
            tx_id=tx_id,
            kind="cash_refund",
            service="cash-refund",
            biller="",
            account="",
            bill_id=None,
            state=str(TxState.NEW),
            due_fen=0,
            fee_fen=0,
            allows_overpay=0,
            hold_id=None,
            hold_fen=0,
            cash_in_fen=event.value_fen,
            pay_fen=0,
            credited_fen=0,
            voucher_fen=event.value_fen,
            post_key=None,
            platform_ref=None,
            card_no=None,
            card_counter=None,
            outcome=None,
            receipt_no=None,
            business_day=None,
            printed=0,
            print_problem=None,
            created=now,
            updated=now,
        )
        with write_transaction(self._conn):
            self.store.insert(row)
            record = self.journal.append(
                "cash_in",
                {
                    "tx_id": tx_id,
                    "event_id": event.event_id,
                    "cash_kind": event.kind,
                    "value_fen": event.value_fen,
                    "cash_in_fen": event.value_fen,
                    "unexpected": True,
                },
            )
            seq = record["seq"]
            assert isinstance(seq, int)
            self.store.add_cash_event(event.event_id, tx_id, event.kind, event.value_fen, seq)
            self.store.update(tx_id, now, state=TxState.VOIDING)
        self._close(self.store.get(tx_id), "refund", reason="cash inserted outside a payment")

    def collect(self, tx_id: str) -> Progress:
        """Take in what was inserted; close the inlets once the total is reached."""
        self.drain_cash()
        row = self.store.get(tx_id)
        if row.tx_state is TxState.COLLECTING and row.cash_in_fen >= row.total_due_fen:
            self.cash.set_accepting(False)
        return self._progress(row)

    # ------------------------------------------------------------------ finish

    def finish(self, tx_id: str) -> Outcome:
        """Post a fully paid transaction, close and sign it, write the card, print."""
        self.drain_cash()
        row = self.store.get(tx_id)
        if row.tx_state is not TxState.COLLECTING:
            raise PaymentRefused(f"transaction {tx_id} is {row.state}, not collecting cash")
        if row.cash_in_fen < row.total_due_fen:
            raise NotEnoughCash(
                f"still due: {row.total_due_fen - row.cash_in_fen} fen of {row.total_due_fen}"
            )
        self.cash.set_accepting(False)
        self.drain_cash()  # a coin that fell in while the inlets closed belongs here
        row = self.store.get(tx_id)
        surplus = row.cash_in_fen - row.total_due_fen
        if row.allows_overpay and row.hold_fen - row.total_due_fen >= surplus:
            pay, credited, voucher = row.due_fen + surplus, surplus, 0
        else:
            pay, credited, voucher = row.due_fen, 0, surplus
        with write_transaction(self._conn):
            row = self.store.update(
                tx_id,
                self._now(),
                state=TxState.POSTING,
                pay_fen=pay,
                credited_fen=credited,
                voucher_fen=voucher,
            )
            self.journal.append(
                "tx_state",
                {"tx_id": tx_id, "state": "posting", "post_key": row.post_key, "pay_fen": pay},
            )
        return self._advance(row, first_attempt=True)

    def _advance(self, row: TxRow, *, first_attempt: bool = False) -> Outcome:
        """Drive a transaction from POSTING, POSTED or VOIDING to CLOSED as far as possible.

        Only the first attempt sends the posting; a posting whose outcome was not learned is
        settled by a status query, never by sending it blindly again.
        """
        if row.tx_state is TxState.POSTING:
            row = self._post(row) if first_attempt else self._resolve_posting(row)
            if row.tx_state is TxState.POSTING:
                return Outcome(row.tx_id, "in_doubt", None, None)
        if row.tx_state is TxState.POSTED:
            card_credit = self._write_card(row) if row.kind == "card_topup" else None
            return self._close(self.store.get(row.tx_id), "paid", card_credit=card_credit)
        if row.tx_state is TxState.VOIDING:
            outcome = "failed" if row.cash_in_fen else "cancelled"
            return self._close(row, outcome, reason="payment not accepted by the platform")
        raise PaymentRefused(f"transaction {row.tx_id} is {row.state}; nothing to advance")

    def _post(self, row: TxRow) -> TxRow:
        assert row.post_key is not None and row.hold_id is not None
        try:
            ref, credit = self._send_posting(row)
        except PlatformRefused as exc:
            return self._to_voiding(row, f"platform refused: {exc}")
        except SignerError:
            # The client signs before sending: nothing reached the platform.
            return self._to_voiding(row, "signature device failed")
        except (PlatformUnavailable, MalformedAnswer):
            return self._resolve_posting(row)
        return self._to_posted(row, ref, credit)

    def _send_posting(self, row: TxRow) -> tuple[str, CardCredit | None]:
        assert row.post_key is not None and row.hold_id is not None
        if row.kind == "card_topup":
            assert row.card_no is not None and row.card_counter is not None
            credit = self.platform.authorize_card_credit(
                row.post_key,
                hold_id=row.hold_id,
                service=row.service,
                biller=row.biller,
                card_no=row.card_no,
                counter=row.card_counter,
                amount_fen=row.pay_fen,
                fee_fen=row.fee_fen,
            )
            return credit.ref, credit
        posting = self.platform.post_payment(
            row.post_key,
            hold_id=row.hold_id,
            service=row.service,
            biller=row.biller,
            account=row.account,
            amount_fen=row.pay_fen,
            fee_fen=row.fee_fen,
            bill_id=row.bill_id,
        )
        return posting.ref, None

    def _to_posted(self, row: TxRow, ref: str, credit: CardCredit | None) -> TxRow:
        with write_transaction(self._conn):
            row = self.store.update(row.tx_id, self._now(), state=TxState.POSTED, platform_ref=ref)
            if credit is not None:
                assert row.card_no is not None
                self.store.add_card_credit(
                    row.tx_id, row.card_no, row.pay_fen, credit.new_counter, credit.mac
                )
            self._conn.execute("DELETE FROM hold_release WHERE tx_id = ?", (row.tx_id,))
            self.journal.append(
                "tx_state", {"tx_id": row.tx_id, "state": "posted", "platform_ref": ref}
            )
        return row

    def _to_voiding(self, row: TxRow, reason: str) -> TxRow:
        with write_transaction(self._conn):
            row = self.store.update(
                row.tx_id,
                self._now(),
                state=TxState.VOIDING,
                pay_fen=0,
                credited_fen=0,
                voucher_fen=row.cash_in_fen,
            )
            self.journal.append(
                "tx_state", {"tx_id": row.tx_id, "state": "voiding", "reason": reason}
            )
        return row

    def _resolve_posting(self, row: TxRow) -> TxRow:
        """The posting's outcome is unknown: only the platform's status may decide it.

        Posted: finish as paid. Not found: reverse the key first, so that a request still
        in flight can never be accepted later, then void. No answer: stay in doubt.
        """
        assert row.post_key is not None
        try:
            status = self.platform.payment_status(row.post_key)
            if status.state == "not_found":
                status = self.platform.reverse_payment(row.post_key, "outcome unknown at terminal")
            if status.state == "posted":
                if row.kind == "card_topup":
                    # The card credit's MAC comes only with the authorisation, which is
                    # idempotent by key: asking again returns the same one.
                    ref, credit = self._send_posting(row)
                    return self._to_posted(row, ref, credit)
                assert status.ref is not None
                return self._to_posted(row, status.ref, None)
            if status.state == "reversed":
                return self._to_voiding(row, "posting reversed after an unknown outcome")
        except (PlatformUnavailable, MalformedAnswer, SignerError) as exc:
            log.warning("posting %s still in doubt: %s", row.post_key, exc)
            return row
        except PlatformRefused as exc:
            return self._to_voiding(row, f"platform refused: {exc}")
        raise PaymentRefused(f"platform answered an unknown status {status.state!r}")

    def _write_card(self, row: TxRow) -> str:
        """Write the authorised credit to the card; if the card is gone it stays pending."""
        try:
            card = self.cards.read_prepaid()
            if card is None or card.card_no != row.card_no:
                raise CardRemoved("the card was taken out before the credit was written")
            self._complete_card_credits(card)
        except CardError as exc:
            log.warning("card credit for %s pending: %s", row.tx_id, exc)
            self.events.publish("card_credit_pending", tx_id=row.tx_id, reason=str(exc))
        pending = [c for c in self.store.card_credits(row.card_no) if c["tx_id"] == row.tx_id]
        return "pending" if pending else "written"

    def _complete_card_credits(self, card: PrepaidCard) -> list[str]:
        """Write every pending credit of this card, in counter order, never twice.

        The card's purchase counter tells what it already applied: a credit whose
        new_counter the card has reached was applied (perhaps just before the card was
        pulled) and is only recorded; the next one in line is written.
        """
        done: list[str] = []
        for credit in self.store.card_credits(card.card_no):
            new_counter = int(credit["new_counter"])
            applied_before = card.purchase_counter >= new_counter
            if not applied_before:
                if card.purchase_counter != new_counter - 1:
                    self._record_card_conflict(credit, card)
                    continue
                try:
                    card = self.cards.credit_prepaid(
                        card.card_no,
                        int(credit["amount_fen"]),
                        new_counter,
                        bytes(credit["mac"]),
                        terminal=self._terminal_id,
                        ref=f"{credit['tx_id']}-p",  # the post key it was authorised for
                    )
                except CardRemoved as exc:
                    # Pulled again: the credit stays pending for the card's next return; the
                    # counter then tells whether this attempt was applied.
                    log.info("card pulled while a pending credit was written: %s", exc)
                    self.events.publish("card_credit_pending", tx_id=credit["tx_id"])
                    break
            with write_transaction(self._conn):
                self.store.set_card_credit_state(credit["tx_id"], "written")
                self.journal.append(
                    "card_credit_written",
                    {
                        "tx_id": credit["tx_id"],
                        "card_no_masked": mask_account(card.card_no),
                        "amount_fen": int(credit["amount_fen"]),
                        "new_counter": new_counter,
                        "found_applied": applied_before,
                    },
                )
            done.append(str(credit["tx_id"]))
        return done

    def _record_card_conflict(self, credit: sqlite3.Row, card: PrepaidCard) -> None:
        with write_transaction(self._conn):
            self.store.set_card_credit_state(credit["tx_id"], "conflict")
            self.journal.append(
                "card_credit_conflict",
                {
                    "tx_id": credit["tx_id"],
                    "card_no_masked": mask_account(card.card_no),
                    "expected_counter": int(credit["new_counter"]) - 1,
                    "card_counter": card.purchase_counter,
                },
            )
        self.events.publish("card_credit_conflict", tx_id=credit["tx_id"])

    def card_inserted(self) -> list[str]:
        """A card came in: finish any credit still pending for it. Returns the tx ids done."""
        card = self.cards.read_prepaid()
        if card is None:
            return []
        return self._complete_card_credits(card)

    # ------------------------------------------------------------------ cancel and close

    def cancel(self, tx_id: str, reason: str = "cancelled by the customer") -> Outcome:
        """Stop before money is committed; inserted cash becomes a voucher."""
        row = self.store.get(tx_id)
        if row.tx_state not in (TxState.NEW, TxState.COLLECTING):
            raise PaymentRefused(
                "the payment is already being posted and can no longer be cancelled"
            )
        self.cash.set_accepting(False)
        self.drain_cash()
        row = self._to_voiding(self.store.get(tx_id), reason)
        return self._close(row, "cancelled", reason=reason)

    def _void(self, row: TxRow, outcome: str, reason: str) -> Outcome:
        row = self._to_voiding(row, reason)
        return self._close(row, outcome, reason=reason)

    def _close(
        self, row: TxRow, outcome: str, *, card_credit: str | None = None, reason: str = ""
    ) -> Outcome:
        """Write the signed closing record; then release holds and print the receipt."""
        paid = outcome == "paid"
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
        )
        receipt_no = str(row.receipt_no)
        if "sig" not in record:
            self.events.publish("signer_outage", seq=record["seq"])
        self.events.publish("tx_closed", tx_id=row.tx_id, outcome=outcome)
        self.release_holds()
        printed, problem = (False, None)
        if row.cash_in_fen or paid:
            printed, problem = self.print_receipt(row.tx_id, copy_no=0)
        return Outcome(
            row.tx_id,
            outcome,
            receipt_no,
            record,
            voucher_fen=row.voucher_fen,
            credited_fen=row.credited_fen,
            card_credit=card_credit,
            printed=printed,
            print_problem=problem,
        )

    def release_holds(self) -> None:
        """Release every float hold of a transaction that will not post (idempotent)."""
        rows = self._conn.execute(
            "SELECT h.hold_id, h.tx_id FROM hold_release h JOIN tx ON tx.tx_id = h.tx_id "
            "WHERE tx.state = ?",
            (str(TxState.CLOSED),),
        ).fetchall()
        for hold_id, tx_id in rows:
            try:
                self.platform.release_float(hold_id)
            except (PlatformUnavailable, MalformedAnswer, SignerError) as exc:
                log.warning("hold %s of %s not released yet: %s", hold_id, tx_id, exc)
                return
            except PlatformRefused as exc:
                log.warning("hold %s release refused: %s", hold_id, exc)
            with write_transaction(self._conn):
                self._conn.execute("DELETE FROM hold_release WHERE hold_id = ?", (hold_id,))

    # ------------------------------------------------------------------ receipts

    def print_receipt(self, tx_id: str, copy_no: int) -> tuple[bool, str | None]:
        """Print (or reprint, marked as a copy) the receipt of a closed transaction."""
        row = self.store.get(tx_id)
        assert row.receipt_no is not None
        record = self.journal.by_receipt(row.receipt_no)
        if record is None:
            raise KioskError(f"receipt {row.receipt_no} is not in the journal")
        try:
            name = bilingual(self._service(row.service).name)
        except KioskError:
            name = row.service
        receipt = receipt_from_record(record, station_name=self._station_name, service_name=name)
        document = receipt_document(receipt, record, columns=self._columns, copy_no=copy_no)
        try:
            self.printer.print_receipt(document)
        except PrinterError as exc:
            with write_transaction(self._conn):
                self.store.update(tx_id, self._now(), print_problem=str(exc))
            self.events.publish("receipt_not_printed", receipt_no=row.receipt_no, reason=str(exc))
            return False, str(exc)
        if copy_no == 0:
            with write_transaction(self._conn):
                self.store.update(tx_id, self._now(), printed=1, print_problem=None)
        return True, None

    def closed_by_receipt(self, receipt_no: str) -> TxRow | None:
        """The closed transaction a receipt number names (looked up in the journal)."""
        record = self.journal.by_receipt(receipt_no)
        return None if record is None else self.store.get(str(record["tx_id"]))

    def reprint(self, receipt_no: str) -> tuple[bool, str | None]:
        row = self.closed_by_receipt(receipt_no)
        if row is None:
            raise KioskError(f"there is no receipt number {receipt_no}: check the number")
        with write_transaction(self._conn):
            copy_no = self.store.next_counter(f"copy:{receipt_no}")
        return self.print_receipt(row.tx_id, copy_no=copy_no)

    # ------------------------------------------------------------------ recovery

    def recover(self) -> list[Outcome]:
        """Resolve every transaction not closed, after a restart or a lost connection.

        Cash the acceptor still holds is journaled first, so it lands in the transaction
        that was collecting; then each open transaction is finished or reversed by state.
        """
        self.drain_cash()
        outcomes: list[Outcome] = []
        for row in self.store.open_transactions():
            state = row.tx_state
            if state in (TxState.NEW, TxState.COLLECTING):
                try:
                    self.cash.set_accepting(False)
                except DeviceError as exc:
                    log.warning("cannot close the inlets: %s", exc)
                self.drain_cash()
                row = self._to_voiding(self.store.get(row.tx_id), "interrupted by a restart")
                outcomes.append(self._close(row, "cancelled", reason="interrupted by a restart"))
            elif state in (TxState.POSTING, TxState.POSTED, TxState.VOIDING):
                outcomes.append(self._advance(row))
        self.release_holds()
        try:
            self.card_inserted()
        except CardError as exc:
            log.info("pending card credits wait for their card: %s", exc)
        return outcomes
