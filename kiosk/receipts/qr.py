"""The receipt's QR code: the signed tx_close record itself, and its verification.

Owns the payload format "KR1:" + canonical JSON of the complete tx_close record (signature
included), so anyone holding the station certificate can check a receipt offline. It never
reads the journal database and never signs.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import segno

from kiosk.journal.canonical import JournalError, canonical_json
from kiosk.journal.verify import load_certificates, signature_problem
from kiosk.receipts.model import ReceiptError

RECEIPT_PREFIX = "KR1:"
QR_ERROR_LEVEL = "m"
# Version 20 at level M holds only 666 bytes, but a signed tx_close record as the transaction
# engine writes it measures 700-900 bytes (about 400 of them are seq, prev, time, signer,
# cert_sha256 and sig), i.e. version 22-24. Version 25 (117 modules plus a 4-module quiet
# zone each side = 125) still prints at 3 dots per module within the 384-dot line of a 58 mm
# printer, and holds 997 bytes at level M.
QR_MAX_VERSION = 25


@dataclass(frozen=True)
class ReceiptCheck:
    genuine: bool
    problem: str  # "" when genuine
    record: dict[str, Any] | None  # the record the code holds, when it could be read


def qr_symbol(payload: str) -> segno.QRCode:
    """The QR code of a payload (byte mode, level M); ReceiptError if it is too large."""
    try:
        return segno.make(
            payload,
            error=QR_ERROR_LEVEL,
            mode="byte",
            boost_error=False,
            version=None,
        )
    except segno.DataOverflowError:
        raise ReceiptError(
            f"the receipt code ({len(payload)} bytes) does not fit any QR code: "
            "the tx_close record is far too large"
        ) from None


def qr_payload(record: Mapping[str, object]) -> str:
    """'KR1:' + the canonical JSON of the complete tx_close record, checked to fit the QR."""
    if record.get("type") != "tx_close":
        raise ReceiptError(
            f"only a tx_close record goes into a receipt code, not {record.get('type')!r}"
        )
    try:
        text = canonical_json(record).decode("utf-8")
    except JournalError as exc:
        raise ReceiptError(f"the tx_close record cannot be encoded: {exc}") from None
    if not text.isascii():
        # Non-ASCII would push the QR code into a UTF-8/ECI byte mode some scanners mangle.
        raise ReceiptError(
            f"tx_close record {record.get('receipt_no')} holds non-ASCII text: keep its "
            "field values ASCII so the receipt code stays readable"
        )
    payload = RECEIPT_PREFIX + text
    version = qr_symbol(payload).version
    if not isinstance(version, int) or version > QR_MAX_VERSION:
        raise ReceiptError(
            f"the receipt code of {record.get('receipt_no')} needs QR version {version} "
            f"({len(payload)} bytes), above {QR_MAX_VERSION}: shorten the tx_close fields"
        )
    return payload


def verify_receipt(text: str, cert_pem: bytes) -> ReceiptCheck:
    """Check a scanned receipt code against the station certificate (or a bundle of them)."""
    certificates = load_certificates(cert_pem)
    text = text.strip()
    if not text.startswith(RECEIPT_PREFIX):
        return ReceiptCheck(
            False, f"this is not a kiosk receipt code: it must start with {RECEIPT_PREFIX}", None
        )
    try:
        record = json.loads(text[len(RECEIPT_PREFIX) :])
    except ValueError:
        return ReceiptCheck(False, "the receipt code is damaged: its content is not JSON", None)
    if not isinstance(record, dict) or record.get("type") != "tx_close":
        return ReceiptCheck(False, "the receipt code does not hold a transaction record", None)
    receipt_no = record.get("receipt_no")
    if "sig" not in record:
        if record.get("sig_failed") is True:
            return ReceiptCheck(
                False,
                f"receipt {receipt_no} was closed during a signature device outage and "
                "carries no signature: ask the station to check it in its journal",
                record,
            )
        return ReceiptCheck(False, f"receipt {receipt_no} carries no signature", record)
    try:
        problem = signature_problem(record, certificates)
    except JournalError as exc:
        problem = str(exc)
    if problem is not None:
        return ReceiptCheck(False, f"receipt {receipt_no} is not genuine: {problem}", record)
    return ReceiptCheck(True, "", record)
