"""The resident's screens: idle, menu, keypad entry, confirmations, cash, results, rating.

Each screen only lays out what the controller holds and wires taps to its parts (the
resident's journey, the display settings); amounts come formatted from the core's
integers (kiosk.money.format_fen). Texts size to their lines (ui.widgets.text), so the
layout check (ui.layout_check) sees any that does not fit.
"""

import functools
from collections.abc import Hashable, Sequence

from kivy.animation import Animation
from kivy.graphics import Color, Rectangle
from kivy.uix.gridlayout import GridLayout
from kivy.uix.widget import Widget

from kiosk.availability import TAMPER_ALARM
from kiosk.ratings import REASONS
from kiosk.transactions.kinds import TxOutcome
from ui.controller import KioskController
from ui.resident import HELP, REPRINT, TARIFFS
from ui.screen_ids import ScreenId
from ui.screens.base import KioskScreen
from ui.screens.result_lines import add_receipt_lines, finish_footer, settled_warning, slip_text
from ui.tariffs import fee_announcements, tariff_lines
from ui.tile_icons import service_icon, tile_icon
from ui.widgets import KioskButton, Look, button, column, keypad, row, spacer, text, tile

STATUS_TEXT = {
    "in_service": "In service",
    "partial": "Some services are unavailable",
    "out_of_service": "Out of service",
}
SERVICE_COMMITMENT = (
    "Our commitment: the fee is shown before you pay and only the published fees are "
    "charged; every payment gets a receipt; cash that cannot be paid out is printed as a "
    "voucher the station pays out."
)


def technician_button(look: Look, c: KioskController) -> KioskButton:
    """The quiet way into maintenance mode, on the screens where no resident is served."""
    return button(
        look,
        "technician",
        c.t("Technician"),
        c.maintenance.open_login,
        kind="muted",
        width=look.target_px * 3,
        font=24,
    )


def operator_button(look: Look, c: KioskController) -> KioskButton:
    """The station operator's way in (operator card and PIN), beside the technician's."""
    return button(
        look,
        "operator",
        c.t("Station operator"),
        c.operator.open_login,
        kind="muted",
        width=look.target_px * 3,
        font=24,
    )


def facts(
    look: Look, lines: Sequence[tuple[str, str]], *, font: float = 31, bold: bool = False
) -> GridLayout:
    """Name and value side by side, one row each, as tall as their text."""
    grid = GridLayout(cols=2, spacing=(16, 4), size_hint_y=None)
    grid.bind(minimum_height=grid.setter("height"))
    for name, value in lines:
        grid.add_widget(text(look, name, font=25, halign="right", colour=look.palette.muted))
        grid.add_widget(text(look, value, font=font, bold=bold, halign="left"))
    return grid


def station_lines(c: KioskController) -> list[tuple[str, str]]:
    """The station's name, address, telephone and hours (for help and the fee list)."""
    t = c.t
    station = c.terminal.config.station
    lines = [(t("Station"), station.name)]
    if station.address:
        lines.append((t("Address"), station.address))
    if station.phone:
        lines.append((t("Station telephone"), station.phone))
    lines.append((t("Service hours"), station.service_hours))
    lines.append((t("Service hotline"), c.help_phone))
    return lines


class IdleScreen(KioskScreen):
    screen_id = ScreenId.IDLE
    title = "Convenience service terminal"
    cancellable = False

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        station = c.terminal.config.station
        status = text(look, t(STATUS_TEXT[c.status]), font=31)
        if c.tamper_latched:  # normally out of service; shown here too until the screen moves
            status = text(look, t(TAMPER_ALARM), font=31, colour=look.palette.error)
        parts: list[Widget] = [
            spacer(),
            text(look, station.name, font=54, bold=True),
            text(look, t("Service hours: {hours}").format(hours=station.service_hours), font=30),
        ]
        today = c.terminal.clock.now().date()
        for announcement in fee_announcements(t, c.services(), today):
            parts.append(text(look, announcement, font=25, colour=look.palette.error))
        parts += [
            status,
            spacer(),
            button(
                look,
                "start",
                t("Touch here to start"),
                c.resident.open_menu,
                font=44,
                height=look.target_px * 2,
            ),
        ]
        return column(*parts)

    def footer(self, look: Look) -> list[KioskButton]:
        return [technician_button(look, self.controller), operator_button(look, self.controller)]


