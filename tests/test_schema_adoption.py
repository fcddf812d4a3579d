"""Opening the terminal database (kiosk.schema): fresh, at an older version, and adopted
from a release before versioning (no user_version, tables already there). Real SQLite files."""

import sqlite3
from pathlib import Path

import pytest

from kiosk.schema import shape_of, statements, user_version
from kiosk.storage import open_database
from kiosk.terminal_schema import TERMINAL
from kiosk.transactions.store import TxStore

# The tx table and indexes as the releases before versioning left them: without the two
# columns added when missing (migration 2), with the indexes they later dropped at start.
BEFORE_VERSIONING = """
CREATE TABLE tx (
    tx_id TEXT PRIMARY KEY, kind TEXT NOT NULL, service TEXT NOT NULL, biller TEXT NOT NULL,
    account TEXT NOT NULL, bill_id TEXT, state TEXT NOT NULL, due_fen INTEGER NOT NULL,
    fee_fen INTEGER NOT NULL, allows_overpay INTEGER NOT NULL, hold_id TEXT,
    hold_fen INTEGER NOT NULL DEFAULT 0, cash_in_fen INTEGER NOT NULL DEFAULT 0,
    pay_fen INTEGER NOT NULL DEFAULT 0, credited_fen INTEGER NOT NULL DEFAULT 0,
    voucher_fen INTEGER NOT NULL DEFAULT 0, post_key TEXT, platform_ref TEXT, card_no TEXT,
    card_counter INTEGER, outcome TEXT, receipt_no TEXT, business_day TEXT,
    printed INTEGER NOT NULL DEFAULT 0, print_problem TEXT, created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE INDEX tx_state ON tx(state);
CREATE INDEX tx_day ON tx(business_day);
CREATE TABLE upload_queue (seq INTEGER PRIMARY KEY);
INSERT INTO tx (tx_id, kind, service, biller, account, state, due_fen, fee_fen,
    allows_overpay, outcome, created, updated)
VALUES ('T0001-old', 'phone_topup', 'mobile-topup', 'CMCC', '13800138000', 'closed', 1000, 0,
    0, 'paid', '2026-11-01T10:00:00+08:00', '2026-11-01T10:01:00+08:00');
"""


def a_fresh_database(path: Path) -> sqlite3.Connection:
    conn = open_database(path)
    TERMINAL.migrate(conn)
    return conn


def test_a_fresh_database_gets_every_migration_and_opening_again_changes_nothing(
    tmp_path: Path,
) -> None:
    conn = a_fresh_database(tmp_path / "terminal.sqlite3")
    assert user_version(conn) == TERMINAL.version
    shape = shape_of(conn)
    assert TERMINAL.migrate(conn) == TERMINAL.version
    assert shape_of(conn) == shape
    columns = [row[1] for row in conn.execute("PRAGMA table_info(tx)")]
    # Each migration's columns come after the ones before it, in its order.
    assert columns[columns.index("updated") + 1 :][:3] == ["close_reason", "refusal", "pay_method"]
    assert columns[-1] == "resident_left"
    conn.close()


def test_an_unversioned_database_is_adopted_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "terminal.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(BEFORE_VERSIONING)
    old.close()

    conn = open_database(path)
    store = TxStore(conn)  # any module of the database adopts it

    assert user_version(conn) == TERMINAL.version
    row = store.get("T0001-old")
    assert (row.outcome, row.close_reason, row.refusal) == ("paid", None, None)
    names = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"tx_state", "tx_day", "upload_queue"}.isdisjoint(names)
    assert {"journal", "tx_open", "float_deposit", "telemetry_outbox"} <= names
    fresh = a_fresh_database(tmp_path / "fresh.sqlite3")
    # Same tables, columns, indexes and triggers as a fresh install (tx's stored CREATE text
    # differs: the columns came by ALTER).
    assert shape_of(conn) == shape_of(fresh)
    conn.close()
    fresh.close()


def test_an_unversioned_database_that_already_added_the_columns_is_adopted(
    tmp_path: Path,
) -> None:
    # The last release before versioning had added close_reason and refusal when missing.
    path = tmp_path / "terminal.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(BEFORE_VERSIONING)
    old.execute("ALTER TABLE tx ADD COLUMN close_reason TEXT")
    old.execute("ALTER TABLE tx ADD COLUMN refusal TEXT")
    old.execute("UPDATE tx SET refusal = 'R042'")
    old.commit()
    old.close()

    conn = open_database(path)
    store = TxStore(conn)

    assert user_version(conn) == TERMINAL.version
    assert store.get("T0001-old").refusal == "R042"
    conn.close()


def test_a_versioned_database_is_not_adopted_a_column_already_there_is_an_error(
    tmp_path: Path,
) -> None:
    # Outside adoption a migration is run as written: a database claiming version 1 whose tx
    # already has migration 2's column is not what version 1 is, and opening says so.
    path = tmp_path / "terminal.sqlite3"
    conn = open_database(path)
    for statement in statements(TERMINAL.migrations[0].sql):
        conn.execute(statement)
    conn.execute("ALTER TABLE tx ADD COLUMN close_reason TEXT")
    conn.execute("PRAGMA user_version = 1")
    with pytest.raises(sqlite3.OperationalError, match="duplicate column"):
        TERMINAL.migrate(conn)
    assert user_version(conn) == 1
    conn.close()


def test_a_database_at_version_1_gets_only_migration_2(tmp_path: Path) -> None:
    path = tmp_path / "terminal.sqlite3"
    conn = open_database(path)
    for statement in statements(TERMINAL.migrations[0].sql):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    assert TERMINAL.migrate(conn) == TERMINAL.version
    columns = [row[1] for row in conn.execute("PRAGMA table_info(tx)")]
    # Each migration's columns come after the ones before it, in its order.
    assert columns[columns.index("updated") + 1 :][:3] == ["close_reason", "refusal", "pay_method"]
    assert columns[-1] == "resident_left"
    conn.close()
