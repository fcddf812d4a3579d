"""kiosk-tool cash: what should be in the cash box, and its collection (清机) by denomination.

`cash status` shows the cash box figure (cash in minus vouchers paid out since the last
collection); `cash collect --count note-100=3 --count coin-1=5 ...` records an emptied and
counted box, which only the station operator does (--pin-file: the operator card in the
reader and its PIN). A difference is journaled with an alert and printed on the 清机单.
"""

import argparse

from firmware_tools.operator_actor import add_actor_arguments, operator_terminal
from firmware_tools.tool_language import say, tool_translator
from kiosk.command_line import emit
from kiosk.ledger.cash_box import Denomination
from kiosk.money import format_fen
from kiosk.operator.cash_count import parse_count


def _status(args: argparse.Namespace) -> int:
    with operator_terminal(args) as (terminal, actor):
        expected = terminal.operator.cash_expected_fen(actor=actor)
    text = say(tool_translator(), "the cash box should hold {amount}", amount=format_fen(expected))
    emit(args, {"cash_expected_fen": expected}, text)
    return 0


def _collect(args: argparse.Namespace) -> int:
    count = parse_count(args.count)
    with operator_terminal(args) as (terminal, actor):
        result = terminal.operator.collect_cash(count, actor=actor)
    record = result.record
    figures = {
        key: record[key]
        for key in ("seq", "expected_fen", "counted_fen", "discrepancy_fen", "count", "by")
    }
    discrepancy = int(str(record["discrepancy_fen"]))
    counted, expected = int(str(record["counted_fen"])), int(str(record["expected_fen"]))
    t = tool_translator()
    amounts = {"by": record["by"], "counted": format_fen(counted), "expected": format_fen(expected)}
    if discrepancy:
        text = say(
            t,
            "cash box collected by {by}: counted {counted}, expected {expected}, "
            "DIFFERENCE {difference} (alerted)",
            difference=format_fen(discrepancy),
            **amounts,
        )
    else:
        text = say(
            t,
            "cash box collected by {by}: counted {counted}, expected {expected}, no difference",
            **amounts,
        )
    if not result.printed:
        text += say(t, "; the slip was not printed: {problem}", problem=result.problem)
    emit(args, {**figures, "printed": result.printed, "print_problem": result.problem}, text)
    return 0


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = groups.add_parser("cash", help="the cash box: its figure and its collection (清机)")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    status = sub.add_parser("status", help="what should be in the cash box now")
    add_actor_arguments(status)
    status.set_defaults(handler=_status)
    collect = sub.add_parser(
        "collect", help="record the emptied cash box, counted by denomination (operator only)"
    )
    add_actor_arguments(collect)
    collect.add_argument(
        "--count",
        action="append",
        default=[],
        metavar="DENOMINATION=PIECES",
        help="pieces of one denomination, repeated: " + ", ".join(d.value for d in Denomination),
    )
    collect.set_defaults(handler=_collect)
