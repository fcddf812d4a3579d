"""Slips that are not receipts: the interim slip of a payment in doubt, the claim slip of cash.

Owns what a resident takes away when there is no receipt yet: a transaction reference, the
figures, what happens next and the hotline. A slip says it is not a receipt and carries no
signed record; its QR code holds only the transaction reference (KRREF:), which the station
looks up in its journal. The functions take plain values (the engine reads them from its
own tables) and never talk to a printer.
"""

from datetime import datetime

from kiosk.clock import iso
from kiosk.devices import ReceiptDocument, ReceiptLine
from kiosk.money import format_fen
from kiosk.receipts.layout import check_columns, hotline, station_header
from kiosk.receipts.lines import copy_marking, local_time, note, row, rule, title
from kiosk.receipts.model import ReceiptError, StationInfo
from kiosk.receipts.qr import reference_code

NOT_A_RECEIPT = "This slip is not a receipt."


def _time(time: str | datetime) -> str:
    return local_time(time if isinstance(time, str) else iso(time))


def _fen(name: str, value: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReceiptError(f"slip figure {name} must be whole fen, not {value!r}")
    return format_fen(value)


def _slip(
    *,
    kind: str,
    tx_id: str,
    station: StationInfo,
    title_message: str,
    body: list[ReceiptLine],
    columns: int,
    copy_no: int,
) -> ReceiptDocument:
    check_columns(columns)
    if not tx_id:
        raise ReceiptError("a slip needs the transaction reference (tx_id)")
    if copy_no < 0:
        raise ReceiptError(f"copy number {copy_no} is negative")
    lines: list[ReceiptLine] = copy_marking(copy_no, columns) if copy_no else []
    lines += station_header(station, columns)
    lines += title(title_message, columns)
    lines += note(NOT_A_RECEIPT, columns, bold=True)
    lines.append(rule(columns))
    lines += body
    lines += hotline(station, columns)
    if copy_no:
        lines += copy_marking(copy_no, columns)
    return ReceiptDocument(
        job_id=f"{tx_id}/{kind}/{copy_no}",
        lines=tuple(lines),
        qr_payload=reference_code(tx_id),
    )


def interim_slip_document(
    *,
    tx_id: str,
    station: StationInfo,
    service_name: str,
    account_masked: str,
    amount_fen: int,
    fee_fen: int,
    cash_in_fen: int,
    time: str | datetime,
    columns: int,
    receipt_token: str | None = None,
    copy_no: int = 0,
    by_phone: bool = False,
) -> ReceiptDocument:
    """The slip of a payment in doubt (sent to the platform, its answer unknown).

    by_phone: paid by phone (a payment order): no cash line; money taken by phone goes back
    to the phone if the payment cannot complete.

    receipt_token: the payer's reprint code (never journaled), printed on the original: with
    it the result is claimed at the terminal.

    time: when the payment was sent (ISO 8601 with offset as journaled, or an aware
    datetime). The figures are those of the transaction; the slip promises nothing more
    than that the outcome will be settled and how to claim it.
    """
    body = row("Transaction ref.", tx_id, columns)
    if receipt_token and not copy_no:
        body += row("Reprint code", receipt_token, columns)
    body += row("Time", _time(time), columns)
    body += row("Service", service_name, columns)
    body += row("Account", account_masked, columns)
    body += row("Amount", _fen("amount_fen", amount_fen), columns)
    body += row("Fee", _fen("fee_fen", fee_fen), columns)
    if not by_phone:
        body += row("Cash received", _fen("cash_in_fen", cash_in_fen), columns)
    body.append(rule(columns))
    body += note(
        "The result of this payment is not known yet. The terminal settles it "
        "automatically: do not pay again.",
        columns,
        bold=True,
    )
    if by_phone:
        body += note(
            "Money taken by phone goes back to your phone if the payment cannot complete.",
            columns,
            bold=True,
        )
    body += note(
        "Keep this slip. With its reprint code, collect the receipt or a refund voucher at "
        "this terminal, or call the hotline with its transaction reference.",
        columns,
    )
    return _slip(
        kind="interim",
        tx_id=tx_id,
        station=station,
        title_message="Payment pending",
        body=body,
        columns=columns,
        copy_no=copy_no,
    )


def claim_slip_document(
    *,
    tx_id: str,
    station: StationInfo,
    time: str | datetime,
    columns: int,
    claim_ref: str | None = None,
    copy_no: int = 0,
) -> ReceiptDocument:
    """The slip for cash the acceptor kept but could not recognise (a suspense record).

    tx_id: the transaction that was collecting; claim_ref: the suspense record's own
    reference, when it has one.
    """
    body = row("Transaction ref.", tx_id, columns)
    if claim_ref:
        body += row("Claim ref.", claim_ref, columns)
    body += row("Time", _time(time), columns)
    body.append(rule(columns))
    body += note(
        "Cash the machine could not recognise was kept. The station staff will count it "
        "and settle it with you.",
        columns,
        bold=True,
    )
    body += note("Keep this slip and show it to the station staff.", columns)
    return _slip(
        kind="claim",
        tx_id=tx_id,
        station=station,
        title_message="Cash claim slip",
        body=body,
        columns=columns,
        copy_no=copy_no,
    )
