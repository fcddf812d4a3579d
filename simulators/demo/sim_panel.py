"""The demo's simulator panel: the actions of simulators.demo.devices as buttons and keys.

Owns the small panel over the left edge of the window (toggled with the "h" key) and the
keyboard bindings; what each action does is simulators.demo.devices'. Only the demo shows it.
"""

import functools
from collections.abc import Callable
from typing import Any

from kivy.core.window import Window
from kivy.uix.gridlayout import GridLayout

from simulators.demo.devices import TOGGLE_KEY, SimAction, demo_actions, run_action
from ui.settings import UiSettings
from ui.widgets import NORMAL, Look, button, paint_background, text


class SimulatorPanel(GridLayout):
    """Two rows of small buttons over the header's title, the last cell says what happened.

    It covers the screen title only, never a resident's button or amount; "h" hides it.
    """

    COLUMNS = 9  # two rows hold every action and the status cell

    def __init__(self, sims: Any, **kwargs: Any) -> None:
        super().__init__(cols=self.COLUMNS, spacing=2, size_hint=(None, None), **kwargs)
        self.sims = sims
        # Taken off the window (the app ends): stop answering the demo's keys.
        self.bind(parent=self._parent_changed)
        self.actions = demo_actions()
        self.by_key = {a.key: a for a in self.actions}
        paint_background(self, (0.15, 0.15, 0.18, 0.95))
        rows = -(-(len(self.actions) + 1) // self.COLUMNS)
        look = Look(target_px=int(self.height / rows) - 2, scale=1.0, palette=NORMAL)
        for action in self.actions:
            self.add_widget(
                button(
                    look,
                    f"sim-{action.name}",
                    f"{action.key}: {action.short}",
                    functools.partial(self.apply, action),
                    kind="muted",
                    font=13,
                )
            )
        self.status = text(look, "demo", font=12, colour=(1, 1, 0.7, 1))
        self.add_widget(self.status)
        self.shown = True
        self._x: float = self.x
        Window.bind(on_keyboard=self._on_key)

    def apply(self, action: SimAction) -> str:
        what = run_action(action, self.sims)
        self.status.text = what
        return what

    def toggle(self) -> None:
        self.shown = not self.shown
        self.opacity = 1 if self.shown else 0
        self.disabled = not self.shown
        # Hidden, it must not take touches meant for the screen under it.
        self.x = self._x if self.shown else -10_000

    def _on_key(self, _window: Any, _key: int, _code: int, text: str | None, _mods: Any) -> bool:
        if not text:
            return False
        if text == TOGGLE_KEY:
            self.toggle()
            return True
        action = self.by_key.get(text)
        if action is None:
            return False
        self.apply(action)
        return True

    def _parent_changed(self, _panel: Any, parent: Any) -> None:
        if parent is None:
            self.stop()

    def stop(self) -> None:
        Window.unbind(on_keyboard=self._on_key)


def demo_panel(sims: Any) -> Callable[[UiSettings], SimulatorPanel]:
    """The panel as the window's overlay (ui.root.KioskRoot), over the header's title:
    the frame's padding is 20 px, the header's three buttons 2 targets wide each."""

    def make(settings: UiSettings) -> SimulatorPanel:
        target = settings.min_target_px
        return SimulatorPanel(
            sims,
            pos=(20, settings.height_px - 20 - target),
            size=(settings.width_px - 40 - 3 * (2 * target + 12) - 8, target),
        )

    return make
