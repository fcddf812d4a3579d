"""Terminals' station certificates, registered by staff, and the verdict on each record.

Owns how the back office learns a terminal's certificate (an administrator registers it,
`kiosk-backoffice cert register`, optionally only if the operator CA configured in
[certificates] issued it) and what a received record's signature proves: verified against
one of the terminal's registered certificates, legitimately unsigned (stored flagged), or
bad (quarantined, with an alert). The signature rules themselves are the journal
verifier's (kiosk.journal.verify.signature_problem): called, never copied. It never reads
MQTT.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

from backoffice.errors import BackofficeError
from backoffice.store import Cursor, Row, Store, key_chunks, key_table
from kiosk.journal.canonical import JournalError
from kiosk.journal.record_types import may_travel_unsigned
from kiosk.journal.verify import StationCertificate, load_certificates, signature_problem
from kiosk.telemetry.topics import valid_station, valid_terminal

Key = tuple[str, str]


class SignatureStatus(StrEnum):
    VERIFIED = "verified"  # the signature verifies against a registered certificate
    UNSIGNED = "unsigned"  # legitimately unsigned (kiosk.journal.record_types.may_travel_unsigned)
    BAD = "bad"  # quarantined: altered, signed by an unknown key, or unsigned where it must not


@dataclass(frozen=True)
class Verdict:
    status: SignatureStatus
    problem: str = ""  # why it is bad


def verdict(record: Mapping[str, Any], certificates: Mapping[str, StationCertificate]) -> Verdict:
    """What the record's signature proves, given the terminal's registered certificates."""
    if "sig" not in record:
        if may_travel_unsigned(record):
            return Verdict(SignatureStatus.UNSIGNED)
        return Verdict(
            SignatureStatus.BAD, f"a {record.get('type')} record must be signed and is not"
        )
    if not certificates:
        return Verdict(
            SignatureStatus.BAD,
            "no station certificate is registered for this terminal: register it with "
            "kiosk-backoffice cert register, then kiosk-backoffice quarantine --release",
        )
    problem = signature_problem(record, certificates)
    if problem is not None:
        return Verdict(SignatureStatus.BAD, problem)
    return Verdict(SignatureStatus.VERIFIED)


class CertificateRefused(BackofficeError):
    """A certificate cannot be registered for a terminal; the message says why."""


def register_certificate(
    store: Store,
    station: str,
    terminal: str,
    pem: bytes,
    *,
    by: str,
    now: float,
    operator_ca: bytes | None = None,
) -> list[str]:
    """Register the terminal's station certificate(s) from a PEM file; return their
    SHA-256 fingerprints. With operator_ca, each must be issued by that CA."""
    if not valid_station(station) or not valid_terminal(terminal):
        raise CertificateRefused(f"{station}/{terminal} is not a station and terminal id")
    try:
        found = load_certificates(pem)
    except JournalError as exc:
        raise CertificateRefused(str(exc)) from None
    if operator_ca is not None:
        _check_issuer(found.values(), operator_ca)
    with store.transaction() as cursor:
        for fingerprint, entry in found.items():
            cert = entry.certificate
            cursor.execute(
                "INSERT INTO station_certificates (station, terminal, cert_sha256, pem, subject, "
                "not_after, registered, registered_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (station, terminal, cert_sha256) DO NOTHING",
                (
                    station,
                    terminal,
                    fingerprint,
                    cert.public_bytes(Encoding.PEM).decode("ascii"),
                    cert.subject.rfc4514_string(),
                    cert.not_valid_after_utc.isoformat(),
                    now,
                    by,
                ),
            )
    return sorted(found)


def _check_issuer(certificates: Iterable[StationCertificate], operator_ca: bytes) -> None:
    try:
        authorities = x509.load_pem_x509_certificates(operator_ca)
    except ValueError:
        raise CertificateRefused("the operator CA file holds no PEM certificate") from None
    for entry in certificates:
        for authority in authorities:
            try:
                entry.certificate.verify_directly_issued_by(authority)
                break
            except (ValueError, TypeError, InvalidSignature):
                continue
        else:
            raise CertificateRefused(
                f"certificate {entry.sha256[:16]}... was not issued by the operator CA: "
                "register the certificate on the terminal's token (kiosk-tool token cert)"
            )


def load_operator_ca(path: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CertificateRefused(
            f"cannot read the operator CA {path}: {exc.strerror}; "
            "check certificates.operator_ca_file"
        ) from None


def certificates_of(
    cursor: Cursor, keys: Iterable[Key]
) -> dict[Key, dict[str, StationCertificate]]:
    """The registered certificates of these terminals, by fingerprint (empty: none)."""
    found: dict[Key, dict[str, StationCertificate]] = {key: {} for key in keys}
    for chunk in key_chunks(sorted(found)):
        rows = cursor.execute(
            f"SELECT c.station, c.terminal, c.pem FROM {key_table(chunk)} "
            "JOIN station_certificates c ON c.station = k.column1 AND c.terminal = k.column2",
            [value for key in chunk for value in key],
        )
        for row in rows:
            found[(row["station"], row["terminal"])].update(load_certificates(row["pem"].encode()))
    return found


def registered_certificates(store: Store, station: str, terminal: str) -> list[Row]:
    return store.query(
        "SELECT cert_sha256, subject, not_after, registered, registered_by "
        "FROM station_certificates WHERE station = ? AND terminal = ? ORDER BY registered",
        (station, terminal),
    )
