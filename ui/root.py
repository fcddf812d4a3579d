"""The window's content: the screen manager and the idle-timeout countdown.

Owns the link between Kivy's clock and the controller's idle timeout: one timer counts the
resident's time down. It polls nothing of the core: cash, card and status changes arrive
as the core's events (kiosk.runtime, through the controller), and the core's housekeeping
(I/O board watchdog, board events, lamp) runs on the runtime's own loop. It never holds
journey state (the controller does).
"""

from collections.abc import Callable
from typing import Any

from kivy.clock import Clock
from kivy.core.window import Window
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.screenmanager import NoTransition, ScreenManager
from kivy.uix.widget import Widget

from ui.controller import KioskController
from ui.memory import freeze_startup_objects
from ui.screen_ids import ScreenId
from ui.screens import SCREENS, KioskScreen
from ui.screens.base import look_of
from ui.settings import UiSettings
from ui.widgets import button, paint_background, text

# The idle timeout's resolution: the countdown shows whole seconds.
TIMEOUT_TICK_S = 0.25


class KioskRoot(FloatLayout):
    def __init__(
        self,
        controller: KioskController,
        overlay: Callable[[UiSettings], Widget] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.controller = controller
        self.manager = ScreenManager(transition=NoTransition())
        for name, screen_class in SCREENS.items():
            self.manager.add_widget(screen_class(controller, name=name))
        self.add_widget(self.manager)
        # A widget over every screen, made for these settings: only the demo has one, its
        # simulator panel (simulators/demo/sim_panel.py); a terminal never does.
        self.overlay = None if overlay is None else overlay(controller.settings)
        if self.overlay is not None:
            self.add_widget(self.overlay)
        self.countdown: BoxLayout | None = None
        controller.listeners.append(self._show)
        controller.redraw.append(self._redraw)
        Window.bind(on_touch_down=self._touched)
        self.manager.current = controller.screen
        self._event = Clock.schedule_interval(self._tick, TIMEOUT_TICK_S)
        controller.refresh_status()
        freeze_startup_objects()

    def current_screen(self) -> KioskScreen:
        screen = self.manager.current_screen
        assert isinstance(screen, KioskScreen)
        return screen

    def _touched(self, *_: Any) -> bool:
        self.controller.touched()
        return False

    def _show(self, name: ScreenId) -> None:
        if self.manager.current == name:
            self.current_screen().render()
        else:
            self.manager.current = name
        self._update_countdown()

    def _redraw(self) -> None:
        self.current_screen().redraw()
        self._update_countdown()

    def _tick(self, _dt: float) -> None:
        self.controller.tick()
        self._update_countdown()

    def _update_countdown(self) -> None:
        c = self.controller
        if not c.countdown_visible:
            if self.countdown is not None:
                self.remove_widget(self.countdown)
                self.countdown = None
            return
        left = max(0, int(c.seconds_left() or 0) + 1)
        look = look_of(c)
        message = c.t("Are you still there? The screen will be cleared in {seconds} s").format(
            seconds=left
        )
        if self.countdown is not None:
            self.countdown.children[-1].text = message
            return
        bar = BoxLayout(
            orientation="horizontal",
            spacing=16,
            padding=16,
            size_hint=(1, None),
            height=look.target_px + 40,
            pos=(0, 0),
        )
        paint_background(bar, (0.1, 0.1, 0.1, 0.95))
        bar.add_widget(text(look, message, font=30, colour=(1, 1, 0.6, 1)))
        bar.add_widget(
            button(look, "continue", c.t("Continue"), c.keep_going, width=look.target_px * 3)
        )
        self.countdown = bar
        self.add_widget(bar)

    def stop(self) -> None:
        self._event.cancel()
        if self.overlay is not None:
            self.remove_widget(self.overlay)  # it lets go of the window as it leaves
        Window.unbind(on_touch_down=self._touched)
