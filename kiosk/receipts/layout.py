"""The printed receipt: bilingual lines for a 32- or 48-column thermal printer, and its QR.

Owns the receipt's wording and layout. Columns are counted by display width (a Chinese
character takes two columns), so labels and amounts line up on paper. It never talks to
a printer: it returns a kiosk.devices.ReceiptDocument for one.
"""

import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime

from kiosk.devices import ReceiptDocument, ReceiptLine
from kiosk.i18n import bilingual, translator
from kiosk.money import format_fen
from kiosk.receipts.model import Receipt, ReceiptError
from kiosk.receipts.qr import qr_payload

SUPPORTED_COLUMNS = (32, 48)

# Outcome codes of tx_close records and the English message id shown for each (translated
# in receipts.po). An unknown code is printed as it is rather than hidden.
OUTCOME_MESSAGES = {
    "paid": "Paid",
    "refused": "Refused",
    "refund": "Refunded",
    "cancelled": "Cancelled",
    "failed": "Failed",
}
CARD_CREDIT_MESSAGES = {"written": "Written", "pending": "Not yet written"}

_TOKEN = re.compile(r"\s+|\S")
# Chinese punctuation that may not begin a line (the basic rule of 禁则 line breaking).
_NO_LINE_START = frozenset("，。、；：！？）」』》〉】”’%")


def char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    # W and F are double width everywhere; A (ambiguous: ·, ×, —, °...) is double on a
    # Chinese printer, which prints them from its two-byte GB18030 font.
    return 2 if unicodedata.east_asian_width(char) in ("W", "F", "A") else 1


def display_width(text: str) -> int:
    """How many printer columns text takes."""
    return sum(char_width(char) for char in text)


def _cut(text: str, columns: int) -> str:
    """The longest start of text that fits columns."""
    width = 0
    for index, char in enumerate(text):
        width += char_width(char)
        if width > columns:
            return text[:index]
    return text


def wrap(text: str, columns: int) -> list[str]:
    """Break text into lines of at most columns display width.

    Written by hand because textwrap counts characters, not columns. English breaks at
    spaces; Chinese may break between any two characters; an over-long word is cut.
    """
    words: list[str] = []
    for token in _TOKEN.findall(text):
        if token in _NO_LINE_START and words and not words[-1].isspace():
            words[-1] += token
            continue
        # Consecutive narrow non-space characters form one word; wide ones stand alone.
        if (
            words
            and not token.isspace()
            and char_width(token) == 1
            and not words[-1].isspace()
            and char_width(words[-1][-1]) == 1
        ):
            words[-1] += token
        else:
            words.append(token)
    lines: list[str] = []
    current = ""
    for word in words:
        if display_width(current + word) <= columns:
            current += word
            continue
        if current.strip():
            lines.append(current.rstrip())
        current = "" if word.isspace() else word
        while display_width(current) > columns:
            head = _cut(current, columns)
            lines.append(head)
            current = current[len(head) :]
    if current.strip() or not lines:
        lines.append(current.rstrip())
    return lines


def _right(text: str, columns: int) -> str:
    return " " * (columns - display_width(text)) + text


def _row(message: str, value: str, columns: int) -> list[ReceiptLine]:
    """A label on the left and its value on the right, or on two lines if they do not fit."""
    label = bilingual(message)
    gap = columns - display_width(label) - display_width(value)
    if gap >= 1:
        return [ReceiptLine(label + " " * gap + value)]
    lines = [ReceiptLine(line) for line in wrap(label, columns)]
    lines += [ReceiptLine(_right(line, columns)) for line in wrap(value, columns)]
    return lines


def chinese(message: str) -> str:
    return translator("zh_CN")(message)


def _note(message: str, columns: int, *, bold: bool = False) -> list[ReceiptLine]:
    """A sentence for the resident: the Chinese paragraph, then the English one."""
    paragraphs = [chinese(message), message]
    if paragraphs[0] == message:
        paragraphs = [message]
    return [
        ReceiptLine(line, bold=bold)
        for paragraph in paragraphs
        for line in wrap(paragraph, columns)
    ]


