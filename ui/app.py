"""`kiosk-ui --config F`: the terminal's touchscreen app (kiosk.service runs it full screen).

Owns the Kivy App, hosted on kiosk.runtime (the terminal's thread: guarded start, systemd
READY and WATCHDOG, telemetry, remote commands, update confirmation). On a terminal the
window fills the screen without a cursor; SDL's kmsdrm driver draws it without X or
Wayland. Without a display it says in one line how to get one, never with a traceback.
The demo station on simulated devices is not here (nothing a terminal ships loads a
simulator): simulators/demo/touchscreen.py hosts this same app on it (`make demo`).
"""

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ui.kivy_env import prepare_kivy
from ui.settings import UiSettings

log = logging.getLogger(__name__)

NO_DISPLAY = (
    "no display: run the app on a desktop (`make demo` for the demo station), or headless "
    'under Xvfb with `xvfb-run -s "-screen 0 1280x800x24"` before the command '
    "(screenshots of every screen: `make screens`)"
)


def has_display() -> bool:
    """An X or Wayland display, or SDL's KMS/DRM driver (the terminal: no X, no Wayland)."""
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return True
    return os.environ.get("SDL_VIDEODRIVER", "") in KMS_DRIVERS


# SDL drivers that draw on the console's DRM device themselves (kiosk.service sets one).
KMS_DRIVERS = ("kmsdrm",)


def run_app(
    runtime: Any,
    settings: UiSettings,
    overlay: Callable[[UiSettings], Any] | None = None,
    fullscreen: bool = False,
) -> None:
    """The window, on the runtime's terminal, until it is closed or a restart is asked for.
    overlay: a widget over every screen (ui.root.KioskRoot; the demo's simulator panel)."""
    prepare_kivy(settings, fullscreen=fullscreen)
    from kivy.app import App
    from kivy.clock import Clock

    from ui.controller import KioskController
    from ui.root import KioskRoot

    def post(call: Any) -> None:
        Clock.schedule_once(lambda _dt: call(), 0)

    controller = KioskController(runtime.terminal, settings, post=post, submit=runtime.submit)

    class KioskApp(App):
        title = "kiosk"

        def build(self) -> KioskRoot:
            return KioskRoot(controller, overlay)

        def on_start(self) -> None:
            log.info("screen %s", controller.screen)
            # After the first frame: READY (and a trial version's confirmation) only once
            # the screen really shows something.
            Clock.schedule_once(lambda _dt: runtime.ui_ready(), 0)

        def on_stop(self) -> None:
            controller.shutdown()

    app = KioskApp()

    def stop_app(*_: Any) -> None:
        Clock.schedule_once(lambda _dt: app.stop(), 0)

    runtime.on_stop_requested(stop_app)  # a remote "reboot": systemd starts us again
    previous = signal.signal(signal.SIGTERM, stop_app)  # systemctl stop: close cleanly
    try:
        app.run()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _hosted(args: argparse.Namespace) -> tuple[Any, int]:
    """(runtime, 0) for the terminal of --config, started on its thread; or (None, 1)."""
    from kiosk.config import load_config, refuse_development_trust
    from kiosk.errors import KioskError
    from kiosk.runtime import Runtime
    from kiosk.service_notify import ServiceNotifier
    from station.composition import build_hosted_terminal

    try:
        config = load_config(args.config)
        refuse_development_trust(config)
        terminal = build_hosted_terminal(config)
    except KioskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None, 1
    runtime = Runtime(
        terminal,
        config=config,
        notifier=ServiceNotifier(),
        telemetry=True,
        owns_terminal=True,
        wait_for_ui=True,
    )
    runtime.start_thread()
    runtime.started.wait()
    if runtime.start_error is not None:
        runtime.join()
        print(f"error: {runtime.start_error}", file=sys.stderr)
        return None, 1
    return runtime, 0


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """The resident-facing settings a command line may change (the app's and the demo's)."""
    parser.add_argument("--no-voice", action="store_true")
    parser.add_argument("--large-text", action="store_true")
    parser.add_argument("--high-contrast", action="store_true")
    parser.add_argument("--idle-timeout", type=float, default=60.0)


def settings_of(args: argparse.Namespace) -> UiSettings:
    return UiSettings(
        voice=not args.no_voice,
        large_text=args.large_text,
        high_contrast=args.high_contrast,
        idle_timeout_s=args.idle_timeout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk-ui", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="terminal configuration")
    parser.add_argument(
        "--windowed",
        action="store_true",
        help="a window instead of the full screen without a cursor",
    )
    add_settings_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not has_display():
        print(NO_DISPLAY, file=sys.stderr)
        return 2
    runtime, code = _hosted(args)
    if runtime is None:
        return code
    try:
        run_app(runtime, settings_of(args), fullscreen=not args.windowed)
    finally:
        runtime.stop()
        runtime.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
