"""What the result and interim-slip screens of both ways to pay (cash, phone) show alike.

The card credit, the receipt number and an unprinted receipt's code on a result screen; the
warning and the slip's collect line on an interim-slip screen; the Finish button. Each screen
keeps what is its own (amounts received, the wallet) and calls these for the rest.
"""

import io

from kivy.core.image import Image as CoreImage
from kivy.uix.image import Image
from kivy.uix.widget import Widget

from kiosk.receipts.qr import qr_symbol
from kiosk.transactions.kinds import CardCreditState
from kiosk.transactions.outcomes import Outcome
from ui.controller import KioskController
from ui.widgets import KioskButton, Look, button, spacer, text


def qr_image(payload: str, look: Look) -> Image:
    """The receipt's code, for a phone to keep what the printer could not print."""
    buffer = io.BytesIO()
    qr_symbol(payload).save(buffer, kind="png", scale=4, border=2)
    buffer.seek(0)
    texture = CoreImage(buffer, ext="png").texture
    image = Image(texture=texture, size_hint=(None, 1), width=look.target_px * 5)
    image.action_id = "receipt-qr"
    return image


def add_receipt_lines(
    c: KioskController, look: Look, outcome: Outcome, lines: list[Widget]
) -> Image | None:
    """Append the card credit, the receipt number and, when the receipt was not printed,
    how to keep it; return the receipt's code to show beside the lines, if there is one."""
    t = c.t
    if outcome.card_credit == CardCreditState.WRITTEN:
        lines.append(text(look, t("The credit is on your card: you may take it out"), font=25))
    if outcome.receipt_no:
        lines.append(
            text(look, t("Receipt number: {number}").format(number=outcome.receipt_no), font=25)
        )
    if outcome.receipt_no and not outcome.printed:
        lines.append(
            text(
                look,
                t(
                    "The receipt could not be printed. Scan this code to "
                    "keep it, or collect it later from the menu with the "
                    "reprint code {token}."
                ).format(token=outcome.token or "-"),
                font=25,
                colour=look.palette.error,
            )
        )
        lines.append(spacer())
        payload = c.resident.receipt_qr()
        if payload is not None:
            return qr_image(payload, look)
    return None


def settled_warning(c: KioskController, look: Look) -> Widget:
    """The interim slip's first line: the resident must not pay again."""
    return text(
        look,
        c.t("The result is settled automatically: do not pay again."),
        font=31,
        colour=look.palette.error,
    )


def slip_text(c: KioskController, *, printed: bool) -> str:
    """Whether the interim slip was printed, and how to collect the receipt later."""
    t = c.t
    if printed:
        slip = t("An interim slip with these codes was printed: keep it.")
    else:
        slip = t("No slip could be printed: write down the reference and the reprint code.")
    collect = t(
        "Collect your receipt later with the reprint code: menu, Reprint or collect a receipt."
    )
    return f"{slip} {collect}"


def finish_footer(c: KioskController, look: Look) -> list[KioskButton]:
    """The one button of a result or interim-slip screen."""
    return [button(look, "done", c.t("Finish"), c.resident.result_done)]
