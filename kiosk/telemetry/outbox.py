"""The durable outbox: which signed journal records the back office has not acknowledged.

The journal is the outbox store; this module keeps only the acknowledged cursor (the
table telemetry_outbox, one row) and reads the journal table, never writing it. It works
on its own SQLite connection, so the telemetry thread never joins a transaction the
transaction engine has open on the terminal's connection.
"""

import logging
import sqlite3
from typing import NamedTuple

from kiosk.journal.canonical import ZERO_HASH
from kiosk.journal.record_types import OUTBOX_TYPES
from kiosk.storage import write_transaction
from kiosk.terminal_schema import TERMINAL

log = logging.getLogger(__name__)

_TYPES_SQL = ", ".join(f"'{t}'" for t in OUTBOX_TYPES)


class PendingRecord(NamedTuple):
    """One outbox record owed to the back office, as it goes on the wire."""

    seq: int
    prev_seq: int  # the seq of the previous outbox record of this journal, 0 for the first
    text: str  # the journal's stored canonical record text


class Outbox:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        TERMINAL.migrate(conn)
        with write_transaction(conn):
            conn.execute("INSERT OR IGNORE INTO telemetry_outbox (id, acked_seq) VALUES (1, 0)")

    def _journal_exists(self) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal'"
        ).fetchone()
        return row is not None

    def acked_seq(self) -> int:
        row = self._conn.execute("SELECT acked_seq FROM telemetry_outbox WHERE id = 1").fetchone()
        return int(row[0])

    def head(self) -> tuple[int, str]:
        """The journal's chain head (last seq and its hash); (0, zeros) before the journal."""
        if not self._journal_exists():
            return 0, ZERO_HASH
        row = self._conn.execute(
            "SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return (0, ZERO_HASH) if row is None else (int(row[0]), str(row[1]))

    def turnover_fen(self) -> int:
        if not self._journal_exists():
            return 0
        row = self._conn.execute(
            "SELECT turnover_fen FROM journal ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return 0 if row is None else int(row[0])

    def pending(self, after_seq: int, limit: int) -> list[PendingRecord]:
        """Up to limit outbox records after after_seq (and after the ack cursor), in order.

        Each carries the seq of the outbox record before it in the journal, so the back
        office can tell a complete run from one with a record still on its way
        (docs/mqtt.md section 3), whatever lies between them in the journal.
        """
        if not self._journal_exists():
            return []
        start = max(after_seq, self.acked_seq())
        rows = self._conn.execute(
            f"SELECT seq, record FROM journal WHERE type IN ({_TYPES_SQL}) AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (start, limit),
        ).fetchall()
        if not rows:
            return []
        pending: list[PendingRecord] = []
        prev_seq = self._outbox_seq_before(int(rows[0][0]))
        for seq, text in rows:
            pending.append(PendingRecord(int(seq), prev_seq, str(text)))
            prev_seq = int(seq)
        return pending

    def _outbox_seq_before(self, seq: int) -> int:
        """The seq of the last outbox record before seq, 0 if there is none."""
        # Read backwards from seq by primary key: the records of a transaction's steps lie
        # between two outbox records, so this stops after a few rows.
        row = self._conn.execute(
            f"SELECT seq FROM journal WHERE seq < ? AND type IN ({_TYPES_SQL}) "
            "ORDER BY seq DESC LIMIT 1",
            (seq,),
        ).fetchone()
        return 0 if row is None else int(row[0])

    def backlog(self) -> int:
        """How many outbox records the back office has not acknowledged."""
        if not self._journal_exists():
            return 0
        # The records after the ack, read in seq order: a short range while the back office
        # keeps up (the journal has no index by type: docs/benchmarks.md section 1).
        row = self._conn.execute(
            f"SELECT COUNT(*) FROM journal WHERE type IN ({_TYPES_SQL}) AND seq > ?",
            (self.acked_seq(),),
        ).fetchone()
        return int(row[0])

    def acknowledge(self, upto_seq: int) -> int:
        """Move the cursor to upto_seq (never back, never past the journal head); return it."""
        if isinstance(upto_seq, bool) or not isinstance(upto_seq, int) or upto_seq < 0:
            raise ValueError(f"an acknowledgement needs a whole seq >= 0, not {upto_seq!r}")
        with write_transaction(self._conn):
            head_seq = self.head()[0]
            if upto_seq > head_seq:
                # Only a confused or hostile back office acknowledges records not yet written.
                log.warning("ack upto_seq %d is past the journal head %d", upto_seq, head_seq)
                upto_seq = head_seq
            current = self.acked_seq()
            if upto_seq > current:
                self._conn.execute(
                    "UPDATE telemetry_outbox SET acked_seq = ? WHERE id = 1", (upto_seq,)
                )
                return upto_seq
            return current
