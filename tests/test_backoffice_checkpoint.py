"""SQLite's write-ahead log goes back into the database on the Checkpointer's thread, not
inside the commit of whichever batch takes it past SQLite's 1,000 pages."""

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import backoffice.store as store_module
from backoffice import sqlite_checkpoint
from backoffice.errors import StoreError
from backoffice.sqlite_checkpoint import Checkpointer
from backoffice.store import Store
from tests.fixtures.backoffice import wait_for

PAGE_BYTES = 4096
WAIT_S = 10.0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "bo.db"


@pytest.fixture
def open_store(db: Path) -> Iterator[Callable[[], Store]]:
    opened: list[Store] = []

    def make() -> Store:
        opened.append(Store(f"sqlite:///{db}"))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


def write_pages(store: Store, pages: int) -> None:
    """One transaction of about `pages` new pages (rejected rows of a page each)."""
    with store.transaction() as cursor:
        cursor.executemany(
            "INSERT INTO rejected (received, topic, reason) VALUES (?, ?, ?)",
            [(0.0, "t", "x" * (PAGE_BYTES - 200)) for _ in range(pages)],
        )


def test_a_commit_past_a_thousand_pages_leaves_the_database_file_to_the_checkpointer(
    db: Path, open_store: Callable[[], Store]
) -> None:
    store = open_store()
    assert store.checkpointer is not None
    store.checkpointer.close()  # no background checkpoint: what the commit does alone shows
    before = os.path.getsize(db)

    write_pages(store, 1500)  # SQLite's own default would checkpoint inside this commit

    assert os.path.getsize(db) == before
    assert len(store.query("SELECT id FROM rejected")) == 1500


def test_the_checkpointer_copies_the_log_back_without_changing_the_data(
    db: Path, open_store: Callable[[], Store]
) -> None:
    store = open_store()
    assert store.checkpointer is not None
    store.checkpointer.close()  # this test's own Checkpointer runs the one checkpoint
    write_pages(store, 300)
    rows = store.query("SELECT * FROM rejected ORDER BY id")
    before = os.path.getsize(db)

    checkpointer = Checkpointer(db)
    checkpointer.wrote()
    wait_for(lambda: checkpointer.checkpoints == 1, "the checkpoint", timeout=WAIT_S)
    checkpointer.close()

    assert os.path.getsize(db) > before + 250 * PAGE_BYTES
    assert store.query("SELECT * FROM rejected ORDER BY id") == rows


def test_a_write_wakes_the_store_s_checkpointer(db: Path, open_store: Callable[[], Store]) -> None:
    store = open_store()
    checkpointer = store.checkpointer
    assert checkpointer is not None
    before = os.path.getsize(db)

    write_pages(store, 300)

    wait_for(lambda: checkpointer.checkpoints >= 1, "a checkpoint", timeout=WAIT_S)
    assert os.path.getsize(db) > before + 250 * PAGE_BYTES


def test_reads_alone_wake_no_checkpoint(
    open_store: Callable[[], Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_checkpoint, "CHECKPOINT_EVERY_S", 0.02)
    store = open_store()
    checkpointer = store.checkpointer
    assert checkpointer is not None
    write_pages(store, 1)
    wait_for(lambda: checkpointer.checkpoints >= 1, "a checkpoint", timeout=WAIT_S)
    done = checkpointer.checkpoints

    for _ in range(3):
        store.query("SELECT COUNT(*) AS n FROM rejected")
    time.sleep(0.3)

    assert checkpointer.checkpoints == done


def test_the_writer_still_checkpoints_past_its_own_bound_when_the_thread_falls_behind(
    db: Path, open_store: Callable[[], Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "WRITER_CHECKPOINT_PAGES", 100)
    store = open_store()
    assert store.checkpointer is not None
    store.checkpointer.close()
    before = os.path.getsize(db)

    write_pages(store, 150)

    assert os.path.getsize(db) > before + 100 * PAGE_BYTES


def test_closing_leaves_one_database_file_holding_everything(
    db: Path, open_store: Callable[[], Store]
) -> None:
    store = open_store()
    write_pages(store, 50)
    store.close()

    assert not Path(f"{db}-wal").exists()  # both connections closed, the log copied back
    again = open_store()
    assert again.query("SELECT COUNT(*) AS n FROM rejected")[0]["n"] == 50


def test_a_checkpoint_connection_that_cannot_open_is_one_clear_error(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Faked: the database opened a moment before, so a real second open does not fail here.
    # (The writing connection opens first and works.)
    def refuse(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(store_module, "Checkpointer", refuse)
    with pytest.raises(StoreError) as refused:
        Store(f"sqlite:///{db}")
    message = str(refused.value)
    assert message.startswith("cannot open the back-office database ")
    assert message.endswith(f"{db.name}: unable to open database file")
    assert "\n" not in message
