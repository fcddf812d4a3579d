"""A batch of messages leaves the store exactly as its messages taken one at a time would.

Ingest applies a batch to its terminals' rows in memory and writes each table once, and
keeps those rows between batches while nothing else writes (backoffice/ingest.py, _Batch):
these tests hold both to the one-message-per-transaction meaning on real SQLite files.
"""

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backoffice.config import Thresholds
from backoffice.ingest import Ingestor
from backoffice.store import Store
from simulators.fleet import SimulatedTerminal

STATION = "31010001"
NOW = 1_750_000_000.0
HASH = "ab" * 32
Message = tuple[str, bytes]


def topic(terminal: str, kind: str) -> str:
    return f"kiosk/v1/{STATION}/{terminal}/{kind}"


def body(**fields: Any) -> bytes:
    return json.dumps({"v": 1, "time": "2025-03-01T09:00:00+08:00", **fields}).encode()


def heartbeat(terminal: str, boot: int, chain_seq: int, chain_hash: str = HASH) -> Message:
    payload = body(
        seq_no=1,
        uptime_s=60,
        chain={"seq": chain_seq, "hash": chain_hash},
        turnover_fen=500,
        boot_id=f"{boot:032x}",
    )
    return topic(terminal, "heartbeat"), payload


def health(sim: SimulatedTerminal, **changes: Any) -> Message:
    return topic(sim.terminal, "health"), json.dumps({**sim.health_payload(), **changes}).encode()


def event(terminal: str, kind: str) -> Message:
    return topic(terminal, "event"), body(kind=kind, data={"switch": "door"})


def outbox(sim: SimulatedTerminal, record: dict[str, object]) -> Message:
    return topic(sim.terminal, "outbox"), sim.outbox_payload(int(str(record["seq"])), record)


@pytest.fixture
def terminals(tmp_path: Path) -> Iterator[tuple[SimulatedTerminal, SimulatedTerminal]]:
    def make(name: str, directory: str, **extra: Any) -> SimulatedTerminal:
        return SimulatedTerminal(
            tmp_path / directory,
            station=STATION,
            terminal=name,
            host="127.0.0.1",
            port=1,  # never started: the tests hand their messages to the ingestor
            **extra,
        )

    first = make("T-01", "t1")
    yield first, make("T-01", "twin", signer=first.signer)


def every_kind_of_message(sim: SimulatedTerminal, twin: SimulatedTerminal) -> list[Message]:
    """Messages whose meaning depends on the ones before them, in one terminal's life."""
    first, second = sim.pay(1_000, 100), sim.pay(2_000, 100)
    impostor = twin.pay(9_000)  # the same seq as `first`, another record: a clone
    return [
        heartbeat("T-01", boot=1, chain_seq=5),
        (topic("T-01", "status"), body(state="offline", reason="lost")),
        heartbeat("T-01", boot=1, chain_seq=6),  # back online: the offline alert clears
        health(sim, paper="out"),
        health(sim, paper="ok", float_balance_fen=100),  # paper clears, float is low
        outbox(sim, second),  # its predecessor is not stored yet: no ack beyond it
        outbox(sim, first),
        outbox(sim, first),  # a duplicate
        outbox(twin, impostor),  # another record under a stored key
        heartbeat("T-01", boot=2, chain_seq=3),  # the journal went back: rollback
        heartbeat("T-01", boot=1, chain_seq=7),  # boots 1, 2, 1 in turn: clone
        heartbeat("T-01", boot=1, chain_seq=int(str(first["seq"])), chain_hash="cd" * 32),
        (topic("T-01", "outbox"), b"not json"),
        (topic("T-02", "heartbeat"), body(v=2)),
        event("T-02", "tamper"),
        event("T-02", "signer_outage"),
        event("T-02", "signer_recovered"),
        (
            topic("T-02", "status"),
            body(state="online", software="2.1.0", firmware=None, boot_id=f"{9:032x}"),
        ),
        (topic("T-02", "cmd_result"), body(id="c-1", ok=True, result={"done": 1}, error=None)),
        health(sim, devices={"printer": {"online": False}}),
    ]


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows without their generated ids, in a stable order."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for table in (
        "terminals",
        "boots",
        "records",
        "health_history",
        "events",
        "alerts",
        "commands",
        "rejected",
        "quarantine",
    ):
        rows = store.query(f"SELECT * FROM {table}")
        tables[table] = sorted(
            tuple((k, str(v)) for k, v in row.items() if k != "id") for row in rows
        )
    return tables