class OutOfServiceScreen(KioskScreen):
    screen_id = ScreenId.OUT_OF_SERVICE
    title = "Out of service"
    cancellable = False

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        return column(
            spacer(),
            text(look, t("This terminal is out of service"), font=50, bold=True),
            text(look, "\n".join(c.out_of_service_reasons()), font=30, colour=look.palette.error),
            text(look, t("No money can be taken now. Please come back later."), font=30),
            text(look, c.help_line(), font=28),
            spacer(),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        return [technician_button(look, self.controller), operator_button(look, self.controller)]


class MenuScreen(KioskScreen):
    screen_id = ScreenId.MENU
    title = "Choose a service"

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        grid = GridLayout(cols=4, spacing=14)
        tiles = [(s.code, t(s.name), service_icon(s)) for s in c.services()]
        tiles += [
            (REPRINT, t("Reprint or collect a receipt"), tile_icon(REPRINT)),
            (TARIFFS, t("Fees"), tile_icon(TARIFFS)),
            (HELP, t("Help"), tile_icon(HELP)),
        ]
        for code, name, picture in tiles:
            availability = c.available(code)
            label = name
            if not availability.available:
                label += "\n" + t(availability.reasons[0]) if availability.reasons else ""
            grid.add_widget(
                tile(
                    look,
                    f"service-{code}",
                    label,
                    functools.partial(c.resident.choose, code),
                    picture=picture,
                    kind="primary" if availability.available else "muted",
                    font=25 if availability.available else 20,
                )
            )
        return grid


class AccountScreen(KioskScreen):
    screen_id = ScreenId.ACCOUNT
    title = "Enter the number"

    def shape(self) -> Hashable:
        service = self.controller.journey.service
        return ("account", service.code if service else None)

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        service = c.journey.service
        assert service is not None
        left = column(
            spacer(),
            text(look, c.service_name(), font=36, bold=True),
            text(look, service.account_label(t), font=30),
            self.live(text(look, "", font=56, bold=True), lambda: c.journey.digits or " "),
            self.live(text(look, "", font=26, colour=look.palette.error), lambda: c.journey.error),
            spacer(),
        )
        pad = keypad(look, c.key, c.delete, c.clear_digits, t("Delete"), t("Clear"))
        return row(left, pad)

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [
            *super().footer(look),
            button(look, "confirm", c.t("Confirm"), c.resident.submit_account),
        ]


class ConfirmBillScreen(KioskScreen):
    screen_id = ScreenId.CONFIRM
    title = "Check your bill"

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        quote = c.journey.quote
        assert quote is not None
        lines = [
            (t("Service"), c.service_name()),
            (t("Account holder"), quote.bill.holder_masked),
            (t("Billing period"), quote.bill.period),
            (t("Amount due"), c.money(quote.bill.amount_due_fen)),
            (t("Fee"), c.money(quote.fee_fen)),
        ]
        return column(
            spacer(),
            facts(look, lines),
            text(
                look,
                t("Total to pay: {total}").format(total=c.money(quote.total_fen)),
                font=44,
                bold=True,
            ),
            spacer(),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [*super().footer(look), button(look, "pay", c.t("Pay"), c.qr.pay)]


class TopupConfirmScreen(KioskScreen):
    """A phone or card top-up before the inlets open: number, carrier, amount, fee, total."""

    screen_id = ScreenId.TOPUP_CONFIRM
    title = "Check your top-up"

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        quote = c.journey.topup
        assert quote is not None
        if quote.service.kind == "phone_topup":
            number = (t("Phone number"), c.resident.formatted_phone(quote.account))
        else:
            number = (t("Card number"), c.resident.masked_card())
        lines = [
            number,
            (t("Carrier"), c.service_name(quote.service)),
            (t("Top-up amount"), c.money(quote.amount_fen)),
            (t("Fee"), c.money(quote.fee_fen)),
        ]
        return column(
            spacer(),
            facts(look, lines),
            text(
                look,
                t("Total to pay: {total}").format(total=c.money(quote.total_fen)),
                font=44,
                bold=True,
            ),
            text(
                look,
                t("Check the number: money sent to a wrong number cannot be taken back."),
                font=25,
                colour=look.palette.muted,
            ),
            spacer(),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        quote = c.journey.topup
        if quote is not None and quote.service.kind == "phone_topup":
            change = button(
                look, "change-number", c.t("Change number"), c.resident.change_number, kind="muted"
            )
        else:
            change = button(
                look, "change-amount", c.t("Change amount"), c.resident.change_amount, kind="muted"
            )
        return [
            *super().footer(look),
            change,
            button(look, "pay", c.t("Pay"), c.qr.pay),
        ]


class CardInsertScreen(KioskScreen):
    screen_id = ScreenId.CARD_INSERT
    title = "Insert your card"

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        card = card_shape(look)
        # The card glides towards the slot and back, over and over.
        slide = Animation(opacity=0.2, duration=0.8) + Animation(opacity=1.0, duration=0.8)
        slide.repeat = True
        slide.start(card)
        return column(
            text(look, c.service_name(), font=36, bold=True),
            text(look, t("Insert your prepaid card into the reader, chip first"), font=34),
            card,
            text(look, c.journey.error, font=28, colour=look.palette.error),
        )


def card_shape(look: Look) -> Widget:
    """A card drawn as a filled upright rectangle, centred in its place.

    Drawn rather than written as the glyph "▮": a 120 px glyph would open one more face of
    the CJK font (ui.widgets.TYPEFACES) for the life of the process.
    """
    width, height = 50 * look.scale, 96 * look.scale
    widget = Widget(size_hint_y=None, height=height + 20)
    with widget.canvas:
        Color(*look.palette.button)
        rectangle = Rectangle(size=(width, height))

    def centre(*_: object) -> None:
        rectangle.pos = (widget.center_x - width / 2, widget.center_y - height / 2)

    widget.bind(pos=centre, size=centre)
    return widget


class AmountScreen(KioskScreen):
    screen_id = ScreenId.AMOUNT
    title = "Choose an amount"

    def shape(self) -> Hashable:
        journey = self.controller.journey
        return ("amount", journey.service.code if journey.service else None, journey.card)

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        service = c.journey.service
        assert service is not None
        low, high = c.resident.amount_bounds()
        bounds = t("From {low} to {high}").format(low=c.money(low), high=c.money(high))
        info: list[Widget] = [text(look, f"{c.service_name()} · {bounds}", font=31)]
        card = c.journey.card
        if card is not None:
            card_line = t("Card {number}, meter {meter}").format(
                number=c.resident.masked_card(), meter=card.meter_no
            )
            last = t("Last top-up: {amount}").format(amount=c.money(card.last_credit_fen))
            info.append(text(look, f"{card_line}\n{last}", font=25))
        presets = GridLayout(cols=4, spacing=10, size_hint_y=None)
        presets.bind(minimum_height=presets.setter("height"))
        for amount in service.presets_fen:
            presets.add_widget(
                button(
                    look,
                    f"amount-{amount}",
                    c.money(amount),
                    functools.partial(c.resident.choose_amount, amount),
                    font=31,
                )
            )
        info.append(presets)
        info.append(
            self.live(
                text(look, "", font=25),
                lambda: t("Or type yuan: {typed}").format(typed=c.journey.digits or "-"),
            )
        )
        info.append(
            self.live(text(look, "", font=25, colour=look.palette.error), lambda: c.journey.error)
        )
        info.append(spacer())
        pad = keypad(look, c.key, c.delete, c.clear_digits, t("Delete"), t("Clear"))
        return row(column(*info, spacing=6), pad)

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [
            *super().footer(look),
            button(look, "confirm", c.t("Confirm"), c.resident.submit_typed_amount),
        ]


class CashScreen(KioskScreen):
    screen_id = ScreenId.CASH
    title = "Insert cash"
    cancellable = False

    def shape(self) -> Hashable:
        progress = self.controller.journey.progress
        if progress is None:
            return ("cash", None)
        return ("cash", progress.tx_id, progress.total_due_fen, progress.suspense)

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        progress = c.journey.progress
        if progress is None:
            return Widget()
        parts: list[Widget] = [
            spacer(),
            text(
                look,
                t("{service}: total to pay {total}").format(
                    service=c.service_name(), total=c.money(progress.total_due_fen)
                ),
                font=25,
            ),
            self.live(
                text(look, "", font=56, bold=True),
                lambda: t("Inserted: {amount}").format(
                    amount=c.money(c.resident.cash_inserted_fen)
                ),
            ),
            self.live(
                text(look, "", font=56, bold=True, colour=look.palette.error),
                lambda: t("Still due: {amount}").format(amount=c.money(_still_due(c))),
            ),
        ]
        if progress.suspense:
            parts.append(
                text(
                    look,
                    t(
                        "An item could not be recognised: it is kept in the terminal, a claim "
                        "slip is printed and the staff settle it with you."
                    )
                    + " "
                    + t("The cash inlets are closed now."),
                    font=25,
                    colour=look.palette.error,
                )
            )
        else:
            parts.append(
                self.live(
                    text(look, "", font=25),
                    lambda: (
                        _notes_taken(c)
                        + " "
                        + t("No change is given: any surplus is credited or printed as a voucher.")
                    ),
                )
            )
        if not c.resident.staffed_now():
            parts.append(
                text(
                    look,
                    t(
                        "Outside service hours ({hours}): nobody can pay a voucher out until "
                        "the station opens."
                    ).format(hours=c.terminal.config.station.service_hours),
                    font=25,
                    colour=look.palette.error,
                )
            )
        parts.append(spacer())
        return column(*parts, spacing=6)

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        t = c.t

        def label() -> str:
            inserted = c.resident.cash_inserted_fen
            if not inserted:
                return t("Cancel")
            return t("Cancel: {amount} will be printed as a voucher").format(
                amount=c.money(inserted)
            )

        buttons = [self.live(button(look, "cancel", "", c.cancel, kind="danger", font=25), label)]
        progress = c.journey.progress
        if progress is not None and progress.suspense and progress.still_due_fen == 0:
            buttons.append(button(look, "finish", t("Finish the payment"), c.resident.finish))
        return buttons


def _still_due(controller: KioskController) -> int:
    progress = controller.journey.progress
    return progress.still_due_fen if progress else 0


def _notes_taken(controller: KioskController) -> str:
    """Which notes the inlets take now (no note above the one that covers what is due)."""
    t = controller.t
    progress = controller.journey.progress
    if progress is None or progress.largest_fen is None:
        return t("Notes and coins are accepted.")
    return t("Insert notes of at most {amount}, or coins").format(
        amount=controller.money(progress.largest_fen)
    )


class BusyScreen(KioskScreen):
    screen_id = ScreenId.BUSY
    title = "Please wait"
    cancellable = False

    def body(self, look: Look) -> Widget:
        return column(
            spacer(), text(look, self.controller.busy_message, font=44, bold=True), spacer()
        )


class ResultScreen(KioskScreen):
    screen_id = ScreenId.RESULT
    title = "Done"
    cancellable = False

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        outcome = c.journey.outcome
        if outcome is None:
            return Widget()
        record = outcome.record or {}
        paid = int(str(record.get("amount_fen", 0))) + int(str(record.get("fee_fen", 0)))
        lines: list[Widget] = [spacer()]
        if outcome.outcome == TxOutcome.PAID:
            lines.append(text(look, t("Payment successful"), font=44, bold=True))
            lines.append(text(look, t("Paid: {amount}").format(amount=c.money(paid)), font=31))
        else:
            lines.append(text(look, t("Payment not made"), font=44, bold=True))
        lines.append(
            text(
                look,
                t("Received: {amount}").format(amount=c.money(outcome.cash_in_fen)),
                font=31,
            )
        )
        if outcome.credited_fen:
            lines.append(
                text(
                    look,
                    t("Credited to your account: {amount}").format(
                        amount=c.money(outcome.credited_fen)
                    ),
                    font=31,
                )
            )
        if outcome.voucher_fen:
            lines.append(
                text(
                    look,
                    t("Voucher printed: {amount}").format(amount=c.money(outcome.voucher_fen)),
                    font=31,
                )
            )
        code = add_receipt_lines(c, look, outcome, lines)
        if code is not None:
            return row(column(*lines), code)
        lines.append(spacer())
        return column(*lines)

    def footer(self, look: Look) -> list[KioskButton]:
        return finish_footer(self.controller, look)


class InDoubtScreen(KioskScreen):
    """What the interim slip says: the payment's reference and reprint code, the amounts,
    that the result is settled automatically, and never a receipt number (there is none)."""

    screen_id = ScreenId.IN_DOUBT
    title = "Your payment is being confirmed"
    cancellable = False

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        outcome = c.journey.outcome
        if outcome is None:
            return Widget()
        if c.journey.clock_wrong:
            why = t("The terminal's clock is wrong: the payment cannot be closed now.")
        else:
            why = t("The operator has not confirmed your payment yet.")
        lines = [
            (t("Reference"), outcome.tx_id),
            (t("Reprint code"), outcome.token or "-"),
            (t("Received"), c.money(outcome.cash_in_fen)),
            (t("Amount to pay"), c.money(outcome.total_due_fen)),
        ]
        return column(
            spacer(),
            settled_warning(c, look),
            text(look, why, font=25),
            facts(look, lines, font=25),
            text(look, slip_text(c, printed=outcome.printed), font=25),
            spacer(),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        return finish_footer(self.controller, look)


class CardReinsertScreen(KioskScreen):
    screen_id = ScreenId.CARD_REINSERT
    title = "Insert the same card again"
    cancellable = False

    def body(self, look: Look) -> Widget:
        t = self.controller.t
        return column(
            spacer(),
            text(look, t("The card was taken out before the credit was written"), font=36),
            text(look, t("Insert the same card again to finish"), font=50, bold=True),
            text(
                look,
                t("Your payment is safe: the credit is written as soon as the card is back."),
                font=28,
            ),
            spacer(),
        )


class RatingScreen(KioskScreen):
    screen_id = ScreenId.RATING
    title = "How was the service?"
    cancellable = False

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        return column(
            spacer(),
            text(look, t("Please rate this service"), font=44, bold=True),
            row(
                button(
                    look,
                    "rate-good",
                    t("Satisfied"),
                    lambda: c.resident.rate(True),
                    font=40,
                    height=look.target_px * 2,
                ),
                button(
                    look,
                    "rate-bad",
                    t("Dissatisfied"),
                    lambda: c.resident.rate(False),
                    kind="danger",
                    font=40,
                    height=look.target_px * 2,
                ),
                height=look.target_px * 2,
            ),
            spacer(),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [button(look, "skip", c.t("Skip"), c.go_idle, kind="muted")]


class RatingReasonScreen(KioskScreen):
    screen_id = ScreenId.RATING_REASON
    title = "What went wrong?"
    cancellable = False

    def body(self, look: Look) -> Widget:
        c = self.controller
        grid = GridLayout(cols=2, spacing=10)
        for code, message in REASONS.items():
            reason = button(
                look,
                f"reason-{code}",
                c.t(message),
                functools.partial(c.resident.choose_reason, code),
                font=25,
            )
            reason.size_hint_y = 1
            grid.add_widget(reason)
        return column(text(look, c.t("Choose what went wrong"), font=30), grid)

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [button(look, "skip", c.t("Skip"), c.go_idle, kind="muted")]


class ComplaintScreen(KioskScreen):
    """A complaint: the reason chosen, and a call-back number if the resident wants one."""

    screen_id = ScreenId.COMPLAINT
    title = "Make a complaint"
    cancellable = False

    def shape(self) -> Hashable:
        return ("complaint", self.controller.journey.complaint_reason)

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        reason = c.journey.complaint_reason
        left = column(
            spacer(),
            text(
                look,
                t("Your complaint: {reason}").format(reason=t(REASONS[reason]) if reason else ""),
                font=31,
                bold=False,
            ),
            text(
                look,
                t(
                    "The station staff follow up every complaint. To be called back, "
                    "type your phone number (optional)."
                ),
                font=25,
            ),
            self.live(text(look, "", font=56, bold=True), lambda: c.journey.digits or " "),
            self.live(text(look, "", font=25, colour=look.palette.error), lambda: c.journey.error),
            spacer(),
        )
        pad = keypad(look, c.key, c.delete, c.clear_digits, t("Delete"), t("Clear"))
        return row(left, pad)

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [
            button(look, "no-complaint", c.t("No, thanks"), c.resident.no_complaint, kind="muted"),
            button(look, "send-complaint", c.t("Send the complaint"), c.resident.send_complaint),
        ]


class ThanksScreen(KioskScreen):
    screen_id = ScreenId.THANKS
    title = "Thank you"
    cancellable = False

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        lines: list[Widget] = [
            spacer(),
            text(look, t("Thank you for your feedback"), font=50, bold=True),
        ]
        phone = c.journey.complaint_phone
        if phone:
            lines.append(
                text(
                    look,
                    t("The station staff will call you back at {phone}.").format(phone=phone),
                    font=31,
                )
            )
        elif phone == "":
            lines.append(
                text(look, t("Your complaint is recorded for the station staff."), font=31)
            )
        lines.append(spacer())
        return column(*lines)

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [button(look, "done", c.t("Finish"), c.go_idle)]


class NoticeScreen(KioskScreen):
    screen_id = ScreenId.NOTICE
    title = "Notice"
    cancellable = False

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        notice = c.notice
        if notice is None:
            return Widget()
        parts: list[Widget] = [
            spacer(),
            text(look, notice.title, font=46, bold=True, colour=look.palette.error),
            text(look, t("What happened: {what}").format(what=notice.what), font=30),
            text(look, t("What you can do: {action}").format(action=notice.action), font=30),
        ]
        parts += [text(look, notice.help, font=25, colour=look.palette.muted), spacer()]
        return column(*parts)

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        # While a payment collects the screen may not know all the cash counted (the call
        # that failed was the one reading it): the OK says what it does, not an amount.
        label = c.t("OK") if c.journey.progress is None else c.t("OK: cancel the payment")
        return [button(look, "ok", label, c.notice_ok, font=25)]


class ReprintScreen(KioskScreen):
    screen_id = ScreenId.REPRINT
    title = "Reprint or collect a receipt"

    def shape(self) -> Hashable:
        return ("reprint", self.controller.maintenance.technician is not None)

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        if c.maintenance.technician is not None:
            terminal_id = c.terminal.config.station.terminal_id
            prompt = t("Type the number after the dash on the receipt")
            shown = lambda: f"{terminal_id}-{c.journey.digits or '______'}"  # noqa: E731
        else:
            prompt = t(
                "Type the 8-digit reprint code printed on your receipt or interim slip. "
                "A result settled while you were away is printed in full."
            )
            shown = lambda: c.journey.digits or "________"  # noqa: E731
        left = column(
            spacer(),
            text(look, prompt, font=30),
            self.live(text(look, "", font=52, bold=True), shown),
            self.live(text(look, "", font=25, colour=look.palette.error), lambda: c.journey.error),
            spacer(),
        )
        pad = keypad(look, c.key, c.delete, c.clear_digits, t("Delete"), t("Clear"))
        return row(left, pad)

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        submit = (
            c.maintenance.reprint
            if c.maintenance.technician is not None
            else c.resident.submit_reprint
        )
        return [*super().footer(look), button(look, "confirm", c.t("Print"), submit)]


class ReprintedScreen(KioskScreen):
    screen_id = ScreenId.REPRINTED
    title = "Reprint or collect a receipt"
    cancellable = False

    def body(self, look: Look) -> Widget:
        t = self.controller.t
        return column(
            spacer(), text(look, t("Your receipt is printed"), font=46, bold=True), spacer()
        )

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [button(look, "done", c.t("Finish"), c.go_idle)]


class HelpScreen(KioskScreen):
    screen_id = ScreenId.HELP
    title = "Help"

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        return column(
            spacer(),
            text(
                look,
                t(
                    "Pay bills and top up cards and phones with cash. The amount and fee "
                    "are shown before you pay; no change is given, any surplus is credited "
                    "or printed as a voucher you can redeem at the station."
                ),
                font=25,
            ),
            text(look, t(SERVICE_COMMITMENT), font=25, colour=look.palette.muted),
            facts(look, station_lines(c), font=25),
            spacer(),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [
            *super().footer(look),
            button(look, "fees", c.t("Fees"), lambda: c.resident.choose(TARIFFS), kind="muted"),
            button(look, "complain", c.t("Make a complaint"), c.resident.start_complaint),
        ]


class TariffsScreen(KioskScreen):
    """收费公示: the fee of every service with the day it took effect, announced changes."""

    screen_id = ScreenId.TARIFFS
    title = "Fees"

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        today = c.terminal.clock.now().date()
        grid = GridLayout(cols=3, spacing=(16, 0), size_hint_y=None)
        grid.bind(minimum_height=grid.setter("height"))
        for heading in (t("Service"), t("Fee"), t("In force")):
            grid.add_widget(text(look, heading, font=25, colour=look.palette.muted, halign="left"))
        for line in tariff_lines(t, c.services(), today):
            colour = look.palette.error if line.upcoming else None
            grid.add_widget(text(look, line.service, font=25, halign="left", colour=colour))
            grid.add_widget(text(look, line.fee, font=25, halign="left", colour=colour))
            grid.add_widget(text(look, line.since, font=25, halign="left", colour=colour))
        station = c.terminal.config.station
        return column(
            grid,
            text(
                look,
                t(
                    "Only these fees are charged. Fee changes are announced at least 5 working "
                    "days before they take effect."
                )
                + " "
                + t("{station}, service hours {hours}, hotline {hotline}").format(
                    station=station.name, hours=station.service_hours, hotline=c.help_phone
                ),
                font=16,
                colour=look.palette.muted,
            ),
            spacer(),
            spacing=6,
        )
