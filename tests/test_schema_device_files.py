"""The device files (printer job ledger, simulators' state) after a rollback: release N's
code on a file that release N+1 created, with a column N does not know on every table.

N+1 is N's history with one test-only migration appended that adds a NOT NULL column with a
default to each table; N's seed rows and inserts must still fit (they name their columns).
Real SQLite files; the simulators are what the demo and the tests run on.
"""

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.printer.job_ledger import PRINTER_JOBS, JobLedger
from kiosk.schema import Database, Migration, user_version
from kiosk.storage import open_database
from simulators.cash import CASH_BOARD, SimulatedCashAcceptor
from simulators.printer import SIMULATED_PRINTER, STATE_FILE_NAME, SimulatedPrinter
from simulators.smartcard import SIMULATED_CARDS, SimulatedCardReader


def next_release(history: Database) -> Database:
    """history plus a migration giving every one of its tables a column N does not know."""
    scratch = sqlite3.connect(":memory:", isolation_level=None)
    history.migrate(scratch)
    tables = [
        str(row[0])
        for row in scratch.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    scratch.close()
    sql = ";\n".join(
        f"ALTER TABLE {table} ADD COLUMN later_note TEXT NOT NULL DEFAULT ''" for table in tables
    )
    return history.extended(Migration(history.version + 1, "test only: later_note", sql))


def created_by_next_release(path: Path, history: Database) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = open_database(path)
    assert next_release(history).migrate(conn) == history.version + 1
    conn.close()


def use_job_ledger(path: Path) -> None:
    ledger = JobLedger(path)
    assert not ledger.start("job-1").marked
    ledger.confirm("job-1")
    assert ledger.start("job-1").marked
    assert ledger.counts() == (1, 1)
    ledger.close()


def use_cash_board(path: Path) -> None:
    acceptor = SimulatedCashAcceptor(path)
    acceptor.set_accepting(True)
    event = acceptor.insert("note", 50_00)
    assert acceptor.pending() == [event]
    acceptor.acknowledge(event.event_id)
    assert acceptor.pending() == []
    acceptor.close()


def use_card_reader(path: Path) -> None:
    reader = SimulatedCardReader(path)
    reader.create_card("9100000001", "electricity", "M-1", balance_fen=10_00)
    reader.insert_card("9100000001")
    card = reader.read_prepaid()
    assert card is not None and card.card_no == "9100000001"
    reader.create_technician_card("8800000001", "tech-1", "123456")
    reader.create_operator_card("8700000001", "op-1", "654321")
    assert reader.card("9100000001").balance_fen == 10_00
    reader.close()


def use_printer(path: Path) -> None:
    printer = SimulatedPrinter(path.parent)
    assert printer.status().online
    printer.paper_out()
    printer.restore()
    printer.close()


CASES: dict[str, tuple[Database, str, Callable[[Path], None]]] = {
    "printer jobs": (PRINTER_JOBS, "printer-jobs.sqlite3", use_job_ledger),
    "cash board": (CASH_BOARD, "cash.sqlite3", use_cash_board),
    "cards": (SIMULATED_CARDS, "cards.sqlite3", use_card_reader),
    "printer": (SIMULATED_PRINTER, f"printer/{STATE_FILE_NAME}", use_printer),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_release_n_uses_a_device_file_release_n_plus_1_made(tmp_path: Path, case: str) -> None:
    history, name, use = CASES[case]
    path = tmp_path / name
    created_by_next_release(path, history)
    use(path)
    conn = sqlite3.connect(path)
    assert user_version(conn) == history.version + 1  # never lowered
    conn.close()
