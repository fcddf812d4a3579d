"""`python -m simulators.cards`: simulated smartcards served to pcscd's virtual reader.

`simulate` runs a simulated utility, technician or station operator card served through
vsmartcard's vpcd reader (simulators.vpcd_card) until interrupted, as a T=1 or a T=0 card;
`control` asks a running simulator to insert, remove or pull its card, to answer an error
status word, or to load the card at another terminal (a utility's counter). Never shows a
technician's or an operator's PIN.
"""

import argparse
import threading
from collections.abc import Sequence
from pathlib import Path

from drivers.smartcard.prepaid_card import GRID_OFFICE_TERMINAL, UTILITIES
from kiosk.command_line import CommandError, emit, run_command
from kiosk.money import MoneyError, format_fen, parse_yuan
from simulators.vpcd_card import (
    CARD_KINDS,
    VPCD_DEFAULT_PORT,
    CardProtocol,
    VpcdCardSimulator,
    send_control,
    serve_control,
)


def _say(message_id: str, **values: object) -> str:
    from firmware_tools.tool_language import say, tool_translator

    return say(tool_translator(), message_id, **values)


def _simulate(args: argparse.Namespace) -> int:
    try:
        cards = VpcdCardSimulator(
            args.state, host=args.host, port=args.port, protocol=CardProtocol(args.protocol)
        )
        if not cards.has_card(args.card_no):
            if args.card == "utility":
                cards.issue_prepaid(args.card_no, args.utility, args.meter_no)
            else:
                if not args.pin_file:
                    raise CommandError(
                        "{kind} card {card} is new: give its PIN with --pin-file",
                        kind=args.card,
                        card=args.card_no,
                    )
                pin = args.pin_file.read_text(encoding="ascii").strip()
                if args.card == "technician":
                    cards.issue_technician(args.card_no, args.technician_id, pin)
                else:
                    cards.issue_operator(args.card_no, args.operator_id, pin)
        elif cards.card_kind(args.card_no) != args.card:
            raise CommandError(
                "card {card} in {state} is not a {kind} card: use another card number",
                card=args.card_no,
                state=args.state,
                kind=args.card,
            )
    except (ValueError, OSError) as exc:
        raise CommandError(
            "cannot prepare the simulated card: {problem}", problem=str(exc)
        ) from None
    if args.control:
        serve_control(cards, args.control)
    cards.insert(args.card_no, wait_s=None)
    emit(
        args,
        {"card_no": args.card_no, "card": args.card, "port": args.port, "state": str(args.state)},
        _say(
            "{kind} card {card} ({protocol}) is in the virtual reader on {host}:{port} "
            "(Ctrl-C to stop)",
            kind=args.card,
            card=args.card_no,
            protocol=args.protocol.upper(),
            host=args.host,
            port=args.port,
        ),
    )
    try:
        threading.Event().wait()
    finally:
        cards.close()
    return 0


