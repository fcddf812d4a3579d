"""Verification of an exported journal (JSON Lines) and of single signed records.

Owns the audit rules of docs/journal-format.md: numbering, hash chain, signatures, the
station certificate, signature outages and the journal's first record. It reads only what
it is given (lines and certificates); it never opens the terminal database or a token.
"""

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.journal.canonical import (
    BASE_KEYS,
    SIGNER_KINDS,
    ZERO_HASH,
    JournalError,
    canonical_json,
    der_sha256,
    record_hash,
    signed_bytes,
)

# Types that must always carry a signature, or be marked sig_failed during an outage.
SIGNED_TYPES = ("journal_start", "tx_close", "day_close", "signature_recovered")
SOFTWARE_SIGNER_WARNING = "signed by the demo software signer, not a token"


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    records: int  # records read and found sound (all of them when ok)
    first_bad_seq: int | None
    problem: str  # "" when ok
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class StationCertificate:
    certificate: x509.Certificate
    sha256: str


def load_certificates(cert_pem: bytes) -> dict[str, StationCertificate]:
    """The certificates of a PEM file or bundle (a station's successive certificates), by hash."""
    try:
        certificates = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise JournalError(
            "the certificate file holds no PEM certificate: give the station certificate "
            "(-----BEGIN CERTIFICATE-----)"
        ) from None
    found: dict[str, StationCertificate] = {}
    for certificate in certificates:
        if not isinstance(certificate.public_key(), ec.EllipticCurvePublicKey):
            raise JournalError(
                "the station certificate does not hold an ECDSA public key: "
                "give the certificate of the station's token"
            )
        fingerprint = der_sha256(certificate)
        found[fingerprint] = StationCertificate(certificate, fingerprint)
    return found


