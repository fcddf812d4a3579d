"""The printed receipt: bilingual lines for a 32- or 48-column thermal printer, and its QR.

Owns the receipt's wording and layout: what the original says and what a copy leaves out
(a copy of a receipt with a voucher carries no voucher id and no signed code, since those
are the voucher). It never talks to a printer: it returns a kiosk.devices.ReceiptDocument.
Text measurement and the bilingual rows are kiosk/receipts/lines.py's.
"""

from collections.abc import Mapping

from kiosk.devices import ReceiptDocument, ReceiptLine
from kiosk.money import format_fen
from kiosk.receipts.identifiers import grouped_voucher_id
from kiosk.receipts.lines import (
    SUPPORTED_COLUMNS,
    centred,
    char_width,
    copy_marking,
    display_width,
    label,
    local_time,
    note,
    row,
    rule,
    wrap,
)
from kiosk.receipts.model import Receipt, ReceiptError, StationInfo
from kiosk.receipts.qr import ReceiptCodeTooLarge, receipt_code, reference_code

# Measurement helpers the printer driver shares (they live in kiosk/receipts/lines.py).
__all__ = [
    "CARD_CREDIT_MESSAGES",
    "OUTCOME_MESSAGES",
    "char_width",
    "display_width",
    "receipt_document",
    "station_header",
    "wrap",
]

# Outcome codes of tx_close records and the English message id shown for each (translated
# in receipts.po). An unknown code is printed as it is rather than hidden.
OUTCOME_MESSAGES = {
    "paid": "Paid",
    "refused": "Refused",
    "refund": "Refunded",
    "cancelled": "Cancelled",
    "failed": "Failed",
    "refunded": "Refunded to your phone",
}
# The wallets a resident pays by phone with (kiosk.payment_codes.PaymentScheme values), and
# the note of a payment by phone given back to it (translated in qrpay.po).
WALLET_MESSAGES = {"wechat": "WeChat Pay", "alipay": "Alipay", "unionpay": "UnionPay"}
REFUNDED_TO_WALLET = {
    "wechat": "The whole amount was refunded to your WeChat Pay.",
    "alipay": "The whole amount was refunded to your Alipay.",
    "unionpay": "The whole amount was refunded to your UnionPay.",
}
CARD_CREDIT_MESSAGES = {
    "written": "Written",
    "pending": "Not yet written",
    "conflict": "Not written: the card changed",
}
INVOICE_NOTE = "For an invoice, bring this receipt to a post office."


def check_columns(columns: int) -> None:
    if columns not in SUPPORTED_COLUMNS:
        raise ReceiptError(
            f"receipts are laid out for {' or '.join(map(str, SUPPORTED_COLUMNS))} columns, "
            f"not {columns}: check devices.paper_width_mm"
        )


def station_header(station: StationInfo, columns: int) -> list[ReceiptLine]:
    """The station's name (double size when it fits), address and telephone."""
    if display_width(station.name) * 2 <= columns:
        lines = [ReceiptLine(station.name, bold=True, double=True, align="center")]
    else:
        lines = centred(station.name, columns, bold=True)
    if station.address:
        lines += centred(station.address, columns)
    if station.phone:
        lines += row("Phone", station.phone, columns)
    return lines


def hotline(station: StationInfo, columns: int) -> list[ReceiptLine]:
    return row("Help hotline", station.hotline, columns) if station.hotline else []


def _figures(receipt: Receipt, columns: int, *, original: bool) -> list[ReceiptLine]:
    lines = row("Service", receipt.service_name, columns)
    lines += row("Account", receipt.account_masked, columns)
    if receipt.card_no_masked:
        lines += row("Card no.", receipt.card_no_masked, columns)
    lines += row("Amount", format_fen(receipt.amount_fen), columns)
    lines += row("Fee", format_fen(receipt.fee_fen), columns)
    lines += row("Total", format_fen(receipt.total_fen), columns)
    if receipt.payment_method == "qr":
        lines += _by_phone(receipt, columns)
    else:
        lines += row("Cash received", format_fen(receipt.cash_in_fen), columns)
    if receipt.voucher_fen:
        lines += row("Voucher issued", format_fen(receipt.voucher_fen), columns)
        if receipt.voucher_id and original:
            lines += row("Voucher no.", grouped_voucher_id(receipt.voucher_id), columns)
        if receipt.voucher_expires:
            lines += row("Valid until", receipt.voucher_expires, columns)
    if receipt.credited_fen:
        lines += row("Credited to account", format_fen(receipt.credited_fen), columns)
    outcome = OUTCOME_MESSAGES.get(receipt.outcome)
    lines += row("Result", label(outcome) if outcome else receipt.outcome, columns)
    if receipt.reason and receipt.outcome != "paid":
        lines += row("Reason", label(receipt.reason), columns)
    if receipt.platform_ref:
        lines += row("Platform ref.", receipt.platform_ref, columns)
    if receipt.card_credit:
        state = CARD_CREDIT_MESSAGES.get(receipt.card_credit)
        lines += row("Card credit", label(state) if state else receipt.card_credit, columns)
        if receipt.card_credit == "pending":
            lines += note(
                "Insert the card at this terminal again to finish writing the credit.",
                columns,
                bold=True,
            )
        if receipt.card_credit == "conflict":
            lines += note(
                "The card was loaded elsewhere before this credit could be written. Keep this "
                "receipt: the station staff will credit or refund this payment.",
                columns,
                bold=True,
            )
    return lines


