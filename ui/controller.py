"""The resident's journey as the screens see it: which screen, what it shows, what a tap does.

Owns the UI's short-lived journey state (the service chosen, the digits typed, the quote and
progress the core returned) and the idle timeout that wipes it. Every rule and amount comes
from kiosk: validation from the catalog, fees and totals from the core, availability from
kiosk.availability. It never imports Kivy: screens call it and re-render from its fields,
and it tells them to change screen through `show`. Runs on the Kivy main thread; blocking
core calls go to the CoreWorker (the runtime's thread). It polls nothing: the core's events
(cash counted, card inserted or removed, device and service state; kiosk.runtime) arrive
on the main thread through `post` and move the screens on.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kiosk import speech
from kiosk.availability import (
    ServiceAvailability,
    Status,
    service_availability,
    snapshot_of,
    terminal_status,
)
from kiosk.catalog import AccountInvalid, Service
from kiosk.devices import (
    BoardStatus,
    CardError,
    PrepaidCard,
    TechnicianCardBlocked,
    TechnicianPinWrong,
)
from kiosk.errors import KioskError
from kiosk.events import Event
from kiosk.i18n import translator
from kiosk.money import FEN_PER_YUAN, MoneyError, format_fen
from kiosk.platform import PlatformUnavailable
from kiosk.ratings import RatingStore
from kiosk.runtime import RuntimeEvent
from kiosk.service_faults import with_faults
from kiosk.terminal import BillQuote, Terminal
from kiosk.transactions.engine import Outcome, Progress
from ui.notices import Notice, notice_for
from ui.settings import UiSettings
from ui.voice import Voice
from ui.worker import CoreWorker, Submit

log = logging.getLogger(__name__)

# Core events after which what the screens show about availability is read again.
STATUS_EVENTS = frozenset(
    {
        RuntimeEvent.DEVICE_STATE,
        RuntimeEvent.SERVICE_STATE,
        RuntimeEvent.STARTED,
        "tamper",
        "tamper_cleared",
        "maintenance_entered",
        "maintenance_left",
        "signer_outage",
        "signer_recovered",
        "low_float",
        "paper_out",
        "paper_near_end",
    }
)
CARD_EVENTS = frozenset({RuntimeEvent.CARD_INSERTED, RuntimeEvent.CARD_REMOVED})

# Screens where nothing personal is shown and no timeout runs.
RESTING = ("idle", "out_of_service", "busy", "maintenance_login", "maintenance")
MAX_DIGITS = 20


@dataclass
class Journey:
    """Everything personal on screen; replaced by a fresh one on timeout or completion."""

    service: Service | None = None
    digits: str = ""
    error: str = ""
    quote: BillQuote | None = None
    amount_fen: int | None = None
    card: PrepaidCard | None = None
    progress: Progress | None = None
    outcome: Outcome | None = None
    pending_card_tx: str | None = None
    rating_done: bool = False


class KioskController:
    def __init__(
        self,
        terminal: Terminal,
        settings: UiSettings,
        *,
        post: Callable[[Callable[[], None]], None],
        submit: Submit,
        voice: Voice | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.terminal = terminal
        self.settings = settings
        self._post = post
        self.worker = CoreWorker(post, submit)
        self.voice = voice or Voice(settings.voice)
        # On the terminal's thread, like every use of its database connection.
        self.ratings = self.worker.run(lambda: RatingStore(terminal.conn))
        self._monotonic = monotonic
        self.lang = settings.language
        self.t = translator(self.lang)
        self.large_text = settings.large_text
        self.high_contrast = settings.high_contrast
        self.screen = "idle"
        self.journey = Journey()
        self.notice: Notice | None = None
        self.busy_message = ""
        self.availability: dict[str, ServiceAvailability] = {}
        self.status: Status = "in_service"
        self.tamper_latched = False
        self.platform_ok: bool | None = None
        self.last_touch = monotonic()
        self.technician: str | None = None
        self.maintenance_message = ""
        self.listeners: list[Callable[[str], None]] = []  # told the screen to show
        self.redraw: list[Callable[[], None]] = []  # told to re-render the current screen
        self._polling = False
        self._closed = False
        terminal.events.subscribe(self._observe)

    # ------------------------------------------------------------------ plumbing

    def _observe(self, event: Event) -> None:
        """On the terminal's thread: hand the events the screens follow to the main thread."""
        if self._closed:
            return
        if event.kind == RuntimeEvent.CASH_COUNTED or event.kind in CARD_EVENTS:
            self._post(lambda: self.on_core_event(event))
        elif event.kind in STATUS_EVENTS:
            self._post(lambda: self.on_core_event(event))

    def on_core_event(self, event: Event) -> None:
        """On the main thread: cash counted, a card in or out, device or service state."""
        if self._closed:
            return
        if event.kind == RuntimeEvent.CASH_COUNTED:
            self.poll_cash()
        elif event.kind == RuntimeEvent.CARD_INSERTED:
            self.poll_card()
            self.poll_reinserted_card()
        elif event.kind in STATUS_EVENTS:
            self.refresh_status()

    def show(self, screen: str) -> None:
        if screen != self.screen:
            log.info("screen %s", screen)
        self.screen = screen
        for listener in list(self.listeners):
            listener(screen)

    def refresh(self) -> None:
        for callback in list(self.redraw):
            callback()

    def touched(self) -> None:
        self.last_touch = self._monotonic()

    def money(self, fen: int) -> str:
        return format_fen(fen)

    def service_name(self, service: Service | None = None) -> str:
        service = service or self.journey.service
        return self.t(service.name) if service else ""

    def _run(
        self,
        call: Callable[[], Any],
        done: Callable[[Any], None],
        busy: str | None = None,
        failed: Callable[[Exception], None] | None = None,
    ) -> None:
        if busy is not None:
            self.busy_message = busy
            self.show("busy")
        self.worker.submit(call, done, failed or self.fail)

    def fail(self, error: Exception) -> None:
        if isinstance(error, PlatformUnavailable):
            self.platform_ok = False
        log.info("notice for %s: %s", type(error).__name__, error)
        self.notice = notice_for(error, self.t, self.settings.help_phone)
        self.show("notice")

    # ------------------------------------------------------------------ language and modes

    def set_language(self, lang: str) -> None:
        self.lang = lang
        self.t = translator(lang)
        self.journey.error = ""  # an inline error is rebuilt in the new language on next check
        self.refresh()

    def toggle_language(self) -> None:
        self.set_language("en" if self.lang == "zh_CN" else "zh_CN")

    def toggle_large_text(self) -> None:
        self.large_text = not self.large_text
        self.refresh()

    def toggle_high_contrast(self) -> None:
        self.high_contrast = not self.high_contrast
        self.refresh()

    # ------------------------------------------------------------------ status

    def refresh_status(self) -> None:
        """Re-read device health and float off the main thread; idle screens follow."""
        terminal = self.terminal

        def read() -> tuple[dict[str, ServiceAvailability], Status, bool]:
            snapshot = snapshot_of(terminal, self.platform_ok)
            # Faults the runtime found (token, platform, recovery) stop payments too.
            services = with_faults(
                service_availability(terminal.catalog(), snapshot), terminal.faults
            )
            return services, terminal_status(services), snapshot.tamper_latched

        def done(result: tuple[dict[str, ServiceAvailability], Status, bool]) -> None:
            if result[1] == "out_of_service" and result[0] != self.availability:
                reasons = sorted({r for a in result[0].values() for r in a.reasons})
                log.info("out of service: %s", "; ".join(reasons))
            self.availability, self.status, self.tamper_latched = result
            if self.screen == "idle" and self.status == "out_of_service":
                self.show("out_of_service")
            elif self.screen == "out_of_service" and self.status != "out_of_service":
                self.show("idle")
            elif self.screen in ("idle", "menu", "out_of_service"):
                self.refresh()

        self.worker.submit(read, done, lambda exc: log.warning("status not read: %s", exc))

    def services(self) -> list[Service]:
        return list(self.terminal.catalog().services.values())

    def available(self, code: str) -> ServiceAvailability:
        return self.availability.get(code) or ServiceAvailability(code, True)

    # ------------------------------------------------------------------ idle timeout

    def seconds_left(self) -> float | None:
        """Seconds until the timeout, or None where no timeout runs."""
        if self.screen in RESTING or self.screen == "cash" and self._finishing:
            return None
        return self.settings.idle_timeout_s - (self._monotonic() - self.last_touch)

    @property
    def countdown_visible(self) -> bool:
        left = self.seconds_left()
        return left is not None and left <= self.settings.countdown_s

    _finishing = False

    def tick(self) -> None:
        """Called about once a second from the main loop."""
        left = self.seconds_left()
        if left is not None and left <= 0:
            self.timed_out()

    def timed_out(self) -> None:
        progress = self.journey.progress
        if self.screen == "cash" and progress is not None:
            # Inserted money is never lost: cancelling turns it into a voucher.
            self.cancel_payment(then_idle=False)
            return
        self.go_idle()

    def keep_going(self) -> None:
        self.touched()
        self.refresh()

    def go_idle(self) -> None:
        if self.technician is not None:
            # The core is still in maintenance mode: only "Leave maintenance" leaves it, so
            # a cancel or a timeout on a page the technician opened goes back to that page.
            self.back_to_maintenance()
            return
        self.journey = Journey()
        self.notice = None
        self.voice.stop()
        self.show("out_of_service" if self.status == "out_of_service" else "idle")
        self.refresh_status()

    # ------------------------------------------------------------------ menu

    def open_menu(self) -> None:
        self.journey = Journey()
        self.show("menu")
        self.refresh_status()

    def choose(self, code: str) -> None:
        availability = self.available(code)
        if not availability.available:
            self.notice = Notice(
                self.t("This service is not available now"),
                "; ".join(self.t(r) for r in availability.reasons),
                self.t("Other services keep working: choose one from the menu."),
                self.t("For help, ask the station staff or call {phone}.").format(
                    phone=self.settings.help_phone
                ),
            )
            self.show("notice")
            return
        if code in ("reprint", "help"):
            self.journey = Journey()
            self.show(code)
            return
        service = self.terminal.catalog().service(code)
        self.journey = Journey(service=service)
        if service.kind == "card_topup":
            self.show("card_insert")
            self._poll_card()
        else:
            self.show("account")

    # ------------------------------------------------------------------ keypad entry

    def key(self, digit: str) -> None:
        if digit.isdigit() and len(self.journey.digits) < MAX_DIGITS:
            self.journey.digits += digit
        self.journey.error = ""
        self.refresh()

    def delete(self) -> None:
        self.journey.digits = self.journey.digits[:-1]
        self.journey.error = ""
        self.refresh()

    def clear_digits(self) -> None:
        self.journey.digits = ""
        self.journey.error = ""
        self.refresh()

    def submit_account(self) -> None:
        service = self.journey.service
        assert service is not None
        try:
            account = service.validate_account(self.journey.digits)
        except AccountInvalid as exc:
            self.journey.error = exc.translated(self.t, what=service.account_label(self.t))
            self.refresh()
            return
        if service.kind == "bill":
            code = service.code

            def quoted(quote: BillQuote) -> None:
                self.platform_ok = True
                self.journey.quote = quote
                self.show("confirm")

            self._run(
                lambda: self.terminal.quote_bill(code, account),
                quoted,
                busy=self.t("Looking up your bill..."),
            )
        else:
            self.journey.quote = None
            self.journey.error = ""
            self._account = account
            self.journey.digits = ""
            self.show("amount")

    _account = ""

    # ------------------------------------------------------------------ amounts

    def amount_bounds(self) -> tuple[int, int]:
        service = self.journey.service
        assert service is not None
        return service.min_fen, service.max_fen

    def choose_amount(self, amount_fen: int) -> None:
        service = self.journey.service
        assert service is not None
        try:
            service.check_amount(amount_fen)
        except MoneyError:
            low, high = self.amount_bounds()
            self.journey.error = self.t("Choose an amount from {low} to {high}").format(
                low=self.money(low), high=self.money(high)
            )
            self.refresh()
            return
        self.journey.amount_fen = amount_fen
        code = service.code
        if service.kind == "phone_topup":
            phone = self._account
            self._run(
                lambda: self.terminal.start_phone_topup(code, phone, amount_fen),
                self._collecting,
                busy=self.t("Preparing your payment..."),
            )
        else:
            self._run(
                lambda: self.terminal.start_card_topup(code, amount_fen),
                self._collecting,
                busy=self.t("Preparing your payment..."),
            )

    def submit_typed_amount(self) -> None:
        digits = self.journey.digits
        if not digits:
            self.journey.error = self.t("Type an amount in yuan first")
            self.refresh()
            return
        self.journey.digits = ""
        self.choose_amount(int(digits) * FEN_PER_YUAN)

    # ------------------------------------------------------------------ prepaid card

    def _poll_card(self) -> None:
        if self._polling:
            return
        self._polling = True
        self.worker.submit(self.terminal.read_card, self._card_read, self._card_not_read)

    def _card_read(self, card: PrepaidCard | None) -> None:
        self._polling = False
        if self.screen != "card_insert":
            return
        if card is None:
            return  # the screen's timer asks again
        service = self.journey.service
        assert service is not None
        if card.utility != service.utility:
            self.journey.error = self.t(
                "This card is for another utility: choose the matching top-up service"
            )
            self.refresh()
            return
        self.journey.card = card
        self.journey.error = ""
        self.show("amount")

    def _card_not_read(self, error: Exception) -> None:
        self._polling = False
        if self.screen != "card_insert":
            return
        if isinstance(error, CardError):
            self.journey.error = self.t("The card cannot be read: take it out and insert it again")
            self.refresh()
            return
        self.fail(error)

    def poll_card(self) -> None:
        """A card came into the slot: read it (on the card screen)."""
        if self.screen == "card_insert":
            self._poll_card()

    def masked_card(self) -> str:
        card = self.journey.card
        if card is None:
            return ""
        return card.card_no[:2] + "*" * (len(card.card_no) - 6) + card.card_no[-4:]

    # ------------------------------------------------------------------ paying

    def confirm_bill(self) -> None:
        quote = self.journey.quote
        assert quote is not None
        self._run(
            lambda: self.terminal.pay_bill(quote),
            self._collecting,
            busy=self.t("Preparing your payment..."),
        )

    def _collecting(self, progress: Progress) -> None:
        self.platform_ok = True
        self.journey.progress = progress
        self._finishing = False
        self.touched()
        self.show("cash")
        self.voice.say(
            speech.clause(speech.Phrase.PLEASE_INSERT, self.lang, amount=progress.total_due_fen),
            self.lang,
        )

    def poll_cash(self) -> None:
        """Cash was counted: take in what was inserted; finish when all is in."""
        progress = self.journey.progress
        if self.screen != "cash" or progress is None or self._finishing:
            return
        tx_id = progress.tx_id
        self.worker.submit(lambda: self.terminal.collect(tx_id), self._collected, self.fail)

    def _collected(self, progress: Progress) -> None:
        previous = self.journey.progress
        if self.screen != "cash" or previous is None or self._finishing:
            return
        self.journey.progress = progress
        if progress.cash_in_fen != previous.cash_in_fen:
            self.touched()  # inserting money is activity: the timeout starts again
            self.voice.say(
                speech.clause(
                    speech.Phrase.RECEIVED_STILL_DUE,
                    self.lang,
                    received=progress.cash_in_fen,
                    due=progress.still_due_fen,
                ),
                self.lang,
            )
            self.refresh()
        if progress.still_due_fen == 0:
            self._finish(progress.tx_id)

    def _finish(self, tx_id: str) -> None:
        self._finishing = True
        service = self.journey.service
        card = service is not None and service.kind == "card_topup"
        message = (
            self.t("Writing the credit to your card. Do not remove your card.")
            if card
            else self.t("Paying... please wait.")
        )
        self._run(lambda: self.terminal.finish(tx_id), self._finished, busy=message)

    def _finished(self, outcome: Outcome) -> None:
        self._finishing = False
        self.journey.outcome = outcome
        self.journey.progress = None
        self.touched()
        if outcome.outcome == "in_doubt":
            self.notice = Notice(
                self.t("Your payment is being confirmed"),
                self.t("The operator has not confirmed your payment yet."),
                self.t("Keep this screen's receipt number; the terminal finishes it by itself."),
                self.t("For help, ask the station staff or call {phone}.").format(
                    phone=self.settings.help_phone
                ),
            )
            self.show("notice")
            return
        if outcome.card_credit == "pending":
            self.journey.pending_card_tx = outcome.tx_id
            self.show("card_reinsert")
            return
        self._announce(outcome)
        self.show("result")

    def _announce(self, outcome: Outcome) -> None:
        record = outcome.record or {}
        paid = int(str(record.get("amount_fen", 0))) + int(str(record.get("fee_fen", 0)))
        said = speech.result_sentence(
            self.lang,
            received_fen=int(str(record.get("cash_in_fen", 0))),
            paid_fen=paid if outcome.outcome == "paid" else None,
            voucher_fen=outcome.voucher_fen,
            credited_fen=outcome.credited_fen,
        )
        self.voice.say(said, self.lang)

    def poll_reinserted_card(self) -> None:
        """A card came into the slot on the "insert the same card again" screen.

        Terminal.read_card() finishes the credit owed to the card in the slot before it
        reads it: the same card coming back with a higher purchase counter than before the
        payment is the proof the credit is on it.
        """
        tx_id = self.journey.pending_card_tx
        before = self.journey.card
        if self.screen != "card_reinsert" or tx_id is None:
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
            self.journey.outcome = Outcome(
                outcome.tx_id,
                outcome.outcome,
                outcome.receipt_no,
                outcome.record,
                voucher_fen=outcome.voucher_fen,
                credited_fen=outcome.credited_fen,
                card_credit="written",
                printed=outcome.printed,
                print_problem=outcome.print_problem,
            )
            self.journey.pending_card_tx = None
            self._announce(self.journey.outcome)
            self.show("result")

        def not_yet(error: Exception) -> None:
            log.info("card not finished yet: %s", error)

        self.worker.submit(self.terminal.read_card, done, not_yet)

    # ------------------------------------------------------------------ cancel

    @property
    def cash_inserted_fen(self) -> int:
        progress = self.journey.progress
        return progress.cash_in_fen if progress else 0

    def cancel_payment(self, then_idle: bool = False) -> None:
        progress = self.journey.progress
        if progress is None:
            self.go_idle()
            return
        tx_id = progress.tx_id
        self._finishing = True

        def cancelled(outcome: Outcome) -> None:
            self._finishing = False
            self.journey.progress = None
            self.journey.outcome = outcome
            if outcome.voucher_fen:
                self._announce(outcome)
                self.show("result")
            else:
                self.go_idle()

        self._run(
            lambda: self.terminal.cancel(tx_id),
            cancelled,
            busy=self.t("Cancelling..."),
        )

    def cancel(self) -> None:
        """The footer's cancel button: before any money, back to the start."""
        if self.journey.progress is not None:
            self.cancel_payment()
        else:
            self.go_idle()

    # ------------------------------------------------------------------ receipts and rating

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

    def result_done(self) -> None:
        outcome = self.journey.outcome
        if outcome is not None and outcome.outcome == "paid":
            self.show("rating")
        else:
            self.go_idle()

    def rate(self, satisfied: bool, reason: str | None = None) -> None:
        if not satisfied and reason is None:
            self.show("rating_reason")
            return
        outcome = self.journey.outcome
        service = self.journey.service
        code = service.code if service else "help"
        when = datetime.now(self.terminal.clock.now().tzinfo)
        tx_id = outcome.tx_id if outcome else None

        def refused(exc: Exception) -> None:
            # RatingRefused (a rating of the same payment again) and the like: logged only.
            log.warning("rating not stored (%s): %s", type(exc).__name__, exc)

        self.worker.submit(  # on the terminal's thread, which owns the database connection
            lambda: self.ratings.record(
                service=code, satisfied=satisfied, reason=reason, when=when, tx_id=tx_id
            ),
            lambda _rating: None,
            refused,
        )
        self.journey.rating_done = True
        self.show("thanks")

    # ------------------------------------------------------------------ reprint

    def submit_reprint(self) -> None:
        digits = self.journey.digits
        receipt_no = f"{self.terminal.config.station.terminal_id}-{int(digits or '0'):06d}"

        def printed(result: tuple[bool, str | None]) -> None:
            ok, problem = result
            self.journey.digits = ""
            if not ok:
                self.fail(KioskError(problem or "the receipt could not be printed"))
            elif self.technician is not None:
                # A technician's reprint: back to the maintenance page, still in maintenance.
                self.maintenance_message = f"receipt {receipt_no} reprinted"
                self.show("maintenance")
            else:
                self.busy_message = ""
                self.show("reprinted")

        self._run(
            lambda: self.terminal.reprint(receipt_no),
            printed,
            busy=self.t("Printing your receipt..."),
        )

    # ------------------------------------------------------------------ maintenance

    def open_maintenance_login(self) -> None:
        self.journey = Journey()
        self.show("maintenance_login")

    def submit_pin(self) -> None:
        """Terminal.technician_login: the card in the reader verifies the PIN, the core
        journals a refusal, and a verified technician puts the terminal in maintenance."""
        pin = self.journey.digits
        self.journey.digits = ""

        def verified(technician: str) -> None:
            self.technician = technician
            self.maintenance_message = ""
            self.show("maintenance")

        def refused(error: Exception) -> None:
            if isinstance(error, TechnicianPinWrong):
                self.journey.error = self.t("Wrong PIN: {tries} tries left").format(
                    tries=error.tries_left
                )
            elif isinstance(error, TechnicianCardBlocked):
                self.journey.error = self.t("This technician card is blocked")
            elif isinstance(error, CardError):
                self.journey.error = self.t("Insert a technician card first")
            else:
                self.journey.error = str(error)
            self.show("maintenance_login")

        self._run(
            lambda: self.terminal.technician_login(pin),
            verified,
            busy=self.t("Checking the technician card..."),
            failed=refused,
        )

    def back_to_maintenance(self) -> None:
        """From a page the maintenance page opened (reprint): back to it."""
        self.journey = Journey()
        self.show("maintenance")

    def leave_maintenance(self) -> None:
        """Terminal.leave_maintenance (journaled, board told), then the idle screen."""

        def left(_: None) -> None:
            self.technician = None
            self.maintenance_message = ""
            self.go_idle()

        def failed(error: Exception) -> None:
            self.maintenance_message = str(error)
            self.show("maintenance")

        self._run(self.terminal.leave_maintenance, left, busy=self.t("Please wait"), failed=failed)

    def maintenance_action(self, action: str) -> None:
        """device_status | test_receipt | close_day | io_status | clear_tamper | leave."""
        terminal = self.terminal
        if action == "leave":
            self.leave_maintenance()
            return

        def done(message: str) -> None:
            self.maintenance_message = message
            self.show("maintenance")

        def failed(error: Exception) -> None:
            self.maintenance_message = str(error)
            self.show("maintenance")

        def clear_tamper() -> str:
            terminal.clear_tamper()
            self.tamper_latched = False
            return "tamper cleared; " + _io_status(terminal.board_status())

        calls: dict[str, Callable[[], str]] = {
            "device_status": lambda: _device_report(terminal),
            "test_receipt": lambda: _test_receipt(terminal),
            "close_day": lambda: _close_day(terminal),
            "io_status": lambda: _io_status(terminal.board_status()),
            "clear_tamper": clear_tamper,
        }
        self._run(calls[action], done, busy=self.t("Please wait"), failed=failed)

    def shutdown(self) -> None:
        self._closed = True
        self.voice.stop()
        self.worker.shutdown()


