"""The resident's journeys: choose, enter, confirm, pay in cash, result, rating, complaint.

Owns every step a resident takes and what it asks of the core: bill lookup, top-up quotes,
the prepaid card, cash collection and its unrecognised items, finishing and cancelling
(a payment in doubt ends on the interim slip's screen), reprints and claims by reprint
code, ratings and complaints (kiosk.ratings). Every rule and amount comes from kiosk/;
the journey's state lives in the controller's Journey. It never imports Kivy.
"""

import dataclasses
import logging
from typing import TYPE_CHECKING

from kiosk import speech
from kiosk.availability import within_service_hours
from kiosk.catalog import AccountInvalid
from kiosk.devices import CardError, PrepaidCard
from kiosk.errors import KioskError
from kiosk.money import FEN_PER_YUAN, MoneyError
from kiosk.ratings import PHONE_INVALID, callback_phone_problem
from kiosk.terminal import BillQuote, TopupQuote
from kiosk.transactions.kinds import CardCreditState, TxOutcome
from kiosk.transactions.outcomes import Outcome, Progress
from ui.journey import Journey
from ui.notices import Notice
from ui.screen_ids import ScreenId

if TYPE_CHECKING:
    from ui.controller import KioskController

log = logging.getLogger(__name__)

# The core's event: the acceptor kept something it could not recognise (kiosk/transactions/cash.py).
CASH_UNRECOGNISED = "cash_unrecognised"
REPRINT_CODE_DIGITS = 8
# Tiles of the menu that are not catalog services.
REPRINT, HELP, TARIFFS = "reprint", "help", "tariffs"


