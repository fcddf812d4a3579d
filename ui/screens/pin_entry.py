"""The body of a staff card's login: the prompt, the PIN typed so far as stars, the last
refusal, and the keypad (the technician's and the station operator's login screens)."""

from kivy.uix.widget import Widget

from ui.screens.base import KioskScreen
from ui.widgets import Look, column, keypad, row, spacer, text


def pin_entry(screen: KioskScreen, look: Look, prompt: str, *, error_font: int) -> Widget:
    c = screen.controller
    left = column(
        spacer(),
        text(look, prompt, font=31),
        screen.live(text(look, "", font=56, bold=True), lambda: "*" * len(c.journey.digits) or "-"),
        screen.live(
            text(look, "", font=error_font, colour=look.palette.error), lambda: c.journey.error
        ),
        spacer(),
    )
    return row(left, keypad(look, c.key, c.delete, c.clear_digits, c.t("Delete"), c.t("Clear")))
