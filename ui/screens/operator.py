"""The station operator's screens: operator card plus PIN, home, and one screen per action.

Record a deposit (amount in yuan and the slip's number), the float and deposits (续费查询),
close the day (轧帐单), collect the cash box (清机, counted by denomination), pay out a
voucher (its code typed or scanned; shown before it is paid) and reprint a resident's receipt. Every
screen shows the desk's refusal as one line (ui.operator_desk). Like the technician's pages
they keep normal size in large-text mode (the count and the keyboard need the room; the
operator is staff); high contrast follows the switch.
"""

import functools
from collections.abc import Hashable, Sequence
from dataclasses import replace

from kivy.uix.gridlayout import GridLayout
from kivy.uix.widget import Widget

from kiosk.ledger.cash_box import Denomination
from kiosk.money import format_fen
from ui.operator_desk import (
    DASH,
    LABELS,
    POINT,
    SCAN_VOUCHER,
    STATE_TEXT,
    TYPE_RECEIPT,
    Entry,
)
from ui.screen_ids import ScreenId
from ui.screens.base import KioskScreen
from ui.screens.pin_entry import pin_entry
from ui.widgets import KioskButton, Look, button, column, row, spacer, text

# The keys of the operator's keyboard for codes (slip numbers, vouchers): digits, letters,
# the dash; three rows of 13 with delete and clear.
CODE_KEYS = "1234567890" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + DASH
NUMBER_KEYS = "1234567890"
KEY_NAMES = {POINT: "point", DASH: "dash"}


class OperatorScreen(KioskScreen):
    """An operator's page: normal size in large-text mode, a Back button to the home page."""

    cancellable = False

    def look(self) -> Look:
        return replace(super().look(), scale=1.0)

    def back_button(self, look: Look) -> KioskButton:
        c = self.controller
        return button(look, "back", c.t("Back"), c.operator.home, kind="muted")

    def error_line(self, look: Look) -> Widget:
        c = self.controller
        return self.live(
            text(look, "", font=25, colour=look.palette.error), lambda: c.operator.error
        )

    def field(self, look: Look, entry: Entry, label: str, shown: str = "") -> Widget:
        """A typed field: its label and value on one button that makes it the active one."""
        c = self.controller
        form = c.operator.form

        def value() -> str:
            typed = form.value(entry)
            return f"{label}:  {typed or '-'}"

        widget = button(
            look,
            f"field-{entry}",
            value(),
            functools.partial(c.operator.choose, entry),
            kind="primary" if form.entry is entry else "muted",
            font=25,
        )
        return self.live(widget, value)

    def keys(self, look: Look, keys: str) -> GridLayout:
        """A row (or rows) of keys for the active field, then delete and clear."""
        c = self.controller
        grid = GridLayout(cols=13, spacing=6, size_hint_y=None)
        rows = (len(keys) + 2 + 12) // 13
        grid.height = rows * look.target_px + (rows - 1) * 6
        for key in keys:
            grid.add_widget(
                button(
                    look,
                    f"key-{KEY_NAMES.get(key, key)}",
                    key,
                    functools.partial(c.operator.press, key),
                    font=31,
                )
            )
        grid.add_widget(
            button(look, "key-delete", c.t("Delete"), c.operator.delete, kind="muted", font=20)
        )
        grid.add_widget(
            button(look, "key-clear", c.t("Clear"), c.operator.clear, kind="muted", font=20)
        )
        return grid


def facts(look: Look, lines: Sequence[tuple[str, str]], *, font: float = 25) -> GridLayout:
    """Name and value side by side, one row each."""
    grid = GridLayout(cols=2, spacing=(16, 2), size_hint_y=None)
    grid.bind(minimum_height=grid.setter("height"))
    for name, value in lines:
        grid.add_widget(text(look, name, font=20, halign="right", colour=look.palette.muted))
        grid.add_widget(text(look, value, font=font, halign="left"))
    return grid


def _fen(value: object) -> str:
    return format_fen(value) if isinstance(value, int) and not isinstance(value, bool) else "-"


class OperatorLoginScreen(OperatorScreen):
    screen_id = ScreenId.OPERATOR_LOGIN
    title = "Station operator"
    cancellable = True

    def shape(self) -> Hashable:
        return ("operator_login",)

    def body(self, look: Look) -> Widget:
        return pin_entry(
            self,
            look,
            self.controller.t("Insert the operator card and type its PIN"),
            error_font=25,
        )

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [
            *super().footer(look),
            button(look, "confirm", c.t("Confirm"), c.operator.submit_pin),
        ]