def _by_phone(receipt: Receipt, columns: int) -> list[ReceiptLine]:
    """A payment by phone: the wallet and what it paid, the provider's reference, and what
    went back to it (never cash, never a voucher)."""
    wallet = WALLET_MESSAGES.get(str(receipt.paid_with))
    lines = row("Paid by phone", format_fen(receipt.paid_in_fen), columns)
    if receipt.paid_with:
        lines += row("Wallet", label(wallet) if wallet else str(receipt.paid_with), columns)
    if receipt.provider_ref:
        lines += row("Wallet ref.", receipt.provider_ref, columns)
    if receipt.refunded_fen:
        lines += row("Refunded", format_fen(receipt.refunded_fen), columns)
        refunded = REFUNDED_TO_WALLET.get(str(receipt.paid_with))
        if refunded:
            lines += note(refunded, columns, bold=True)
    return lines


def receipt_document(
    receipt: Receipt,
    record: Mapping[str, object],
    *,
    columns: int,
    copy_no: int = 0,
    receipt_token: str | None = None,
) -> ReceiptDocument:
    """The printable receipt of a closed transaction; copy_no > 0 marks a reprint.

    receipt_token: the random code the engine keeps for this receipt (never journaled),
    printed on the original as the code that allows a reprint; a copy never prints it.
    A copy of a receipt with a voucher prints neither the voucher id nor the signed code:
    its QR code holds only the receipt number (KRREF:).
    """
    check_columns(columns)
    if record.get("receipt_no") != receipt.receipt_no:
        raise ReceiptError(
            f"record {record.get('receipt_no')} is not the record of receipt {receipt.receipt_no}"
        )
    if copy_no < 0:
        raise ReceiptError(f"copy number {copy_no} is negative")
    original = copy_no == 0
    lines: list[ReceiptLine] = []
    if not original:
        lines += copy_marking(copy_no, columns)
    lines += station_header(receipt.station_info, columns)
    lines += centred(label("Receipt"), columns)
    lines.append(rule(columns))
    lines += row("Station", receipt.station, columns)
    lines += row("Terminal", receipt.terminal, columns)
    lines += row("Receipt no.", receipt.receipt_no, columns)
    lines += row("Time", local_time(receipt.time), columns)
    lines.append(rule(columns))
    lines += _figures(receipt, columns, original=original)
    lines.append(rule(columns))

    payload: str | None = None
    level = "M"
    signed_code = False
    if receipt.voucher_fen and not original:
        # The signed record is the voucher (its id, or for older records the record
        # itself): a copy must not be redeemable, so its code only names the receipt.
        payload = reference_code(receipt.receipt_no)
        lines += note(
            "This copy cannot be redeemed: the voucher is paid out only against the original.",
            columns,
            bold=True,
        )
    else:
        try:
            code = receipt_code(record)
            payload, level, signed_code = code.payload, code.error_level, True
        except ReceiptCodeTooLarge:
            lines += note(
                "This receipt's code is too large to print: the station checks the receipt "
                "by its number.",
                columns,
            )
    if receipt.voucher_fen and original:
        lines += note(
            "The voucher number and QR code are the voucher: keep this receipt; it is paid "
            "out once."
            if receipt.voucher_id
            else "This receipt's QR code is the voucher: keep it; it is paid out once.",
            columns,
            bold=True,
        )
    if receipt.sig_failed:
        lines += note(
            "Signature device failed: this receipt is not signed yet; the terminal signs "
            "its journal when the device works again.",
            columns,
            bold=True,
        )
    if signed_code:
        lines += note("Scan the QR code to check this receipt.", columns)
    if receipt_token and original:
        lines += row("Reprint code", receipt_token, columns)
        lines += note("Give this code to have the receipt printed again.", columns)
    lines += note(INVOICE_NOTE, columns)
    lines += hotline(receipt.station_info, columns)
    if not original:
        lines += copy_marking(copy_no, columns)
    return ReceiptDocument(
        job_id=f"{receipt.receipt_no}/{copy_no}",
        lines=tuple(lines),
        qr_payload=payload,
        qr_error_level=level,
    )