def _device_report(terminal: Terminal) -> str:
    """Every device's own health report, one line each, for the technician."""
    # Scalars only, without the device's name: the page has room for a few lines per device
    # (link counters and capability lists are in `kiosk-tool diagnose`).
    lines = [
        f"{name}: "
        + ", ".join(
            f"{key}={value}"
            for key, value in health.items()
            if key != "device" and not isinstance(value, dict | list | tuple)
        )
        for name, health in terminal.device_health().items()
    ]
    state = terminal.float_account.last_known()
    if state is not None:
        lines.append(f"float: {format_fen(state.available_fen)} available")
    lines.append(f"signing: {'ok' if terminal.journal.signing_available() else 'OUTAGE'}")
    lines.append(f"state: {terminal.service_state()}")
    return "\n".join(lines)


def _test_receipt(terminal: Terminal) -> str:
    terminal.print_test_receipt()
    return "test receipt printed"


def _close_day(terminal: Terminal) -> str:
    report = terminal.close_day()
    return (
        f"business day {report['business_day']} closed: {report['paid_count']} paid, "
        f"cash in box {format_fen(int(str(report['cash_expected_fen'])))}"
    )


def _io_status(status: BoardStatus | None) -> str:
    if status is None:
        return "no I/O board is configured"
    return (
        f"firmware {status.firmware_version}, link {'up' if status.link_up else 'DOWN'}, "
        f"door {'open' if status.door_open else 'closed'}, "
        f"tamper {'LATCHED' if status.tamper_latched else 'clear'}, "
        f"maintenance {'on' if status.maintenance else 'off'}, lamp {status.lamp}"
    )