def _local_time(iso_time: str) -> str:
    try:
        return datetime.fromisoformat(iso_time).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso_time


def _copy_marking(copy_no: int, columns: int) -> list[ReceiptLine]:
    text = f"{bilingual('COPY')} {copy_no}"
    return [ReceiptLine(line, bold=True, align="center") for line in wrap(text, columns)]


def receipt_document(
    receipt: Receipt, record: Mapping[str, object], *, columns: int, copy_no: int = 0
) -> ReceiptDocument:
    """The printable receipt of a closed transaction; copy_no > 0 marks a reprint."""
    if columns not in SUPPORTED_COLUMNS:
        raise ReceiptError(
            f"receipts are laid out for {' or '.join(map(str, SUPPORTED_COLUMNS))} columns, "
            f"not {columns}: check devices.paper_width_mm"
        )
    if record.get("receipt_no") != receipt.receipt_no:
        raise ReceiptError(
            f"record {record.get('receipt_no')} is not the record of receipt {receipt.receipt_no}"
        )
    if copy_no < 0:
        raise ReceiptError(f"copy number {copy_no} is negative")
    rule = ReceiptLine("-" * columns)
    lines: list[ReceiptLine] = []
    if copy_no:
        lines += _copy_marking(copy_no, columns)
    if display_width(receipt.station_name) * 2 <= columns:
        lines.append(ReceiptLine(receipt.station_name, bold=True, double=True, align="center"))
    else:
        lines += [
            ReceiptLine(line, bold=True, align="center")
            for line in wrap(receipt.station_name, columns)
        ]
    lines += [ReceiptLine(line, align="center") for line in wrap(bilingual("Receipt"), columns)]
    lines.append(rule)
    lines += _row("Station", receipt.station, columns)
    lines += _row("Terminal", receipt.terminal, columns)
    lines += _row("Receipt no.", receipt.receipt_no, columns)
    lines += _row("Time", _local_time(receipt.time), columns)
    lines.append(rule)
    lines += _row("Service", receipt.service_name, columns)
    lines += _row("Account", receipt.account_masked, columns)
    if receipt.card_no_masked:
        lines += _row("Card no.", receipt.card_no_masked, columns)
    lines += _row("Amount", format_fen(receipt.amount_fen), columns)
    lines += _row("Fee", format_fen(receipt.fee_fen), columns)
    lines += _row("Total", format_fen(receipt.total_fen), columns)
    lines += _row("Cash received", format_fen(receipt.cash_in_fen), columns)
    if receipt.voucher_fen:
        lines += _row("Voucher issued", format_fen(receipt.voucher_fen), columns)
    if receipt.credited_fen:
        lines += _row("Credited to account", format_fen(receipt.credited_fen), columns)
    outcome = OUTCOME_MESSAGES.get(receipt.outcome)
    lines += _row("Result", bilingual(outcome) if outcome else receipt.outcome, columns)
    if receipt.reason and receipt.outcome != "paid":
        lines += _row("Reason", bilingual(receipt.reason), columns)
    if receipt.platform_ref:
        lines += _row("Platform ref.", receipt.platform_ref, columns)
    if receipt.card_credit:
        state = CARD_CREDIT_MESSAGES.get(receipt.card_credit)
        lines += _row("Card credit", bilingual(state) if state else receipt.card_credit, columns)
        if receipt.card_credit == "pending":
            lines += _note(
                "Insert the card at this terminal again to finish writing the credit.",
                columns,
                bold=True,
            )
    lines.append(rule)
    if receipt.sig_failed:
        lines += _note(
            "Signature device failed: this receipt is not signed yet; the terminal signs "
            "its journal when the device works again.",
            columns,
            bold=True,
        )
    lines += _note("Scan the QR code to check this receipt.", columns)
    if copy_no:
        lines += _copy_marking(copy_no, columns)
    return ReceiptDocument(
        job_id=f"{receipt.receipt_no}/{copy_no}",
        lines=tuple(lines),
        qr_payload=qr_payload(record),
    )
