"""The soak's own durable state beside the terminal's: how far the residents got, what
happened to them and which faults the worker injected, and the ledger of card loads made
at another terminal (which the reconciliation adds to what the platform credited).

Each resident's progress is committed together with the tallies of what happened to them,
so a resident interrupted by a kill is served again and counted once. A load elsewhere is
written as asked before the card is loaded and as loaded after; one left asked by a kill is
settled from the card's own load log when the worker starts again.
"""

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from kiosk.storage import open_database, write_transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS progress (
    seed INTEGER PRIMARY KEY,
    next INTEGER NOT NULL             -- the next resident to serve
);
CREATE TABLE IF NOT EXISTS tally (
    name TEXT PRIMARY KEY,            -- outcome:paid, refusal:ClockWrong, fault:card_pull...
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS elsewhere (
    ref TEXT PRIMARY KEY,             -- the reference the other terminal gave the load
    card_no TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('asked', 'loaded', 'dropped')),
    new_counter INTEGER               -- the purchase counter the load moved the card to
);
"""


@dataclass(frozen=True)
class ElsewhereLoad:
    ref: str
    card_no: str
    amount_fen: int
    state: str
    new_counter: int | None


class SoakLedger:
    def __init__(self, path: Path) -> None:
        self._db: sqlite3.Connection = open_database(path)
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------ residents

    def next_resident(self, seed: int) -> int:
        row = self._db.execute("SELECT next FROM progress WHERE seed = ?", (seed,)).fetchone()
        return 0 if row is None else int(row[0])

    def served(self, seed: int, number: int, tallies: dict[str, int]) -> None:
        """Resident `number` is done: commit the progress and what happened, together."""
        with write_transaction(self._db):
            self._db.execute(
                "INSERT INTO progress (seed, next) VALUES (?, ?) "
                "ON CONFLICT(seed) DO UPDATE SET next = excluded.next",
                (seed, number + 1),
            )
            self._add(tallies)

    def count(self, name: str, n: int = 1) -> None:
        with write_transaction(self._db):
            self._add({name: n})

    def _add(self, tallies: dict[str, int]) -> None:
        for name, n in tallies.items():
            self._db.execute(
                "INSERT INTO tally (name, count) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET count = count + excluded.count",
                (name, n),
            )

    def tallies(self) -> dict[str, int]:
        return {str(n): int(c) for n, c in self._db.execute("SELECT name, count FROM tally")}

    # ------------------------------------------------------------ loads elsewhere

    def elsewhere_asked(self, ref: str, card_no: str, amount_fen: int) -> None:
        with write_transaction(self._db):
            self._db.execute(
                "INSERT INTO elsewhere (ref, card_no, amount_fen, state) VALUES (?, ?, ?, 'asked')",
                (ref, card_no, amount_fen),
            )

    def elsewhere_settled(self, ref: str, new_counter: int | None) -> None:
        """The load is on the card at new_counter, or (None) it never happened."""
        state = "dropped" if new_counter is None else "loaded"
        with write_transaction(self._db):
            self._db.execute(
                "UPDATE elsewhere SET state = ?, new_counter = ? WHERE ref = ?",
                (state, new_counter, ref),
            )

    def elsewhere_loads(self, state: str | None = None) -> list[ElsewhereLoad]:
        rows = self._db.execute(
            "SELECT ref, card_no, amount_fen, state, new_counter FROM elsewhere ORDER BY rowid"
        ).fetchall()
        loads = [ElsewhereLoad(*row) for row in rows]
        return [load for load in loads if state is None or load.state == state]
