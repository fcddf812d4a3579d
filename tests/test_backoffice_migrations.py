"""The back-office schema's versioned migrations (backoffice/migrations.py): expand-only,
applied once each, in order, on SQLite and on a real PostgreSQL server, and a database of
the schema before versioning is taken over without losing a row."""

import re
import sqlite3
from pathlib import Path

from backoffice.migrations import MIGRATIONS, schema_version, statements
from backoffice.store import Store

# What an expand-only migration may do: add tables, indexes and nullable or defaulted
# columns, and fill them. Never DROP, RENAME, ALTER a column's type or NOT NULL without a
# default (a worker of the previous release must keep working on the moved database).
EXPANDING = re.compile(
    r"^(CREATE (UNIQUE )?INDEX IF NOT EXISTS|CREATE TABLE IF NOT EXISTS|"
    r"ALTER TABLE \w+ ADD COLUMN \w+ \w+( NOT NULL DEFAULT \S+)?$|UPDATE )",
)


def test_every_migration_only_expands_the_schema() -> None:
    for migration in MIGRATIONS:
        for dialect in ("sqlite", "postgresql"):
            for statement in statements(migration, dialect):
                one_line = " ".join(statement.split())
                assert EXPANDING.match(one_line), f"migration {migration.version}: {one_line}"
                assert not re.search(r"\b(DROP|RENAME)\b", one_line, re.IGNORECASE)


def test_the_expand_only_rule_catches_a_narrowing_change() -> None:
    for narrowing in (
        "DROP TABLE rejected",
        "ALTER TABLE records RENAME COLUMN record TO body",
        "ALTER TABLE records ADD COLUMN checked TEXT NOT NULL",
    ):
        assert not EXPANDING.match(narrowing)


def test_versions_are_numbered_one_by_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_migrations_are_applied_once_each(store_url: str) -> None:
    for _ in range(2):
        store = Store(store_url)
        try:
            with store.transaction() as cursor:
                assert schema_version(cursor) == len(MIGRATIONS)
            rows = store.query("SELECT version FROM schema_version ORDER BY version")
            assert [r["version"] for r in rows] == [m.version for m in MIGRATIONS]
        finally:
            store.close()


def test_a_database_from_before_versioning_is_taken_over_with_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript(";".join(statements(MIGRATIONS[0], "sqlite")))
    conn.execute(
        "INSERT INTO records (station, terminal, seq, type, time, business_day, record, "
        "record_hash, received, prev_seq) VALUES ('1', 'T-01', 5, 'tx_close', 't', "
        "'2025-03-01', '{}', 'ab', 1.0, 0)"
    )
    conn.commit()
    conn.close()
    store = Store(f"sqlite:///{db}")
    try:
        rows = store.query("SELECT seq, signature, awaiting_claim FROM records")
        # Records stored before verification existed are flagged as never checked.
        assert rows == [{"seq": 5, "signature": "unchecked", "awaiting_claim": 0}]
    finally:
        store.close()


def test_a_database_whose_dashboard_made_its_own_tables_is_taken_over(tmp_path: Path) -> None:
    # Before migration 3 the dashboard created staff_actions (and its other tables) itself,
    # outside schema_version; such a database moves to version 3 keeping their rows.
    db = tmp_path / "dashboard.db"
    store = Store(f"sqlite:///{db}")
    store.close()
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM schema_version WHERE version >= 3")
    for table in ("staff_actions", "fleet_samples", "alert_notices", "revocations"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute(
        "CREATE TABLE staff_actions (id INTEGER PRIMARY KEY, at REAL NOT NULL, staff TEXT NOT "
        "NULL, role TEXT NOT NULL, action TEXT NOT NULL, station TEXT, terminal TEXT, "
        "detail TEXT NOT NULL)"
    )
    conn.execute(
        "INSERT INTO staff_actions (at, staff, role, action, detail) "
        "VALUES (1.0, 'zhao', 'admin', 'revoke', '{}')"
    )
    conn.commit()
    conn.close()
    store = Store(f"sqlite:///{db}")
    try:
        with store.transaction() as cursor:
            assert schema_version(cursor) == len(MIGRATIONS)
        assert store.query("SELECT staff FROM staff_actions") == [{"staff": "zhao"}]
        assert store.query("SELECT COUNT(*) AS n FROM revocations") == [{"n": 0}]
    finally:
        store.close()
