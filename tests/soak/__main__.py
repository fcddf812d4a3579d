"""`python -m tests.soak`: run the fault soak once, print its counts, exit 1 on any
discrepancy (the long soak of `make bench` runs the same with --residents 500)."""

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

from kiosk.command_line import run_command
from tests.soak.driver import SoakSettings, run_soak, soak_report_lines


def soak(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="soak-", dir=args.dir) as name:
        directory = Path(args.keep) if args.keep else Path(name)
        result = run_soak(directory, SoakSettings(residents=args.residents, seed=args.seed))
        print("\n".join(soak_report_lines(result)))
        if args.json:
            print(json.dumps(result.as_dict(), sort_keys=True, ensure_ascii=False))
    return 0 if result.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.soak",
        description="The fault soak: residents, faults, kill -9, settle, reconciliation.",
    )
    parser.add_argument("--residents", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None, help="where the throw-away run goes")
    parser.add_argument("--keep", type=Path, default=None, help="run in this directory, kept")
    parser.add_argument("--json", action="store_true", help="also print the result as JSON")
    parser.set_defaults(handler=soak)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