class ResidentJourney:
    def __init__(self, controller: "KioskController") -> None:
        self.c = controller
        terminal = controller.terminal
        # On the terminal's thread, like every use of its database connection.
        self.ratings = controller.worker.run(lambda: terminal.rating_store())
        self._reading_card = False

    @property
    def journey(self) -> Journey:
        return self.c.journey

    # ------------------------------------------------------------------ menu

    def open_menu(self) -> None:
        self.c.journey = Journey()
        self.c.show(ScreenId.MENU)
        self.c.refresh_status()

    def choose(self, code: str) -> None:
        c = self.c
        t = c.t
        if code == TARIFFS:
            c.journey = Journey()
            c.show(ScreenId.TARIFFS)
            return
        availability = c.available(code)
        if not availability.available:
            c.notice = Notice(
                t("This service is not available now"),
                "; ".join(t(r) for r in availability.reasons),
                t("Other services keep working: choose one from the menu."),
                c.help_line(),
            )
            c.show(ScreenId.NOTICE)
            return
        if code in (REPRINT, HELP):
            c.journey = Journey()
            c.show(ScreenId.REPRINT if code == REPRINT else ScreenId.HELP)
            return
        service = c.terminal.catalog().service(code)
        c.journey = Journey(service=service)
        if service.kind == "card_topup":
            c.show(ScreenId.CARD_INSERT)
            self._read_card()
        else:
            c.show(ScreenId.ACCOUNT)

    # ------------------------------------------------------------------ account and amount

    def submit_account(self) -> None:
        c = self.c
        journey = self.journey
        service = journey.service
        assert service is not None
        try:
            account = service.validate_account(journey.digits)
        except AccountInvalid as exc:
            journey.error = exc.translated(c.t, what=service.account_label(c.t))
            c.refresh()
            return
        if service.kind == "bill":
            code = service.code
            terminal = c.terminal

            def quoted(quote: BillQuote) -> None:
                c.platform_ok = True
                self.journey.quote = quote
                c.show(ScreenId.CONFIRM)

            c.run(
                lambda: terminal.quote_bill(code, account),
                quoted,
                busy=c.t("Looking up your bill..."),
            )
            return
        journey.account = account
        journey.error = ""
        journey.digits = ""
        journey.topup = None
        c.show(ScreenId.AMOUNT)

    def amount_bounds(self) -> tuple[int, int]:
        service = self.journey.service
        assert service is not None
        return service.min_fen, service.max_fen

    def choose_amount(self, amount_fen: int) -> None:
        """An amount chosen: its fee and total are quoted for the confirmation screen."""
        c = self.c
        service = self.journey.service
        assert service is not None
        try:
            service.check_amount(amount_fen)
        except MoneyError:
            low, high = self.amount_bounds()
            self.journey.error = c.t("Choose an amount from {low} to {high}").format(
                low=c.money(low), high=c.money(high)
            )
            c.refresh()
            return
        card = self.journey.card
        account = card.card_no if card is not None else self.journey.account
        code, terminal = service.code, c.terminal

        def quoted(quote: TopupQuote) -> None:
            self.journey.topup = quote
            self.journey.digits = ""
            c.show(ScreenId.TOPUP_CONFIRM)

        c.run(
            lambda: terminal.quote_topup(code, account, amount_fen),
            quoted,
            busy=c.t("Preparing your payment..."),
        )

    def submit_typed_amount(self) -> None:
        digits = self.journey.digits
        if not digits:
            self.journey.error = self.c.t("Type an amount in yuan first")
            self.c.refresh()
            return
        self.journey.digits = ""
        self.choose_amount(int(digits) * FEN_PER_YUAN)

    def change_number(self) -> None:
        """From the top-up confirmation: back to the keypad with the number as typed."""
        journey = self.journey
        journey.digits = journey.account
        journey.topup = None
        journey.error = ""
        self.c.show(ScreenId.ACCOUNT)

    def change_amount(self) -> None:
        self.journey.topup = None
        self.journey.error = ""
        self.c.show(ScreenId.AMOUNT)

    def formatted_phone(self, number: str) -> str:
        """A mobile number in the 3-4-4 groups residents read it in (138 0013 8000)."""
        if len(number) == 11:
            return f"{number[:3]} {number[3:7]} {number[7:]}"
        return number

    # ------------------------------------------------------------------ prepaid card

    def _read_card(self) -> None:
        if self._reading_card:
            return
        self._reading_card = True
        self.c.worker.submit(self.c.terminal.read_card, self._card_read, self._card_not_read)

    def _card_read(self, card: PrepaidCard | None) -> None:
        self._reading_card = False
        c = self.c
        if c.screen != ScreenId.CARD_INSERT or card is None:
            return  # the next card_inserted event reads again
        service = self.journey.service
        assert service is not None
        if card.utility != service.utility:
            self.journey.error = c.t(
                "This card is for another utility: choose the matching top-up service"
            )
            c.refresh()
            return
        self.journey.card = card
        self.journey.error = ""
        c.show(ScreenId.AMOUNT)

    def _card_not_read(self, error: Exception) -> None:
        self._reading_card = False
        c = self.c
        if c.screen != ScreenId.CARD_INSERT:
            return
        if isinstance(error, CardError):
            self.journey.error = c.t("The card cannot be read: take it out and insert it again")
            c.refresh()
            return
        c.fail(error)

    def card_inserted(self) -> None:
        """A card came into the slot: read it, or finish the credit owed to it."""
        if self.c.screen == ScreenId.CARD_INSERT:
            self._read_card()
        elif self.c.screen == ScreenId.CARD_REINSERT:
            self._reinserted_card()

    def masked_card(self) -> str:
        card = self.journey.card
        if card is None:
            return ""
        return card.card_no[:2] + "*" * (len(card.card_no) - 6) + card.card_no[-4:]

    # ------------------------------------------------------------------ paying

    def confirm_bill(self) -> None:
        quote = self.journey.quote
        assert quote is not None
        terminal = self.c.terminal
        self.c.run(
            lambda: terminal.pay_bill(quote),
            self._collecting,
            busy=self.c.t("Preparing your payment..."),
        )

    def confirm_topup(self) -> None:
        c = self.c
        quote = self.journey.topup
        assert quote is not None
        terminal = c.terminal
        code, account, amount = quote.service.code, quote.account, quote.amount_fen
        phone = quote.service.kind == "phone_topup"

        def start() -> Progress:
            if phone:
                return terminal.start_phone_topup(code, account, amount)
            return terminal.start_card_topup(code, amount)

        c.run(start, self._collecting, busy=c.t("Preparing your payment..."))

    def _collecting(self, progress: Progress) -> None:
        c = self.c
        c.platform_ok = True
        self.journey.progress = progress
        self.journey.finishing = False
        c.touched()
        c.show(ScreenId.CASH)
        c.voice.say(
            speech.clause(speech.Phrase.PLEASE_INSERT, c.lang, amount=progress.total_due_fen),
            c.lang,
        )

    def staffed_now(self) -> bool:
        """Whether the station's staff are there (service hours), who pay vouchers out."""
        terminal = self.c.terminal
        return within_service_hours(terminal.config.station.service_hours, terminal.clock.now())

    def cash_counted(self) -> None:
        """Cash was counted: take in what was inserted; finish when all is in."""
        progress = self.journey.progress
        if self.c.screen != ScreenId.CASH or progress is None or self.journey.finishing:
            return
        tx_id, terminal = progress.tx_id, self.c.terminal
        self.c.worker.submit(lambda: terminal.collect_cash(tx_id), self._collected, self.c.fail)

    def cash_unrecognised(self, tx_id: object) -> None:
        """Something the acceptor kept but could not recognise: the cash screen says so."""
        progress = self.journey.progress
        if progress is not None and progress.tx_id == tx_id:
            self.cash_counted()

    def _collected(self, progress: Progress) -> None:
        c = self.c
        previous = self.journey.progress
        if c.screen != ScreenId.CASH or previous is None or self.journey.finishing:
            return
        self.journey.progress = progress
        if progress.cash_in_fen != previous.cash_in_fen:
            c.touched()  # inserting money is activity: the timeout starts again
            c.voice.say(
                speech.clause(
                    speech.Phrase.RECEIVED_STILL_DUE,
                    c.lang,
                    received=progress.cash_in_fen,
                    due=progress.still_due_fen,
                ),
                c.lang,
            )
        if progress.suspense:
            # The resident is told about the unrecognised item first, then chooses.
            c.touched()
            c.show(ScreenId.CASH)
            return
        c.refresh()
        if progress.still_due_fen == 0:
            self.finish()

    def finish(self) -> None:
        progress = self.journey.progress
        assert progress is not None
        tx_id, terminal = progress.tx_id, self.c.terminal
        self.journey.finishing = True
        service = self.journey.service
        card = service is not None and service.kind == "card_topup"
        message = (
            self.c.t("Writing the credit to your card. Do not remove your card.")
            if card
            else self.c.t("Paying... please wait.")
        )

        def finish() -> tuple[Outcome, bool]:
            outcome = terminal.finish(tx_id)
            return outcome, not terminal.clock_guard.check().ok

        self.c.run(finish, self._finished, busy=message)

    def _finished(self, result: tuple[Outcome, bool]) -> None:
        outcome, clock_wrong = result
        c = self.c
        self.journey.finishing = False
        self.journey.outcome = outcome
        self.journey.progress = None
        c.touched()
        if outcome.outcome == TxOutcome.IN_DOUBT:
            self.journey.clock_wrong = clock_wrong
            c.show(ScreenId.IN_DOUBT)
            return
        if outcome.card_credit == CardCreditState.PENDING:
            self.journey.pending_card_tx = outcome.tx_id
            c.show(ScreenId.CARD_REINSERT)
            return
        self._announce(outcome)
        c.show(ScreenId.RESULT)

    def _announce(self, outcome: Outcome) -> None:
        record = outcome.record or {}
        paid = int(str(record.get("amount_fen", 0))) + int(str(record.get("fee_fen", 0)))
        said = speech.result_sentence(
            self.c.lang,
            received_fen=int(str(record.get("cash_in_fen", 0))),
            paid_fen=paid if outcome.outcome == TxOutcome.PAID else None,
            voucher_fen=outcome.voucher_fen,
            credited_fen=outcome.credited_fen,
        )
        self.c.voice.say(said, self.c.lang)

    def _reinserted_card(self) -> None:
        """A card came into the slot on the "insert the same card again" screen.

        Terminal.read_card() finishes the credit owed to the card in the slot before it
        reads it: the same card coming back with a higher purchase counter than before the
        payment is the proof the credit is on it.
        """
        tx_id = self.journey.pending_card_tx
        before = self.journey.card
        if tx_id is None:
            return

        def done(card: PrepaidCard | None) -> None:
            outcome = self.journey.outcome
            if (
                card is None
                or outcome is None
                or self.journey.pending_card_tx != tx_id
                or (before is not None and card.card_no != before.card_no)
                or (before is not None and card.purchase_counter <= before.purchase_counter)
            ):
                return
            written = dataclasses.replace(outcome, card_credit=CardCreditState.WRITTEN)
            self.journey.outcome = written
            self.journey.pending_card_tx = None
            if self.journey.qr is not None:  # paid by phone: its own result screen
                self.c.show(ScreenId.QR_RESULT)
                return
            self._announce(written)
            self.c.show(ScreenId.RESULT)

        def not_yet(error: Exception) -> None:
            log.info("card not finished yet: %s", error)

        self.c.worker.submit(self.c.terminal.read_card, done, not_yet)

    # ------------------------------------------------------------------ cancel

    @property
    def cash_inserted_fen(self) -> int:
        progress = self.journey.progress
        return progress.cash_in_fen if progress else 0

    def cancel_payment(self) -> None:
        """Cancel the payment collecting cash: all cash inserted becomes a voucher."""
        c = self.c
        progress = self.journey.progress
        if progress is None:
            c.go_idle()
            return
        tx_id, terminal = progress.tx_id, c.terminal
        self.journey.finishing = True

        def cancel() -> tuple[Outcome, bool]:
            outcome = terminal.cancel(tx_id)
            return outcome, not terminal.clock_guard.check().ok

        def cancelled(result: tuple[Outcome, bool]) -> None:
            outcome, clock_wrong = result
            self.journey.finishing = False
            self.journey.progress = None
            self.journey.outcome = outcome
            if outcome.outcome == TxOutcome.IN_DOUBT:
                # Only a wrong clock keeps a cancel from closing: the interim slip's screen.
                self.journey.clock_wrong = clock_wrong
                c.show(ScreenId.IN_DOUBT)
            elif outcome.voucher_fen:
                self._announce(outcome)
                c.show(ScreenId.RESULT)
            else:
                self.journey_over()

        c.run(cancel, cancelled, busy=c.t("Cancelling..."))

    # ------------------------------------------------------------------ receipts

    def receipt_qr(self) -> str | None:
        outcome = self.journey.outcome
        if outcome is None or outcome.record is None:
            return None
        from kiosk.receipts.qr import qr_payload

        try:
            return qr_payload(outcome.record)
        except KioskError as exc:
            log.warning("receipt code not shown: %s", exc)
            return None

    def submit_reprint(self) -> None:
        """A resident types the 8-digit reprint code printed on their receipt or slip
        (never a receipt number, which anybody could guess): a receipt never printed is
        printed whole (a result settled while they were away), else a marked copy."""
        c = self.c
        code = self.journey.digits
        if len(code) != REPRINT_CODE_DIGITS:
            self.journey.error = c.t("The reprint code has 8 digits: check it on your paper")
            c.refresh()
            return
        terminal = c.terminal

        def printed(result: tuple[bool, str | None]) -> None:
            ok, problem = result
            self.journey.digits = ""
            if not ok:
                c.fail(KioskError(problem or "the receipt could not be printed"))
                return
            c.show(ScreenId.REPRINTED)

        c.run(lambda: terminal.reprint(code), printed, busy=c.t("Printing your receipt..."))

    # ------------------------------------------------------------------ the end of a journey

    def result_done(self) -> None:
        self.journey_over()

    def journey_over(self) -> None:
        """A journey ended (paid, failed, cancelled or refused): offer a rating (好差评)."""
        if self.journey.service is None or self.journey.rated or self.journey.timed_out:
            self.c.go_idle()
            return
        self.journey.digits = ""
        self.journey.error = ""
        self.c.show(ScreenId.RATING)

    def rate(self, satisfied: bool) -> None:
        if not satisfied:
            self.journey.complaint_only = False
            self.c.show(ScreenId.RATING_REASON)
            return
        self._record_rating(True, None)
        self.c.show(ScreenId.THANKS)

    def start_complaint(self) -> None:
        """A complaint from the help screen, about no particular payment."""
        self.c.journey = Journey(complaint_only=True)
        self.c.show(ScreenId.RATING_REASON)

    def choose_reason(self, reason: str) -> None:
        """A dissatisfied rating's reason; then a complaint may follow, with a call-back."""
        if not self.journey.complaint_only:
            self._record_rating(False, reason)
        self.journey.complaint_reason = reason
        self.journey.digits = ""
        self.c.show(ScreenId.COMPLAINT)

    def _service_code(self) -> str:
        service = self.journey.service
        return service.code if service is not None else HELP

    def _record_rating(self, satisfied: bool, reason: str | None) -> None:
        service, tx_id = self._service_code(), self.journey.tx_id
        self.journey.rated = True

        def refused(exc: Exception) -> None:
            # RatingRefused (a rating of the same payment again) and the like: logged only.
            log.warning("rating not stored (%s): %s", type(exc).__name__, exc)

        self.c.worker.submit(  # on the terminal's thread, which owns the database connection
            lambda: self.ratings.record(
                service=service, satisfied=satisfied, reason=reason, tx_id=tx_id
            ),
            lambda _rating: None,
            refused,
        )

    def send_complaint(self) -> None:
        """The complaint with the call-back number typed (optional), journaled signed."""
        c = self.c
        phone = self.journey.digits or None
        if phone is not None and callback_phone_problem(phone):
            self.journey.error = c.t(PHONE_INVALID)
            c.refresh()
            return
        reason = self.journey.complaint_reason
        assert reason is not None
        service, tx_id = self._service_code(), self.journey.tx_id

        def sent(_complaint: object) -> None:
            self.journey.complaint_phone = phone or ""
            self.journey.digits = ""
            c.show(ScreenId.THANKS)

        c.run(
            lambda: self.ratings.complain(
                service=service, reasons=[reason], callback_phone=phone, tx_id=tx_id
            ),
            sent,
            busy=c.t("Please wait"),
        )

    def no_complaint(self) -> None:
        self.journey.digits = ""
        if self.journey.rated:
            self.c.show(ScreenId.THANKS)
        else:
            self.c.go_idle()
