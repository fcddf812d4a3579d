"""The technician's maintenance mode on the touchscreen: card and PIN, the pages' actions.

Owns the technician's session on screen (who is logged in, the last message) and turning
each action into core calls: technician_login (the core verifies the card's PIN, journals a
refusal, enters maintenance), device status, test receipt, day close, I/O board status,
tamper clear, reprint by receipt number, leave. Its texts are message ids translated in
kiosk/locale/*/LC_MESSAGES/maintenance.po (English first for field staff, Chinese too).
It never imports Kivy.
"""

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING

from kiosk.devices import BoardStatus, CardError, TechnicianCardBlocked, TechnicianPinWrong
from kiosk.i18n import Translate
from kiosk.money import format_fen
from kiosk.terminal import Terminal
from ui.journey import Journey
from ui.screen_ids import ScreenId

if TYPE_CHECKING:
    from ui.controller import KioskController


class Action(StrEnum):
    """What the maintenance page's buttons do (their action ids are maint-<value>)."""

    DEVICE_STATUS = "device_status"
    TEST_RECEIPT = "test_receipt"
    CLOSE_DAY = "close_day"
    IO_STATUS = "io_status"
    CLEAR_TAMPER = "clear_tamper"
    REPRINT = "reprint"


# The buttons' labels, in the page's order.
LABELS: dict[Action, str] = {
    Action.DEVICE_STATUS: "Device status",
    Action.TEST_RECEIPT: "Print a test receipt",
    Action.CLOSE_DAY: "Close the business day",
    Action.IO_STATUS: "I/O board status",
    Action.CLEAR_TAMPER: "Clear the tamper alarm",
    Action.REPRINT: "Reprint a receipt",
}


class MaintenanceDesk:
    def __init__(self, controller: "KioskController") -> None:
        self.c = controller
        self.technician: str | None = None
        self.message = ""

    def open_login(self) -> None:
        self.c.journey = Journey()
        self.c.show(ScreenId.MAINTENANCE_LOGIN)

    def submit_pin(self) -> None:
        """Terminal.technician_login: the card in the reader verifies the PIN, the core
        journals a refusal, and a verified technician puts the terminal in maintenance."""
        c = self.c
        t = c.t
        pin = c.journey.digits
        c.journey.digits = ""
        terminal = c.terminal

        def verified(technician: str) -> None:
            self.technician = technician
            self.message = ""
            c.show(ScreenId.MAINTENANCE)

        def refused(error: Exception) -> None:
            if isinstance(error, TechnicianPinWrong):
                c.journey.error = t("Wrong PIN: {tries} tries left").format(tries=error.tries_left)
            elif isinstance(error, TechnicianCardBlocked):
                c.journey.error = t("This technician card is blocked")
            elif isinstance(error, CardError):
                c.journey.error = t("Insert a technician card first")
            else:
                c.journey.error = t(str(error))
            c.show(ScreenId.MAINTENANCE_LOGIN)

        c.run(
            lambda: terminal.technician_login(pin),
            verified,
            busy=t("Checking the technician card..."),
            failed=refused,
        )

    def back(self) -> None:
        """From a page the maintenance page opened (reprint): back to it."""
        self.c.journey = Journey()
        self.c.show(ScreenId.MAINTENANCE)

    def leave(self) -> None:
        """Terminal.leave_maintenance (journaled, board told), then the idle screen."""
        c = self.c

        def left(_: None) -> None:
            self.technician = None
            self.message = ""
            c.go_idle()

        c.run(c.terminal.leave_maintenance, left, busy=c.t("Please wait"), failed=self._failed)

    def _failed(self, error: Exception) -> None:
        self.message = self.c.t(str(error))
        self.c.show(ScreenId.MAINTENANCE)

    def act(self, action: Action) -> None:
        c = self.c
        if action is Action.REPRINT:
            c.journey = Journey()
            c.show(ScreenId.REPRINT)
            return
        terminal, t = c.terminal, c.t

        def done(message: str) -> None:
            self.message = message
            c.show(ScreenId.MAINTENANCE)

        def clear_tamper() -> str:
            terminal.clear_tamper()
            return t("tamper cleared; {status}").format(
                status=io_status(t, terminal.board_status())
            )

        def cleared(message: str) -> None:
            c.tamper_latched = False
            done(message)

        calls: dict[Action, Callable[[], str]] = {
            Action.DEVICE_STATUS: lambda: device_report(t, terminal),
            Action.TEST_RECEIPT: lambda: print_test_receipt(t, terminal),
            Action.CLOSE_DAY: lambda: close_day(t, terminal),
            Action.IO_STATUS: lambda: io_status(t, terminal.board_status()),
            Action.CLEAR_TAMPER: clear_tamper,
        }
        finished = cleared if action is Action.CLEAR_TAMPER else done
        c.run(calls[action], finished, busy=t("Please wait"), failed=self._failed)

    def reprint(self) -> None:
        """Reprint by receipt number: the digits after the dash on the receipt."""
        c = self.c
        technician = self.technician
        assert technician is not None
        digits = c.journey.digits
        if not digits:
            c.journey.error = c.t("Type the number after the dash on the receipt")
            c.refresh()
            return
        receipt_no = f"{c.terminal.config.station.terminal_id}-{int(digits):06d}"
        terminal = c.terminal

        def printed(result: tuple[bool, str | None]) -> None:
            ok, problem = result
            c.journey.digits = ""
            if ok:
                self.message = c.t("receipt {number} reprinted").format(number=receipt_no)
            else:
                self.message = c.t(problem or "the receipt could not be printed")
            c.show(ScreenId.MAINTENANCE)

        c.run(
            lambda: terminal.reprint_by_number(receipt_no, by=technician),
            printed,
            busy=c.t("Printing your receipt..."),
            failed=self._failed,
        )


def device_report(t: Translate, terminal: Terminal) -> str:
    """Every device's own health report, one line each, for the technician."""
    # Scalars only, without the device's name: the page has room for a few lines per device
    # (link counters and capability lists are in `kiosk-tool diagnose`). Keys and values
    # are the devices' own words, as kiosk-tool diagnose shows them.
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
        lines.append(t("float: {amount} available").format(amount=format_fen(state.available_fen)))
    signing = terminal.journal.signing_available()
    lines.append(t("signing: ok") if signing else t("signing: OUTAGE"))
    lines.append(t("state: {state}").format(state=terminal.service_state()))
    return "\n".join(lines)


def print_test_receipt(t: Translate, terminal: Terminal) -> str:
    terminal.print_test_receipt()
    return t("test receipt printed")


def close_day(t: Translate, terminal: Terminal) -> str:
    report = terminal.close_day()
    return t("business day {day} closed: {paid} paid, cash in box {cash}").format(
        day=report["business_day"],
        paid=report["paid_count"],
        cash=format_fen(int(str(report["cash_expected_fen"]))),
    )


def io_status(t: Translate, status: BoardStatus | None) -> str:
    if status is None:
        return t("no I/O board is configured")
    return t(
        "firmware {firmware}, link {link}, door {door}, tamper {tamper}, "
        "maintenance {maintenance}, lamp {lamp}"
    ).format(
        firmware=status.firmware_version,
        link=t("up") if status.link_up else t("DOWN"),
        door=t("open") if status.door_open else t("closed"),
        tamper=t("LATCHED") if status.tamper_latched else t("clear"),
        maintenance=t("on") if status.maintenance else t("off"),
        lamp=status.lamp,
    )
