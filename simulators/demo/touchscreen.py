"""`make demo` on a desktop: the touchscreen app on a demo station of simulated devices.

Starts the platform simulator, a demo station identity and the real terminal core on
simulated devices under --data (var/ui-demo by default), the I/O board included (its
firmware logic in-process: door, case tamper), as simulators.demo.headless does headless,
and hosts the terminal's own app (ui.app.run_app) with the simulator panel
(simulators.demo.sim_panel) over the window. Without a display it says in one line how to
get one.
"""

import argparse
import dataclasses
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kiosk.runtime import Runtime
from simulators.demo.devices import (
    DEMO_CARD_PREFIXES,
    TECHNICIAN_CARD,
    TECHNICIAN_ID,
    TECHNICIAN_PIN,
    demo_actions,
    demo_card_number,
    keys_help,
)
from simulators.demo.headless import demo_config, demo_signer, ensure_demo_float
from simulators.platform.server import PlatformSimulator
from station.composition import build_terminal
from ui.app import NO_DISPLAY, add_settings_arguments, has_display, run_app, settings_of


def demo_station(data: Path, platform_url: str | None = None) -> tuple[Any, Any, Any]:
    """(terminal, simulators, platform simulator or None) for the demo, started.

    With platform_url the terminal uses that platform (the bench runs the simulator in its
    own process); otherwise a platform simulator starts in this process.
    """
    data.mkdir(parents=True, exist_ok=True)
    platform = None
    if platform_url is None:
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.demo.touchscreen")
    parser.add_argument("--data", type=Path, default=Path("var/ui-demo"))
    add_settings_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not has_display():
        print(NO_DISPLAY, file=sys.stderr)
        return 2
    from simulators.demo.sim_panel import demo_panel  # Kivy: once a display is known

    terminal, sims, platform = demo_station(args.data.resolve())
    print(keys_help(demo_actions()))
    runtime = Runtime(terminal, started=True, wait_for_ui=True)
    runtime.start_thread()
    try:
        run_app(runtime, settings_of(args), demo_panel(sims))
    finally:
        runtime.stop()
        runtime.join()
        terminal.close()
        if sims.board is not None:
            sims.board.close()
        if platform is not None:
            platform.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
