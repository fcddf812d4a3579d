"""The back-office database: SQLite by default, PostgreSQL by configuration, one set of SQL.

Owns the connections (one SQLite connection under a lock, or a checked pool of PostgreSQL
connections), running the schema's migrations (backoffice.migrations) at start, and the
small differences between the two engines (placeholder style). Queries are written once
with `?` placeholders in the SQL both engines share (ON CONFLICT, RETURNING, partial unique
indexes). It never decides what to store: ingest, alerts, commands and reports do.
"""

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from backoffice.errors import StoreError, StoreUnavailable
from backoffice.migrations import Dialect, migrate
from backoffice.sqlite_checkpoint import WRITER_CHECKPOINT_PAGES, Checkpointer

log = logging.getLogger(__name__)
Row = dict[str, Any]
# PostgreSQL connections per process: the ingest worker's, the dashboard's and liveness.
POOL_SIZE = 4


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = ""
    ) -> int:
        """INSERT rows (tail: e.g. "ON CONFLICT DO NOTHING"); the number inserted."""
        ...

    def update_rows(
        self, table: str, keys: Sequence[str], columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """UPDATE table SET columns WHERE keys, from rows of (*keys, *values)."""
        ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run one statement for each row, in order; the number of rows it changed in all."""
        ...


def row_values(count: int, width: int) -> str:
    """`(?, ?), (?, ?)`: `count` rows of `width` placeholders for a VALUES list or a row-value
    IN list, which both engines read the same way (one statement instead of `count`)."""
    row = "(" + ", ".join(["?"] * width) + ")"
    return ", ".join([row] * count)


# Keys per statement of a key table. Small enough that PostgreSQL looks each key up in the
# joined table's primary key: with 500, against a table of 100,000 terminals, it chose to
# scan and hash the whole table (docs/benchmarks.md section 5).
KEY_CHUNK = 100


def key_chunks(keys: Sequence[Any]) -> Iterable[Sequence[Any]]:
    """keys in runs of KEY_CHUNK, one statement each."""
    for start in range(0, len(keys), KEY_CHUNK):
        yield keys[start : start + KEY_CHUNK]


def key_table(chunk: Sequence[tuple[Any, ...]]) -> str:
    """A table `k` of these keys (columns column1, column2...) to join on: both engines then
    look each key up in the joined table's primary key (SQLite plans a row-value IN list
    as a scan)."""
    return f"(VALUES {row_values(len(chunk), len(chunk[0]))}) k"


class Store:
    """The back office's database, shared by the service's threads.

    SQLite: one connection under a lock (SQLite allows one writer anyway); a second
    connection, the Checkpointer's, only copies the log back. PostgreSQL: a pool of
    connections (psycopg_pool), each checked before it is lent, so a server restart costs
    the transactions it interrupted (StoreUnavailable, which ingest retries) and nothing
    after it: the pool connects again by itself.
    """

    def __init__(self, url: str, *, connect_timeout_s: float = 10.0) -> None:
        self.url = url
        self._lock = threading.RLock()
        self.dialect: Dialect
        self.checkpointer: Checkpointer | None = None
        self._pool: Any = None
        self._column_types: dict[str, dict[str, str]] = {}
        if url.startswith("sqlite:///"):
            self.dialect = "sqlite"
            path = Path(url.removeprefix("sqlite://"))
            self._conn: Any = _open_sqlite(path)
        elif url.startswith(("postgresql://", "postgres://")):
            self.dialect = "postgresql"
            self._pool = _open_pool(url, connect_timeout_s)
        else:
            raise StoreError(f"store URL {url!r} must start with sqlite:/// or postgresql://")
        try:
            self._create_schema()
        except BaseException:
            self._close_connections()
            raise
        if self.dialect == "sqlite":
            try:
                self.checkpointer = Checkpointer(path)
            except sqlite3.Error as exc:
                self._conn.close()
                raise StoreError(f"cannot open the back-office database {path}: {exc}") from None

    def _create_schema(self) -> None:
        with self.transaction() as cursor:
            self._migrate_alert_index(cursor)
            applied = migrate(cursor, self.dialect, time.time())
        if applied:
            log.info("back-office database moved to schema version %d", applied[-1])

    def _migrate_alert_index(self, cursor: Cursor) -> None:
        """Before 6 December 2026 (before the versioned migrations) an acknowledgement closed
        any alert, and the unique index allowed one open (neither cleared nor acknowledged)
        alert of a kind per terminal. Now a condition's alert, acknowledged, stays until the
        condition clears: the old acknowledged alerts are closed at their acknowledgement,
        as they were, and the old index goes. Once only: the old index says the database
        has not been moved yet. The one change that is not expand-only, and it predates
        backoffice.migrations."""
        if self.dialect == "sqlite":
            old = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'alerts_one_open'"
        else:
            old = "SELECT 1 FROM pg_indexes WHERE indexname = 'alerts_one_open'"
        if cursor.execute(old):
            cursor.execute(
                "UPDATE alerts SET cleared = acked WHERE cleared IS NULL AND acked IS NOT NULL"
            )
            cursor.execute("DROP INDEX alerts_one_open")

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """One atomic, durable unit of work: committed on exit, rolled back on an exception.

        StoreUnavailable when the server could not be reached or went away meanwhile (the
        work did not commit and may be tried again); StoreError when it refused a query."""
        if self.dialect == "sqlite":
            with self._lock:
                changes = self._conn.total_changes
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield _SqliteCursor(self._conn)
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
                if self.checkpointer is not None and self._conn.total_changes != changes:
                    self.checkpointer.wrote()
            return
        import psycopg
        import psycopg_pool

        try:
            with self._pool.connection() as conn, conn.transaction():
                yield _PostgresCursor(conn, self._column_types)
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            raise StoreUnavailable(
                f"PostgreSQL is unreachable ({_first_line(exc)}); the work is tried again"
            ) from exc
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL refused a query: {exc}") from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self.transaction() as cursor:
            return cursor.execute(sql, params)

    def close(self) -> None:
        with self._lock:
            if self.checkpointer is not None:
                self.checkpointer.close()
            self._close_connections()

    def _close_connections(self) -> None:
        if self._pool is not None:
            self._pool.close()
        else:
            self._conn.close()


class _SqliteCursor:
    """SQLite runs in this process: a statement per row is cheap."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = ""
    ) -> int:
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) {tail}"
        return self.executemany(sql, rows)

    def update_rows(
        self, table: str, keys: Sequence[str], columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        match = " AND ".join(f"{key} = ?" for key in keys)
        width = len(keys)
        self.executemany(
            f"UPDATE {table} SET {assignments} WHERE {match}",
            [(*row[width:], *row[:width]) for row in rows],
        )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [dict(row) for row in self._conn.execute(sql, tuple(params)).fetchall()]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        return int(self._conn.executemany(sql, rows).rowcount)


class _PostgresCursor:
    """Rows in bulk go to the server as one array per column (unnest): one statement, of a
    fixed text, for any number of rows: a statement per row, or a multi-row VALUES list,
    cost several times more (docs/benchmarks.md section 5)."""

    def __init__(self, conn: Any, types: dict[str, dict[str, str]]) -> None:
        self._conn = conn
        self._types = types  # table -> column -> SQL type, read from the catalog once

    def _column_types(self, table: str) -> dict[str, str]:
        if table not in self._types:
            rows = self.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ?",
                (table,),
            )
            self._types[table] = {row["column_name"]: row["data_type"] for row in rows}
        return self._types[table]

    def _arrays(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> tuple[str, list[list[Any]]]:
        types = self._column_types(table)
        # %b: psycopg sends each array in binary (text would quote every element).
        unnest = ", ".join(f"%b::{types[name]}[]" for name in columns)
        return unnest, [list(values) for values in zip(*rows, strict=True)]

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = ""
    ) -> int:
        if not rows:
            return 0
        unnest, arrays = self._arrays(table, columns, rows)
        with self._conn.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({unnest}) {tail}",
                arrays,
            )
            return int(cursor.rowcount)

    def update_rows(
        self, table: str, keys: Sequence[str], columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        if not rows:
            return
        names = [*keys, *columns]
        unnest, arrays = self._arrays(table, names, rows)
        assignments = ", ".join(f"{name} = k.{name}" for name in columns)
        match = " AND ".join(f"{table}.{key} = k.{key}" for key in keys)
        self._conn.execute(
            f"UPDATE {table} SET {assignments} FROM unnest({unnest}) AS k({', '.join(names)}) "
            f"WHERE {match}",
            arrays,
        )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self._conn.execute(_placeholders(sql), tuple(params))
        if cursor.description is None:
            return []
        rows: list[Row] = cursor.fetchall()
        return rows

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        with self._conn.cursor() as cursor:
            cursor.executemany(_placeholders(sql), rows)
            return int(cursor.rowcount)


def _placeholders(sql: str) -> str:
    """The shared SQL uses ?; psycopg wants %s (and a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _open_sqlite(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the back-office database {path}: {exc}") from None
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: an acknowledged record is on disk before the terminal is told to drop it.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")
    # 16 MiB of page cache (the default is 2 MiB): an ingest batch of 5,000 messages dirties
    # about 4 MiB, and a transaction larger than the cache spills pages to the WAL that
    # the commit then writes again.
    conn.execute("PRAGMA cache_size=-16384")
    # Checkpoints are the Checkpointer's, on its own thread (backoffice.sqlite_checkpoint);
    # this connection's own only bounds the log should that thread fall behind.
    conn.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
    return conn


def _open_pool(url: str, connect_timeout_s: float) -> Any:
    # Imported here so a SQLite deployment does not need psycopg.
    import psycopg
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool, PoolTimeout

    pool = ConnectionPool(
        url,
        min_size=1,
        max_size=POOL_SIZE,
        kwargs={
            "autocommit": True,
            "row_factory": dict_row,
            "connect_timeout": 10,
            # No server-side prepared statements: a key table's generic plan scanned the
            # whole terminals table for every statement (docs/benchmarks.md).
            "prepare_threshold": None,
        },
        # A connection is checked before it is lent: one the server closed (a restart)
        # is replaced instead of failing the next transaction.
        check=ConnectionPool.check_connection,
        timeout=10.0,  # a transaction waits this long for a connection, then is retried
        open=False,
        name="backoffice",
    )
    try:
        pool.open(wait=True, timeout=connect_timeout_s)
    except (PoolTimeout, psycopg.Error) as exc:
        pool.close()
        raise StoreError(
            f"cannot connect to PostgreSQL at {_without_password(url)}: {_first_line(exc)}; "
            "check the store URL and that the server is running"
        ) from None
    return pool


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _without_password(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, credentials = head.partition("//")
    return f"{scheme}//{credentials.split(':', 1)[0]}:***@{tail}"