def ingest(
    store: Store, batches: list[list[Message]], sim: SimulatedTerminal
) -> list[tuple[str, dict[str, Any]]]:
    sim.register_with(store)
    sent: list[tuple[str, dict[str, Any]]] = []
    ingestor = Ingestor(
        store,
        Thresholds(),
        lambda t, payload, qos: sent.append((t, json.loads(payload))),
        clock=lambda: NOW,
    )
    with store.transaction() as cursor:
        cursor.execute(
            "INSERT INTO commands (id, station, terminal, name, args, sent, sent_by, expires, "
            "payload) VALUES ('c-1', ?, 'T-02', 'reboot', '{}', 1.0, 'Wang Fang', 'x', '{}')",
            (STATION,),
        )
    for batch in batches:
        ingestor.handle_batch(batch)
    return sent


def test_a_batch_stores_exactly_what_its_messages_one_at_a_time_would(
    tmp_path: Path, terminals: tuple[SimulatedTerminal, SimulatedTerminal]
) -> None:
    messages = every_kind_of_message(*terminals)
    one_by_one, together = (
        Store(f"sqlite:///{tmp_path / 'a.db'}"),
        Store(f"sqlite:///{tmp_path / 'b.db'}"),
    )
    try:
        acks_one_by_one = ingest(one_by_one, [[m] for m in messages], terminals[0])
        acks_together = ingest(together, [messages], terminals[0])
        assert dump(together) == dump(one_by_one)
        # One ack per batch and terminal, each the contiguous point at its commit.
        assert acks_together == [acks_one_by_one[-1]]
        kinds = {r["kind"] for r in together.query("SELECT kind FROM alerts WHERE cleared IS NULL")}
        # low_float and paper_out were raised and cleared again within the batch.
        assert kinds == {"clone", "rollback", "device_fault", "tamper"}
        assert together.query("SELECT COUNT(*) AS n FROM rejected")[0]["n"] == 2
    finally:
        one_by_one.close()
        together.close()


