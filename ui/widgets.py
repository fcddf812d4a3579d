"""The few widgets every screen is built from: big buttons, text, a numeric keypad, colours.

Owns sizes and colours: every button is at least 15 mm high and wide on the configured
screen (ui.settings), text scales in large-text mode on a short ladder of typefaces (each
size and weight costs memory for the life of the process), colours switch in high-contrast
mode.
A button shows its pressed colour on the frame after touch-down; its action runs after
release, on the next frame, so a heavy screen rebuild never delays the feedback. Screens
find their buttons by `action_id` (tests and the screenshot tool tap them by it).
"""

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kivy.clock import Clock
from kivy.graphics import Color, Rectangle
from kivy.properties import StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.gridlayout import GridLayout
from kivy.uix.image import Image
from kivy.uix.label import Label
from kivy.uix.widget import Widget


@dataclass(frozen=True)
class Palette:
    background: tuple[float, float, float, float]
    text: tuple[float, float, float, float]
    muted: tuple[float, float, float, float]
    button: tuple[float, float, float, float]
    button_text: tuple[float, float, float, float]
    danger: tuple[float, float, float, float]
    disabled: tuple[float, float, float, float]
    error: tuple[float, float, float, float]


NORMAL = Palette(
    background=(0.96, 0.97, 0.98, 1),
    text=(0.08, 0.1, 0.14, 1),
    muted=(0.3, 0.34, 0.4, 1),
    button=(0.0, 0.38, 0.22, 1),  # postal green
    button_text=(1, 1, 1, 1),
    danger=(0.7, 0.12, 0.1, 1),
    disabled=(0.6, 0.62, 0.65, 1),
    error=(0.75, 0.05, 0.05, 1),
)
HIGH_CONTRAST = Palette(
    background=(0, 0, 0, 1),
    text=(1, 1, 1, 1),
    muted=(1, 1, 0.4, 1),
    button=(1, 0.85, 0, 1),
    button_text=(0, 0, 0, 1),
    danger=(1, 1, 1, 1),
    disabled=(0.35, 0.35, 0.35, 1),
    error=(1, 0.5, 0.5, 1),
)


@dataclass(frozen=True)
class Look:
    """Sizes and colours for one rendering: from the settings and the resident's modes."""

    target_px: int
    scale: float
    palette: Palette

    def typeface(self, base: float, bold: bool = False) -> tuple[int, bool]:
        """(pixel size, bold) of text designed at base px and that weight in normal mode."""
        return typeface(base, bold=bold, large=self.scale > 1.0)


LARGE_TEXT_SCALE = 1.35

# Every distinct (size, weight) is one more FreeType face of the CJK font, opened by Kivy's
# SDL2 text provider for the life of the process: about 2.5 MB each with Noto Sans CJK
# (measured; its subroutine tables are copied per face). So text comes in one short ladder
# of typefaces: regular from 16 to 31 px in 1.25x steps, then bold from 39 px in 1.56x
# steps: large text is a heading, and bold text is at least heading size. A normal screen
# uses four faces (25 and 31 regular, 39 and 61 bold), and large-text mode, one step up the
# same ladder, adds at most one.
TYPEFACES: tuple[tuple[int, bool], ...] = (
    (16, False),
    (20, False),
    (25, False),
    (31, False),
    (39, True),
    (61, True),
    (95, True),
    (149, True),
)
_SMALLEST_BOLD = next(i for i, (_, bold) in enumerate(TYPEFACES) if bold)


def _nearest_step(pixels: float) -> int:
    return min(
        range(len(TYPEFACES)),
        key=lambda i: abs(math.log(TYPEFACES[i][0] / max(pixels, 1.0))),
    )


def typeface(base: float, *, bold: bool = False, large: bool = False) -> tuple[int, bool]:
    """(pixel size, bold) on the ladder for text designed at base px.

    Large text (x1.35) is always at least one step larger than normal text.
    """
    step = _nearest_step(base)
    if bold:
        step = max(step, _SMALLEST_BOLD)
    if large:
        step = min(max(_nearest_step(base * LARGE_TEXT_SCALE), step + 1), len(TYPEFACES) - 1)
    return TYPEFACES[step]


class KioskButton(Button):
    action_id = StringProperty("")


def paint_background(widget: Widget, rgba: tuple[float, float, float, float]) -> None:
    with widget.canvas.before:
        Color(*rgba)
        rect = Rectangle(pos=widget.pos, size=widget.size)

    def follow(*_: Any) -> None:
        rect.pos, rect.size = widget.pos, widget.size

    widget.bind(pos=follow, size=follow)


