"""Which receipt jobs were sent to the printer, and how often: the REPRINT marking's memory.

Owns the small SQLite table of job ids sent (durable when given a path, so that marking
survives a restart of the terminal). A job is recorded BEFORE its first byte is sent: after a
crash or a dropped link nobody knows how much of it reached the paper, so any later send of
that job id is marked. It never talks to the printer.
"""

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from kiosk.schema import Database, Migration, register
from kiosk.storage import open_database, write_transaction

# The ledger keeps its own file (the escpos driver's jobs_path), so its own history.
PRINTER_JOBS = register(
    Database(
        "printer jobs",
        (
            Migration(
                1,
                "job ids sent and how often",
                "CREATE TABLE IF NOT EXISTS printer_jobs (job_id TEXT PRIMARY KEY, "
                "sends INTEGER NOT NULL, confirmed INTEGER NOT NULL)",
            ),
        ),
    )
)


@dataclass(frozen=True)
class Attempt:
    number: int  # 1 for the first time the job's bytes are sent
    marked: bool


class JobLedger:
    """Job ids sent to the printer and how often (in memory when path is None)."""

    def __init__(self, path: Path | None) -> None:
        if path is None:
            self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = open_database(path)
        PRINTER_JOBS.migrate(self._conn)

    def start(self, job_id: str) -> Attempt:
        with write_transaction(self._conn) as conn:
            row = conn.execute(
                "SELECT sends FROM printer_jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            sends = 0 if row is None else int(row[0])
            conn.execute(
                "INSERT INTO printer_jobs (job_id, sends, confirmed) VALUES (?, 1, 0) "
                "ON CONFLICT (job_id) DO UPDATE SET sends = sends + 1",
                (job_id,),
            )
        return Attempt(number=sends + 1, marked=sends > 0)

    def confirm(self, job_id: str) -> None:
        with write_transaction(self._conn) as conn:
            conn.execute("UPDATE printer_jobs SET confirmed = 1 WHERE job_id = ?", (job_id,))

    def counts(self) -> tuple[int, int]:
        """(jobs confirmed printed, sends that were marked as reprints)."""
        confirmed, resent = self._conn.execute(
            "SELECT COALESCE(SUM(confirmed), 0), COALESCE(SUM(sends - 1), 0) FROM printer_jobs"
        ).fetchone()
        return int(confirmed), int(resent)

    def close(self) -> None:
        self._conn.close()
