"""Export of the journal as JSON Lines: each stored record's canonical text, one per line.

Owns the export format of docs/journal-format.md. It only reads: the records leave exactly
as they were stored (and hashed), so an auditor's hash over a line is the journal's hash.
"""

import sqlite3
from typing import TextIO

from kiosk.journal.canonical import JournalError


def export_jsonl(conn: sqlite3.Connection, out: TextIO) -> int:
    """Write every record, in seq order, as its canonical JSON text and "\\n"; return the count."""
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
        for (text,) in conn.execute("SELECT record FROM journal ORDER BY seq"):
            out.write(text)
            out.write("\n")
            count += 1
    finally:
        if started:
            conn.execute("COMMIT")
    return count
