"""kiosk-tool deposit: record a float purchase (续费) with its slip, and list the deposits.

The same rules as the operator screen (kiosk.ledger.deposits): at least 500 yuan, the postal
outlet's slip number, pending until the platform confirms it. Acts as the technician (--by)
or, with --pin-file, as the station operator (firmware_tools.operator_actor).
"""

import argparse

from firmware_tools.operator_actor import add_actor_arguments, operator_terminal, whole_fen
from firmware_tools.tool_language import say, tool_translator
from kiosk.command_line import emit
from kiosk.ledger.deposits import DepositEntry
from kiosk.money import format_fen


def _entry_json(entry: DepositEntry) -> dict[str, object]:
    return {
        "deposit_key": entry.key,
        "amount_fen": entry.amount_fen,
        "slip_no": entry.slip_no,
        "state": str(entry.state),
        "announced": entry.announced,
        "recorded_by": entry.recorded_by,
        "role": entry.role,
        "recorded_at": entry.recorded_at,
        "settled_at": entry.settled_at,
        "refusal": entry.refusal,
    }


def _record(args: argparse.Namespace) -> int:
    amount = whole_fen(args.amount_fen, "--amount-fen")
    with operator_terminal(args) as (terminal, actor):
        entry = terminal.operator.record_deposit(amount, args.slip, actor=actor)
    t = tool_translator()
    text = say(
        t,
        "deposit of {amount} on slip {slip} recorded by {by}: {state}",
        amount=format_fen(entry.amount_fen),
        slip=entry.slip_no,
        by=entry.recorded_by,
        state=t(str(entry.state)),
    )
    if not entry.announced:
        text += say(t, "; the platform has not answered yet (told again later)")
    emit(args, _entry_json(entry), text)
    return 0


def _list(args: argparse.Namespace) -> int:
    with operator_terminal(args) as (terminal, actor):
        overview = terminal.operator.float_overview(actor=actor)
    data = {
        "balance_fen": overview.balance_fen,
        "held_fen": overview.held_fen,
        "available_fen": overview.available_fen,
        "fresh": overview.fresh,
        "low": overview.low,
        "threshold_fen": overview.threshold_fen,
        "pending_deposits_fen": overview.pending_deposits_fen,
        "business_day": overview.business_day,
        "paid_count": overview.today.get("paid_count"),
        "paid_fen": overview.today.get("paid_fen"),
        "deposits": [_entry_json(entry) for entry in overview.deposits],
    }
    t = tool_translator()
    balance = (
        say(t, "unknown") if overview.balance_fen is None else format_fen(overview.balance_fen)
    )
    float_line = say(
        t,
        "float {balance} (now), held {held}, pending deposits {pending}"
        if overview.fresh
        else "float {balance} (last known), held {held}, pending deposits {pending}",
        balance=balance,
        held=format_fen(overview.held_fen or 0),
        pending=format_fen(overview.pending_deposits_fen),
    )
    lines = [
        float_line + (say(t, "; LOW") if overview.low else ""),
        say(
            t,
            "business day {day}: {count} paid, {amount}",
            day=overview.business_day,
            count=data["paid_count"],
            amount=format_fen(int(str(data["paid_fen"]))),
        ),
    ]
    lines += [
        say(
            t,
            "  {at}  {slip}  {amount}  {state}  by {by}",
            at=e.recorded_at,
            slip=e.slip_no,
            amount=format_fen(e.amount_fen),
            state=t(str(e.state)),
            by=e.recorded_by,
        )
        for e in overview.deposits
    ]
    emit(args, data, "\n".join(lines))
    return 0


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = groups.add_parser("deposit", help="record float deposits (续费) and list them")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    record = sub.add_parser(
        "record",
        help="record a float purchase made at the postal outlet (at least 500 yuan, with its slip)",
    )
    add_actor_arguments(record)
    record.add_argument("--amount-fen", required=True, help="the amount in fen (50000 = 500 yuan)")
    record.add_argument("--slip", required=True, help="the deposit slip's number (存款凭证)")
    record.set_defaults(handler=_record)
    listing = sub.add_parser("list", help="the float, pending deposits and the deposit history")
    add_actor_arguments(listing)
    listing.set_defaults(handler=_list)
