"""kiosk-backoffice: the back-office service. Its ingest and dashboard come with their issue."""

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kiosk-backoffice",
        description="Back-office service for the terminal fleet (MQTT ingest, dashboard, reports).",
    )
    parser.add_argument("command", nargs="?", choices=["serve", "simulate-fleet"])
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    print(
        f"kiosk-backoffice: error: '{args.command}' is not available yet in this version; "
        "the back office arrives with the fleet telemetry work",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
