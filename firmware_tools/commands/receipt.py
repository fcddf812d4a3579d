"""kiosk-tool receipt: check a receipt's QR code, or reprint a receipt from the journal.

The QR code holds the signed tx_close record (docs/journal-format.md, section 7), so the
check needs only the code's text and the certificate (and, to check that certificate, the
operator CA): no terminal, no database, no network.
"""

import argparse
import sys
from pathlib import Path

from firmware_tools.tool_language import say, tool_translator
from kiosk.command_line import CommandError, emit
from kiosk.journal.verify import SOFTWARE_SIGNER_WARNING
from kiosk.money import format_fen
from kiosk.receipts import grouped_voucher_id, verify_receipt
from kiosk.receipts.qr import RECEIPT_PREFIX


def _verify(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    cert_pem = _read(args.cert, "certificate")
    ca_pem = None if args.ca is None else _read(args.ca, "CA certificate")
    check = verify_receipt(text, cert_pem, ca_pem=ca_pem)
    if args.json:
        emit(args, {"genuine": check.genuine, "problem": check.problem, "record": check.record}, "")
        return 0 if check.genuine else 1
    if not check.genuine:
        raise CommandError(
            "{problem}; do not accept it, keep it and report it",
            problem=check.problem,
        )
    record = check.record or {}
    amount = record.get("amount_fen", 0)
    fee = record.get("fee_fen", 0)
    t = tool_translator()
    outcome = record.get("outcome")
    summary = say(
        t,
        "genuine receipt {receipt} of station {station} terminal {terminal}: {outcome}, "
        "amount {amount}, fee {fee}, at {time}",
        receipt=record.get("receipt_no"),
        station=record.get("station"),
        terminal=record.get("terminal"),
        outcome=t(outcome) if isinstance(outcome, str) else outcome,
        amount=format_fen(amount if isinstance(amount, int) else 0),
        fee=format_fen(fee if isinstance(fee, int) else 0),
        time=record.get("time"),
    )
    voucher = record.get("voucher_fen")
    if isinstance(voucher, int) and voucher:
        summary += say(t, "; voucher {amount}", amount=format_fen(voucher))
        if isinstance(record.get("voucher_id"), str):
            number = grouped_voucher_id(str(record["voucher_id"]))
            summary += say(t, " no. {number}", number=number)
        if isinstance(record.get("voucher_expires"), str):
            summary += say(t, ", valid until {expires}", expires=record["voucher_expires"])
    if record.get("signer") == "software":
        summary += say(t, " ({warning})", warning=t(SOFTWARE_SIGNER_WARNING))
    print(summary)
    return 0


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CommandError(
            "cannot read {what} {path}: {problem}", what=what, path=path, problem=exc.strerror
        ) from None


def _reprint(args: argparse.Namespace) -> int:
    # Imported here: verify needs no terminal, and stays usable where none can be built.
    from kiosk.config import load_config
    from station.composition import build_terminal

    terminal, _ = build_terminal(load_config(args.config))
    try:
        terminal.journal.open()
        printed, problem = terminal.reprint_by_number(args.number, by="technician")
    finally:
        terminal.close()
    if not printed:
        raise CommandError(
            "receipt {receipt} was not printed: {problem}", receipt=args.number, problem=problem
        )
    text = say(
        tool_translator(),
        "receipt {receipt} printed (a copy, marked 副本, if it was printed before)",
        receipt=args.number,
    )
    emit(args, {"receipt_no": args.number, "printed": True}, text)
    return 0


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = groups.add_parser("receipt", help="verify a receipt's QR code or reprint a receipt")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    verify = sub.add_parser(
        "verify", help="check that a receipt code was signed by the station's certificate"
    )
    verify.add_argument(
        "text", metavar="TEXT", help=f"the scanned QR text ({RECEIPT_PREFIX}...), - for stdin"
    )
    verify.add_argument("--cert", type=Path, required=True, help="station certificate (PEM)")
    verify.add_argument(
        "--ca",
        type=Path,
        metavar="CA_PEM",
        help="operator CA certificate(s): the station certificate must chain to it",
    )
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(handler=_verify)
    reprint = sub.add_parser("reprint", help="print a receipt again from the journal, as a copy")
    reprint.add_argument("--config", type=Path, required=True)
    reprint.add_argument("--number", required=True, help="receipt number, e.g. T0001-000012")
    reprint.add_argument("--json", action="store_true", help="print the result as JSON")
    reprint.set_defaults(handler=_reprint)
