"""kiosk-tool day: close the business day (日终轧帐) on demand and show its report.

`day close --json` prints the signed day_close record: with the float check's figures
(business_day, opening_float_fen, deposits_fen, debits_fen, closing_float_fen,
platform_float_fen, balanced), the cash box (cash_expected_fen) and the vouchers
(vouchers_issued_fen, vouchers_redeemed_fen) among them (docs/transactions.md).
`day sheet` prints the 轧帐单 of a closed day again.
"""

import argparse
from datetime import date
from pathlib import Path

from firmware_tools.tool_language import say, tool_translator
from kiosk.command_line import CommandError, emit
from kiosk.config import load_config
from kiosk.money import format_fen
from station.composition import build_terminal


def _close(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    terminal, _ = build_terminal(config)
    try:
        terminal.start()
        try:
            day = date.fromisoformat(args.day) if args.day else None
        except ValueError:
            raise CommandError(
                "{option} {value!r} is not a date: write it as YYYY-MM-DD",
                option="--day",
                value=args.day,
            ) from None
        record = terminal.close_day(
            day,
            confirmed_by="technician" if args.catch_up else None,
            closed_by=f"technician:{args.by}",
        )
    finally:
        terminal.close()
    paid = record.get("paid_fen")
    cash = record.get("cash_expected_fen")
    verdict = record.get("balanced")
    t = tool_translator()
    if verdict is True:
        balanced = say(t, "balanced")
    elif verdict is False:
        balanced = say(t, "DOES NOT BALANCE (alerted)")
    else:
        balanced = say(t, "not checked against the platform (alerted)")
    text = say(
        t,
        "business day {day} closed (journal record {seq}): {paid_count} paid, {paid}; "
        "float {balanced}; cash in box {cash}; vouchers {vouchers}",
        day=record["business_day"],
        seq=record["seq"],
        paid_count=record["paid_count"],
        paid=format_fen(int(str(paid))),
        balanced=balanced,
        cash=format_fen(int(str(cash))),
        vouchers=record["voucher_count"],
    )
    emit(args, record, text)
    return 0


def _sheet(args: argparse.Namespace) -> int:
    from firmware_tools.operator_actor import operator_terminal

    try:
        day = date.fromisoformat(args.day)
    except ValueError:
        raise CommandError(
            "{option} {value!r} is not a date: write it as YYYY-MM-DD",
            option="--day",
            value=args.day,
        ) from None
    with operator_terminal(args) as (terminal, actor):
        result = terminal.operator.print_day_sheet(day, actor=actor)
    if not result.printed:
        raise CommandError(
            "the day sheet of {day} was not printed: {problem}",
            day=args.day,
            problem=result.problem,
        )
    text = say(tool_translator(), "day sheet of {day} printed", day=args.day)
    emit(args, {"business_day": args.day, "printed": True}, text)
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
    close.add_argument(
        "--by", default="kiosk-tool", help="the technician's name, journaled as who closed it"
    )
    close.add_argument("--json", action="store_true")
    close.set_defaults(handler=_close)
    sheet = sub.add_parser("sheet", help="print the day sheet (轧帐单) of a closed day again")
    from firmware_tools.operator_actor import add_actor_arguments

    add_actor_arguments(sheet)
    sheet.add_argument("--day", required=True, help="YYYY-MM-DD")
    sheet.set_defaults(handler=_sheet)
