"""Receipts: what a closed transaction's receipt says, how it is laid out, and its QR code.

Owns the receipt a resident takes home, the slips given when there is no receipt yet (a
payment in doubt, unrecognised cash), and the check anyone can run on a receipt's code. A
receipt is built only from the signed tx_close journal record; it never prints by itself.
"""

from kiosk.receipts.identifiers import (
    grouped_voucher_id,
    new_receipt_token,
    new_voucher_id,
    read_voucher_id,
    receipt_token_matches,
)
from kiosk.receipts.layout import receipt_document
from kiosk.receipts.model import Receipt, ReceiptError, StationInfo, receipt_from_record
from kiosk.receipts.qr import (
    ReceiptCheck,
    ReceiptCode,
    ReceiptCodeTooLarge,
    qr_payload,
    receipt_code,
    verify_receipt,
)
from kiosk.receipts.slips import claim_slip_document, interim_slip_document

__all__ = [
    "Receipt",
    "ReceiptCheck",
    "ReceiptCode",
    "ReceiptCodeTooLarge",
    "ReceiptError",
    "StationInfo",
    "claim_slip_document",
    "grouped_voucher_id",
    "interim_slip_document",
    "new_receipt_token",
    "new_voucher_id",
    "qr_payload",
    "read_voucher_id",
    "receipt_code",
    "receipt_document",
    "receipt_from_record",
    "receipt_token_matches",
    "verify_receipt",
]