@pytest.fixture
def two_writers(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """The ingest's store and another writer of the same database (a second worker)."""
    url = f"sqlite:///{tmp_path / 'bo.db'}"
    store, other_worker = Store(url), Store(url)
    yield store, other_worker
    store.close()
    other_worker.close()


def test_rows_kept_between_batches_are_read_again_after_another_writer(
    two_writers: tuple[Store, Store],
) -> None:
    store, other_worker = two_writers
    ingestor = Ingestor(store, Thresholds(), lambda *message: None, clock=lambda: NOW)
    ingestor.handle_batch([heartbeat("T-01", boot=1, chain_seq=5)])
    with other_worker.transaction() as cursor:  # another connection: a second worker
        cursor.execute("UPDATE terminals SET max_chain_seq = 40")
    ingestor.handle_batch([heartbeat("T-01", boot=1, chain_seq=30)])
    assert [r["kind"] for r in store.query("SELECT kind FROM alerts")] == ["rollback"]
    with store.transaction() as cursor:  # this connection, outside ingest: the dashboard
        cursor.execute("UPDATE terminals SET boot_id = ?", (f"{7:032x}",))
    ingestor.handle_batch([heartbeat("T-01", boot=1, chain_seq=41)])
    kinds = sorted(r["kind"] for r in store.query("SELECT kind FROM alerts"))
    assert kinds == ["clone", "rollback"]  # boot 1 after boot 7, boot 1 known: clone


def test_a_failed_batch_stores_nothing_and_the_next_one_reads_the_rows_again(
    tmp_path: Path, terminals: tuple[SimulatedTerminal, SimulatedTerminal]
) -> None:
    sim, _ = terminals
    store = Store(f"sqlite:///{tmp_path / 'bo.db'}")
    try:
        ingestor = Ingestor(store, Thresholds(), lambda *message: None, clock=lambda: NOW)
        ingestor.handle_batch([heartbeat("T-01", boot=1, chain_seq=5)])
        broken = health(sim)
        with pytest.raises(Exception, match="health_history"):
            with store.transaction() as cursor:
                cursor.execute("ALTER TABLE health_history RENAME TO health_history_gone")
            try:
                ingestor.handle_batch([heartbeat("T-01", boot=1, chain_seq=9), broken])
            finally:
                with store.transaction() as cursor:
                    cursor.execute("ALTER TABLE health_history_gone RENAME TO health_history")
        assert store.query("SELECT chain_seq FROM terminals")[0]["chain_seq"] == 5
        ingestor.handle_batch([heartbeat("T-01", boot=1, chain_seq=7)])
        assert store.query("SELECT alerts.kind FROM alerts") == []  # 7 > 5: no rollback
        assert store.query("SELECT chain_seq FROM terminals")[0]["chain_seq"] == 7
    finally:
        store.close()


def test_a_boot_is_written_when_the_terminal_changes_to_it_and_keeps_its_first_sighting(
    two_writers: tuple[Store, Store],
) -> None:
    store, other_worker = two_writers
    clock = iter([100.0, 150.0, 200.0, 300.0, 400.0, 500.0])
    ingestor = Ingestor(store, Thresholds(), lambda *message: None, clock=lambda: next(clock))
    seen = "SELECT boot_id, first_seen, last_seen FROM boots ORDER BY boot_id"
    ingestor.handle_batch([heartbeat("T-01", boot=1, chain_seq=5)])
    ingestor.handle_batch([heartbeat("T-01", boot=1, chain_seq=6)])  # the same boot: no write
    assert [tuple(row.values()) for row in store.query(seen)] == [(f"{1:032x}", 100.0, 100.0)]
    ingestor.handle_batch([heartbeat("T-01", boot=2, chain_seq=8)])
    ingestor.handle_batch([heartbeat("T-01", boot=1, chain_seq=9)])  # 1, 2, 1: a clone
    assert [tuple(row.values()) for row in store.query(seen)] == [
        (f"{1:032x}", 100.0, 300.0),
        (f"{2:032x}", 200.0, 200.0),
    ]
    assert [r["kind"] for r in store.query("SELECT kind FROM alerts")] == ["clone"]
    with other_worker.transaction() as cursor:  # the rows go away (another writer)
        cursor.execute("DELETE FROM boots")
        cursor.execute("UPDATE alerts SET cleared = 1")
    ingestor.handle_batch([heartbeat("T-01", boot=2, chain_seq=10)])
    ingestor.handle_batch([heartbeat("T-01", boot=1, chain_seq=11)])
    # Boot 1's row went with the others, so boots 2 then 1 are no proven A, B, A.
    assert store.query("SELECT kind FROM alerts WHERE cleared IS NULL") == []


def test_a_record_another_writer_stored_between_batches_is_compared_with_the_heartbeat(
    two_writers: tuple[Store, Store],
) -> None:
    store, other_worker = two_writers
    ingestor = Ingestor(store, Thresholds(), lambda *message: None, clock=lambda: NOW)
    ingestor.handle_batch([heartbeat("T-01", boot=1, chain_seq=5)])  # no record known
    with other_worker.transaction() as cursor:
        cursor.execute(
            "INSERT INTO records (station, terminal, seq, type, time, business_day, "
            "record, record_hash, received, prev_seq) "
            "VALUES (?, 'T-01', 40, 'tx_close', 't', '2025-03-01', '{}', ?, 0, 0)",
            (STATION, "ef" * 32),
        )
    ingestor.handle_batch([heartbeat("T-01", boot=1, chain_seq=40)])  # hash "ab" * 32
    assert [r["kind"] for r in store.query("SELECT kind FROM alerts")] == ["clone"]


def test_waiting_for_commits_ends_at_the_commit_that_reaches_the_count(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'bo.db'}")
    try:
        ingestor = Ingestor(store, Thresholds(), lambda *message: None, clock=lambda: NOW)
        ingestor.handle_batch([heartbeat("T-01", boot=1, chain_seq=5)])
        assert ingestor.wait_committed(1, 0.0)
        assert not ingestor.wait_committed(2, 0.05)
        later = threading.Timer(
            0.05, ingestor.handle_batch, args=([heartbeat("T-01", boot=1, chain_seq=6)],)
        )
        later.start()
        assert ingestor.wait_committed(2, 10.0)
        later.join()
    finally:
        store.close()


def test_an_alert_another_writer_opened_between_batches_is_cleared_by_the_next_report(
    two_writers: tuple[Store, Store], terminals: tuple[SimulatedTerminal, SimulatedTerminal]
) -> None:
    store, other_worker = two_writers
    sim, _ = terminals
    ingestor = Ingestor(store, Thresholds(), lambda *message: None, clock=lambda: NOW)
    ingestor.handle_batch([health(sim, paper="ok")])  # T-01 known with no open alert
    with other_worker.transaction() as cursor:
        cursor.execute(
            "INSERT INTO alerts (station, terminal, kind, detail, raised) "
            "VALUES (?, 'T-01', 'paper_out', 'paper out', ?)",
            (STATION, NOW),
        )
    ingestor.handle_batch([health(sim, paper="ok")])
    assert store.query("SELECT kind FROM alerts WHERE cleared IS NULL") == []
