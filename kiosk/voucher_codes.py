"""Vouchers' codes as the scanner reads them: the voucher id a scan names, or why it names none.

A voucher slip (the original receipt of a payment that left change) carries its voucher in
its QR code: the compact signed record ("KR2:", kiosk/receipts/compact.py) whose voucher_id
field is the voucher, or on receipts printed before it the canonical JSON ("KR1:"). The
printed voucher number (XXXX-XXXX-XXXX-XXXX) is read as a person would type it
(kiosk.receipts.identifiers.read_voucher_id), for a scanner that reads the number's barcode
or a code typed through a keyboard wedge. A copy or a slip carries only a reference
("KRREF:") and no voucher: copies are not money. The signature is not checked here: the
platform redeems a voucher id once whoever names it, so a forged code is no more than a
typed id (docs/scanner.md).

Pure rules, no I/O. A voucher id is single-use money: it is never logged whole (mask_code).
"""

import json

from kiosk.errors import KioskError
from kiosk.payment_codes import CodeProblem, mask_code
from kiosk.receipts import compact
from kiosk.receipts.identifiers import is_voucher_id, read_voucher_id
from kiosk.receipts.model import ReceiptError
from kiosk.receipts.qr import LEGACY_PREFIX, REFERENCE_PREFIX

# decode_record needs a station for the record it rebuilds; the voucher does not depend on it.
_ANY_STATION = "-"


class VoucherCodeInvalid(KioskError):
    """A scan that names no voucher; the message says what to do."""

    def __init__(self, problem: CodeProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


def voucher_id_of_scan(text: str) -> str:
    """The voucher id a scanned code names; VoucherCodeInvalid (with its CodeProblem) if none."""
    if not text.strip():
        raise VoucherCodeInvalid(
            CodeProblem.EMPTY, "the scanner read nothing: scan the voucher slip's QR code again"
        )
    if text.startswith(compact.PREFIX):
        return _of_record(_compact_record(text), text)
    if text.startswith(LEGACY_PREFIX):
        try:
            record = json.loads(text[len(LEGACY_PREFIX) :])
        except ValueError:
            raise _damaged(text) from None
        return _of_record(record if isinstance(record, dict) else {}, text)
    if text.startswith(REFERENCE_PREFIX):
        raise VoucherCodeInvalid(
            CodeProblem.NOT_A_VOUCHER,
            "this code is a copy's or a slip's: it carries no voucher; scan the original "
            "voucher slip or type its voucher number",
        )
    voucher_id = read_voucher_id(text)
    if voucher_id is not None:
        return voucher_id
    problem = CodeProblem.NOT_A_VOUCHER if text.isascii() else CodeProblem.GARBLED
    raise VoucherCodeInvalid(
        problem,
        f"the scan {mask_code(text)} ({len(text)} characters) is no voucher code: scan the "
        "voucher slip's QR code again or type its voucher number",
    )


def _compact_record(text: str) -> dict[str, object]:
    try:
        return compact.decode_record(
            compact.decode_code(text), station=_ANY_STATION, cert_sha256=None
        )
    except ReceiptError:
        raise _damaged(text) from None


def _of_record(record: dict[str, object], text: str) -> str:
    voucher_id = record.get("voucher_id")
    if isinstance(voucher_id, str) and is_voucher_id(voucher_id):
        return voucher_id
    raise VoucherCodeInvalid(
        CodeProblem.NOT_A_VOUCHER,
        f"the receipt code {mask_code(text)} carries no voucher (a receipt without change "
        "left): scan the voucher slip's QR code or type its voucher number",
    )


def _damaged(text: str) -> VoucherCodeInvalid:
    return VoucherCodeInvalid(
        CodeProblem.GARBLED,
        f"the receipt code {mask_code(text)} is damaged or misread: scan the voucher slip "
        "again, flat and still, or type its voucher number",
    )
