"""kiosk: the terminal itself, headless (the touchscreen app, kiosk-ui, hosts the same
kiosk.runtime on a terminal; this is for the lab and benches)."""

import argparse
import logging
import signal
from collections.abc import Sequence
from pathlib import Path

from kiosk.clock import SystemClock
from kiosk.command_line import run_command
from kiosk.config import load_config, refuse_development_trust
from kiosk.runtime import Runtime, status_line
from kiosk.service_notify import ServiceNotifier
from station.composition import build_hosted_terminal

log = logging.getLogger(__name__)


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    refuse_development_trust(config)
    clock = SystemClock(config.business.timezone)
    terminal = build_hosted_terminal(config, clock)
    runtime = Runtime(
        terminal,
        config=config,
        clock=clock,
        notifier=ServiceNotifier(),
        telemetry=True,
        owns_terminal=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: runtime.stop())
    try:
        runtime.start()
    except BaseException:
        terminal.close()
        raise
    print(
        f"kiosk: {status_line(terminal)} ({len(runtime.recovered)} transaction(s) recovered)",
        flush=True,
    )
    terminal.events.subscribe(lambda e: print(f"event: {e.kind} {e.data}", flush=True))
    runtime.run(once=args.once)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk", description="Run the self-service terminal.")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    run = sub.add_parser("run", help="run the terminal headless until stopped (SIGTERM)")
    run.add_argument("--config", type=Path, required=True)
    run.add_argument("--once", action="store_true", help="start, recover, and stop")
    run.set_defaults(handler=_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
