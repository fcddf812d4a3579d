"""Verification of an exported journal (JSON Lines) and of single signed records.

Owns the audit rules of docs/journal-format.md: numbering, hash chain, signatures, the
station certificate (its station, its chain to the operator CA), signature outages, the
journal's first record, the expected head, and the recomputed turnover and day totals. It
reads only what it is given (lines and certificates); it never opens the terminal database
or a token.
"""

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kiosk.journal.canonical import (
    BASE_KEYS,
    SIGNER_KINDS,
    ZERO_HASH,
    JournalError,
    canonical_json,
    record_hash,
    signed_bytes,
)
from kiosk.journal.certificates import (
    OperatorCA,
    StationCertificate,
    load_certificates,
    load_operator_ca,
)
from kiosk.journal.record_types import RecordType
from kiosk.journal.totals import (
    CASH_BOX_REPORT_VERSION,
    RECOMPUTED_KEYS,
    cash_box_movement,
    day_totals,
    tx_close_turnover_fen,
)
from kiosk.message_text import MessageText
from kiosk.station_keys import algorithm_problem

__all__ = [
    "SIGNATURE_MISMATCH",
    "SIGNED_TYPES",
    "SOFTWARE_SIGNER_WARNING",
    "StationCertificate",
    "VerifyReport",
    "load_certificates",
    "parse_head",
    "signature_problem",
    "verify_jsonl",
]

# Types that must always carry a signature, or be marked sig_failed during an outage.
SIGNED_TYPES = (
    "journal_start",
    RecordType.TX_CLOSE,
    RecordType.DAY_CLOSE,
    RecordType.SIGNATURE_RECOVERED,
    RecordType.CASH_COLLECTION,
)
SOFTWARE_SIGNER_WARNING = "signed by the demo software signer, not a token"
SIGNATURE_MISMATCH = "its signature does not match its content: it was altered after signing"


_HEAD = re.compile(r"^([1-9][0-9]{0,15}):([0-9a-f]{64})\Z")


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    records: int  # records read and found sound (all of them when ok)
    first_bad_seq: int | None
    problem: str  # "" when ok
    warnings: tuple[str, ...]
    head: str = ""  # "SEQ:HASH" of the last sound record ("" when there is none)


def parse_head(text: str) -> tuple[int, str]:
    """SEQ:HASH (a record's seq and the lower-case hex SHA-256 of its canonical JSON)."""
    found = _HEAD.match(text.strip().lower())
    if found is None:
        raise JournalError(
            f"expected head {text!r} is not SEQ:HASH (a record number, a colon and 64 hex "
            "digits): take it from the back office's last acknowledged record of the terminal"
        )
    return int(found.group(1)), found.group(2)


def signature_problem(
    record: Mapping[str, Any], certificates: Mapping[str, StationCertificate]
) -> str | None:
    """Why the record's signature is not good, or None when it verifies.

    The record must carry sig, signer and cert_sha256; a missing signature is the caller's
    business (it may be a sig_failed record). Its alg (ES256 when absent) must be the one
    the certificate's key signs: a P-256 key ES256, an RSA key RS256, an SM2 key SM2-SM3.
    """
    signer = record.get("signer")
    if signer not in SIGNER_KINDS:
        return MessageText(
            "its signer is {signer!r}, not one of {kinds}",
            signer=signer,
            kinds=", ".join(SIGNER_KINDS),
        )
    fingerprint = record.get("cert_sha256")
    if not isinstance(fingerprint, str):
        return "it carries a signature but no cert_sha256"
    station_certificate = certificates.get(fingerprint)
    if station_certificate is None:
        return MessageText(
            "it was signed with another certificate (cert_sha256 {fingerprint}...), not the "
            "station certificate given",
            fingerprint=fingerprint[:16],
        )
    station_problem = station_certificate.station_problem(record.get("station"))
    if station_problem is not None:
        return MessageText(
            "it may not be signed with its certificate: {problem}", problem=station_problem
        )
    mismatch = algorithm_problem(record.get("alg"), station_certificate.key)
    if mismatch is not None:
        return mismatch
    sig = record.get("sig")
    if not isinstance(sig, str):
        return "its sig is not base64 text"
    try:
        signature = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError):
        return "its sig is not valid base64"
    if not station_certificate.key.verify(signature, signed_bytes(record)):
        return SIGNATURE_MISMATCH
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
            MessageText(
                "line {line} is not in canonical JSON form: the export was edited", line=line_no
            ),
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
        return _Unsound(
            found,
            MessageText(
                "record {seq} appears again after record {previous}",
                seq=found,
                previous=expected - 1,
            ),
        )
    later = {_seq_of(line) for line in rest}
    if expected in later:
        return _Unsound(
            expected,
            MessageText(
                "records are out of order: record {found} comes before record {expected}",
                found=found,
                expected=expected,
            ),
        )
    if found == expected + 1:
        return _Unsound(expected, MessageText("record {seq} is missing", seq=expected))
    return _Unsound(
        expected,
        MessageText("records {first} to {last} are missing", first=expected, last=found - 1),
    )


