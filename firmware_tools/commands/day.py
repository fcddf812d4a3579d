"""kiosk-tool day: close the business day (日终轧帐) on demand and show its report."""

import argparse
from datetime import date
from pathlib import Path

from kiosk.command_line import CommandError, emit
from kiosk.composition import build_terminal
from kiosk.config import load_config
from kiosk.money import format_fen


def _close(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    terminal, _ = build_terminal(config)
    try:
        terminal.start()
        try:
            day = date.fromisoformat(args.day) if args.day else None
        except ValueError:
            raise CommandError(
                f"--day {args.day!r} is not a date: write it as YYYY-MM-DD"
            ) from None
        record = terminal.close_day(day, confirmed_by="technician" if args.catch_up else None)
    finally:
        terminal.close()
    paid = record.get("paid_fen")
    cash = record.get("cash_expected_fen")
    text = (
        f"business day {record['business_day']} closed (journal record {record['seq']}): "
        f"{record['paid_count']} paid, {format_fen(int(str(paid)))}; "
        f"cash in box {format_fen(int(str(cash)))}; vouchers {record['voucher_count']}"
    )
    emit(args, record, text)
    return 0


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = groups.add_parser("day", help="close the business day")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    close = sub.add_parser("close", help="close a business day now and sign its report")
    close.add_argument("--config", type=Path, required=True)
    close.add_argument("--day", help="YYYY-MM-DD (default: the current business day)")
    close.add_argument(
        "--catch-up",
        action="store_true",
        help="confirm that the clock is right when more than 7 business days are due",
    )
    close.add_argument("--json", action="store_true")
    close.set_defaults(handler=_close)
