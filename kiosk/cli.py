"""kiosk: the terminal itself (headless here; the touchscreen app runs it under Kivy)."""

import argparse
import json
import logging
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from kiosk.clock import SystemClock
from kiosk.command_line import run_command
from kiosk.composition import build_terminal
from kiosk.config import Config, load_config
from kiosk.fleet_link import FleetLink
from kiosk.service_notify import ServiceNotifier
from kiosk.terminal import Terminal
from kiosk.updates.link import updates_for_config

log = logging.getLogger(__name__)


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    clock = SystemClock(config.business.timezone)
    terminal, _ = build_terminal(config, clock=clock)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    notifier = ServiceNotifier()
    fleet: FleetLink | None = None
    try:
        outcomes = terminal.start()
        if config.telemetry.enabled:

            def restart(reason: str) -> None:
                log.warning("restarting: %s", reason)
                stop.set()

            fleet = FleetLink(config, terminal, clock, request_restart=restart)
            fleet.start()
        confirmed = _confirm_update(config, clock, fleet)
        print(
            f"kiosk: terminal {config.station.terminal_id} in service "
            f"({len(outcomes)} transaction(s) recovered"
            + (f"; version {confirmed} confirmed" if confirmed else "")
            + ")",
            flush=True,
        )
        notifier.ready(f"terminal {config.station.terminal_id} in service")
        terminal.events.subscribe(lambda e: print(f"event: {e.kind} {e.data}", flush=True))
        loop = RunLoop(terminal, fleet, notifier)
        while not stop.wait(LOOP_S):
            loop.turn(time.monotonic())
            if args.once:
                break
    finally:
        notifier.stopping()
        if fleet is not None:
            fleet.stop()
        terminal.close()
    return 0


# The loop's cadence: cash is journaled at once; housekeeping and health less often.
LOOP_S = 0.2
TICK_S = 1.0
HEALTH_S = 5.0


class RunLoop:
    """One turn of the headless terminal: cash, then what is due of housekeeping and health."""

    def __init__(self, terminal: Terminal, fleet: FleetLink | None, notifier: ServiceNotifier):
        self.terminal = terminal
        self.fleet = fleet
        self.notifier = notifier
        self._next_tick = 0.0
        self._next_health = 0.0
        interval = notifier.watchdog_interval
        self._watchdog_s = None if interval is None else interval.total_seconds()
        self._next_watchdog = 0.0

    def turn(self, now: float) -> None:
        self.terminal.engine.drain_cash()
        if self.fleet is not None:
            self.fleet.inbox.run_pending()  # remote commands wait for this thread
        if now >= self._next_tick:
            self._next_tick = now + TICK_S
            self.terminal.tick()
        if self.fleet is not None and now >= self._next_health:
            self._next_health = now + HEALTH_S
            self.fleet.refresh()
        if self._watchdog_s is not None and now >= self._next_watchdog:
            # Only a loop that still turns feeds systemd's watchdog: a hang gets a restart.
            self._next_watchdog = now + self._watchdog_s
            self.notifier.watchdog()


def _confirm_update(config: Config, clock: SystemClock, fleet: FleetLink | None) -> str | None:
    """Confirm a software version on trial now that the terminal started healthy."""
    slots = updates_for_config(config)
    if not slots.installed():
        return None  # no A/B slots here (a development checkout or a bench)
    confirmed = slots.confirm(clock.now())
    if fleet is not None:
        pending = slots.pending_events()
        if pending:
            slots.mark_reported(fleet.report_update_events(pending))
    return confirmed


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
