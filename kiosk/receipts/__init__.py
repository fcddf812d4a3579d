"""Receipts: what a closed transaction's receipt says, how it is laid out, and its QR code.

Owns the receipt a resident takes home and the check anyone can run on its QR code. A
receipt is built only from the signed tx_close journal record; it never prints by itself.
"""

from kiosk.receipts.layout import receipt_document
from kiosk.receipts.model import Receipt, ReceiptError, receipt_from_record
from kiosk.receipts.qr import ReceiptCheck, qr_payload, verify_receipt

__all__ = [
    "Receipt",
    "ReceiptCheck",
    "ReceiptError",
    "qr_payload",
    "receipt_document",
    "receipt_from_record",
    "verify_receipt",
]
