"""The screens of paying by phone: the method choice, the code, the results, the interim slip.

Each lays out what the controller holds (the journey's QrPayment and outcome, through
ui.qr_payment) and wires taps to it; amounts come formatted from the core's integers.
The dynamic code is drawn with segno, as the receipts' code is (kiosk.receipts.qr).
"""

import io
from collections.abc import Hashable

import segno
from kivy.core.image import Image as CoreImage
from kivy.uix.image import Image
from kivy.uix.widget import Widget

from kiosk.transactions.kinds import QrStage, TxOutcome
from ui.screen_ids import ScreenId
from ui.screens.base import KioskScreen
from ui.screens.resident import facts
from ui.screens.result_lines import add_receipt_lines, finish_footer, settled_warning, slip_text
from ui.widgets import KioskButton, Look, button, column, row, spacer, text


def dynamic_code(content: str, look: Look) -> Image:
    """The order's dynamic code, large enough for a phone held at arm's length."""
    buffer = io.BytesIO()
    # Level M: the code is shown on a clean screen; a lower version keeps modules large.
    segno.make(content, error="m").save(buffer, kind="png", scale=8, border=4)
    buffer.seek(0)
    texture = CoreImage(buffer, ext="png").texture
    image = Image(texture=texture, size_hint=(None, 1), width=look.target_px * 5)
    image.action_id = "payment-qr"
    return image


class PayMethodScreen(KioskScreen):
    """Cash, or scan to pay with the wallets' names, after the confirmation."""

    screen_id = ScreenId.PAY_METHOD
    title = "How do you want to pay?"

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        journey = c.journey
        total = 0
        if journey.quote is not None:
            total = journey.quote.total_fen
        elif journey.topup is not None:
            total = journey.topup.total_fen
        tall = look.target_px * 3
        return column(
            spacer(),
            text(
                look,
                t("Total to pay: {total}").format(total=c.money(total)),
                font=44,
                bold=True,
            ),
            row(
                button(
                    look,
                    "pay-cash",
                    t("Pay in cash") + "\n" + t("Insert notes or coins"),
                    c.qr.pay_cash,
                    font=31,
                    height=tall,
                ),
                button(
                    look,
                    "pay-qr",
                    t("Scan to pay") + "\n" + c.qr.wallet_names(),
                    c.qr.pay_by_phone,
                    font=31,
                    height=tall,
                ),
                height=tall,
            ),
            spacer(),
        )


class QrPayScreen(KioskScreen):
    """The dynamic code, the amount large, the countdown, the scanner, cancel."""

    screen_id = ScreenId.QR_PAY
    title = "Scan to pay"

    def shape(self) -> Hashable:
        qr = self.controller.journey.qr
        return ("qr", qr.tx_id, qr.stage) if qr is not None else ("qr", None)

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        qr = c.journey.qr
        if qr is None:
            return Widget()
        parts: list[Widget] = [
            spacer(),
            text(look, c.service_name(), font=31),
            text(look, t("Amount to pay"), font=25, colour=look.palette.muted),
            text(look, c.money(qr.amount_fen), font=61, bold=True),
        ]
        if qr.stage is QrStage.CONFIRMING:
            parts.append(
                text(look, t("Please confirm the payment on your phone"), font=31, bold=False)
            )
        else:
            parts.append(
                text(
                    look,
                    t("Scan the code with {wallets}").format(wallets=c.qr.wallet_names()),
                    font=25,
                )
            )
            if c.qr.scanner_present:
                parts.append(text(look, t("Or show your payment code to the scanner"), font=25))
        parts += [
            self.live(text(look, "", font=25, colour=look.palette.muted), c.qr.countdown_text),
            self.live(
                text(look, "", font=25, colour=look.palette.error), lambda: c.journey.qr_error
            ),
            spacer(),
        ]
        if not qr.code_url:  # an order made by a payment code alone has no dynamic code
            return column(*parts, spacing=6)
        return row(dynamic_code(qr.code_url, look), column(*parts, spacing=6))


class QrResultScreen(KioskScreen):
    """Paid (the receipt, the wallet), not paid (nothing taken, or the time ran out), or
    refunded to the wallet that paid."""

    screen_id = ScreenId.QR_RESULT
    title = "Done"
    cancellable = False

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        qr = c.journey.qr
        outcome = c.journey.outcome
        if qr is None or outcome is None:
            return Widget()
        wallet = c.qr.wallet_name(qr.paid_with or outcome.paid_with)
        lines: list[Widget] = [spacer()]
        if outcome.outcome == TxOutcome.PAID:
            lines.append(text(look, t("Payment successful"), font=44, bold=True))
            lines.append(
                text(
                    look,
                    t("Paid {amount} with {wallet}").format(
                        amount=c.money(qr.amount_fen), wallet=wallet
                    ),
                    font=31,
                )
            )
            code = add_receipt_lines(c, look, outcome, lines)
            if code is not None:
                return row(column(*lines), code)
        elif outcome.outcome == TxOutcome.REFUNDED:
            lines.append(text(look, t("The payment could not be completed"), font=44, bold=True))
            lines.append(
                text(
                    look,
                    t("The money goes back to your {wallet}: {amount}").format(
                        wallet=wallet, amount=c.money(outcome.refunded_fen or qr.amount_fen)
                    ),
                    font=31,
                )
            )
            lines.append(text(look, t("Nothing was paid to the service."), font=25))
        else:
            if c.journey.qr_expired:
                title = t("The time to pay ran out")
            elif outcome.outcome == TxOutcome.CANCELLED:
                title = t("Payment cancelled")
            else:
                title = t("Payment not made")
            lines.append(text(look, title, font=44, bold=True))
            lines.append(text(look, t("Nothing was taken from your phone."), font=31))
        lines.append(spacer())
        return column(*lines)

    def footer(self, look: Look) -> list[KioskButton]:
        return finish_footer(self.controller, look)


class QrInDoubtScreen(KioskScreen):
    """What the interim slip of a payment by phone says: reference, reprint code, amount,
    that the result is settled automatically, and that money not used goes back."""

    screen_id = ScreenId.QR_IN_DOUBT
    title = "Your payment is being confirmed"
    cancellable = False

    def body(self, look: Look) -> Widget:
        c = self.controller
        t = c.t
        qr = c.journey.qr
        outcome = c.journey.outcome
        if qr is None or outcome is None:
            return Widget()
        lines = [
            (t("Reference"), outcome.tx_id),
            (t("Reprint code"), outcome.token or "-"),
            (t("Amount to pay"), c.money(qr.amount_fen)),
        ]
        if qr.paid_with:
            lines.append((t("Paid with"), c.qr.wallet_name(qr.paid_with)))
        return column(
            spacer(),
            settled_warning(c, look),
            text(
                look,
                t(
                    "The operator has not confirmed your payment yet. If it cannot be "
                    "completed, the money goes back to the wallet you paid with."
                ),
                font=25,
            ),
            facts(look, lines, font=25),
            text(look, slip_text(c, printed=outcome.printed), font=25),
            spacer(),
        )

    def footer(self, look: Look) -> list[KioskButton]:
        return finish_footer(self.controller, look)
