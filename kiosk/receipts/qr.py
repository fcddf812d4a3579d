"""The receipt's QR code: which code a receipt carries, its symbol, and checking a scanned code.

Owns the choice of code and symbol (docs/journal-format.md section 7): an original receipt
carries the compact signed record ("KR2:", kiosk/receipts/compact.py) in a QR code of at most
version 10, at error correction level M when it fits and L otherwise; a slip, or a copy that
must not carry a redeemable voucher, carries only a reference ("KRREF:"). It verifies all of
them, and the older "KR1:" codes (the canonical JSON of the whole record) that receipts
printed before. It never reads the journal database and never signs.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import segno

from kiosk.journal.canonical import JournalError, canonical_json
from kiosk.journal.certificates import StationCertificate, load_certificates, load_operator_ca
from kiosk.journal.record_types import RecordType
from kiosk.journal.verify import SIGNATURE_MISMATCH, signature_problem
from kiosk.message_text import MessageText, error_text
from kiosk.receipts import compact
from kiosk.receipts.model import ReceiptError

RECEIPT_PREFIX = compact.PREFIX
LEGACY_PREFIX = "KR1:"
REFERENCE_PREFIX = "KRREF:"
# A phone reads a code of up to version 10 (57 modules) from thermal paper even at 3 printer
# dots a module; receipts used to print version 22-25, which many phones could not read.
QR_MAX_VERSION = 10
# In order of preference: M restores 15 % of the symbol, L 7 %. A P-256-signed record with a
# voucher and card fields needs about 240 bytes, beyond version 10 at M (204 bytes of base45
# payload), within it at L (260): see docs/journal-format.md for the figures.
QR_ERROR_LEVELS = ("M", "L")


class ReceiptCodeTooLarge(ReceiptError):
    """A receipt code needs a QR symbol larger than a phone reads reliably from paper."""


@dataclass(frozen=True)
class ReceiptCode:
    payload: str
    error_level: str  # "M" or "L"
    version: int


@dataclass(frozen=True)
class ReceiptCheck:
    genuine: bool
    problem: str  # "" when genuine
    record: dict[str, Any] | None  # the record the code holds, when it could be read


def _symbol(payload: str) -> segno.QRCode | None:
    for level in QR_ERROR_LEVELS:
        try:
            symbol = segno.make_qr(payload, error=level, boost_error=False)
        except segno.DataOverflowError:
            return None
        if isinstance(symbol.version, int) and symbol.version <= QR_MAX_VERSION:
            return symbol
    return None


def qr_symbol(payload: str) -> segno.QRCode:
    """The QR symbol of a payload: version <= QR_MAX_VERSION at the best level that fits.

    The mode is chosen from the data, as a printer's own QR encoder does: a KR2 code is all
    QR alphanumeric characters. ReceiptCodeTooLarge when no level fits.
    """
    symbol = _symbol(payload)
    if symbol is None:
        raise ReceiptCodeTooLarge(
            f"the code ({len(payload)} characters) needs a QR code above version "
            f"{QR_MAX_VERSION}, which phones do not read reliably from paper"
        )
    return symbol


def receipt_code(record: Mapping[str, object]) -> ReceiptCode:
    """The KR2 code of a tx_close record and the QR level it is printed at.

    ReceiptCodeTooLarge when it needs a QR symbol above version 10 even at level L (a
    signature algorithm with large signatures, such as RSA-2048, or unusually long text
    fields): the receipt then says so instead of printing a code a phone cannot read.
    """
    payload = compact.encode_code(record)
    symbol = _symbol(payload)
    if symbol is None or not isinstance(symbol.version, int):
        algorithm = compact.decode_code(payload).algorithm
        try:
            needed = f"version {segno.make_qr(payload, error='l').version}-L"
        except segno.DataOverflowError:
            needed = "more than any QR code holds"
        raise ReceiptCodeTooLarge(
            f"the receipt code of {record.get('receipt_no')} ({len(payload)} characters, "
            f"signature algorithm {algorithm.name}) needs {needed}, above version "
            f"{QR_MAX_VERSION}, which phones do not read reliably from paper"
        )
    return ReceiptCode(payload, str(symbol.error), symbol.version)


def qr_payload(record: Mapping[str, object]) -> str:
    """The KR2 code of a tx_close record (receipt_code(record).payload)."""
    return receipt_code(record).payload


def reference_code(reference: str) -> str:
    """A code that only names a transaction or receipt: for slips and voucher copies."""
    return REFERENCE_PREFIX + reference


# ------------------------------------------------------------------ verifying a code


def _chain_problem(
    record: Mapping[str, Any],
    station: StationCertificate,
    certificates: Mapping[str, StationCertificate],
    ca_pem: bytes | None,
) -> str | None:
    ca = load_operator_ca(ca_pem)
    if ca is None:
        return None
    try:
        at = datetime.fromisoformat(str(record.get("time")))
    except ValueError:
        return f"its time {record.get('time')!r} is not ISO 8601"
    return ca.chain_problem(station, at, certificates.values())


def _verdict(
    record: dict[str, Any],
    certificates: Mapping[str, StationCertificate],
    ca_pem: bytes | None,
) -> ReceiptCheck:
    receipt_no = record.get("receipt_no")
    if "sig" not in record:
        if record.get("sig_failed") is True:
            return ReceiptCheck(
                False,
                MessageText(
                    "receipt {receipt} was closed during a signature device outage and carries "
                    "no signature: ask the station to check it in its journal",
                    receipt=receipt_no,
                ),
                record,
            )
        return ReceiptCheck(
            False, MessageText("receipt {receipt} carries no signature", receipt=receipt_no), record
        )
    try:
        problem = signature_problem(record, certificates)
    except JournalError as exc:
        problem = error_text(exc)
    if problem is None:
        station = certificates[str(record["cert_sha256"])]
        problem = _chain_problem(record, station, certificates, ca_pem)
    if problem is not None:
        return ReceiptCheck(
            False,
            MessageText(
                "receipt {receipt} is not genuine: {problem}", receipt=receipt_no, problem=problem
            ),
            record,
        )
    return ReceiptCheck(True, "", record)


def _verify_legacy(
    text: str, certificates: Mapping[str, StationCertificate], ca_pem: bytes | None
) -> ReceiptCheck:
    body = text[len(LEGACY_PREFIX) :]
    try:
        record = json.loads(body)
    except ValueError:
        return ReceiptCheck(False, "the receipt code is damaged: its content is not JSON", None)
    if not isinstance(record, dict) or record.get("type") != RecordType.TX_CLOSE:
        return ReceiptCheck(False, "the receipt code does not hold a transaction record", None)
    try:
        canonical = canonical_json(record).decode("utf-8")
    except JournalError:
        canonical = ""
    if canonical != body:
        return ReceiptCheck(
            False,
            MessageText(
                "receipt {receipt} is not genuine: its code is not in canonical JSON form, byte "
                "for byte, so it was edited",
                receipt=record.get("receipt_no"),
            ),
            record,
        )
    return _verdict(record, certificates, ca_pem)


def _verify_compact(
    text: str, certificates: Mapping[str, StationCertificate], ca_pem: bytes | None
) -> ReceiptCheck:
    try:
        code = compact.decode_code(text)
    except ReceiptError as exc:
        return ReceiptCheck(False, str(exc), None)
    record: dict[str, Any] | None = None
    problem = "the station certificate names no station (no serialNumber in its subject)"
    # Every certificate of a bundle is tried: the code does not name its certificate (the
    # verifier computes cert_sha256), and a renewal leaves a station two of them.
    for station in certificates.values():
        if station.institution_no is None:
            continue
        try:
            record = compact.decode_record(
                code, station=station.institution_no, cert_sha256=station.sha256
            )
        except ReceiptError as exc:
            return ReceiptCheck(False, str(exc), None)
        check = _verdict(record, {station.sha256: station}, ca_pem)
        if check.genuine or "sig" not in record:
            return check
        problem = check.problem
        if problem.endswith(SIGNATURE_MISMATCH):
            # The code names no certificate: a wrong one and an alteration look alike.
            problem = MessageText(
                "receipt {receipt} is not genuine: its signature does not match the station "
                "certificate given: the code was altered, or it is another station's receipt",
                receipt=record.get("receipt_no"),
            )
    return ReceiptCheck(False, problem, record)


def verify_receipt(text: str, cert_pem: bytes, *, ca_pem: bytes | None = None) -> ReceiptCheck:
    """Check a scanned receipt code against the station certificate (or a bundle of them).

    ca_pem: the operator CA; the certificate must then chain to it at the receipt's time.
    """
    certificates = load_certificates(cert_pem)
    text = text.strip()
    if text.startswith(RECEIPT_PREFIX):
        return _verify_compact(text, certificates, ca_pem)
    if text.startswith(LEGACY_PREFIX):
        return _verify_legacy(text, certificates, ca_pem)
    if text.startswith(REFERENCE_PREFIX):
        return ReceiptCheck(
            False,
            MessageText(
                "this code only names {number!r} (a slip, or the copy of a receipt with a "
                "voucher): it proves nothing by itself; the station checks that number in its "
                "journal",
                number=text[len(REFERENCE_PREFIX) :],
            ),
            None,
        )
    return ReceiptCheck(
        False,
        MessageText(
            "this is not a kiosk receipt code: it must start with {prefix}", prefix=RECEIPT_PREFIX
        ),
        None,
    )
