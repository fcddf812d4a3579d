"""kiosk-tool voucher: check a voucher a resident brings back, and pay it out from the box.

A voucher is redeemed once, centrally (kiosk.transactions.vouchers); the payout is recorded
with the operator who handed the cash over, so only the station operator pays out
(--pin-file: the operator card in the reader and its PIN). `check` shows the amount, state
and expiry the platform knows.
"""

import argparse

from firmware_tools.operator_actor import add_actor_arguments, operator_terminal, whole_fen
from firmware_tools.tool_language import say, tool_translator
from kiosk.command_line import CommandError, emit
from kiosk.money import format_fen


def _check(args: argparse.Namespace) -> int:
    with operator_terminal(args) as (terminal, actor):
        voucher = terminal.operator.voucher_lookup(args.code, actor=actor)
    t = tool_translator()
    text = say(
        t,
        "voucher {voucher} of {amount} from receipt {receipt}: {state}, valid until {expires}",
        voucher=voucher.voucher_id,
        amount=format_fen(voucher.amount_fen),
        receipt=voucher.receipt_no,
        state=t(str(voucher.state)),
        expires=voucher.expires.isoformat(),
    )
    emit(args, voucher.to_json(), text)
    return 0


def _pay(args: argparse.Namespace) -> int:
    amount = None if args.amount_fen is None else whole_fen(args.amount_fen, "--amount-fen")
    with operator_terminal(args) as (terminal, actor):
        payout = terminal.operator.pay_voucher(args.code, amount, actor=actor)
    if not payout.paid:
        raise CommandError(
            "the platform has not confirmed voucher {voucher}: hand nothing over; "
            "run the same command again to settle it",
            voucher=payout.voucher_id,
        )
    text = say(
        tool_translator(),
        "voucher {voucher} paid out: hand over {amount}",
        voucher=payout.voucher_id,
        amount=format_fen(payout.amount_fen),
    )
    emit(
        args,
        {"voucher_id": payout.voucher_id, "amount_fen": payout.amount_fen, "paid": True},
        text,
    )
    return 0


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = groups.add_parser("voucher", help="check and pay out residents' vouchers")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    check = sub.add_parser("check", help="what the platform knows of a voucher")
    check.add_argument("code", help="the voucher code as printed (XXXX-XXXX-XXXX-XXXX)")
    add_actor_arguments(check)
    check.set_defaults(handler=_check)
    pay = sub.add_parser("pay", help="redeem a voucher once and pay it out from the cash box")
    pay.add_argument("code", help="the voucher code as printed (XXXX-XXXX-XXXX-XXXX)")
    pay.add_argument(
        "--amount-fen", help="the amount about to be handed over (default: the voucher's)"
    )
    add_actor_arguments(pay)
    pay.set_defaults(handler=_pay)
