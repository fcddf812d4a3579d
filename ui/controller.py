"""The app's controller: which screen shows, the core's events, availability, the timeout.

Owns what every part of the app shares: the current screen (ui.screen_ids.ScreenId), the
one-time notice, the busy message, what the core says is available, the idle timeout that
wipes the journey, keypad entry, and the door to the core (CoreWorker: every blocking core
call runs on the runtime's thread). The resident's journeys (ui.resident), the technician's
maintenance mode (ui.maintenance_desk) and the display settings (ui.display) are parts it
holds. It never imports Kivy: screens call it and re-render from its fields, and it tells
them to change screen through `show`. It polls nothing: the core's events (cash counted,
unrecognised cash, a card in or out, device and service state; kiosk.runtime) arrive on the
main thread through `post`.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from kiosk.availability import (
    ServiceAvailability,
    Status,
    service_availability,
    snapshot_of,
    terminal_status,
)
from kiosk.catalog import Service
from kiosk.events import Event
from kiosk.i18n import Translate
from kiosk.money import format_fen
from kiosk.platform import OutcomeUnknown
from kiosk.runtime import RuntimeEvent
from kiosk.service_faults import with_faults
from kiosk.terminal import Terminal
from ui.display import DisplayModes
from ui.journey import Journey
from ui.maintenance_desk import MaintenanceDesk
from ui.notices import HELP, Notice, notice_for
from ui.operator_desk import OperatorConsole
from ui.qr_payment import QrPayments
from ui.resident import CASH_UNRECOGNISED, ResidentJourney
from ui.screen_ids import RESTING, ScreenId
from ui.settings import UiSettings
from ui.voice import Voice
from ui.worker import CoreWorker, Submit

log = logging.getLogger(__name__)
T = TypeVar("T")

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
FOLLOWED = STATUS_EVENTS | {
    RuntimeEvent.CASH_COUNTED,
    RuntimeEvent.CARD_INSERTED,
    RuntimeEvent.CARD_REMOVED,
    CASH_UNRECOGNISED,
    RuntimeEvent.PAYMENT_CODE_SCANNED,
    RuntimeEvent.PAYMENT_CODE_MISREAD,
    RuntimeEvent.VOUCHER_CODE_SCANNED,
    RuntimeEvent.VOUCHER_CODE_MISREAD,
}
MAX_DIGITS = 20
PAYMENT_STILL_OPEN = (
    "Your payment is still open: OK cancels it, and any cash inserted is printed as a voucher."
)


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
        self._monotonic = monotonic
        self.display = DisplayModes(settings, self._display_changed)
        self.screen = ScreenId.IDLE
        self.journey = Journey()
        self.notice: Notice | None = None
        self.busy_message = ""
        self.availability: dict[str, ServiceAvailability] = {}
        self.status: Status = "in_service"
        self.tamper_latched = False
        self.platform_ok: bool | None = None
        self.last_touch = monotonic()
        self.listeners: list[Callable[[ScreenId], None]] = []  # told the screen to show
        self.redraw: list[Callable[[], None]] = []  # told to re-render the current screen
        self._closed = False
        self.resident = ResidentJourney(self)
        self.maintenance = MaintenanceDesk(self)
        self.operator = OperatorConsole(self)
        self.qr = QrPayments(self)
        terminal.events.subscribe(self._observe)

    # ------------------------------------------------------------------ plumbing

    @property
    def t(self) -> Translate:
        return self.display.t

    @property
    def lang(self) -> str:
        return self.display.lang

    def _observe(self, event: Event) -> None:
        """On the terminal's thread: hand the events the screens follow to the main thread."""
        if not self._closed and event.kind in FOLLOWED:
            self._post(lambda: self.on_core_event(event))

    def on_core_event(self, event: Event) -> None:
        """On the main thread: cash counted, a card in or out, device or service state."""
        if self._closed:
            return
        if event.kind == RuntimeEvent.CASH_COUNTED:
            self.resident.cash_counted()
        elif event.kind == CASH_UNRECOGNISED:
            self.resident.cash_unrecognised(event.data.get("tx_id"))
        elif event.kind == RuntimeEvent.PAYMENT_CODE_SCANNED:
            self.qr.code_scanned(event.data.get("code"))
        elif event.kind == RuntimeEvent.PAYMENT_CODE_MISREAD:
            self.qr.code_misread()
        elif event.kind == RuntimeEvent.VOUCHER_CODE_SCANNED:
            self.operator.voucher_scanned(event.data.get("voucher_id"))
        elif event.kind == RuntimeEvent.VOUCHER_CODE_MISREAD:
            self.operator.voucher_misread()
        elif event.kind == RuntimeEvent.CARD_INSERTED:
            self.resident.card_inserted()
        elif event.kind == RuntimeEvent.CARD_REMOVED:
            self.operator.card_removed()
        elif event.kind in STATUS_EVENTS:
            self.refresh_status()

    def show(self, screen: ScreenId) -> None:
        if screen != self.screen:
            log.info("screen %s", screen)
        self.screen = screen
        for listener in list(self.listeners):
            listener(screen)

    def refresh(self) -> None:
        for callback in list(self.redraw):
            callback()

    def _display_changed(self) -> None:
        self.journey.error = ""  # an inline error is rebuilt in the new language on next check
        self.refresh()

    def touched(self) -> None:
        self.last_touch = self._monotonic()

    def monotonic(self) -> float:
        return self._monotonic()

    def money(self, fen: int) -> str:
        return format_fen(fen)

    def service_name(self, service: Service | None = None) -> str:
        service = service or self.journey.service
        return self.t(service.name) if service else ""

    def help_line(self) -> str:
        return self.t(HELP).format(phone=self.help_phone)

    @property
    def help_phone(self) -> str:
        """The operator's hotline from the configuration, else the app's default."""
        return self.terminal.config.station.hotline or self.settings.help_phone

    def run(
        self,
        call: Callable[[], T],
        done: Callable[[T], None],
        busy: str | None = None,
        failed: Callable[[Exception], None] | None = None,
    ) -> None:
        """call() on the terminal's thread; done(result) or failed(error) back on this one."""
        if busy is not None:
            self.busy_message = busy
            self.show(ScreenId.BUSY)
        self.worker.submit(call, done, failed or self.fail)

    def fail(self, error: Exception) -> None:
        """A core call failed: a one-time notice. While a payment collects, the notice keeps
        its transaction: its OK cancels the payment (the cash becomes a voucher)."""
        if isinstance(error, OutcomeUnknown):
            self.platform_ok = False
        log.info("notice for %s: %s", type(error).__name__, error)
        self.journey.finishing = False
        notice = notice_for(error, self.t, self.help_phone)
        if self.journey.progress is not None:
            # Not "nothing was charged": cash may be in. The payment stays open for the OK.
            notice = replace(notice, action=self.t(PAYMENT_STILL_OPEN))
        self.notice = notice
        self.show(ScreenId.NOTICE)

    def notice_ok(self) -> None:
        """The notice's OK: cancel a payment still collecting, else end the journey."""
        self.notice = None
        if self.journey.progress is not None:
            self.resident.cancel_payment()
        elif self.qr.open():
            self.qr.cancel()  # the order is closed, never left payable
        elif self.journey.service is not None:
            self.resident.journey_over()
        else:
            self.go_idle()

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

    # ------------------------------------------------------------------ status

    def refresh_status(self) -> None:
        """Re-read device health and float off the main thread; idle screens follow."""
        terminal = self.terminal
        platform_ok = self.platform_ok

        def read() -> tuple[dict[str, ServiceAvailability], Status, bool]:
            snapshot = snapshot_of(terminal, platform_ok)
            # Faults the runtime found (token, platform, recovery, clock) stop payments too.
            services = with_faults(
                service_availability(terminal.catalog(), snapshot), terminal.faults
            )
            return services, terminal_status(services), snapshot.tamper_latched

        def done(result: tuple[dict[str, ServiceAvailability], Status, bool]) -> None:
            if result[1] == "out_of_service" and result[0] != self.availability:
                reasons = sorted({r for a in result[0].values() for r in a.reasons})
                log.info("out of service: %s", "; ".join(reasons))
            self.availability, self.status, self.tamper_latched = result
            if self.screen == ScreenId.IDLE and self.status == "out_of_service":
                self.show(ScreenId.OUT_OF_SERVICE)
            elif self.screen == ScreenId.OUT_OF_SERVICE and self.status != "out_of_service":
                self.show(ScreenId.IDLE)
            elif self.screen in (ScreenId.IDLE, ScreenId.MENU, ScreenId.OUT_OF_SERVICE):
                self.refresh()

        self.worker.submit(read, done, lambda exc: log.warning("status not read: %s", exc))

    def services(self) -> list[Service]:
        return list(self.terminal.catalog().services.values())

    def available(self, code: str) -> ServiceAvailability:
        return self.availability.get(code) or ServiceAvailability(code, True)

    def out_of_service_reasons(self) -> list[str]:
        """Every reason a service is unavailable, translated, once each."""
        return sorted({self.t(r) for a in self.availability.values() for r in a.reasons})

    # ------------------------------------------------------------------ idle timeout

    def seconds_left(self) -> float | None:
        """Seconds until the timeout, or None where no timeout runs."""
        if self.screen in RESTING or (self.screen == ScreenId.CASH and self.journey.finishing):
            return None
        if self.screen == ScreenId.QR_PAY:
            return None  # the resident pays on the phone: the order's countdown runs instead
        # A logged-in operator's screens run the operator session's timeout instead.
        limit = self.operator.session_timeout_s() or self.settings.idle_timeout_s
        return limit - (self._monotonic() - self.last_touch)

    @property
    def countdown_visible(self) -> bool:
        left = self.seconds_left()
        return left is not None and left <= self.settings.countdown_s

    def tick(self) -> None:
        """Called a few times a second from the main loop."""
        self.qr.tick()
        left = self.seconds_left()
        if left is not None and left <= 0:
            self.timed_out()

    def timed_out(self) -> None:
        self.journey.timed_out = True
        if self.operator.actor is not None:
            self.operator.timed_out()  # the session ends (journaled), then the idle screen
            return
        if self.journey.progress is not None:
            # Inserted money is never lost: cancelling turns it into a voucher.
            self.resident.cancel_payment()
            return
        self.go_idle()

    def keep_going(self) -> None:
        self.touched()
        self.refresh()

    def go_idle(self) -> None:
        if self.maintenance.technician is not None:
            # The core is still in maintenance mode: only "Leave maintenance" leaves it, so
            # a cancel or a timeout on a page the technician opened goes back to that page.
            self.maintenance.back()
            return
        self.journey = Journey()
        self.notice = None
        self.voice.stop()
        self.show(ScreenId.OUT_OF_SERVICE if self.status == "out_of_service" else ScreenId.IDLE)
        self.refresh_status()

    def cancel(self) -> None:
        """The footer's cancel button: a payment is cancelled (voucher), else back to idle."""
        if self.journey.progress is not None:
            self.resident.cancel_payment()
        elif self.qr.waiting():
            self.qr.cancel()
        elif self.journey.service is not None and self.maintenance.technician is None:
            self.resident.journey_over()
        else:
            self.go_idle()

    def shutdown(self) -> None:
        self._closed = True
        self.voice.stop()
        self.worker.shutdown()