def _compact(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _moment(record: Mapping[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(record["time"]))
    except ValueError:
        raise _Unsound(
            record["seq"], f"record {record['seq']}'s time {record['time']!r} is not ISO 8601"
        ) from None


@dataclass
class _Use:
    """Where the journal used one certificate: its first and last signed records."""

    first_seq: int
    first_time: datetime
    last_seq: int
    last_time: datetime


class _Auditor:
    def __init__(
        self, certificates: Mapping[str, StationCertificate], ca: OperatorCA | None
    ) -> None:
        self.certificates = certificates
        self.ca = ca
        self.count = 0
        self.prev_hash = ZERO_HASH
        self.prev_time = ""
        self.identity: tuple[object, object] | None = None
        self.outage: list[int] = []  # seqs of sig_failed records not yet recovered
        self.software_signed = 0
        self.last_signed_seq = 0
        self.warnings: list[str] = []
        self.turnover = 0  # the running turnover counter and the record that last set it
        self.turnover_seq = 0
        self.closes: list[dict[str, Any]] = []  # tx_close records since the last day_close
        self.cash_box = 0  # what should be in the cash box (totals.cash_box_movement)
        self.uses: dict[str, _Use] = {}  # by certificate fingerprint

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
                MessageText(
                    "the hash chain breaks between records {previous} and {seq}: record "
                    "{previous} was altered (or record {seq}'s prev was)",
                    previous=seq - 1,
                    seq=seq,
                ),
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
        self._check_turnover(record, seq, kind)
        self.cash_box += cash_box_movement(record)
        if kind == RecordType.CASH_COLLECTION:
            self._check_cash_figure(record, seq, "expected_fen", "cash collection")
            self.cash_box = 0  # the box was emptied
        if kind == RecordType.TX_CLOSE:
            self.closes.append(record)
        elif kind == RecordType.DAY_CLOSE:
            self._check_day_close(record, seq)
        self.prev_hash = record_hash(record)
        self.count += 1

    def _check_signature(self, record: dict[str, Any], seq: int, kind: str) -> None:
        failed = record.get("sig_failed", False)
        if "sig" in record:
            if failed is not False:
                raise _Unsound(seq, f"record {seq} has both a signature and sig_failed")
            problem = signature_problem(record, self.certificates)
            if problem is not None:
                raise _Unsound(
                    seq, MessageText("record {seq}: {problem}", seq=seq, problem=problem)
                )
            self._note_use(record, seq)
            if record["signer"] == "software":
                self.software_signed += 1
            self.last_signed_seq = seq
            if kind == RecordType.SIGNATURE_RECOVERED:
                self._close_outage(record, seq)
            elif self.outage:
                raise _Unsound(
                    self.outage[0],
                    f"the signature outage from record {self.outage[0]} to {self.outage[-1]} "
                    f"is never covered by a signature_recovered record (record {seq} is signed)",
                )
            return
        if failed is True:
            if kind == RecordType.SIGNATURE_RECOVERED:
                raise _Unsound(seq, f"record {seq}: signature_recovered must be signed")
            self.outage.append(seq)
            return
        if failed is not False:
            raise _Unsound(seq, f"record {seq}: sig_failed must be true or absent")
        if kind in SIGNED_TYPES:
            raise _Unsound(seq, f"record {seq} ({kind}) must be signed but carries no signature")

    def _note_use(self, record: dict[str, Any], seq: int) -> None:
        """Check the chain to the operator CA when a certificate signs for the first time."""
        if self.ca is None:
            return
        fingerprint = str(record["cert_sha256"])
        moment = _moment(record)
        use = self.uses.get(fingerprint)
        if use is not None:
            use.last_seq, use.last_time = seq, moment
            return
        self.uses[fingerprint] = _Use(seq, moment, seq, moment)
        problem = self.ca.chain_problem(
            self.certificates[fingerprint], moment, self.certificates.values()
        )
        if problem is not None:
            raise _Unsound(seq, MessageText("record {seq}: {problem}", seq=seq, problem=problem))

    def check_last_uses(self) -> None:
        """Each certificate must still chain to the CA when it signed its last record."""
        if self.ca is None:
            return
        for fingerprint, use in self.uses.items():
            if use.last_seq == use.first_seq:
                continue
            problem = self.ca.chain_problem(
                self.certificates[fingerprint], use.last_time, self.certificates.values()
            )
            if problem is not None:
                raise _Unsound(
                    use.last_seq,
                    MessageText("record {seq}: {problem}", seq=use.last_seq, problem=problem),
                )

    def _check_turnover(self, record: dict[str, Any], seq: int, kind: str) -> None:
        """The turnover counter: each tx_close adds its amount and fee; nothing else moves it."""
        if kind != RecordType.TX_CLOSE and "turnover_fen" not in record:
            return
        value = record.get("turnover_fen")
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Unsound(seq, f"record {seq} ({kind}) has no whole-number turnover_fen")
        added = tx_close_turnover_fen(record) if kind == RecordType.TX_CLOSE else 0
        expected = self.turnover + added
        if value != expected:
            since = f"record {self.turnover_seq}'s" if self.turnover_seq else "the start's"
            raise _Unsound(
                seq,
                f"record {seq}: turnover_fen is {value}, but {since} {self.turnover} plus this "
                f"record's amount and fee ({added}) is {expected}",
            )
        self.turnover, self.turnover_seq = value, seq

    def _check_day_close(self, record: dict[str, Any], seq: int) -> None:
        """A day's report must be the totals of the tx_close records since the last day_close."""
        day = record.get("business_day")
        recomputed = day_totals(self.closes, str(day))
        span = (
            f"records {self.closes[0]['seq']} to {self.closes[-1]['seq']}"
            if self.closes
            else "no tx_close records"
        )
        for key in RECOMPUTED_KEYS:
            if record.get(key) != recomputed[key]:
                raise _Unsound(
                    seq,
                    f"record {seq} (day_close of {day}): {key} is "
                    f"{_compact(record.get(key))}, but its tx_close records ({span}) give "
                    f"{_compact(recomputed[key])}",
                )
        version = record.get("report_version")
        if isinstance(version, int) and version >= CASH_BOX_REPORT_VERSION:
            self._check_cash_figure(record, seq, "cash_expected_fen", f"day_close of {day}")
        self.closes = []

    def _check_cash_figure(self, record: dict[str, Any], seq: int, key: str, what: str) -> None:
        """The cash box figure a record states: cash in minus vouchers paid out in cash
        since the last cash collection (kiosk.journal.totals.cash_box_movement)."""
        if record.get(key) != self.cash_box:
            raise _Unsound(
                seq,
                f"record {seq} ({what}): {key} is {_compact(record.get(key))}, but the cash "
                f"counted in and paid out since the last cash collection gives {self.cash_box}",
            )

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

    def check_head(self, expected: tuple[int, str] | None) -> None:
        """The export must end at the head the back office acknowledged, with its hash."""
        if expected is None:
            return
        seq, digest = expected
        if self.count < seq:
            missing = (
                f"record {seq} is"
                if self.count + 1 == seq
                else f"records {self.count + 1} to {seq} are"
            )
            raise _Unsound(
                self.count + 1,
                f"the export ends at record {self.count}, but the expected head is record "
                f"{seq}: {missing} missing (the export was cut short, or an older copy of "
                "the database was restored)",
            )
        if self.count > seq:
            raise _Unsound(
                seq + 1,
                f"the export goes on past the expected head, record {seq}, to record "
                f"{self.count}: export up to the head (kiosk-tool journal export --upto {seq}) "
                "or take a newer head from the back office",
            )
        if self.prev_hash != digest:
            raise _Unsound(
                seq,
                f"record {seq} is not the expected head: its hash is {self.prev_hash[:16]}..., "
                f"the back office acknowledged {digest[:16]}... (the journal was rewritten, "
                "or another database restored)",
            )

    def final_warnings(self) -> tuple[str, ...]:
        warnings = list(self.warnings)
        if self.outage:
            warnings.append(
                f"records {self.outage[0]} to {self.outage[-1]} ({len(self.outage)} unsigned) "
                "were written during a signature device outage that is not over yet: no "
                "signature_recovered record covers them"
            )
        if self.software_signed:
            warnings.append(
                MessageText(
                    "{count} records were {warning}",
                    count=self.software_signed,
                    warning=SOFTWARE_SIGNER_WARNING,
                )
            )
        if self.count > self.last_signed_seq and not self.outage:
            warnings.append(
                MessageText(
                    "records {first} to {last} follow the last signature and are protected by "
                    "the hash chain only",
                    first=self.last_signed_seq + 1,
                    last=self.count,
                )
            )
        return tuple(warnings)


def verify_jsonl(
    lines: Iterable[str],
    cert_pem: bytes,
    *,
    ca_pem: bytes | None = None,
    expect_head: tuple[int, str] | None = None,
) -> VerifyReport:
    """Check an exported journal against the station certificate(s); see journal-format.md.

    ca_pem: the operator CA's certificate(s): every certificate that signed must chain to it
    at the times it signed. expect_head: (seq, hash) of the record the export must end with.
    """
    auditor = _Auditor(load_certificates(cert_pem), load_operator_ca(ca_pem))
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
        auditor.check_last_uses()
        auditor.check_head(expect_head)
    except _Unsound as unsound:
        head = f"{auditor.count}:{auditor.prev_hash}" if auditor.count else ""
        return VerifyReport(False, auditor.count, unsound.seq, unsound.problem, (), head)
    head = f"{auditor.count}:{auditor.prev_hash}"
    return VerifyReport(True, auditor.count, None, "", auditor.final_warnings(), head)
