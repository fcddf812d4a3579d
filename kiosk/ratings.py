"""Residents' ratings of a service (好差评): satisfied, or dissatisfied with a reason.

Owns the `rating` table in the terminal's SQLite database and its rules: one rating per
transaction at most, a reason only (and always) with a dissatisfied rating, reasons from a
fixed list so the back office can count them. It never stores who rated, and a rating
never touches money or the journal.
"""

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from kiosk.clock import iso
from kiosk.errors import KioskError
from kiosk.storage import write_transaction

# Reason codes and their English message ids (translated in ui.po); the order is the order
# they are offered on screen.
REASONS: dict[str, str] = {
    "too_slow": "It took too long",
    "hard_to_use": "The screens were hard to use",
    "amount_wrong": "An amount was not what I expected",
    "device_fault": "A device did not work",
    "other": "Something else",
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS rating (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    tx_id TEXT UNIQUE,
    service TEXT NOT NULL,
    satisfied INTEGER NOT NULL CHECK (satisfied IN (0, 1)),
    reason TEXT
)
"""


class RatingRefused(KioskError):
    """A rating is malformed or the transaction was rated already."""


@dataclass(frozen=True)
class Rating:
    time: str
    tx_id: str | None
    service: str
    satisfied: bool
    reason: str | None


@dataclass(frozen=True)
class RatingCounts:
    satisfied: int
    dissatisfied: int
    reasons: dict[str, int]


class RatingStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        with write_transaction(conn):
            conn.execute(SCHEMA)

    def record(
        self,
        *,
        service: str,
        satisfied: bool,
        reason: str | None,
        when: datetime,
        tx_id: str | None = None,
    ) -> Rating:
        """Store one rating durably; a second rating of the same transaction is refused."""
        if satisfied and reason is not None:
            raise RatingRefused("a satisfied rating takes no reason: leave the reason out")
        if not satisfied and reason not in REASONS:
            raise RatingRefused(
                f"a dissatisfied rating needs one of these reasons: {', '.join(REASONS)}"
            )
        if not service:
            raise RatingRefused("a rating must name the service it rates")
        rating = Rating(iso(when), tx_id, service, satisfied, reason)
        try:
            with write_transaction(self._conn):
                self._conn.execute(
                    "INSERT INTO rating (time, tx_id, service, satisfied, reason) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (rating.time, tx_id, service, int(satisfied), reason),
                )
        except sqlite3.IntegrityError:
            raise RatingRefused(f"transaction {tx_id} has been rated already") from None
        return rating

    def ratings(self, since: str = "") -> list[Rating]:
        """Ratings at or after since (an ISO time; empty: all), oldest first."""
        rows = self._conn.execute(
            "SELECT time, tx_id, service, satisfied, reason FROM rating "
            "WHERE time >= ? ORDER BY id",
            (since,),
        ).fetchall()
        return [Rating(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]

    def counts(self, service: str | None = None) -> RatingCounts:
        """Totals of satisfied and dissatisfied ratings, and dissatisfied ones per reason."""
        rows = [r for r in self.ratings() if service is None or r.service == service]
        reasons = {code: 0 for code in REASONS}
        for r in rows:
            if r.reason is not None:
                reasons[r.reason] += 1
        good = sum(1 for r in rows if r.satisfied)
        return RatingCounts(good, len(rows) - good, reasons)
