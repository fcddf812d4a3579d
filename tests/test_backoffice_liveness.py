"""Liveness, checked every second: silent terminals go offline, missing records raise a gap.

The ingestor runs on a real SQLite file with a clock the tests move; messages come from a
simulated terminal that is never started (the tests hand them over directly).
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backoffice.alerts import acknowledge_alert, open_alerts
from backoffice.config import Thresholds
from backoffice.ingest import Ingestor
from backoffice.store import Store
from simulators.fleet import SimulatedTerminal

STATION = "31010001"
START = 1_750_000_000.0
LIMITS = Thresholds(offline_after_s=180.0, gap_after_s=600.0)


class Rig:
    def __init__(self, store: Store, sim: SimulatedTerminal) -> None:
        self.store, self.sim, self.now = store, sim, START
        sim.register_with(store)
        self.ingestor = Ingestor(store, LIMITS, lambda *message: None, clock=lambda: self.now)

    def send(self, kind: str, payload: bytes) -> None:
        self.ingestor.handle_batch([(f"kiosk/v1/{STATION}/{self.sim.terminal}/{kind}", payload)])

    def heartbeat(self) -> None:
        body = {
            "v": 1,
            "time": "2025-03-01T09:00:00+08:00",
            "seq_no": 1,
            "uptime_s": 60,
            "chain": {"seq": 1, "hash": "ab" * 32},
            "turnover_fen": 0,
            "boot_id": f"{1:032x}",
        }
        self.send("heartbeat", json.dumps(body).encode())

    def health(self, backlog: int) -> None:
        body: dict[str, Any] = {**self.sim.health_payload(), "outbox_backlog": backlog}
        self.send("health", json.dumps(body).encode())

    def record(self) -> None:
        record = self.sim.pay(1_000, 100)
        self.send("outbox", self.sim.outbox_payload(int(str(record["seq"])), record))

    def at(self, seconds: float, *, beating: bool = True) -> None:
        """Move the clock to START + seconds and run the liveness check there; while
        `beating`, the terminal has sent its heartbeat every minute on the way."""
        while beating and self.now + 60 < START + seconds:
            self.now += 60
            self.heartbeat()
        self.now = START + seconds
        self.ingestor.check_liveness()

    def open_alerts(self) -> list[str]:
        with self.store.transaction() as cursor:
            return sorted(alert["kind"] for alert in open_alerts(cursor))

    def state(self) -> str:
        return str(self.store.query("SELECT state FROM terminals")[0]["state"])


def make_rig(tmp_path: Path, url: str) -> Rig:
    sim = SimulatedTerminal(
        tmp_path / "sim", station=STATION, terminal="T-01", host="127.0.0.1", port=1
    )
    return Rig(Store(url), sim)


@pytest.fixture
def rig(tmp_path: Path, store_url: str) -> Iterator[Rig]:
    made = make_rig(tmp_path, store_url)
    yield made
    made.store.close()


@pytest.fixture
def sqlite_rig(tmp_path: Path) -> Iterator[Rig]:
    made = make_rig(tmp_path, f"sqlite:///{tmp_path / 'bo.db'}")
    yield made
    made.store.close()


def test_a_silent_terminal_goes_offline_and_its_next_heartbeat_brings_it_back(rig: Rig) -> None:
    rig.heartbeat()
    rig.at(179, beating=False)
    assert rig.state() == "online" and rig.open_alerts() == []
    rig.at(181, beating=False)
    assert rig.state() == "offline" and rig.open_alerts() == ["offline"]
    rig.heartbeat()
    assert rig.state() == "online" and rig.open_alerts() == []


def test_records_announced_and_not_received_raise_a_gap_that_their_arrival_clears(
    rig: Rig,
) -> None:
    rig.heartbeat()
    rig.health(backlog=2)
    rig.at(599)  # alive all along: a gap is records missing, not silence
    assert rig.open_alerts() == []
    rig.at(601)
    assert rig.open_alerts() == ["gap"]
    rig.record()
    rig.at(602)
    assert rig.open_alerts() == []


def test_an_acknowledged_gap_is_not_raised_again_while_it_lasts(rig: Rig) -> None:
    rig.heartbeat()
    rig.health(backlog=2)
    rig.at(601)
    [alert] = rig.store.query("SELECT id FROM alerts WHERE kind = 'gap'")
    with rig.store.transaction() as cursor:
        assert acknowledge_alert(cursor, alert["id"], "Li Lei", rig.now)
    rig.at(602)
    rig.at(700)
    assert rig.open_alerts() == []
    assert len(rig.store.query("SELECT id FROM alerts WHERE kind = 'gap'")) == 1
    rig.record()  # the records come: the acknowledged gap closes
    rig.at(701)
    assert rig.store.query("SELECT cleared FROM alerts WHERE kind = 'gap'")[0]["cleared"]


def test_a_terminal_back_from_an_outage_has_time_to_upload_before_a_gap(rig: Rig) -> None:
    rig.heartbeat()
    rig.record()
    rig.at(181, beating=False)  # silent: offline
    rig.now = START + 3600  # back an hour later, with records queued meanwhile
    rig.heartbeat()
    rig.health(backlog=5)
    rig.at(3601)  # its last record is an hour old, but it came back a second ago
    assert rig.open_alerts() == [], "a gap raised before the terminal could upload"
    rig.at(3600 + 599)
    assert rig.open_alerts() == []
    rig.at(3600 + 601)
    assert rig.open_alerts() == ["gap"]


def test_a_check_that_finds_nothing_new_writes_nothing(sqlite_rig: Rig) -> None:
    rig = sqlite_rig
    rig.heartbeat()
    rig.health(backlog=0)
    rig.record()
    written: list[str] = []
    rig.store._conn.set_trace_callback(
        lambda sql: (
            written.append(sql) if sql.lstrip().upper().startswith(("UPDATE", "INSERT")) else None
        )
    )
    rig.at(10)
    rig.at(11)
    rig.store._conn.set_trace_callback(None)
    # The offline check is one UPDATE that finds no row; nothing else is written (it was
    # one gap-clearing UPDATE per online terminal every second: 10,000 a second for a fleet).
    assert len(written) == 2, written
