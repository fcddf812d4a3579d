"""The resident's screens: idle, menu, keypad entry, bill, card, cash, result, rating, notices.

Each screen only lays out what the controller holds and wires taps to controller calls;
amounts come formatted from the core's integers (kiosk.money.format_fen).
"""

import io
from collections.abc import Hashable

from kivy.animation import Animation
from kivy.core.image import Image as CoreImage
from kivy.graphics import Color, Rectangle
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.image import Image
from kivy.uix.widget import Widget

from kiosk.availability import TAMPER_ALARM
from kiosk.ratings import REASONS
from kiosk.receipts.qr import qr_symbol
from ui.controller import KioskController
from ui.screens.base import KioskScreen
from ui.widgets import KioskButton, Look, button, column, keypad, row, text

STATUS_TEXT = {
    "in_service": "In service",
    "partial": "Some services are unavailable",
    "out_of_service": "Out of service",
}


def technician_button(look: Look, c: KioskController) -> KioskButton:
    """The quiet way into maintenance mode, on the screens where no resident is served."""
    return button(
        look,
        "technician",
        c.t("Technician"),
        c.open_maintenance_login,
        kind="muted",
        width=look.target_px * 3,
        font=24,
    )


class IdleScreen(KioskScreen):
    title = "Convenience service terminal"
    cancellable = False

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        station = c.terminal.config.station
        names = "  ·  ".join(t(s.name) for s in c.services())
        status = text(look, t(STATUS_TEXT[c.status]), font=32, bold=True)
        if c.tamper_latched:  # normally out of service; shown here too until the screen moves
            status = text(look, t(TAMPER_ALARM), font=32, bold=True, colour=look.palette.error)
        return column(
            text(look, station.name, font=54, bold=True),
            text(look, t("Service hours: {hours}").format(hours=station.service_hours), font=30),
            text(look, names, font=26, colour=look.palette.muted),
            status,
            button(
                look,
                "start",
                t("Touch here to start"),
                c.open_menu,
                font=44,
                height=look.target_px * 2,
            ),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        return [technician_button(look, self.controller)]


class OutOfServiceScreen(KioskScreen):
    title = "Out of service"
    cancellable = False

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        reasons = sorted({t(r) for a in c.availability.values() for r in a.reasons})
        return column(
            text(look, t("This terminal is out of service"), font=50, bold=True),
            text(look, "\n".join(reasons), font=30, colour=look.palette.error),
            text(look, t("No money can be taken now. Please come back later."), font=30),
            text(
                look,
                t("For help, ask the station staff or call {phone}.").format(
                    phone=c.settings.help_phone
                ),
                font=28,
            ),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        return [technician_button(look, self.controller)]


class MenuScreen(KioskScreen):
    title = "Choose a service"

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        grid = GridLayout(cols=4, spacing=14)
        tiles = [(s.code, t(s.name)) for s in c.services()]
        tiles += [("reprint", t("Reprint a receipt")), ("help", t("Help"))]
        for code, name in tiles:
            availability = c.available(code)
            label = name
            if not availability.available:
                label += "\n" + "\n".join(t(r) for r in availability.reasons)
            tile = button(
                look,
                f"service-{code}",
                label,
                lambda code=code: c.choose(code),
                enabled=True,
                kind="primary" if availability.available else "muted",
                font=30 if availability.available else 24,
                height=look.target_px + 40,
            )
            tile.size_hint_y = 1
            grid.add_widget(tile)
        return grid


class AccountScreen(KioskScreen):
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
            text(look, c.service_name(), font=36, bold=True),
            text(look, service.account_label(t), font=30),
            self.live(text(look, "", font=56, bold=True), lambda: c.journey.digits or " "),
            self.live(text(look, "", font=26, colour=look.palette.error), lambda: c.journey.error),
        )
        pad = keypad(look, c.key, c.delete, c.clear_digits, t("Delete"), t("Clear"))
        return row(left, pad)

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [
            *super().footer(look),
            button(look, "confirm", c.t("Confirm"), c.submit_account),
        ]


class ConfirmBillScreen(KioskScreen):
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
        grid = GridLayout(cols=2, spacing=8)
        for name, value in lines:
            grid.add_widget(text(look, name, font=32, halign="right"))
            grid.add_widget(text(look, value, font=36, bold=True, halign="left"))
        return column(
            grid,
            text(
                look,
                t("Total to pay: {total}").format(total=c.money(quote.total_fen)),
                font=56,
                bold=True,
            ),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [*super().footer(look), button(look, "pay", c.t("Pay"), c.confirm_bill)]


class CardInsertScreen(KioskScreen):
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
    widget = Widget()
    with widget.canvas:
        Color(*look.palette.button)
        rectangle = Rectangle(size=(width, height))

    def centre(*_: object) -> None:
        rectangle.pos = (widget.center_x - width / 2, widget.center_y - height / 2)

    widget.bind(pos=centre, size=centre)
    return widget


class AmountScreen(KioskScreen):
    title = "Choose an amount"

    def shape(self) -> Hashable:
        journey = self.controller.journey
        return (
            "amount",
            journey.service.code if journey.service else None,
            journey.card,
        )

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        service = c.journey.service
        assert service is not None
        low, high = c.amount_bounds()
        info = [text(look, c.service_name(), font=34, bold=True)]
        card = c.journey.card
        if card is not None:
            info.append(
                text(
                    look,
                    t("Card {number}, meter {meter}").format(
                        number=c.masked_card(), meter=card.meter_no
                    ),
                    font=28,
                )
            )
            info.append(
                text(
                    look,
                    t("Last top-up: {amount}").format(amount=c.money(card.last_credit_fen)),
                    font=26,
                )
            )
        info.append(
            text(
                look,
                t("From {low} to {high}").format(low=c.money(low), high=c.money(high)),
                font=26,
                colour=look.palette.muted,
            )
        )
        presets = GridLayout(cols=3, spacing=10)
        for amount in service.presets_fen:
            presets.add_widget(
                button(
                    look,
                    f"amount-{amount}",
                    c.money(amount),
                    lambda amount=amount: c.choose_amount(amount),
                    font=36,
                )
            )
        info.append(presets)
        info.append(
            self.live(
                text(look, "", font=30),
                lambda: t("Or type yuan: {typed}").format(typed=c.journey.digits or "-"),
            )
        )
        info.append(
            self.live(text(look, "", font=26, colour=look.palette.error), lambda: c.journey.error)
        )
        pad = keypad(look, c.key, c.delete, c.clear_digits, t("Delete"), t("Clear"))
        return row(column(*info), pad)

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [
            *super().footer(look),
            button(look, "confirm", c.t("Confirm"), c.submit_typed_amount),
        ]


class CashScreen(KioskScreen):
    title = "Insert cash"
    cancellable = False

    def shape(self) -> Hashable:
        progress = self.controller.journey.progress
        return ("cash", None if progress is None else (progress.tx_id, progress.total_due_fen))

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        progress = c.journey.progress
        if progress is None:
            return Widget()
        return column(
            text(look, c.service_name(), font=34, bold=True),
            text(
                look,
                t("Total to pay: {total}").format(total=c.money(progress.total_due_fen)),
                font=40,
            ),
            self.live(
                text(look, "", font=64, bold=True),
                lambda: t("Inserted: {amount}").format(amount=c.money(c.cash_inserted_fen)),
            ),
            self.live(
                text(look, "", font=64, bold=True, colour=look.palette.error),
                lambda: t("Still due: {amount}").format(amount=c.money(_still_due(c))),
            ),
            text(
                look,
                t(
                    "Notes and coins are accepted. No change is given: any surplus is "
                    "credited or printed as a voucher."
                ),
                font=24,
                colour=look.palette.muted,
            ),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        t = c.t

        def label() -> str:
            inserted = c.cash_inserted_fen
            if not inserted:
                return t("Cancel")
            return t("Cancel: {amount} will be printed as a voucher").format(
                amount=c.money(inserted)
            )

        return [self.live(button(look, "cancel", "", c.cancel, kind="danger", font=26), label)]


def _still_due(controller: KioskController) -> int:
    progress = controller.journey.progress
    return progress.still_due_fen if progress else 0


class BusyScreen(KioskScreen):
    title = "Please wait"
    cancellable = False

    def body(self, look: Look) -> Widget:
        return text(look, self.controller.busy_message, font=44, bold=True)


class ResultScreen(KioskScreen):
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
        lines: list[Widget] = []
        if outcome.outcome == "paid":
            lines.append(text(look, t("Payment successful"), font=50, bold=True))
            lines.append(text(look, t("Paid: {amount}").format(amount=c.money(paid)), font=44))
        else:
            lines.append(text(look, t("Payment not made"), font=50, bold=True))
        lines.append(
            text(
                look,
                t("Received: {amount}").format(
                    amount=c.money(int(str(record.get("cash_in_fen", 0))))
                ),
                font=36,
            )
        )
        if outcome.credited_fen:
            lines.append(
                text(
                    look,
                    t("Credited to your account: {amount}").format(
                        amount=c.money(outcome.credited_fen)
                    ),
                    font=36,
                )
            )
        if outcome.voucher_fen:
            lines.append(
                text(
                    look,
                    t("Voucher printed: {amount}").format(amount=c.money(outcome.voucher_fen)),
                    font=36,
                    bold=True,
                )
            )
        if outcome.card_credit == "written":
            lines.append(text(look, t("The credit is on your card: you may take it out"), font=30))
        lines.append(
            text(
                look,
                t("Receipt number: {number}").format(number=outcome.receipt_no or "-"),
                font=30,
            )
        )
        if outcome.receipt_no and not outcome.printed:
            lines.append(
                text(
                    look,
                    t(
                        "The receipt could not be printed. Scan this code to "
                        "keep it, or reprint it later from the menu with the "
                        "reprint code {token}."
                    ).format(token=outcome.token or "-"),
                    font=24,
                    colour=look.palette.error,
                )
            )
            payload = c.receipt_qr()
            if payload is not None:
                return row(column(*lines), qr_image(payload, look))
        return column(*lines)

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [button(look, "done", c.t("Finish"), c.result_done)]


def qr_image(payload: str, look: Look) -> Image:
    buffer = io.BytesIO()
    qr_symbol(payload).save(buffer, kind="png", scale=4, border=2)
    buffer.seek(0)
    texture = CoreImage(buffer, ext="png").texture
    image = Image(texture=texture, size_hint=(None, 1), width=look.target_px * 5)
    image.action_id = "receipt-qr"
    return image


class CardReinsertScreen(KioskScreen):
    title = "Insert the same card again"
    cancellable = False

    def body(self, look: Look) -> Widget:
        t = self.controller.t
        return column(
            text(look, t("The card was taken out before the credit was written"), font=36),
            text(look, t("Insert the same card again to finish"), font=50, bold=True),
            text(
                look,
                t("Your payment is safe: the credit is written as soon as the card is back."),
                font=28,
            ),
        )


class RatingScreen(KioskScreen):
    title = "How was the service?"
    cancellable = False

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        return column(
            text(look, t("Please rate this service"), font=44, bold=True),
            row(
                button(
                    look,
                    "rate-good",
                    t("Satisfied"),
                    lambda: c.rate(True),
                    font=40,
                    height=look.target_px * 2,
                ),
                button(
                    look,
                    "rate-bad",
                    t("Dissatisfied"),
                    lambda: c.rate(False),
                    kind="danger",
                    font=40,
                    height=look.target_px * 2,
                ),
                height=look.target_px * 2,
            ),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [button(look, "skip", c.t("Skip"), c.go_idle, kind="muted")]


class RatingReasonScreen(KioskScreen):
    title = "What went wrong?"
    cancellable = False

    def body(self, look: Look) -> Widget:
        c = self.controller
        box = BoxLayout(orientation="vertical", spacing=10)
        for code, message in REASONS.items():
            box.add_widget(
                button(
                    look,
                    f"reason-{code}",
                    c.t(message),
                    lambda code=code: c.rate(False, code),
                    font=30,
                )
            )
        return box

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [button(look, "skip", c.t("Skip"), c.go_idle, kind="muted")]


class ThanksScreen(KioskScreen):
    title = "Thank you"
    cancellable = False

    def body(self, look: Look) -> Widget:
        return text(look, self.controller.t("Thank you for your rating"), font=50, bold=True)

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [button(look, "done", c.t("Finish"), c.go_idle)]


class NoticeScreen(KioskScreen):
    title = "Notice"
    cancellable = False

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        notice = c.notice
        if notice is None:
            return Widget()
        return column(
            text(look, notice.title, font=46, bold=True, colour=look.palette.error),
            text(look, t("What happened: {what}").format(what=notice.what), font=30),
            text(look, t("What you can do: {action}").format(action=notice.action), font=30),
            text(look, notice.help, font=28, colour=look.palette.muted),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [button(look, "ok", c.t("OK"), c.go_idle)]


class ReprintScreen(KioskScreen):
    title = "Reprint a receipt"

    def shape(self) -> Hashable:
        return ("reprint",)

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        if c.technician is not None:
            terminal_id = c.terminal.config.station.terminal_id
            prompt = t("Type the number after the dash on the receipt")
            shown = lambda: f"{terminal_id}-{c.journey.digits or '______'}"  # noqa: E731
        else:
            prompt = t("Type the reprint code printed on your receipt or slip")
            shown = lambda: c.journey.digits or "________"  # noqa: E731
        left = column(
            text(look, prompt, font=30),
            self.live(text(look, "", font=52, bold=True), shown),
        )
        pad = keypad(look, c.key, c.delete, c.clear_digits, t("Delete"), t("Clear"))
        return row(left, pad)

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [*super().footer(look), button(look, "confirm", c.t("Print"), c.submit_reprint)]


class ReprintedScreen(KioskScreen):
    title = "Reprint a receipt"
    cancellable = False

    def body(self, look: Look) -> Widget:
        return text(look, self.controller.t("Your receipt copy is printed"), font=46, bold=True)

    def footer(self, look: Look) -> list[KioskButton]:
        c = self.controller
        return [button(look, "done", c.t("Finish"), c.go_idle)]


class HelpScreen(KioskScreen):
    title = "Help"

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        station = c.terminal.config.station
        return column(
            text(
                look,
                t(
                    "Pay bills and top up cards and phones with cash. The amount and fee "
                    "are shown before you pay; no change is given, any surplus is credited "
                    "or printed as a voucher you can redeem at the station."
                ),
                font=28,
            ),
            text(look, t("Service hours: {hours}").format(hours=station.service_hours), font=28),
            text(
                look,
                t("For help, ask the station staff or call {phone}.").format(
                    phone=c.settings.help_phone
                ),
                font=30,
                bold=True,
            ),
        )
