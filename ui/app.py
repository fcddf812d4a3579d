"""`kiosk-ui --config F`: the terminal's touchscreen app (kiosk.service runs it full screen).

Owns the Kivy App, hosted on kiosk.runtime (the terminal's thread: guarded start, systemd
READY and WATCHDOG, telemetry, remote commands, update confirmation), and the demo station:
with --demo (`python -m ui.app --demo`) it starts the platform simulator, a demo station
identity and the real terminal core on simulated devices under --data (var/ui-demo by
default), the I/O board included (its firmware logic in-process: door, case tamper), as
firmware_tools.demo does headless, and shows the simulator panel (ui.sim_panel) over the
window. On a terminal the window fills the screen without a cursor; SDL's kmsdrm driver
draws it without X or Wayland. Without a display it says in one line how to get one,
never with a traceback.
"""

import argparse
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ui.kivy_env import prepare_kivy
from ui.settings import UiSettings

log = logging.getLogger(__name__)

NO_DISPLAY = (
    "no display: run the demo on a desktop, or headless under Xvfb with "
    '`xvfb-run -s "-screen 0 1280x800x24" python -m ui.app --demo` '
    "(screenshots of every screen: `make screens`)"
)


def demo_station(data: Path, platform_url: str | None = None) -> tuple[Any, Any, Any]:
    """(terminal, simulators, platform simulator or None) for the demo, started.

    With platform_url the terminal uses that platform (the bench runs the simulator in its
    own process); otherwise a platform simulator starts in this process.
    """
    from firmware_tools.demo import demo_config, demo_signer, ensure_demo_float
    from station.composition import build_terminal
    from ui.demo_devices import (
        DEMO_CARD_PREFIXES,
        TECHNICIAN_CARD,
        TECHNICIAN_ID,
        TECHNICIAN_PIN,
        demo_card_number,
    )

    data.mkdir(parents=True, exist_ok=True)
    platform = None
    if platform_url is None:
        # Imported only here: a terminal on the operator's platform never loads the simulator.
        from platform_sim.server import PlatformSimulator

        platform = PlatformSimulator(data / "platform.sqlite3", auto_confirm_deposits=True)
        platform.start()
        platform_url = platform.url
    config = demo_config(data, platform_url)
    # The demo shows the door and the tamper switch too: the I/O board's firmware in-process.
    config = dataclasses.replace(config, devices=dataclasses.replace(config.devices, ioboard="sim"))
    terminal, sims = build_terminal(config, signer=demo_signer(config))
    terminal.start()
    # The credit line is zero: the demo station buys its float as a technician would.
    ensure_demo_float(terminal)
    for utility in DEMO_CARD_PREFIXES:
        card_no = demo_card_number(utility)
        if not sims.cards.has_card(card_no):
            sims.cards.create_card(card_no, utility, f"M-{card_no[-6:]}")
    if hasattr(sims.cards, "create_technician_card"):
        try:
            sims.cards.technician_card(TECHNICIAN_CARD)
        except ValueError:
            sims.cards.create_technician_card(TECHNICIAN_CARD, TECHNICIAN_ID, TECHNICIAN_PIN)
    return terminal, sims, platform


def has_display() -> bool:
    """An X or Wayland display, or SDL's KMS/DRM driver (the terminal: no X, no Wayland)."""
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return True
    return os.environ.get("SDL_VIDEODRIVER", "") in KMS_DRIVERS


# SDL drivers that draw on the console's DRM device themselves (kiosk.service sets one).
KMS_DRIVERS = ("kmsdrm",)


def run_app(runtime: Any, settings: UiSettings, sims: Any = None, fullscreen: bool = False) -> None:
    """The window, on the runtime's terminal, until it is closed or a restart is asked for."""
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
            return KioskRoot(controller, sims=sims)

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk-ui", description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="simulate every device")
    parser.add_argument("--data", type=Path, default=Path("var/ui-demo"))
    parser.add_argument("--config", type=Path, help="terminal configuration (without --demo)")
    parser.add_argument(
        "--windowed",
        action="store_true",
        help="with --config: a window instead of the full screen without a cursor",
    )
    parser.add_argument("--no-voice", action="store_true")
    parser.add_argument("--large-text", action="store_true")
    parser.add_argument("--high-contrast", action="store_true")
    parser.add_argument("--idle-timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = UiSettings(
        voice=not args.no_voice,
        large_text=args.large_text,
        high_contrast=args.high_contrast,
        idle_timeout_s=args.idle_timeout,
    )
    if not args.demo and args.config is None:
        print("give --demo, or --config with the terminal's configuration file", file=sys.stderr)
        return 2
    if not has_display():
        print(NO_DISPLAY, file=sys.stderr)
        return 2
    if args.demo:
        from kiosk.runtime import Runtime
        from ui.demo_devices import demo_actions, keys_help

        terminal, sims, platform = demo_station(args.data.resolve())
        print(keys_help(demo_actions()))
        runtime = Runtime(terminal, started=True, wait_for_ui=True)
        runtime.start_thread()
        try:
            run_app(runtime, settings, sims)
        finally:
            runtime.stop()
            runtime.join()
            terminal.close()
            if sims.board is not None:
                sims.board.close()
            if platform is not None:
                platform.stop()
        return 0
    runtime, code = _hosted(args)
    if runtime is None:
        return code
    try:
        run_app(runtime, settings, fullscreen=not args.windowed)
    finally:
        runtime.stop()
        runtime.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
