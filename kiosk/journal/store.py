"""The append-only, hash-chained, signed journal kept in the terminal's SQLite database.

Owns the journal table and every write to it. Records are appended inside the caller's
write transaction so they commit atomically with the transaction state they describe.
SQLite triggers refuse UPDATE and DELETE. This module never signs on its own initiative
beyond journal_start and signature_recovered, and never commits a caller's transaction.
"""

import base64
import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import kiosk
from kiosk.clock import Clock, iso
from kiosk.journal.canonical import (
    BASE_KEYS,
    SIGNATURE_KEYS,
    TEXT_REPLACED_KEY,
    ZERO_HASH,
    JournalError,
    canonical_json,
    certificate_sha256,
    checked_record,
    encode_checked,
    record_hash,
)
from kiosk.journal.record_types import RecordType
from kiosk.signing import Signer, SignerError
from kiosk.storage import write_transaction
from kiosk.terminal_schema import TERMINAL

# Types the journal writes itself: callers use open() and try_recover_signing() instead.
JOURNAL_OWNED_TYPES = ("journal_start", RecordType.SIGNATURE_RECOVERED)
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}\Z")
_PAGE = 500
# A signature outage lasts from the first record marked sig_failed to the next
# signature_recovered record (both probes are partial indexes: journal_recovered and
# journal_sig_failed).
_IN_OUTAGE = (
    "EXISTS (SELECT 1 FROM journal WHERE sig_failed = 1 AND seq > ("
    "SELECT COALESCE(MAX(seq), 0) FROM journal "
    f"WHERE type = '{RecordType.SIGNATURE_RECOVERED}'))"
)
_RESERVED_KEYS = (
    frozenset(BASE_KEYS) | frozenset(SIGNATURE_KEYS) | {"turnover_fen", TEXT_REPLACED_KEY}
)


def receipt_no_of(terminal: str, seq: int) -> str:
    """The receipt number of the record at seq: T0001-000124 is record 124 of terminal T0001.

    Unique for ever because seqs are, found by primary key, and it names the very record an
    auditor checks. Numbers of consecutive receipts are not consecutive: the records of the
    transaction's steps lie between them, and the journal shows every one.
    """
    return f"{terminal}-{seq:06d}"


class _SigningFailed(Exception):
    """Internal: the signer failed while writing a record that must not go unsigned."""


def _load(text: str) -> dict[str, object]:
    record: dict[str, object] = json.loads(text)
    return record


