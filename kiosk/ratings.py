"""Residents' ratings (好差评) and complaints, kept durably and sent to the back office.

Owns the `rating` and `complaint` tables in the terminal's SQLite database, their rules and
their journal records. A rating is satisfied, or dissatisfied with one reason; at most one
per transaction. A complaint names one or more reasons from the same fixed list (the screen
has no text input: residents choose, they do not type) and an optional call-back phone
number typed on the keypad. Each is journaled as a signed record (`rating`, `complaint`)
in the same commit as its row, so the durable outbox carries it to the back office. It
never stores who rated, never touches money, and never decides how a screen asks.

Journal fields (besides the journal's own seq, time, station, terminal, sig):
    rating:    service, satisfied (bool), reason (code or null), tx_id (or null)
    complaint: service, reasons (list of codes), callback_phone (digits or null),
               tx_id (or null)
"""

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from kiosk.errors import KioskError
from kiosk.journal import Journal
from kiosk.journal.record_types import RecordType
from kiosk.storage import write_transaction
from kiosk.terminal_schema import TERMINAL

# Reason codes and their English message ids (translated in ui.po); the order is the order
# they are offered on screen. Ratings and complaints share them.
REASONS: dict[str, str] = {
    "too_slow": "It took too long",
    "hard_to_use": "The screens were hard to use",
    "amount_wrong": "An amount was not what I expected",
    "cash_problem": "My cash was not counted right",
    "no_receipt": "I did not get my receipt",
    "device_fault": "A device did not work",
    "other": "Something else",
}

RATING_RECORD = RecordType.RATING
COMPLAINT_RECORD = RecordType.COMPLAINT

# A call-back number: a mobile (11 digits from 1), a landline with its area code (10-12
# digits from 0) or a local landline (7-8 digits).
_PHONE = re.compile(r"1\d{10}|0\d{9,11}|[2-9]\d{6,7}")
PHONE_INVALID = "Type a mobile number (11 digits) or a landline number with its area code"


class RatingRefused(KioskError):
    """A rating or complaint is malformed, or the transaction was rated already."""


@dataclass(frozen=True)
class Rating:
    time: str
    tx_id: str | None
    service: str
    satisfied: bool
    reason: str | None


@dataclass(frozen=True)
class Complaint:
    time: str
    tx_id: str | None
    service: str
    reasons: tuple[str, ...]
    callback_phone: str | None
    seq: int  # of its signed journal record


@dataclass(frozen=True)
class RatingCounts:
    satisfied: int
    dissatisfied: int
    reasons: dict[str, int]


def callback_phone_problem(phone: str) -> str | None:
    """None for a number the station can call back, else the English message id saying why."""
    return None if _PHONE.fullmatch(phone) else PHONE_INVALID


class RatingStore:
    """Ratings and complaints of this terminal; every call runs on the terminal's thread."""

    def __init__(self, conn: sqlite3.Connection, journal: Journal) -> None:
        self._conn = conn
        self._journal = journal
        TERMINAL.migrate(conn)

    def record(
        self,
        *,
        service: str,
        satisfied: bool,
        reason: str | None,
        tx_id: str | None = None,
    ) -> Rating:
        """Store and journal one rating; a second rating of the same transaction is refused."""
        if satisfied and reason is not None:
            raise RatingRefused("a satisfied rating takes no reason: leave the reason out")
        if not satisfied and reason not in REASONS:
            raise RatingRefused(
                f"a dissatisfied rating needs one of these reasons: {', '.join(REASONS)}"
            )
        if not service:
            raise RatingRefused("a rating must name the service it rates")
        try:
            with write_transaction(self._conn):
                record = self._journal.append(
                    RATING_RECORD,
                    {"service": service, "satisfied": satisfied, "reason": reason, "tx_id": tx_id},
                    sign=True,
                )
                self._conn.execute(
                    "INSERT INTO rating (time, tx_id, service, satisfied, reason) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (record["time"], tx_id, service, int(satisfied), reason),
                )
        except sqlite3.IntegrityError:
            raise RatingRefused(f"transaction {tx_id} has been rated already") from None
        return Rating(str(record["time"]), tx_id, service, satisfied, reason)

    def complain(
        self,
        *,
        service: str,
        reasons: Sequence[str],
        callback_phone: str | None = None,
        tx_id: str | None = None,
    ) -> Complaint:
        """Store and journal one complaint for the station staff to follow up."""
        chosen = tuple(dict.fromkeys(reasons))
        unknown = [reason for reason in chosen if reason not in REASONS]
        if not chosen or unknown:
            raise RatingRefused(
                f"a complaint needs one or more of these reasons: {', '.join(REASONS)}"
            )
        if not service:
            raise RatingRefused("a complaint must name the service it is about")
        if callback_phone is not None and callback_phone_problem(callback_phone):
            raise RatingRefused(
                "the call-back number must be 11 mobile digits, a landline with its area code, "
                "or left out"
            )
        fields: dict[str, object] = {
            "service": service,
            "reasons": list(chosen),
            "callback_phone": callback_phone,
            "tx_id": tx_id,
        }
        with write_transaction(self._conn):
            record = self._journal.append(COMPLAINT_RECORD, fields, sign=True)
            seq = record["seq"]
            assert isinstance(seq, int)
            self._conn.execute(
                "INSERT INTO complaint (time, tx_id, service, reasons, callback_phone, seq) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (record["time"], tx_id, service, ",".join(chosen), callback_phone, seq),
            )
        return Complaint(str(record["time"]), tx_id, service, chosen, callback_phone, seq)

    def ratings(self, since: str = "") -> list[Rating]:
        """Ratings at or after since (an ISO time; empty: all), oldest first."""
        rows = self._conn.execute(
            "SELECT time, tx_id, service, satisfied, reason FROM rating "
            "WHERE time >= ? ORDER BY id",
            (since,),
        ).fetchall()
        return [Rating(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]

    def complaints(self) -> list[Complaint]:
        rows = self._conn.execute(
            "SELECT time, tx_id, service, reasons, callback_phone, seq FROM complaint ORDER BY id"
        ).fetchall()
        return [Complaint(r[0], r[1], r[2], tuple(r[3].split(",")), r[4], r[5]) for r in rows]

    def counts(self, service: str | None = None) -> RatingCounts:
        """Totals of satisfied and dissatisfied ratings, and dissatisfied ones per reason."""
        rows = [r for r in self.ratings() if service is None or r.service == service]
        reasons = {code: 0 for code in REASONS}
        for r in rows:
            if r.reason is not None:
                reasons[r.reason] += 1
        good = sum(1 for r in rows if r.satisfied)
        return RatingCounts(good, len(rows) - good, reasons)