def button(
    look: Look,
    action_id: str,
    text: str,
    on_press: Callable[[], object],
    *,
    kind: str = "primary",
    enabled: bool = True,
    font: float = 30,
    height: int | None = None,
    width: int | None = None,
) -> KioskButton:
    palette = look.palette
    colour = {"primary": palette.button, "danger": palette.danger}.get(kind, palette.muted)
    size, bold = look.typeface(font)
    widget = KioskButton(
        action_id=action_id,
        text=text,
        font_size=size,
        bold=bold,
        halign="center",
        valign="middle",
        background_normal="",
        background_down="",
        background_color=colour if enabled else palette.disabled,
        color=palette.button_text if kind != "danger" or palette is NORMAL else (0, 0, 0, 1),
        size_hint_y=None,
        height=max(height or 0, look.target_px),
        disabled=not enabled,
    )
    if width is not None:
        widget.size_hint_x = None
        widget.width = max(width, look.target_px)
    widget.bind(size=lambda w, s: setattr(w, "text_size", (s[0] - 16, None)))
    normal = widget.background_color
    pressed_colour = pressed_shade(normal)

    def show_state(instance: KioskButton, state: str) -> None:
        # Feedback on touch-down, drawn on the very next frame: nothing else runs before it.
        instance.background_color = pressed_colour if state == "down" else normal

    def released(_instance: KioskButton) -> None:
        # The work (often a whole new screen) runs after the press was drawn.
        Clock.schedule_once(lambda _dt: on_press(), 0)

    widget.bind(state=show_state, on_release=released)
    return widget


def pressed_shade(
    rgba: tuple[float, float, float, float],
) -> tuple[float, float, float, float]:
    """A pressed button's colour: darker for light colours, lighter for dark ones."""
    r, g, b, a = rgba
    light = 0.299 * r + 0.587 * g + 0.114 * b > 0.5
    if light:
        return (r * 0.6, g * 0.6, b * 0.6, a)
    return (r + (1 - r) * 0.45, g + (1 - g) * 0.45, b + (1 - b) * 0.45, a)


def text(
    look: Look,
    content: str,
    *,
    font: float = 28,
    colour: tuple[float, float, float, float] | None = None,
    bold: bool = False,
    height: int | None = None,
    halign: str = "center",
    fill: bool = False,
) -> Label:
    """A text that wraps to its width. Its height follows its lines (so a column stacks
    texts without overlap and the layout check sees one that does not fit), unless fill
    (it takes a share of the free space) or a fixed height is asked for."""
    size, heavy = look.typeface(font, bold)
    label = Label(
        text=content,
        font_size=size,
        color=colour or look.palette.text,
        bold=heavy,
        halign=halign,
        valign="middle",
    )
    if height is not None:
        label.size_hint_y = None
        label.height = height * look.scale
    elif not fill:
        label.size_hint_y = None
        label.bind(texture_size=_follow_texture_height)
    label.bind(size=_wrap_to_width)
    return label


def _follow_texture_height(label: Label, size: tuple[float, float]) -> None:
    label.height = size[1]


def _wrap_to_width(label: Label, size: tuple[float, float]) -> None:
    label.text_size = (size[0], None)


def spacer() -> Widget:
    """Free space that a column or row shares out (centres what is between two of them)."""
    return Widget()


def icon(look: Look, path: Path, size_px: int) -> Image:
    """A white PNG icon (ui/icons) tinted to the palette's button text colour."""
    image = Image(
        source=str(path),
        color=look.palette.button_text,
        size_hint=(None, None),
        size=(size_px, size_px),
        fit_mode="contain",
    )
    return image


def tile(
    look: Look,
    action_id: str,
    label: str,
    on_press: Callable[[], object],
    *,
    picture: Path | None,
    kind: str = "primary",
    font: float = 30,
) -> KioskButton:
    """A menu tile: the service's icon above its name, both inside the button's text box
    (the icon's room is the label's top padding, so the layout check measures both)."""
    widget = button(look, action_id, label, on_press, kind=kind, font=font)
    widget.size_hint_y = 1
    if picture is None:
        return widget
    side = int(look.target_px * 0.55)
    widget.padding = [8, side + 10, 8, 6]
    image = icon(look, picture, side)
    image.color = widget.color
    widget.add_widget(image)

    def place(*_: Any) -> None:
        # The texture (icon room and text) is centred on the tile; the icon is its top.
        image.center_x = widget.center_x
        image.top = widget.center_y + widget.texture_size[1] / 2 - 4

    widget.bind(pos=place, size=place, texture_size=place)
    return widget


def keypad(
    look: Look,
    on_digit: Callable[[str], None],
    on_delete: Callable[[], None],
    on_clear: Callable[[], None],
    delete_text: str,
    clear_text: str,
) -> GridLayout:
    grid = GridLayout(cols=3, spacing=10, size_hint=(None, None))
    size = look.target_px + 6
    grid.width = size * 3 * 1.6 + 20
    grid.height = size * 4 + 30
    for digit in "123456789":
        grid.add_widget(
            button(
                look,
                f"key-{digit}",
                digit,
                functools.partial(on_digit, digit),
                font=40,
                height=size,
            )
        )
    grid.add_widget(button(look, "key-clear", clear_text, on_clear, kind="muted", height=size))
    grid.add_widget(button(look, "key-0", "0", lambda: on_digit("0"), font=40, height=size))
    grid.add_widget(button(look, "key-delete", delete_text, on_delete, kind="muted", height=size))
    return grid


def row(*children: Widget, spacing: int = 16, height: int | None = None) -> BoxLayout:
    box = BoxLayout(orientation="horizontal", spacing=spacing)
    if height is not None:
        box.size_hint_y = None
        box.height = height
    for child in children:
        box.add_widget(child)
    return box


def column(*children: Widget, spacing: int = 12) -> BoxLayout:
    box = BoxLayout(orientation="vertical", spacing=spacing)
    for child in children:
        box.add_widget(child)
    return box
