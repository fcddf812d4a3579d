"""The frame every screen shares: header (station, language, text modes), body, footer.

A screen is re-rendered from the controller's fields whenever it is entered or the
controller asks (a language switch, a new amount), so nothing on screen outlives the
journey state that produced it. Screens hold no state of their own.

A keypad tap must not rebuild the whole screen (dozens of text textures): a screen whose
layout depends only on what `shape()` returns registers its changing texts with `live()`,
and a redraw with the same shape only sets those texts again.
"""

from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any

from kivy.animation import Animation
from kivy.clock import Clock
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen
from kivy.uix.widget import Widget

from ui.controller import KioskController
from ui.memory import collect_left_screen, return_free_heap
from ui.screen_ids import WAITING, ScreenId
from ui.widgets import HIGH_CONTRAST, NORMAL, KioskButton, Look, button, paint_background, text


class KioskScreen(Screen):
    screen_id: ScreenId
    title = ""  # English message id
    cancellable = True  # a cancel button in the footer

    def __init__(self, controller: KioskController, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.controller = controller
        self._live: list[tuple[Any, Callable[[], str]]] = []
        self._rendered_shape: Hashable = None

    def shape(self) -> Hashable:
        """What this screen's layout depends on beyond its live texts; None: always rebuild."""
        return None

    def _full_shape(self) -> Hashable:
        own = self.shape()
        if own is None:
            return None
        d = self.controller.display
        return (d.lang, d.large_text, d.high_contrast, own)

    def live(self, widget: Any, content: Callable[[], str]) -> Any:
        """Register a widget whose text follows content() on a cheap redraw."""
        widget.text = content()
        self._live.append((widget, content))
        return widget

    def redraw(self) -> None:
        """The controller's state changed: update the live texts, or rebuild when needed."""
        shape = self._full_shape()
        if shape is not None and shape == self._rendered_shape and self._live:
            for widget, content in self._live:
                widget.text = content()
            return
        self.render()

    def look(self) -> Look:
        return look_of(self.controller)

    def on_pre_enter(self, *args: object) -> None:
        self.render()

    def on_leave(self, *args: object) -> None:
        # A screen out of sight keeps nothing: its text textures are freed, its animations
        # stopped (a repeating one would hold its widget forever), and nothing personal stays.
        self._stop_animations()
        self.clear_widgets()
        self._live = []
        self._rendered_shape = None
        # The left widgets are reference cycles: collect them before this frame is drawn,
        # after the frame's other callbacks, and trim the heap on the next frame, once
        # Kivy's clock has deleted their textures from the GL driver.
        resting = self.manager is not None and self.manager.current in WAITING
        Clock.schedule_once(lambda _dt: self._release_left_widgets(resting), -1)

    @staticmethod
    def _release_left_widgets(resting: bool) -> None:
        collect_left_screen()
        if resting:
            Clock.schedule_once(lambda _dt: return_free_heap(), 0)

    def _stop_animations(self) -> None:
        # A method of its own: a loop variable left in on_leave would keep the last widget,
        # and through its parent the whole left screen, alive past the collection.
        for widget in self.walk(restrict=True):
            Animation.cancel_all(widget)

    def render(self) -> None:
        look = self.look()
        self.clear_widgets()
        self._live = []
        self._rendered_shape = self._full_shape()
        frame = BoxLayout(orientation="vertical", padding=20, spacing=14)
        paint_background(frame, look.palette.background)
        frame.add_widget(self.header(look))
        frame.add_widget(self.body(look))
        footer = self.footer(look)
        if footer:
            bar = BoxLayout(orientation="horizontal", spacing=16, size_hint_y=None)
            bar.height = look.target_px
            for widget in footer:
                bar.add_widget(widget)
            frame.add_widget(bar)
        self.add_widget(frame)

    def header(self, look: Look) -> Widget:
        """The title and the three switches. They keep their normal size in large-text mode:
        the title is heading size already, and the switches stay where the resident found
        them (the body's text is what grows)."""
        c = self.controller
        t = c.t
        d = c.display
        look = replace(look, scale=1.0)
        bar = BoxLayout(orientation="horizontal", spacing=12, size_hint_y=None)
        bar.kiosk_header = True  # tests and the layout check's readers find it by this
        bar.height = look.target_px
        bar.add_widget(
            text(look, t(self.title) if self.title else "", font=38, bold=True, fill=True)
        )
        switch = "English" if d.lang == "zh_CN" else "中文"
        width = look.target_px * 2
        bar.add_widget(button(look, "language", switch, d.toggle_language, width=width))
        bar.add_widget(
            button(
                look,
                "large-text",
                t("Large text"),
                d.toggle_large_text,
                kind="muted",
                width=width,
                font=24,
            )
        )
        bar.add_widget(
            button(
                look,
                "high-contrast",
                t("High contrast"),
                d.toggle_high_contrast,
                kind="muted",
                width=width,
                font=24,
            )
        )
        return bar

    def body(self, look: Look) -> Widget:
        raise NotImplementedError

    def footer(self, look: Look) -> list[KioskButton]:
        if not self.cancellable:
            return []
        c = self.controller
        return [button(look, "cancel", c.t("Cancel"), c.cancel, kind="danger")]


def look_of(controller: KioskController) -> Look:
    """Sizes and colours for the resident's current modes."""
    display = controller.display
    return Look(
        target_px=controller.settings.min_target_px,
        scale=1.35 if display.large_text else 1.0,
        palette=HIGH_CONTRAST if display.high_contrast else NORMAL,
    )
