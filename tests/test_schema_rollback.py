"""A rollback across a schema migration: release N, release N+1 migrates, back to N.

Release N is this code (kiosk.terminal_schema.TERMINAL); release N+1 is the same code with
one test-only migration appended (a new column on tx and a new table), written to by N+1.
Real SQLite file, real terminal core on the simulated devices and the platform simulator.
"""

import io
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from kiosk.journal import export_jsonl, verify_jsonl
from kiosk.schema import Migration, user_version
from kiosk.storage import open_database, write_transaction
from kiosk.terminal_schema import TERMINAL
from tests.fixtures.engine_hook import engine_of
from tests.fixtures.terminal import TerminalRig, started_rig

# What a later release might add: which channel paid (every old row: cash), on the
# transaction and on its journal records, and the orders of a QR payment. Expand-only, so
# release N keeps working beside it.
NEXT_RELEASE = TERMINAL.extended(
    Migration(
        TERMINAL.version + 1,
        "test only: tx.pay_channel, journal.channel and qr_order",
        """
ALTER TABLE tx ADD COLUMN pay_channel TEXT NOT NULL DEFAULT 'cash';
ALTER TABLE journal ADD COLUMN channel TEXT;
CREATE TABLE IF NOT EXISTS qr_order (
    order_id TEXT PRIMARY KEY,
    tx_id TEXT NOT NULL,
    amount_fen INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS qr_order_tx ON qr_order (tx_id)
""",
    )
)


def sell_topup(rig: TerminalRig, amount_fen: int) -> str:
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", amount_fen)
    rig.insert(progress.tx_id, amount_fen)
    rig.terminal.finish(progress.tx_id)
    return str(progress.tx_id)


def journal_report(rig: TerminalRig) -> Any:
    conn = sqlite3.connect(f"{rig.config.database_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        buffer = io.StringIO()
        export_jsonl(conn, buffer)
    finally:
        conn.close()
    buffer.seek(0)
    return verify_jsonl(buffer, rig.signer.certificate_pem())


def release_n_plus_1(path: Path, paid_tx: str) -> None:
    """What N+1 does at its start and in its first payment: migrate, then use the new parts."""
    conn = open_database(path)
    try:
        assert NEXT_RELEASE.migrate(conn) == TERMINAL.version + 1
        with write_transaction(conn):
            conn.execute("UPDATE tx SET pay_channel = 'qr' WHERE tx_id = ?", (paid_tx,))
            conn.execute(
                "INSERT INTO qr_order (order_id, tx_id, amount_fen) VALUES ('Q-1', ?, 1000)",
                (paid_tx,),
            )
    finally:
        conn.close()


def version_on_disk(path: Path) -> int:
    conn = open_database(path)
    try:
        return user_version(conn)
    finally:
        conn.close()


def test_release_n_runs_on_the_database_release_n_plus_1_migrated(
    tmp_path: Path, platform_sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with started_rig(tmp_path / "terminal", platform_sim) as rig:
        path = rig.config.database_path
        first = sell_topup(rig, 10_00)
        assert version_on_disk(path) == TERMINAL.version

        # The update: N+1 starts on the same data directory and migrates.
        rig.terminal.close()
        release_n_plus_1(path, first)

        # The rollback: the boot guard switches back to N's slot, which starts as usual.
        caplog.set_level(logging.WARNING, logger="kiosk.schema")
        rig.build()
        rig.terminal.start()
        assert not rig.terminal.faults
        assert f"is at schema {TERMINAL.version + 1}, newer than" in caplog.text

        # Reads: N reads the rows N+1 changed (a column N does not know).
        store = engine_of(rig.terminal).store
        assert store.get(first).outcome == "paid"
        assert store.open_transactions() == []
        # Writes and money: another top-up by cash, a day closed with both in it.
        second = sell_topup(rig, 20_00)
        assert store.get(second).outcome == "paid"
        day = rig.terminal.close_day()
        assert day["paid_count"] == 2 and day["paid_fen"] == 30_00

        report = journal_report(rig)
        assert report.ok, report.problem
        # N never lowers the version, and N+1's data are still there for N+1.
        assert version_on_disk(path) == TERMINAL.version + 1
        conn = open_database(path)  # a second connection: the terminal's own is private
        try:
            rows = conn.execute("SELECT tx_id, pay_channel FROM tx ORDER BY created").fetchall()
            assert [tuple(r) for r in rows] == [(first, "qr"), (second, "cash")]
            assert conn.execute("SELECT order_id FROM qr_order").fetchall()[0][0] == "Q-1"
        finally:
            conn.close()

    # Upgraded again: N+1 finds its schema as it left it and has nothing to run.
    conn = open_database(path)
    try:
        assert NEXT_RELEASE.migrate(conn) == TERMINAL.version + 1
    finally:
        conn.close()


def test_the_migrations_of_one_release_are_one_transaction_each(tmp_path: Path) -> None:
    # A migration that fails half-way leaves the database at the version before it.
    broken = TERMINAL.extended(
        Migration(
            TERMINAL.version + 1,
            "test only: fails at its second statement",
            "CREATE TABLE IF NOT EXISTS half (a TEXT); ALTER TABLE nowhere ADD COLUMN b TEXT",
        )
    )
    conn = open_database(tmp_path / "terminal.sqlite3")
    try:
        with pytest.raises(sqlite3.OperationalError, match="nowhere"):
            broken.migrate(conn)
        assert user_version(conn) == TERMINAL.version
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'half'").fetchone()
        assert found is None
    finally:
        conn.close()
