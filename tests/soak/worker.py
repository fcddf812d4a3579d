"""One life of the soak's terminal: `python -m tests.soak.worker`, killed at any instant.

It builds the terminal core from the configuration with its clock off by
--clock-offset-s, starts it (recovery first, as after a power cut), settles the loads
elsewhere a kill left half done, then serves residents until --residents are done. Killed
and started again on the same data it resumes; done, it prints the soak ledger's tallies as
one JSON line and exits 0. Faults of the platform and of the cash acceptor's link are armed
by the driver before each start; this process arms only what needs a resident's timing
(cards pulled mid-credit, loads elsewhere).
"""

import argparse
import json
import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from kiosk.command_line import run_command
from kiosk.config import load_config
from station.composition import build_terminal
from tests.soak.ledger import SoakLedger
from tests.soak.plan import Intensity
from tests.soak.residents import Residents, settle_loads_elsewhere
from tests.soak.shifted_clock import ShiftedClock

LEDGER_FILE = "soak.sqlite3"


def ledger_path(data_path: Path) -> Path:
    return data_path / LEDGER_FILE


def serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    clock = ShiftedClock(config.business.timezone, timedelta(seconds=args.clock_offset_s))
    terminal, sims = build_terminal(config, clock=clock)
    ledger = SoakLedger(ledger_path(config.data_path))
    try:
        intensity = Intensity(
            card_pull_p=args.card_pull_p,
            elsewhere_p=args.elsewhere_p,
            payout_p=args.payout_p,
            qr_p=args.qr_p,
        )
        residents = Residents(terminal, sims, ledger, args.seed, intensity)
        settle_loads_elsewhere(sims.cards, ledger)
        terminal.start()
        residents.run(args.residents)
        print(json.dumps(ledger.tallies(), sort_keys=True), flush=True)
    finally:
        ledger.close()
        terminal.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.soak.worker",
        description="Serve simulated residents through the terminal core (the soak's worker).",
    )
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--residents", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clock-offset-s", type=int, default=0)
    defaults = Intensity()
    parser.add_argument("--card-pull-p", type=float, default=defaults.card_pull_p)
    parser.add_argument("--elsewhere-p", type=float, default=defaults.elsewhere_p)
    parser.add_argument("--payout-p", type=float, default=defaults.payout_p)
    parser.add_argument("--qr-p", type=float, default=defaults.qr_p)
    parser.set_defaults(handler=serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
