"""Driving the real app without a person: frames, taps through Kivy's touch pipeline, waits.

Used by the UI tests, `make screens` (tests.ui_screens) and tests.bench_support.ui. A tap is
a real MotionEvent (`HarnessTouch`, the same as kivy.tests.common.UnitTestTouch, which would
bring pytest into the process the bench measures) posted into the window's input queue at
the centre of the widget with that action_id, so it goes through the same on_touch_down/up
dispatch and collision tests as a finger on the panel. Waiting pumps Kivy's event loop frame
by frame until a condition holds or a generous deadline passes (never a fixed sleep).
"""

import functools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from kiosk.runtime import Runtime
from kiosk.terminal import Terminal
from ui.kivy_env import prepare_kivy
from ui.settings import UiSettings

DEFAULT_TIMEOUT_S = 20.0
T = TypeVar("T")


@functools.cache
def _touch_class() -> Any:
    # Imported late: Kivy reads its environment when first imported (ui.kivy_env sets it).
    from kivy.input.motionevent import MotionEvent

    class HarnessTouch(MotionEvent):
        def depack(self, args: dict[str, float]) -> None:
            # Positions are fractions of the window, as a touchscreen reports them.
            self.sx = args["x"]
            self.sy = args["y"]
            super().depack(args)

    return HarnessTouch


def harness_touch(window: Any, x: float, y: float) -> Any:
    """A one-finger touch at window pixel (x, y), as Kivy's input providers make them."""
    relative = {"x": x / (window.width - 1.0), "y": y / (window.height - 1.0)}
    touch = _touch_class()("HarnessTouch", 99, relative, is_touch=True, type_id="touch")
    touch.profile = ["pos"]
    return touch


class UiHarness:
    def __init__(self, terminal: Terminal, settings: UiSettings, *, sims: Any = None) -> None:
        prepare_kivy(settings)
        from kivy.base import EventLoop
        from kivy.clock import Clock

        from simulators.demo.sim_panel import demo_panel
        from ui.controller import KioskController
        from ui.root import KioskRoot
        from ui.voice import Voice

        EventLoop.ensure_window()
        self.window = EventLoop.window
        self._event_loop = EventLoop

        def post(call: Callable[[], None]) -> None:
            Clock.schedule_once(lambda _dt: call(), 0)

        # The terminal was started by the caller; the runtime hosts it on its own thread
        # (housekeeping, cash, card slot, events) as in the app, without systemd or MQTT.
        self.runtime = Runtime(terminal, started=True)
        self.runtime.start_thread()
        self.controller = KioskController(
            terminal,
            settings,
            post=post,
            submit=self.runtime.submit,
            voice=Voice(settings.voice),
        )
        self.root = KioskRoot(self.controller, None if sims is None else demo_panel(sims))
        self.window.add_widget(self.root)
        self.pump(3)

    # ------------------------------------------------------------------ frames

    def pump(self, frames: int = 1) -> None:
        for _ in range(frames):
            self._event_loop.idle()

    def wait_for(
        self, condition: Callable[[], bool], what: str, timeout: float = DEFAULT_TIMEOUT_S
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what}; "
                    f"screen is {self.controller.screen!r}"
                )
            self.pump()

    def wait_screen(self, name: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.wait_for(
            lambda: (
                self.controller.screen == name
                and self.root.manager.current == name
                and not self.controller.worker.busy
            ),
            f"screen {name!r}",
            timeout,
        )
        self.pump(2)  # let the new screen lay itself out before anything is tapped

    def settle(self) -> None:
        self.wait_for(lambda: not self.controller.worker.busy, "the core to be idle")
        self.pump(2)

    # ------------------------------------------------------------------ widgets and taps

    def widgets(self) -> Iterator[Any]:
        yield from self.root.walk(restrict=True)

    def find(self, action_id: str) -> Any:
        for widget in self.widgets():
            if getattr(widget, "action_id", None) == action_id and widget.get_root_window():
                return widget
        raise AssertionError(
            f"no widget {action_id!r} on screen {self.controller.screen!r}; there are: "
            + ", ".join(sorted(self.action_ids()))
        )

    def action_ids(self) -> set[str]:
        return {w.action_id for w in self.widgets() if getattr(w, "action_id", "")}

    def tap(self, action_id: str) -> float:
        """Touch the widget's centre; returns seconds from touch-down to the next frame."""
        return self.timed_tap(action_id)[0]

    def timed_tap(self, action_id: str) -> tuple[float, float]:
        """Touch the widget's centre: (feedback, response) in seconds.

        feedback: touch-down to the end of the frame that drew the pressed state (checked:
        the button's colour changed); response: touch-up to the end of the frame after the
        tap's action ran (the new digit or the next screen drawn).
        """
        widget = self.find(action_id)
        colour = list(widget.background_color)
        x, y = widget.to_window(*widget.center)
        touch = harness_touch(self.window, x, y)
        started = time.perf_counter()
        self._event_loop.post_dispatch_input("begin", touch)
        self.pump()
        feedback = time.perf_counter() - started
        if list(widget.background_color) == colour:
            raise AssertionError(f"{action_id!r} showed no pressed state after touch-down")
        started = time.perf_counter()
        self._event_loop.post_dispatch_input("end", touch)
        # Like a lifted finger, the harness keeps neither the touch nor the button: a screen
        # left in the next frames must be freeable then (ui.memory), as on the terminal.
        del widget, touch
        self.pump(2)  # the release frame, then the frame whose clock runs the action
        return feedback, time.perf_counter() - started

    def type_digits(self, digits: str) -> None:
        for digit in digits:
            self.tap(f"key-{digit}")

    def phone_topup_to_cash(self, number: str, amount_action: str) -> None:
        """From the idle screen, tap through a phone top-up to the cash screen."""
        self.tap("start")
        self.wait_screen("menu")
        self.tap("service-mobile-topup")
        self.wait_screen("account")
        self.type_digits(number)
        self.tap("confirm")
        self.wait_screen("amount")
        self.tap(amount_action)
        self.wait_screen("topup_confirm")
        self.tap("pay")
        self.wait_screen("pay_method")
        self.tap("pay-cash")
        self.wait_screen("cash")

    def layout_problems(self) -> list[Any]:
        """What the layout check finds on the screen shown (ui.layout_check)."""
        from ui.layout_check import layout_problems

        return layout_problems(self.root.current_screen(), tuple(self.window.size))

    def texts(self) -> list[str]:
        return [w.text for w in self.widgets() if isinstance(getattr(w, "text", None), str)]

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.root.export_to_png(str(path))

    def core(self, call: Callable[[], T]) -> T:
        """Run call on the terminal's thread and wait (a test's direct use of the core)."""
        return self.runtime.submit(call).result(timeout=DEFAULT_TIMEOUT_S)

    def close(self) -> None:
        self.root.stop()
        self.settle()
        self.window.remove_widget(self.root)
        self.controller.shutdown()
        self.runtime.stop()
        self.runtime.join(DEFAULT_TIMEOUT_S)
        self.pump()
