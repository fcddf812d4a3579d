"""kiosk: the terminal itself (headless here; the touchscreen app runs it under Kivy)."""

import argparse
import json
import logging
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

from kiosk.command_line import run_command
from kiosk.composition import build_terminal
from kiosk.config import load_config


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    terminal, _ = build_terminal(config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        outcomes = terminal.start()
        print(
            f"kiosk: terminal {config.station.terminal_id} in service "
            f"({len(outcomes)} transaction(s) recovered)",
            flush=True,
        )
        terminal.events.subscribe(lambda e: print(f"event: {e.kind} {e.data}", flush=True))
        while not stop.wait(0.2):
            terminal.engine.drain_cash()
            if args.once:
                break
            terminal.tick()
    finally:
        terminal.close()
    return 0


def _soak(args: argparse.Namespace) -> int:
    from kiosk.soak import Soak

    config = load_config(args.config)
    terminal, sims = build_terminal(config)
    try:
        terminal.start()
        soak = Soak(terminal, sims, args.seed)
        report = soak.run(args.customers)
        soak.close()
    finally:
        terminal.close()
    print(json.dumps(report.as_dict(), sort_keys=True), flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk", description="Run the self-service terminal.")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    run = sub.add_parser("run", help="run the terminal headless until stopped (SIGTERM)")
    run.add_argument("--config", type=Path, required=True)
    run.add_argument("--once", action="store_true", help="start, recover, and stop")
    run.set_defaults(handler=_run)
    soak = sub.add_parser("soak", help="drive simulated customers through the real core")
    soak.add_argument("--config", type=Path, required=True)
    soak.add_argument("--customers", type=int, default=100)
    soak.add_argument("--seed", type=int, default=1)
    soak.set_defaults(handler=_soak)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