def _control(args: argparse.Namespace) -> int:
    from kiosk.message_text import error_text  # here: the import block is being reworked

    request: dict[str, object] = {"do": args.action}
    if args.action == "insert":
        if not args.card_no:
            raise CommandError("insert needs --card-no: which card to put into the reader")
        request["card_no"] = args.card_no
    elif args.action in ("pull-before-apply", "pull-after-apply"):
        request = {"do": "pull", "after_apply": args.action == "pull-after-apply"}
    elif args.action == "answer-error":
        if not args.status_word:
            raise CommandError("answer-error needs --status-word, such as 6581")
        request["status_word"] = args.status_word
    elif args.action == "load-elsewhere":
        if not args.card_no or not args.amount:
            raise CommandError(
                "load-elsewhere needs --card-no and --amount: which card, and how many yuan"
            )
        try:
            amount_fen = parse_yuan(args.amount)
        except MoneyError as exc:
            raise CommandError("--amount: {problem}", problem=error_text(exc)) from None
        request.update(card_no=args.card_no, amount_fen=amount_fen, terminal=args.terminal)
        if args.ref:
            request["ref"] = args.ref
    try:
        reply = send_control(args.control, request)
    except OSError as exc:
        raise CommandError(
            "no card simulator answers on {address} ({problem}): "
            "start `python -m simulators.cards simulate --control` first",
            address=args.control,
            problem=exc.strerror or str(exc),
        ) from None
    if not reply.get("ok"):
        raise CommandError(
            "the card simulator refused {action}: {problem}",
            action=args.action,
            problem=str(reply.get("error")),
        )
    inserted = reply.get("inserted")
    if inserted:
        text = _say("done; card in the reader: {card}", card=inserted)
    else:
        text = _say("done; no card in the reader")
    card = reply.get("card")
    if isinstance(card, dict) and isinstance(card.get("last_load"), dict):
        load = card["last_load"]
        text = (
            _say(
                "card {card} loaded {amount} at terminal {terminal} (reference {ref}), "
                "now at purchase {counter}; ",
                card=card["card_no"],
                amount=format_fen(int(load["amount_fen"])),
                terminal=load["terminal"],
                ref=load["ref"],
                counter=load["counter"],
            )
            + text
        )
    emit(args, reply, text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    card = argparse.ArgumentParser(
        prog="python -m simulators.cards",
        description="Serve simulated utility, technician and operator cards through the vpcd "
        "reader.",
    )
    commands = card.add_subparsers(title="commands", metavar="COMMAND")

    simulate = commands.add_parser(
        "simulate",
        help="put a simulated card into the vpcd virtual reader until interrupted",
        description=(
            "Serve a simulated card to pcscd through the vsmartcard vpcd reader over TCP."
            " The card's state (purchase counter, PIN tries) is kept in --state."
        ),
    )
    simulate.add_argument("--card", choices=CARD_KINDS, required=True)
    simulate.add_argument("--card-no", required=True, help="the card number (digits)")
    simulate.add_argument(
        "--state", type=Path, default=Path("cards.json"), help="the cards' state file"
    )
    simulate.add_argument("--host", default="127.0.0.1", help="where vpcd listens")
    simulate.add_argument(
        "--port", type=int, default=VPCD_DEFAULT_PORT, help="vpcd's TCP port (default 35963)"
    )
    simulate.add_argument(
        "--utility", choices=UTILITIES, default="electricity", help="a new utility card's utility"
    )
    simulate.add_argument("--meter-no", default="0000000000", help="a new utility card's meter")
    simulate.add_argument(
        "--technician-id", default="T-0001", help="a new technician card's technician id"
    )
    simulate.add_argument(
        "--operator-id", default="OP-0001", help="a new operator card's operator id"
    )
    simulate.add_argument(
        "--pin-file",
        type=Path,
        help="a file holding a new technician or operator card's PIN (4-12 digits)",
    )
    simulate.add_argument(
        "--control", type=Path, help="a Unix socket path for `python -m simulators.cards control`"
    )
    simulate.add_argument(
        "--protocol",
        choices=[p.value for p in CardProtocol],
        default=CardProtocol.T1.value,
        help="t1 (default): whole answers; t0: a T=0 card (61xx and GET RESPONSE, 6Cxx)",
    )
    simulate.add_argument("--json", action="store_true", help="print the start line as JSON")
    simulate.set_defaults(handler=_simulate)

    control = commands.add_parser(
        "control",
        help="insert, remove or pull the simulated card, arm an error, or load it elsewhere",
        description="Steer a running `python -m simulators.cards simulate --control PATH`.",
    )
    control.add_argument(
        "action",
        choices=(
            "status",
            "insert",
            "remove",
            "pull-before-apply",
            "pull-after-apply",
            "answer-error",
            "load-elsewhere",
        ),
    )
    control.add_argument("--control", type=Path, required=True, help="the simulator's socket")
    control.add_argument("--card-no", help="for insert and load-elsewhere: the card")
    control.add_argument("--status-word", help="for answer-error: e.g. 6581 or 6983")
    control.add_argument(
        "--amount", help="for load-elsewhere: yuan loaded at the other terminal, e.g. 30"
    )
    control.add_argument(
        "--terminal",
        default=GRID_OFFICE_TERMINAL,
        help=f"for load-elsewhere: the other terminal's id (default {GRID_OFFICE_TERMINAL})",
    )
    control.add_argument(
        "--ref", help="for load-elsewhere: its transaction reference (default: a fresh one)"
    )
    control.add_argument("--json", action="store_true", help="print the reply as JSON")
    control.set_defaults(handler=_control)
    return card


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
