"""The cash box: what should be in it, and its collection (清机) counted by denomination.

What should be in the box is a journal figure (kiosk.journal.totals.cash_box_movement, the
rule the journal verifier recomputes): every note and coin counted in since the last
collection, minus the vouchers paid out in cash from it. A collection records who emptied
the box, the count by denomination, what the journal expected and the discrepancy, in one
signed cash_collection record; a discrepancy also journals a cash_count_discrepancy alert
(账实相符, seed 002). Owns the cash_box_mark table (the expected figure at a journal record,
so the figure is read from the last mark on, not from the journal's start). Never talks to
the acceptor or the platform.
"""

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from kiosk.alerts import AlertKind, announce, append_alert
from kiosk.errors import TranslatedError
from kiosk.events import EventBus
from kiosk.journal import Journal
from kiosk.journal.record_types import RecordType
from kiosk.journal.totals import CASH_IN_RECORD, cash_box_movement
from kiosk.storage import write_transaction
from kiosk.terminal_schema import TERMINAL

# Operator-facing message ids (Chinese in kiosk/locale/zh_CN/LC_MESSAGES/operator.po).
BAD_COUNT = "{count} is not a number of pieces: count each denomination again."
TOO_MANY = "{count} pieces of one denomination is more than a cash box holds: count again."
MESSAGE_IDS = (BAD_COUNT, TOO_MANY)
# More pieces of one denomination than any cash box holds: a typing slip, not a count.
MAX_PIECES = 100_000


class Denomination(StrEnum):
    """The renminbi in circulation a box can hold: notes and coins, named by kind and value."""

    NOTE_100 = "note-100"
    NOTE_50 = "note-50"
    NOTE_20 = "note-20"
    NOTE_10 = "note-10"
    NOTE_5 = "note-5"
    NOTE_1 = "note-1"
    COIN_1 = "coin-1"
    COIN_05 = "coin-0.5"
    COIN_01 = "coin-0.1"

    @property
    def value_fen(self) -> int:
        kind, yuan = self.value.split("-")
        whole, _, tenths = yuan.partition(".")
        return int(whole) * 100 + int(tenths or 0) * 10

    @property
    def is_note(self) -> bool:
        return self.value.startswith("note-")


class CountRefused(TranslatedError):
    """A count that cannot be a count (negative, not whole, absurdly large)."""


@dataclass(frozen=True)
class CashCount:
    """Pieces counted per denomination; denominations not named were not found (0)."""

    pieces: Mapping[Denomination, int]

    def __post_init__(self) -> None:
        for count in self.pieces.values():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise CountRefused(BAD_COUNT, count=repr(count))
            if count > MAX_PIECES:
                raise CountRefused(TOO_MANY, count=count)
        cleaned = {Denomination(d): n for d, n in self.pieces.items() if n}
        object.__setattr__(self, "pieces", MappingProxyType(dict(sorted(cleaned.items()))))

    @property
    def total_fen(self) -> int:
        return sum(d.value_fen * n for d, n in self.pieces.items())

    def as_record(self) -> dict[str, int]:
        return {str(d): n for d, n in self.pieces.items()}


@dataclass(frozen=True)
class CashCollection:
    seq: int  # the cash_collection record
    time: str
    expected_fen: int
    counted_fen: int
    count: CashCount
    by: str
    role: str
    suspense_items: int  # unrecognised items the acceptor kept since the last collection

    @property
    def discrepancy_fen(self) -> int:
        """Counted minus expected: negative when cash is missing."""
        return self.counted_fen - self.expected_fen


class CashBox:
    def __init__(self, conn: sqlite3.Connection, journal: Journal, events: EventBus) -> None:
        self._conn = conn
        self._journal = journal
        self._events = events
        TERMINAL.migrate(conn)

    def expected_fen(self) -> int:
        """What should be in the box now. Read it inside the write transaction that states
        it (a day close, a collection), so no note lands between the figure and its record."""
        mark = self._conn.execute(
            "SELECT seq, expected_fen FROM cash_box_mark ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        after, expected = (0, 0) if mark is None else (int(mark[0]), int(mark[1]))
        for kind in (CASH_IN_RECORD, RecordType.VOUCHER_PAYOUT):
            for record in self._journal.of_type(kind, after):
                expected += cash_box_movement(record)
        return expected

    def mark(self, seq: int, expected_fen: int) -> None:
        """Inside the caller's write transaction: the box held expected_fen right after seq."""
        self._conn.execute(
            "INSERT OR REPLACE INTO cash_box_mark (seq, expected_fen) VALUES (?, ?)",
            (seq, expected_fen),
        )

    def collect(self, count: CashCount, *, by: str, role: str) -> CashCollection:
        """The box was emptied and counted: journal it (signed), alert a discrepancy.

        The caller makes sure no payment is taking cash at the same time.
        """
        with write_transaction(self._conn):
            expected = self.expected_fen()
            last = self.last_collection_seq()
            suspense = sum(1 for _ in self._journal.of_type(RecordType.CASH_SUSPENSE, last))
            record = self._journal.append(
                RecordType.CASH_COLLECTION,
                {
                    "expected_fen": expected,
                    "counted_fen": count.total_fen,
                    "discrepancy_fen": count.total_fen - expected,
                    "count": count.as_record(),
                    "suspense_items": suspense,
                    "by": by,
                    "role": role,
                },
                sign=True,
            )
            seq = int(str(record["seq"]))
            self.mark(seq, 0)
            alert = None
            if count.total_fen != expected:
                alert = append_alert(
                    self._journal,
                    AlertKind.CASH_COUNT_DISCREPANCY,
                    collection_seq=seq,
                    expected_fen=expected,
                    counted_fen=count.total_fen,
                    discrepancy_fen=count.total_fen - expected,
                    by=by,
                )
        if alert is not None:
            announce(self._events, alert)
        self._events.publish(
            "cash_collected", expected_fen=expected, counted_fen=count.total_fen, by=by
        )
        return CashCollection(
            seq=seq,
            time=str(record["time"]),
            expected_fen=expected,
            counted_fen=count.total_fen,
            count=count,
            by=by,
            role=role,
            suspense_items=suspense,
        )

    def last_collection_seq(self) -> int:
        """The seq of the last cash_collection record (0 before the first)."""
        found = self._journal.last_of_type(RecordType.CASH_COLLECTION)
        return 0 if found is None else int(str(found["seq"]))

    def collections_after(self, seq: int) -> list[dict[str, object]]:
        """The cash_collection records after seq, in order (a day's, for its report)."""
        return list(self._journal.of_type(RecordType.CASH_COLLECTION, seq))
