"""The transaction table on a real SQLite file: state changes and the index the commit path
pays for."""

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from kiosk.storage import open_database, write_transaction
from kiosk.transactions.states import TxState
from kiosk.transactions.store import StaleTransaction, TxRow, TxStore
from tests.bench_support.commit_path import posted_bill_row

NOW = "2026-11-23T10:00:00+08:00"


def a_row(tx_id: str, state: TxState = TxState.POSTED) -> TxRow:
    return replace(posted_bill_row(tx_id, NOW), state=str(state))


@pytest.fixture
def store(tmp_path: Path) -> TxStore:
    return TxStore(open_database(tmp_path / "terminal.sqlite3"))


def plan(conn: sqlite3.Connection, query: str) -> str:
    return " / ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}"))


def test_a_row_the_caller_holds_is_changed_without_reading_it_again(store: TxStore) -> None:
    with write_transaction(store._conn):
        store.insert(a_row("T-1"))
    held = store.get("T-1")
    with write_transaction(store._conn):
        closed = store.update(held, NOW, state=TxState.CLOSED, receipt_no="T0001-000001")
    assert closed.tx_state is TxState.CLOSED and closed.receipt_no == "T0001-000001"
    assert held.tx_state is TxState.POSTED, "the caller's row is left as it was"
    assert store.get("T-1") == closed


def test_a_stale_row_is_refused_and_changes_nothing(store: TxStore) -> None:
    with write_transaction(store._conn):
        store.insert(a_row("T-1", TxState.POSTING))
    stale = store.get("T-1")
    with write_transaction(store._conn):
        store.update("T-1", NOW, state=TxState.VOIDING)
    # Legal from the state the stale row shows (posting -> posted), not from the stored one.
    with pytest.raises(StaleTransaction, match="no longer posting"):
        with write_transaction(store._conn):
            store.update(stale, NOW, state=TxState.POSTED, pay_fen=1)
    assert store.get("T-1").tx_state is TxState.VOIDING
    assert store.get("T-1").pay_fen == 130_00


def test_open_transactions_are_read_through_the_partial_index_closing_leaves(
    store: TxStore,
) -> None:
    with write_transaction(store._conn):
        store.insert(a_row("T-1", TxState.COLLECTING))
        store.insert(a_row("T-2"))
        store.update("T-2", NOW, state=TxState.CLOSED, business_day="2026-11-23")
    conn = store._conn
    queries: list[str] = []
    conn.set_trace_callback(queries.append)  # the statements as run, parameters bound
    assert [r.tx_id for r in store.open_transactions()] == ["T-1"]
    collecting = store.collecting()
    conn.set_trace_callback(None)
    assert collecting is not None and collecting.tx_id == "T-1"
    # SQLite uses a partial index only for a query that spells out its condition, so a
    # query or an index changed alone would silently fall back to scanning every row ever.
    plans = [plan(conn, query) for query in queries]
    assert "tx_open" in plans[0] and "tx_open" in plans[1]
    # The store's own tables (the constructor makes the whole terminal schema).
    store_tables = ("tx", "cash_event", "card_credit", "hold_release", "counter")
    store_tables += ("platform_retry", "tx_token", "voucher")
    indexes = {
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN "
            f"({', '.join('?' for _ in store_tables)})",
            store_tables,
        )
    }
    assert indexes == {
        "tx_open",
        "sqlite_autoindex_tx_1",
        "sqlite_autoindex_cash_event_1",
        "sqlite_autoindex_card_credit_1",
        "sqlite_autoindex_hold_release_1",
        "sqlite_autoindex_counter_1",
        # Tables no payment's commit writes to: retries, reprint codes, vouchers.
        "sqlite_autoindex_platform_retry_1",
        "sqlite_autoindex_tx_token_1",
        "sqlite_autoindex_tx_token_2",
        "sqlite_autoindex_voucher_1",
        "sqlite_autoindex_voucher_2",
    }


def test_a_write_transaction_commits_rolls_back_and_nests_by_savepoint(store: TxStore) -> None:
    conn = store._conn
    with write_transaction(conn):
        store.insert(a_row("T-1"))
        with pytest.raises(ValueError), write_transaction(conn):
            store.insert(a_row("T-2"))
            raise ValueError("the inner step failed")
        assert conn.in_transaction  # the outer transaction goes on without the inner step
        store.insert(a_row("T-3"))
    assert not conn.in_transaction
    with pytest.raises(ValueError), write_transaction(conn):
        store.insert(a_row("T-4"))
        raise ValueError("the whole step failed")
    assert not conn.in_transaction
    stored = [row[0] for row in conn.execute("SELECT tx_id FROM tx ORDER BY tx_id")]
    assert stored == ["T-1", "T-3"]
