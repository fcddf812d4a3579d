"""Export of the journal as JSON Lines: each stored record's canonical text, one per line.

Owns the export format of docs/journal-format.md. It only reads: the records leave exactly
as they were stored (and hashed), so an auditor's hash over a line is the journal's hash.
"""

import sqlite3
from typing import TextIO

from kiosk.journal.canonical import JournalError


def export_jsonl(conn: sqlite3.Connection, out: TextIO, *, upto: int | None = None) -> int:
    """Write every record (up to seq upto), in seq order, as its canonical JSON text and "\\n";
    return the count.

    upto: the last record to export, e.g. the head the back office acknowledged, so that the
    export can be checked against it (journal verify --expect-head). JournalError when the
    journal does not reach it.
    """
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal'"
    ).fetchone()
    if found is None:
        raise JournalError("the database holds no journal: check data_dir in the configuration")
    count = 0
    # One read transaction: a terminal appending meanwhile cannot tear the export.
    started = not conn.in_transaction
    if started:
        conn.execute("BEGIN")
    try:
        if upto is not None:
            (head,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()
            if head < upto:
                raise JournalError(
                    f"the journal ends at record {head}, before record {upto}: records are "
                    "missing from this database (an older copy restored?); report it"
                )
        rows = (
            conn.execute("SELECT record FROM journal ORDER BY seq")
            if upto is None
            else conn.execute("SELECT record FROM journal WHERE seq <= ? ORDER BY seq", (upto,))
        )
        for (text,) in rows:
            out.write(text)
            out.write("\n")
            count += 1
    finally:
        if started:
            conn.execute("COMMIT")
    return count
