"""`python -m ui.app --demo`: the terminal window with every device simulated.

Owns the Kivy App and the demo's key bindings (the simulator panel of a keyboard): it
starts the platform simulator, a demo station identity and the real terminal core on
simulated devices under --data (var/ui-demo by default), exactly as firmware_tools.demo
does headless. Without --demo it runs on a terminal configuration file.
"""

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ui.kivy_env import prepare_kivy
from ui.settings import UiSettings

log = logging.getLogger(__name__)

DEMO_CARDS = {"electricity": "900000000008", "gas": "700000000000"}
KEYS_HELP = (
    "keys: 1 = ¥1 coin, 2 = ¥10 note, 3 = ¥20 note, 4 = ¥50 note, 5 = ¥100 note, "
    "e/g = insert the demo electricity/gas card, x = pull the card, "
    "p = printer out of paper, o = printer back, j = jam the acceptor, k = clear the jam, "
    "d = door opened (no I/O board simulated in-process yet: logged only)"
)
CASH_KEYS = {
    "1": ("coin", 100),
    "2": ("note", 10_00),
    "3": ("note", 20_00),
    "4": ("note", 50_00),
    "5": ("note", 100_00),
}


def demo_station(data: Path) -> tuple[Any, Any, Any]:
    """(terminal, simulators, platform simulator) for the demo, started."""
    from firmware_tools.demo import demo_config, demo_signer
    from kiosk.catalog.account_rules import luhn_check_digit
    from kiosk.composition import build_terminal
    from platform_sim.server import PlatformSimulator

    data.mkdir(parents=True, exist_ok=True)
    platform = PlatformSimulator(data / "platform.sqlite3", auto_confirm_deposits=True)
    platform.start()
    config = demo_config(data, platform.url)
    terminal, sims = build_terminal(config, signer=demo_signer(config))
    terminal.start()
    for utility, number in DEMO_CARDS.items():
        card_no = number[:-1] + luhn_check_digit(number[:-1])
        DEMO_CARDS[utility] = card_no
        if not sims.cards.has_card(card_no):
            sims.cards.create_card(card_no, utility, f"M-{card_no[-6:]}")
    return terminal, sims, platform


def demo_key(sims: Any, key: str) -> str | None:
    """Apply one demo key to the simulators; what happened, or None for an unknown key."""
    if key in CASH_KEYS:
        kind, value = CASH_KEYS[key]
        sims.cash.insert(kind, value)
        return f"{kind} of {value} fen inserted"
    if key in ("e", "g"):
        card_no = DEMO_CARDS["electricity" if key == "e" else "gas"]
        sims.cards.remove_card()
        sims.cards.insert_card(card_no)
        return f"card {card_no} inserted"
    actions = {
        "x": (sims.cards.remove_card, "card pulled"),
        "p": (sims.printer.paper_out, "printer out of paper"),
        "o": (sims.printer.restore, "printer restored"),
        "j": (sims.cash.jam, "acceptor jammed"),
        "k": (sims.cash.clear_jam, "acceptor jam cleared"),
        "d": (lambda: None, "door opened (no simulated I/O board in-process)"),
    }
    if key not in actions:
        return None
    action, what = actions[key]
    action()
    return what


def run_app(terminal: Any, settings: UiSettings, sims: Any = None) -> None:
    prepare_kivy(settings)
    from kivy.app import App
    from kivy.clock import Clock
    from kivy.core.window import Window

    from ui.controller import KioskController
    from ui.root import KioskRoot

    def post(call: Any) -> None:
        Clock.schedule_once(lambda _dt: call(), 0)

    controller = KioskController(
        terminal, settings, post=post, technician_cards=getattr(sims, "cards", None)
    )

    class KioskApp(App):
        title = "kiosk"

        def build(self) -> KioskRoot:
            root = KioskRoot(controller)
            if sims is not None:

                def on_key(
                    _window: Any, _key: int, _code: int, text: str | None, _mods: Any
                ) -> bool:
                    if not text:
                        return False
                    what = controller.worker.run(lambda: demo_key(sims, text))
                    if what:
                        log.info("demo: %s", what)
                    return bool(what)

                Window.bind(on_keyboard=on_key)
            return root

        def on_stop(self) -> None:
            controller.shutdown()

    KioskApp().run()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ui.app", description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="simulate every device")
    parser.add_argument("--data", type=Path, default=Path("var/ui-demo"))
    parser.add_argument("--config", type=Path, help="terminal configuration (without --demo)")
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
    if args.demo:
        terminal, sims, platform = demo_station(args.data.resolve())
        print(KEYS_HELP)
        try:
            run_app(terminal, settings, sims)
        finally:
            terminal.close()
            platform.stop()
        return 0
    if args.config is None:
        print("give --demo, or --config with the terminal's configuration file", file=sys.stderr)
        return 2
    from kiosk.composition import build_terminal
    from kiosk.config import load_config
    from kiosk.errors import KioskError

    try:
        terminal, _sims = build_terminal(load_config(args.config))
        terminal.start()
    except KioskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        run_app(terminal, settings, _sims)
    finally:
        terminal.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
