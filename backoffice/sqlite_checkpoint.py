"""Copying SQLite's write-ahead log back into the database, off the writing thread.

Owns the checkpoints of a WAL-mode database: a thread with a connection of its own runs a
PASSIVE checkpoint after commits, at most every CHECKPOINT_EVERY_S. A commit is durable
once its WAL frames are synced (synchronous=FULL); the checkpoint only copies them into the
database file and syncs that, and SQLite's default runs it inside whichever commit takes
the log past 1,000 pages: an ingest batch, which then stalls with the messages
that came meanwhile waiting behind it (docs/backoffice.md, "Store"). It never reads or
writes a row.
"""

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 0.1
# The writing connection still checkpoints by itself (SQLite's own automatic checkpoint)
# once the log holds this many pages: the log's bound should this thread fall behind.
WRITER_CHECKPOINT_PAGES = 10_000


class Checkpointer:
    """Checkpoints the database at `path` after writes it is told of (wrote())."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._wrote = threading.Event()
        self._closing = threading.Event()
        self.checkpoints = 0  # run so far (for tests and the bench)
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    @property
    def native_id(self) -> int | None:
        """The thread's id in the operating system (for measuring, as the bench does)."""
        return self._thread.native_id

    def wrote(self) -> None:
        """A transaction that changed rows has committed."""
        self._wrote.set()

    def _run(self) -> None:
        while True:
            self._wrote.wait()
            if self._closing.is_set():
                break
            self._wrote.clear()
            try:
                # PASSIVE: copies what no reader still needs and waits for nobody; the
                # writer goes on appending meanwhile and starts the log over at its next
                # transaction once every frame is copied.
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.checkpoints += 1
            except sqlite3.Error as exc:
                log.warning("cannot checkpoint the database (%s); trying after the next write", exc)
            if self._closing.wait(CHECKPOINT_EVERY_S):
                break
        self._conn.close()

    def close(self) -> None:
        """Stop; the writing connection, closed last, checkpoints what is left."""
        self._closing.set()
        self._wrote.set()
        self._thread.join(timeout=30)