def signature_problem(
    record: Mapping[str, Any], certificates: Mapping[str, StationCertificate]
) -> str | None:
    """Why the record's signature is not good, or None when it verifies.

    The record must carry sig, signer and cert_sha256; a missing signature is the caller's
    business (it may be a sig_failed record).
    """
    signer = record.get("signer")
    if signer not in SIGNER_KINDS:
        return f"its signer is {signer!r}, not one of {', '.join(SIGNER_KINDS)}"
    fingerprint = record.get("cert_sha256")
    if not isinstance(fingerprint, str):
        return "it carries a signature but no cert_sha256"
    station_certificate = certificates.get(fingerprint)
    if station_certificate is None:
        return (
            f"it was signed with another certificate (cert_sha256 {fingerprint[:16]}...), "
            "not the station certificate given"
        )
    sig = record.get("sig")
    if not isinstance(sig, str):
        return "its sig is not base64 text"
    try:
        der = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError):
        return "its sig is not valid base64"
    public_key = station_certificate.certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)  # checked in load_certificates
    try:
        public_key.verify(der, signed_bytes(record), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return "its signature does not match its content: it was altered after signing"
    return None


class _Unsound(Exception):
    def __init__(self, seq: int | None, problem: str) -> None:
        super().__init__(problem)
        self.seq = seq
        self.problem = problem


def _parse_line(line: str, line_no: int, expected_seq: int) -> dict[str, Any]:
    text = line[:-1] if line.endswith("\n") else line
    if not text.strip():
        raise _Unsound(expected_seq, f"line {line_no} is empty; every line must hold one record")

    def refuse_constant(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    try:
        record = json.loads(text, parse_constant=refuse_constant)
    except ValueError as exc:
        raise _Unsound(expected_seq, f"line {line_no} is not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise _Unsound(expected_seq, f"line {line_no} is not a JSON object")
    try:
        canonical = canonical_json(record).decode("utf-8")
    except JournalError as exc:
        raise _Unsound(expected_seq, f"line {line_no}: {exc}") from None
    if canonical != text:
        raise _Unsound(
            record.get("seq") if isinstance(record.get("seq"), int) else expected_seq,
            f"line {line_no} is not in canonical JSON form: the export was edited",
        )
    return record


def _seq_of(line: str) -> int | None:
    try:
        seq = json.loads(line).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def _numbering_problem(expected: int, found: int, rest: Iterator[str]) -> _Unsound:
    """Explain a numbering break: a repeat, a reordering, or missing records."""
    if found < expected:
        return _Unsound(found, f"record {found} appears again after record {expected - 1}")
    later = {_seq_of(line) for line in rest}
    if expected in later:
        return _Unsound(
            expected, f"records are out of order: record {found} comes before record {expected}"
        )
    if found == expected + 1:
        return _Unsound(expected, f"record {expected} is missing")
    return _Unsound(expected, f"records {expected} to {found - 1} are missing")


class _Auditor:
    def __init__(self, certificates: Mapping[str, StationCertificate]) -> None:
        self.certificates = certificates
        self.count = 0
        self.prev_hash = ZERO_HASH
        self.prev_time = ""
        self.identity: tuple[object, object] | None = None
        self.outage: list[int] = []  # seqs of sig_failed records not yet recovered
        self.software_signed = 0
        self.last_signed_seq = 0
        self.warnings: list[str] = []

    def check(self, record: dict[str, Any]) -> None:
        seq = record["seq"]
        for key in BASE_KEYS:
            if key not in record:
                raise _Unsound(seq, f"record {seq} has no {key}")
        if record["prev"] != self.prev_hash:
            if seq == 1:
                raise _Unsound(1, f"record 1 must have prev {ZERO_HASH[:8]}... (64 zeros)")
            raise _Unsound(
                seq - 1,
                f"the hash chain breaks between records {seq - 1} and {seq}: record {seq - 1} "
                f"was altered (or record {seq}'s prev was)",
            )
        kind = record["type"]
        if seq == 1 and kind != "journal_start":
            raise _Unsound(1, f"the journal must start with journal_start, not {kind!r}")
        if seq > 1 and kind == "journal_start":
            raise _Unsound(seq, f"record {seq} is a second journal_start")
        identity = (record["station"], record["terminal"])
        if self.identity is None:
            self.identity = identity
        elif identity != self.identity:
            raise _Unsound(
                seq,
                f"record {seq} is of station {identity[0]} terminal {identity[1]}, not of "
                f"station {self.identity[0]} terminal {self.identity[1]} like record 1",
            )
        if isinstance(record["time"], str) and record["time"] < self.prev_time:
            # Same offset everywhere, so text order is time order; a step back is a clock
            # correction worth a look, not proof of tampering.
            self.warnings.append(
                f"record {seq}'s time {record['time']} is before record {seq - 1}'s"
            )
        self.prev_time = str(record["time"])
        self._check_signature(record, seq, kind)
        self.prev_hash = record_hash(record)
        self.count += 1

    def _check_signature(self, record: dict[str, Any], seq: int, kind: str) -> None:
        failed = record.get("sig_failed", False)
        if "sig" in record:
            if failed is not False:
                raise _Unsound(seq, f"record {seq} has both a signature and sig_failed")
            problem = signature_problem(record, self.certificates)
            if problem is not None:
                raise _Unsound(seq, f"record {seq}: {problem}")
            if record["signer"] == "software":
                self.software_signed += 1
            self.last_signed_seq = seq
            if kind == "signature_recovered":
                self._close_outage(record, seq)
            elif self.outage:
                raise _Unsound(
                    self.outage[0],
                    f"the signature outage from record {self.outage[0]} to {self.outage[-1]} "
                    f"is never covered by a signature_recovered record (record {seq} is signed)",
                )
            return
        if failed is True:
            if kind == "signature_recovered":
                raise _Unsound(seq, f"record {seq}: signature_recovered must be signed")
            self.outage.append(seq)
            return
        if failed is not False:
            raise _Unsound(seq, f"record {seq}: sig_failed must be true or absent")
        if kind in SIGNED_TYPES:
            raise _Unsound(seq, f"record {seq} ({kind}) must be signed but carries no signature")

    def _close_outage(self, record: dict[str, Any], seq: int) -> None:
        if not self.outage:
            raise _Unsound(seq, f"record {seq} ends a signature outage that never happened")
        expected = (self.outage[0], self.outage[-1], len(self.outage))
        claimed = (record.get("first_seq"), record.get("last_seq"), record.get("count"))
        if claimed != expected:
            raise _Unsound(
                seq,
                f"record {seq} covers records {claimed[0]} to {claimed[1]} ({claimed[2]} "
                f"unsigned), but the outage was {expected[0]} to {expected[1]} ({expected[2]})",
            )
        self.outage = []

    def final_warnings(self) -> tuple[str, ...]:
        warnings = list(self.warnings)
        if self.outage:
            warnings.append(
                f"records {self.outage[0]} to {self.outage[-1]} ({len(self.outage)} unsigned) "
                "were written during a signature device outage that is not over yet: no "
                "signature_recovered record covers them"
            )
        if self.software_signed:
            warnings.append(f"{self.software_signed} records were {SOFTWARE_SIGNER_WARNING}")
        if self.count > self.last_signed_seq and not self.outage:
            warnings.append(
                f"records {self.last_signed_seq + 1} to {self.count} follow the last signature "
                "and are protected by the hash chain only"
            )
        return tuple(warnings)


def verify_jsonl(lines: Iterable[str], cert_pem: bytes) -> VerifyReport:
    """Check an exported journal against the station certificate(s); see journal-format.md."""
    auditor = _Auditor(load_certificates(cert_pem))
    iterator = iter(lines)
    try:
        for line_no, line in enumerate(iterator, start=1):
            expected = auditor.count + 1
            record = _parse_line(line, line_no, expected)
            seq = record.get("seq")
            if isinstance(seq, bool) or not isinstance(seq, int):
                raise _Unsound(expected, f"line {line_no} has no whole-number seq")
            if seq != expected:
                raise _numbering_problem(expected, seq, iterator)
            auditor.check(record)
        if auditor.count == 0:
            raise _Unsound(1, "the journal is empty: it must start with journal_start")
    except _Unsound as unsound:
        return VerifyReport(False, auditor.count, unsound.seq, unsound.problem, ())
    return VerifyReport(True, auditor.count, None, "", auditor.final_warnings())