class Journal:
    def __init__(
        self, conn: sqlite3.Connection, signer: Signer, *, station: str, terminal: str, clock: Clock
    ) -> None:
        self._conn = conn
        self._signer = signer
        self._station = station
        self._terminal = terminal
        self._clock = clock
        self._fingerprint_of: tuple[bytes, str] | None = None
        TERMINAL.migrate(conn)

    # ------------------------------------------------------------------ writing

    def open(self) -> None:
        """Start the journal if it is empty, check its head, and end a signature outage."""
        with write_transaction(self._conn):
            seq, _ = self.head()
            if seq == 0:
                self._append(
                    "journal_start",
                    {"software_version": kiosk.__version__},
                    sign=True,
                    turnover_add_fen=None,
                    declare_cert=True,
                )
        self._check_head()
        if not self.signing_available():
            self.try_recover_signing()

    def append(
        self,
        type: str,
        fields: Mapping[str, object],
        *,
        sign: bool = False,
        turnover_add_fen: int | None = None,
        numbered_receipt: bool = False,
        at: datetime | None = None,
    ) -> dict[str, object]:
        """Append one record inside the caller's write transaction; return the complete record.

        numbered_receipt: the record gets the receipt number of its own seq (receipt_no_of).
        at: the record's time, when the caller has just read the clock (default: now).
        """
        if type in JOURNAL_OWNED_TYPES:
            raise JournalError(
                f"journal record type {type!r} is written by the journal itself: "
                "use Journal.open() or Journal.try_recover_signing()"
            )
        return self._append(
            type,
            fields,
            sign=sign,
            turnover_add_fen=turnover_add_fen,
            numbered_receipt=numbered_receipt,
            at=at,
        )

    def _append(
        self,
        type: str,
        fields: Mapping[str, object],
        *,
        sign: bool,
        turnover_add_fen: int | None,
        declare_cert: bool = False,
        must_sign: bool = False,
        numbered_receipt: bool = False,
        at: datetime | None = None,
    ) -> dict[str, object]:
        if not self._conn.in_transaction:
            raise JournalError(
                "journal records are appended only inside write_transaction(conn), "
                "together with the state they describe"
            )
        if not isinstance(type, str) or not _TYPE_NAME.match(type):
            raise JournalError(
                f"journal record type {type!r} must be lower-case letters, digits and '_'"
            )
        clashing = sorted(_RESERVED_KEYS.intersection(fields))
        if numbered_receipt and "receipt_no" in fields:
            clashing.append("receipt_no")
        if clashing:
            raise JournalError(
                f"journal fields may not set {', '.join(clashing)}: the journal writes them"
            )
        tx_id = fields.get("tx_id")
        receipt_no = fields.get("receipt_no")
        for name, value in (("tx_id", tx_id), ("receipt_no", receipt_no)):
            if value is not None and not isinstance(value, str):
                raise JournalError(f"journal field {name} must be text, not {value!r}")

        seq, prev, turnover, in_outage = self._tail()
        if seq == 0 and type != "journal_start":
            raise JournalError("the journal is not started: call Journal.open() first")
        if numbered_receipt:
            receipt_no = receipt_no_of(self._terminal, seq + 1)
        record: dict[str, object] = {
            "seq": seq + 1,
            "prev": prev,
            "type": type,
            "time": iso(self._clock.now() if at is None else at),
            "station": self._station,
            "terminal": self._terminal,
        }
        record.update(fields)
        if numbered_receipt:
            record["receipt_no"] = receipt_no
        if turnover_add_fen is not None:
            if isinstance(turnover_add_fen, bool) or not isinstance(turnover_add_fen, int):
                raise JournalError(
                    f"turnover_add_fen must be a whole number of fen, not {turnover_add_fen!r}"
                )
            turnover += turnover_add_fen
            record["turnover_fen"] = turnover
        # Validate the fields before touching the signer: a bad record never gets signed.
        # Text is repaired rather than refused (a lone surrogate becomes U+FFFD and the record
        # names the field): a reason text from the platform must never make the commit of a
        # transaction fail, and fail again at every retry. Floats, huge integers and non-text
        # keys are still refused: only code can produce them. The signature block and outage
        # flag added below are plain text and booleans.
        record = checked_record(record, repair_text=True)
        if tx_id is not None:
            tx_id = record["tx_id"]
        if receipt_no is not None:
            receipt_no = record["receipt_no"]

        sig_failed = False
        if sign:
            # During an outage nothing is signed until try_recover_signing() has written the
            # signed collective record, so the journal shows one unbroken outage span.
            signed = (must_sign or not in_outage) and self._sign_into(record)
            if not signed:
                if must_sign:
                    raise _SigningFailed
                if declare_cert:
                    self._declare_cert(record)
                record["sig_failed"] = True
                sig_failed = True
        elif declare_cert:
            self._declare_cert(record)

        encoded = encode_checked(record)
        text = encoded.decode("utf-8")
        try:
            self._conn.execute(
                "INSERT INTO journal (seq, type, record, hash, tx_id, receipt_no, turnover_fen,"
                " sig_failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record["seq"],
                    type,
                    text,
                    hashlib.sha256(encoded).hexdigest(),  # record_hash(record), computed once
                    tx_id,
                    receipt_no,
                    turnover,
                    int(sig_failed),
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise JournalError(f"the journal refused record {record['seq']}: {exc}") from None
        return dict(record)

    def _sign_into(self, record: dict[str, object]) -> bool:
        """Add signer, alg, cert_sha256 and sig to record; False (record untouched) if signing
        fails."""
        try:
            fingerprint = self._certificate_fingerprint()
        except SignerError:
            return False
        record["signer"] = self._signer.kind
        record["alg"] = self._signer.algorithm.value
        record["cert_sha256"] = fingerprint
        try:
            # What signed_bytes(record) gives: record has no "sig" yet.
            signature = self._signer.sign(encode_checked(record))
        except SignerError:
            del record["signer"], record["alg"], record["cert_sha256"]
            return False
        record["sig"] = base64.b64encode(signature).decode("ascii")
        return True

    def _certificate_fingerprint(self) -> str:
        # Parsing the PEM for every signed record is measurable on the commit path; the
        # fingerprint is recomputed whenever the token gives out a different certificate.
        pem = self._signer.certificate_pem()
        if self._fingerprint_of is None or self._fingerprint_of[0] != pem:
            self._fingerprint_of = (pem, certificate_sha256(pem))
        return self._fingerprint_of[1]

    def _declare_cert(self, record: dict[str, object]) -> None:
        # journal_start names the station certificate even when it could not be signed, as
        # long as the token still gives out its certificate.
        try:
            record["cert_sha256"] = certificate_sha256(self._signer.certificate_pem())
        except SignerError:
            pass

    def try_recover_signing(self) -> dict[str, object] | None:
        """End a signature outage with a signed signature_recovered record, if signing works."""
        try:
            with write_transaction(self._conn):
                span = self._outage_span()
                if span is None:
                    return None
                first_seq, last_seq, count = span
                return self._append(
                    RecordType.SIGNATURE_RECOVERED,
                    {"first_seq": first_seq, "last_seq": last_seq, "count": count},
                    sign=True,
                    turnover_add_fen=None,
                    must_sign=True,
                )
        except _SigningFailed:
            return None

    # ------------------------------------------------------------------ reading

    def _outage_span(self) -> tuple[int, int, int] | None:
        recovered = self._conn.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM journal WHERE type = ?",
            (RecordType.SIGNATURE_RECOVERED,),
        ).fetchone()[0]
        first, last, count = self._conn.execute(
            "SELECT MIN(seq), MAX(seq), COUNT(*) FROM journal WHERE sig_failed = 1 AND seq > ?",
            (recovered,),
        ).fetchone()
        if count == 0:
            return None
        return int(first), int(last), int(count)

    def signing_available(self) -> bool:
        """False while the journal is in a signature outage (read from the stored records)."""
        row = self._conn.execute(f"SELECT {_IN_OUTAGE}").fetchone()
        return not row[0]

    def head(self) -> tuple[int, str]:
        row = self._conn.execute(
            "SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return 0, ZERO_HASH
        return int(row[0]), str(row[1])

    def _tail(self) -> tuple[int, str, int, bool]:
        """seq, hash and turnover of the last record and whether signing is in an outage:
        one query, the commit path's read."""
        row = self._conn.execute(
            f"SELECT seq, hash, turnover_fen, {_IN_OUTAGE} FROM journal ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return 0, ZERO_HASH, 0, False
        return int(row[0]), str(row[1]), int(row[2]), bool(row[3])

    def turnover_fen(self) -> int:
        row = self._conn.execute(
            "SELECT turnover_fen FROM journal ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return 0 if row is None else int(row[0])

    def last_time(self) -> datetime | None:
        """The time of the last record (None before the journal started)."""
        row = self._conn.execute("SELECT record FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return datetime.fromisoformat(str(_load(row[0])["time"]))

    def records(self, start_seq: int = 1) -> Iterator[dict[str, object]]:
        # Paged so a long journal is never held in memory at once.
        next_seq = start_seq
        while True:
            rows = self._conn.execute(
                "SELECT seq, record FROM journal WHERE seq >= ? ORDER BY seq LIMIT ?",
                (next_seq, _PAGE),
            ).fetchall()
            for row in rows:
                yield _load(row[1])
            if len(rows) < _PAGE:
                return
            next_seq = int(rows[-1][0]) + 1

    def of_type(self, type: str, after_seq: int = 0) -> Iterator[dict[str, object]]:
        """The records of one type after after_seq, in order.

        A range of seqs read in order (no index by type): for a span that is due anyway,
        such as a day's closing records after the previous day_close.
        """
        while True:
            rows = self._conn.execute(
                "SELECT seq, record FROM journal WHERE type = ? AND seq > ? ORDER BY seq LIMIT ?",
                (type, after_seq, _PAGE),
            ).fetchall()
            for row in rows:
                yield _load(row[1])
            if len(rows) < _PAGE:
                return
            after_seq = int(rows[-1][0])

    def by_tx(self, tx_id: str) -> list[dict[str, object]]:
        """Every record of one transaction, in order (a scan: for audits, never on a payment)."""
        rows = self._conn.execute(
            "SELECT record FROM journal WHERE tx_id = ? ORDER BY seq", (tx_id,)
        ).fetchall()
        return [_load(row[0]) for row in rows]

    def by_receipt(self, receipt_no: str) -> dict[str, object] | None:
        """The tx_close record of a receipt number: by primary key (receipt_no_of)."""
        prefix, _, number = receipt_no.rpartition("-")
        if prefix != self._terminal or not number.isdigit():
            return None
        row = self._conn.execute(
            "SELECT record FROM journal WHERE seq = ? AND type = ? AND receipt_no = ?",
            (int(number), RecordType.TX_CLOSE, receipt_no),
        ).fetchone()
        if row is None:
            # Journals written before receipt numbers were seqs numbered them with a counter:
            # such a receipt is looked for among all closing records (a scan, for a reprint
            # of a receipt made before 2026-11).
            row = self._conn.execute(
                "SELECT record FROM journal WHERE type = ? AND receipt_no = ?",
                (RecordType.TX_CLOSE, receipt_no),
            ).fetchone()
        return None if row is None else _load(row[0])

    def last_of_type(self, type: str) -> dict[str, object] | None:
        """The last record of a type: read backwards from the head (no index by type), so
        for audits and tests, never on a payment's path."""
        row = self._conn.execute(
            "SELECT record FROM journal WHERE type = ? ORDER BY seq DESC LIMIT 1", (type,)
        ).fetchone()
        return None if row is None else _load(row[0])

    def _check_head(self) -> None:
        """Cheap start-up check: the last record is intact and belongs to this terminal."""
        row = self._conn.execute(
            "SELECT seq, record, hash FROM journal ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        first = self._conn.execute("SELECT record FROM journal WHERE seq = 1").fetchone()
        if row is None or first is None:
            raise JournalError("the journal has no journal_start record: the database is damaged")
        head: Any = _load(row[1])
        if canonical_json(head).decode("utf-8") != row[1] or record_hash(head) != row[2]:
            raise JournalError(
                f"journal record {row[0]} does not match its stored hash: the database was "
                "altered; export the journal and run 'kiosk-tool journal verify'"
            )
        start = _load(first[0])
        if (start.get("station"), start.get("terminal")) != (self._station, self._terminal):
            raise JournalError(
                f"this journal belongs to station {start.get('station')} terminal "
                f"{start.get('terminal')}, not {self._station} terminal {self._terminal}: "
                "check station.institution_no and station.terminal_id in the configuration"
            )
