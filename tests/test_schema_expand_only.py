"""The expand-only rule (kiosk.schema): every registered history keeps it, and the checker
refuses each way a migration could break the previous slot after a rollback."""

import importlib

import pytest

from kiosk.schema import Database, Migration, expand_only_problems, registered
from kiosk.terminal_schema import TERMINAL

# Every module that defines a database the terminal or its simulators keep.
DATABASE_MODULES = (
    "kiosk.terminal_schema",
    "drivers.printer.job_ledger",
    "simulators.printer",
    "simulators.cash",
    "simulators.smartcard",
)


def test_every_registered_history_is_expand_only() -> None:
    for module in DATABASE_MODULES:
        importlib.import_module(module)
    databases = registered()
    assert {"terminal", "printer jobs"} <= set(databases)
    for database in databases.values():
        assert expand_only_problems(database) == [], database.name


def test_a_good_later_migration_passes() -> None:
    later = TERMINAL.extended(
        Migration(
            TERMINAL.version + 1,
            "a nullable column, one with a default, a new table with its own unique index",
            """
            ALTER TABLE tx ADD COLUMN channel TEXT;  -- a comment; with a semicolon
            ALTER TABLE tx ADD COLUMN tries INTEGER NOT NULL DEFAULT 0;
            CREATE TABLE IF NOT EXISTS qr_order (order_id TEXT NOT NULL, tx_id TEXT);
            CREATE UNIQUE INDEX IF NOT EXISTS qr_order_id ON qr_order (order_id);
            CREATE INDEX IF NOT EXISTS tx_channel ON tx (channel);
            CREATE TRIGGER IF NOT EXISTS qr_order_kept BEFORE DELETE ON qr_order
                BEGIN SELECT RAISE(ABORT, 'kept; for ever'); END
            """,
        )
    )
    assert expand_only_problems(later) == []


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("DROP TABLE voucher", "not expand-only"),
        ("DROP INDEX tx_open", "not expand-only"),
        ("DROP TABLE IF EXISTS rating", "not expand-only"),
        ("ALTER TABLE tx RENAME TO transactions", "not expand-only"),
        ("ALTER TABLE tx RENAME COLUMN refusal TO refusal_code", "not expand-only"),
        ("ALTER TABLE tx DROP COLUMN refusal", "not expand-only"),
        ("ALTER TABLE tx ALTER COLUMN refusal SET NOT NULL", "not expand-only"),
        ("ALTER TABLE tx ADD COLUMN channel TEXT NOT NULL", "NOT NULL without DEFAULT"),
        ("ALTER TABLE tx ADD channel TEXT NOT NULL", "NOT NULL without DEFAULT"),
        ("ALTER TABLE tx ADD COLUMN channel TEXT UNIQUE", "may not be UNIQUE"),
        ("ALTER TABLE tx ADD COLUMN n INTEGER DEFAULT 0 CHECK (n > 0)", "may not be CHECK"),
        ("ALTER TABLE tx ADD COLUMN v TEXT REFERENCES voucher (voucher_id)", "REFERENCES"),
        ("UPDATE tx SET refusal = NULL", "not expand-only"),
        ("DELETE FROM platform_retry", "not expand-only"),
        ("INSERT INTO counter (name, value) VALUES ('x', 1)", "not expand-only"),
        ("CREATE UNIQUE INDEX IF NOT EXISTS tx_receipt ON tx (receipt_no)", "unique index"),
        (
            "CREATE TRIGGER IF NOT EXISTS tx_frozen BEFORE UPDATE ON tx "
            "BEGIN SELECT RAISE(ABORT, 'no'); END",
            "trigger on an existing table",
        ),
        ("CREATE TABLE tx2 (a TEXT)", "not expand-only"),  # no IF NOT EXISTS: not re-runnable
        ("CREATE TABLE IF NOT EXISTS tx (a TEXT)", "changes nothing"),
        ("CREATE INDEX IF NOT EXISTS tx_open ON tx (updated)", "changes nothing"),
        ("PRAGMA foreign_keys = OFF", "not expand-only"),
    ],
)
def test_the_checker_refuses_what_the_previous_slot_cannot_bear(sql: str, reason: str) -> None:
    later = TERMINAL.extended(Migration(TERMINAL.version + 1, "bad", sql))
    problems = expand_only_problems(later)
    assert problems, sql
    assert any(reason in problem for problem in problems), problems
    assert all(f"migration {TERMINAL.version + 1}" in problem for problem in problems)


def test_a_history_must_be_numbered_from_one_without_gaps() -> None:
    from kiosk.schema import SchemaError

    with pytest.raises(SchemaError, match="numbered"):
        Database("gappy", (Migration(1, "a", "CREATE TABLE IF NOT EXISTS a (x)"),) * 2)
    with pytest.raises(SchemaError, match="IF EXISTS"):
        Database("retires", (), retired=("DROP TABLE journal",))


def test_the_record_type_version_1_spells_is_the_journal_s() -> None:
    # The frozen text names the record type of the partial index journal_recovered, which
    # the journal's outage query must spell the same way for SQLite to use the index.
    from kiosk.journal.record_types import RecordType

    assert f"WHERE type = '{RecordType.SIGNATURE_RECOVERED}'" in TERMINAL.migrations[0].sql