class OperatorHomeScreen(OperatorScreen):
    screen_id = ScreenId.OPERATOR_HOME
    title = "Station operator"

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        grid = GridLayout(cols=3, spacing=12, size_hint_y=None)
        grid.height = 2 * int(look.target_px * 1.5) + 12
        for action, label in LABELS.items():
            widget = button(
                look,
                f"op-{action}",
                t(label),
                functools.partial(c.operator.open, action),
                font=31,
                height=int(look.target_px * 1.5),
            )
            grid.add_widget(widget)
        actor = c.operator.actor
        return column(
            text(look, t("Operator: {id}").format(id=actor.id if actor else "-"), font=31),
            grid,
            text(look, c.operator.message, font=25),
            spacer(),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [button(look, "logout", c.t("Log out"), c.operator.logout, kind="danger")]


class OperatorDepositScreen(OperatorScreen):
    screen_id = ScreenId.OPERATOR_DEPOSIT
    title = "Record a deposit"

    def shape(self) -> Hashable:
        return ("operator_deposit", self.controller.operator.form.entry)

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        form = c.operator.form
        keys = NUMBER_KEYS + POINT if form.entry is Entry.AMOUNT else CODE_KEYS
        return column(
            text(
                look,
                t("A deposit bought at the postal outlet: at least ¥500.00, with its slip."),
                font=25,
            ),
            row(
                self.field(look, Entry.AMOUNT, t("Amount (yuan)")),
                self.field(look, Entry.SLIP, t("Slip number")),
                height=look.target_px,
            ),
            self.error_line(look),
            spacer(),
            self.keys(look, keys),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [
            self.back_button(look),
            button(look, "record", c.t("Record the deposit"), c.operator.record_deposit),
        ]


class OperatorFloatScreen(OperatorScreen):
    screen_id = ScreenId.OPERATOR_FLOAT
    title = "Float and deposits"

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        overview = c.operator.form.overview
        if overview is None:
            return column(self.error_line(look), spacer())
        today = overview.today
        lines = [
            (t("Float balance"), _fen(overview.balance_fen)),
            (t("Held for payments"), _fen(overview.held_fen)),
            (t("Available"), _fen(overview.available_fen)),
            (t("Deposits pending"), _fen(overview.pending_deposits_fen)),
            (
                t("Business day {day}").format(day=overview.business_day),
                t("{count} paid, {amount}").format(
                    count=today.get("paid_count", 0), amount=_fen(today.get("paid_fen"))
                ),
            ),
        ]
        notes: list[str] = []
        if not overview.fresh:
            notes.append(t("The platform did not answer: these are the last known figures."))
        if overview.low:
            notes.append(
                t("The float is low (below {threshold}): buy float at the postal outlet.").format(
                    threshold=_fen(overview.threshold_fen)
                )
            )
        history = [
            (
                entry.slip_no,
                f"{_fen(entry.amount_fen)}  {t(STATE_TEXT.get(str(entry.state), str(entry.state)))}"
                f"  {entry.recorded_at[:16].replace('T', ' ')}",
            )
            for entry in overview.deposits[:4]
        ]
        parts: list[Widget] = [facts(look, lines)]
        if notes:
            parts.append(text(look, "\n".join(notes), font=20, colour=look.palette.error))
        parts.append(text(look, t("Deposits (newest first)"), font=25, bold=False))
        parts.append(facts(look, history or [("-", t("none yet"))], font=20))
        parts += [self.error_line(look), spacer()]
        return column(*parts, spacing=8)

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [
            self.back_button(look),
            button(look, "refresh", c.t("Ask the platform again"), c.operator.refresh_float),
        ]


class OperatorCloseDayScreen(OperatorScreen):
    screen_id = ScreenId.OPERATOR_CLOSE_DAY
    title = "Close the day"

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        overview = c.operator.form.overview
        lines: list[tuple[str, str]] = []
        if overview is not None:
            today = overview.today
            lines = [
                (t("Business day"), overview.business_day),
                (
                    t("Transactions"),
                    t("{count} paid, {amount}").format(
                        count=today.get("paid_count", 0), amount=_fen(today.get("paid_fen"))
                    ),
                ),
                (t("Cash in the box"), _fen(today.get("cash_expected_fen"))),
                (t("Float balance"), _fen(overview.balance_fen)),
            ]
        return column(
            spacer(),
            text(
                look,
                t(
                    "Closing the day balances the float with the platform and prints the day "
                    "sheet (轧帐单). Payments after it belong to the next day."
                ),
                font=25,
            ),
            facts(look, lines, font=31),
            self.error_line(look),
            spacer(),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        buttons = [
            self.back_button(look),
            button(
                look,
                "close-day",
                c.t("Close the day and print the sheet"),
                c.operator.close_day,
                kind="danger",
                font=25,
            ),
        ]
        overview = c.operator.form.overview
        if overview is not None and overview.last_closed_day is not None:
            buttons.insert(
                1,
                button(
                    look,
                    "print-sheet",
                    c.t("Print the sheet of {day} again").format(day=overview.last_closed_day),
                    c.operator.print_day_sheet,
                    kind="muted",
                    font=25,
                ),
            )
        return buttons


class OperatorCashScreen(OperatorScreen):
    screen_id = ScreenId.OPERATOR_CASH
    title = "Collect the cash box"

    def shape(self) -> Hashable:
        return ("operator_cash", self.controller.operator.form.denomination)

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        form = c.operator.form
        grid = GridLayout(cols=3, spacing=8, size_hint_y=None)
        grid.height = 3 * look.target_px + 2 * 8
        for denomination in Denomination:
            grid.add_widget(self._denomination(look, denomination))
        expected = _fen(form.expected_fen)
        return column(
            self.live(
                text(look, "", font=25),
                lambda: t("Expected in the box: {expected}. Counted: {counted}.").format(
                    expected=expected, counted=format_fen(form.counted_fen())
                ),
            ),
            grid,
            self.error_line(look),
            spacer(),
            self.keys(look, NUMBER_KEYS),
            spacing=8,
        )

    def _denomination(self, look: Look, denomination: Denomination) -> KioskButton:
        c = self.controller
        form = c.operator.form
        kind = c.t("note") if denomination.is_note else c.t("coin")
        name = f"{format_fen(denomination.value_fen)} {kind}"

        def label() -> str:
            return f"{name} × {form.counts.get(denomination) or 0}"

        widget = button(
            look,
            f"count-{denomination}",
            label(),
            functools.partial(c.operator.choose_denomination, denomination),
            kind="primary" if form.denomination is denomination else "muted",
            font=25,
        )
        self.live(widget, label)
        return widget

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [
            self.back_button(look),
            button(look, "collect", c.t("Record the count"), c.operator.collect_cash),
        ]


class OperatorVoucherScreen(OperatorScreen):
    screen_id = ScreenId.OPERATOR_VOUCHER
    title = "Pay out a voucher"

    def shape(self) -> Hashable:
        form = self.controller.operator.form
        return ("operator_voucher", form.voucher, form.outcome, form.paid)

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        form = c.operator.form
        parts: list[Widget] = [
            self.field(look, Entry.VOUCHER, t("Voucher code")),
        ]
        if c.operator.scanner_present:
            parts.append(text(look, t(SCAN_VOUCHER), font=20))
        if form.voucher is not None:
            parts.append(text(look, c.operator.voucher_summary(), font=25))
        if c.operator.outcome:
            colour = look.palette.text if form.paid else look.palette.error
            parts.append(text(look, c.operator.outcome, font=31, colour=colour))
        parts += [self.error_line(look), spacer(), self.keys(look, CODE_KEYS)]
        return column(*parts, spacing=8)

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        form = c.operator.form
        buttons = [
            self.back_button(look),
            button(look, "look-up", c.t("Look the voucher up"), c.operator.look_up_voucher),
        ]
        if form.voucher is not None:
            buttons.append(
                button(
                    look,
                    "pay-out",
                    c.t("Pay out {amount}").format(amount=format_fen(form.voucher.amount_fen)),
                    c.operator.pay_voucher,
                    kind="danger",
                )
            )
        return buttons


class OperatorReprintScreen(OperatorScreen):
    screen_id = ScreenId.OPERATOR_REPRINT
    title = "Reprint a resident's receipt"

    def shape(self) -> Hashable:
        return ("operator_reprint",)

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        prefix = f"{c.terminal.config.station.terminal_id}-"
        return column(
            spacer(),
            text(look, t(TYPE_RECEIPT), font=31),
            self.live(
                text(look, "", font=39, bold=True),
                lambda: prefix + (c.operator.form.value(Entry.RECEIPT) or "______"),
            ),
            self.error_line(look),
            spacer(),
            self.keys(look, NUMBER_KEYS),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [
            self.back_button(look),
            button(look, "reprint", c.t("Reprint"), c.operator.reprint),
        ]


OPERATOR_SCREENS: tuple[type[KioskScreen], ...] = (
    OperatorLoginScreen,
    OperatorHomeScreen,
    OperatorDepositScreen,
    OperatorFloatScreen,
    OperatorCloseDayScreen,
    OperatorCashScreen,
    OperatorVoucherScreen,
    OperatorReprintScreen,
)

__all__ = ["OPERATOR_SCREENS"]
