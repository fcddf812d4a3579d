"""The window's content: the screen manager and the idle-timeout countdown.

Owns the link between Kivy's clock and the controller's idle timeout: one timer counts the
resident's time down. It polls nothing of the core: cash, card and status changes arrive
as the core's events (kiosk.runtime, through the controller), and the core's housekeeping
(I/O board watchdog, board events, lamp) runs on the runtime's own loop. It never holds
journey state (the controller does).
"""

from typing import Any

from kivy.clock import Clock
from kivy.core.window import Window
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.screenmanager import NoTransition, ScreenManager

from ui.controller import KioskController
from ui.memory import freeze_startup_objects
from ui.screen_ids import ScreenId
from ui.screens import SCREENS, KioskScreen
from ui.screens.base import look_of
from ui.sim_panel import SimulatorPanel
from ui.widgets import button, paint_background, text

# The idle timeout's resolution: the countdown shows whole seconds.
TIMEOUT_TICK_S = 0.25


class KioskRoot(FloatLayout):
    def __init__(self, controller: KioskController, sims: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.controller = controller
        self.manager = ScreenManager(transition=NoTransition())
        for name, screen_class in SCREENS.items():
            self.manager.add_widget(screen_class(controller, name=name))
        self.add_widget(self.manager)
        self.panel: SimulatorPanel | None = None
        if sims is not None:
            # The demo's simulator panel, over the header's title (the "h" key hides it):
            # the frame's padding is 20 px, the header's three buttons 2 targets wide each.
            settings = controller.settings
            target = settings.min_target_px
            self.panel = SimulatorPanel(
                sims,
                pos=(20, settings.height_px - 20 - target),
                size=(settings.width_px - 40 - 3 * (2 * target + 12) - 8, target),
            )
            self.add_widget(self.panel)
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
        if self.panel is not None:
            self.panel.stop()
        Window.unbind(on_touch_down=self._touched)
