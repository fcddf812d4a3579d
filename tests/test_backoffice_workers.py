"""Scale-out and robustness against real engines: two ingest worker processes on a shared
subscription with one killed mid-stream, and PostgreSQL restarted mid-ingest. Nothing is
lost and nothing is stored twice; every record ends acknowledged."""

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from backoffice.config import BrokerConfig, Thresholds
from backoffice.store import Store
from backoffice.worker import MqttIngest
from simulators.fleet import SimulatedTerminal
from tests.fixtures.backoffice import Broker, wait_for
from tests.fixtures.postgres import PostgresServer

RECORDS_PER_TERMINAL = 30


def publish_steadily(sims: list[SimulatedTerminal], stop: threading.Event) -> threading.Thread:
    """Each terminal pays RECORDS_PER_TERMINAL bills, a few a second, in a thread."""

    def run() -> None:
        for n in range(RECORDS_PER_TERMINAL):
            for sim in sims:
                sim.pay(100 + n, 10)
            if stop.wait(0.05):
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def resending_until_acknowledged(sims: list[SimulatedTerminal]) -> Callable[[], bool]:
    """The terminals' own rule: what stays unacknowledged is published again (here every
    two seconds instead of outbox_resend_s)."""
    last = [time.monotonic()]

    def done() -> bool:
        if all(sim.backlog() == 0 for sim in sims):
            return True
        if time.monotonic() - last[0] > 2.0:
            last[0] = time.monotonic()
            for sim in sims:
                sim.resend_outbox()
        return False

    return done


def assert_every_record_stored_once(store: Store, sims: list[SimulatedTerminal]) -> None:
    for sim in sims:
        rows = store.query(
            "SELECT seq FROM records WHERE terminal = ? ORDER BY seq", (sim.terminal,)
        )
        journaled = [r["seq"] for r in sim.journal.records() if r["type"] == "tx_close"]
        assert [r["seq"] for r in rows] == journaled  # the primary key forbids a double
        acked = store.query("SELECT acked_seq FROM terminals WHERE terminal = ?", (sim.terminal,))[
            0
        ]["acked_seq"]
        assert acked == journaled[-1] == sim.acked_seq
    assert store.query("SELECT COUNT(*) AS n FROM quarantine")[0]["n"] == 0


@pytest.fixture
def sims(
    make_sim_terminal: Callable[..., SimulatedTerminal],
) -> list[SimulatedTerminal]:
    return [make_sim_terminal(terminal=f"T-0{n}", seed=n) for n in range(1, 4)]


class WorkerProcess:
    """`kiosk-backoffice ingest` as systemd would run it: a process of its own."""

    def __init__(self, config: Path, client_id: str) -> None:
        self.config, self.client_id = config, client_id
        self.process = self._spawn()

    def _spawn(self) -> "subprocess.Popen[str]":
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "backoffice.cli",
                "ingest",
                "--config",
                str(self.config),
                "--client-id",
                self.client_id,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stderr is not None
        for line in process.stderr:  # the worker logs once its subscriptions are active
            if "subscribed to" in line:
                break
        else:
            raise AssertionError(f"worker {self.client_id} ended before subscribing")
        threading.Thread(target=process.stderr.read, daemon=True).start()  # keep draining
        return process

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def restart(self) -> None:
        self.process = self._spawn()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def test_two_worker_processes_with_one_killed_mid_stream_lose_and_double_nothing(
    tmp_path: Path,
    backoffice_broker: Broker,
    postgres_url: str,
    sims: list[SimulatedTerminal],
) -> None:
    config = tmp_path / "backoffice.toml"
    config.write_text(
        f'store = "{postgres_url}"\n[broker]\nhost = "{backoffice_broker.host}"\n'
        f'port = {backoffice_broker.port}\nshared_group = "ingest"\n'
    )
    store = Store(postgres_url)
    for sim in sims:
        sim.register_with(store)
    workers = [WorkerProcess(config, f"bo-ingest-{n}") for n in (1, 2)]
    stop = threading.Event()
    try:
        for sim in sims:
            sim.start()
        publisher = publish_steadily(sims, stop)
        total = RECORDS_PER_TERMINAL * len(sims)
        count = "SELECT COUNT(*) AS n FROM records"
        wait_for(lambda: store.query(count)[0]["n"] >= total // 3, "a third of the records")
        workers[0].kill()  # mid-stream: whatever it held unacknowledged stays in its session
        publisher.join(timeout=60)
        workers[0].restart()  # its session is delivered to it again
        wait_for(resending_until_acknowledged(sims), "every record to be acknowledged", 60)
        assert_every_record_stored_once(store, sims)
    finally:
        stop.set()
        for worker in workers:
            worker.stop()
        store.close()


def test_postgresql_restarted_mid_ingest_is_survived(
    own_postgres: PostgresServer, backoffice_broker: Broker, sims: list[SimulatedTerminal]
) -> None:
    url = own_postgres.create_database()
    store = Store(url)
    for sim in sims:
        sim.register_with(store)
    broker = BrokerConfig(host=backoffice_broker.host, port=backoffice_broker.port)
    ingest = MqttIngest(store, broker, Thresholds(), client_id="bo-pg-restart")
    stop = threading.Event()
    ingest.start()
    try:
        wait_for(ingest.connected.is_set, "the worker to subscribe")
        for sim in sims:
            sim.start()
        publisher = publish_steadily(sims, stop)
        wait_for(lambda: ingest.ingestor.stats.records_stored >= 10, "the first records")
        own_postgres.stop("fast")  # connections cut, transactions in flight refused
        publisher.join(timeout=60)
        assert ingest.alive()
        own_postgres.start()
        wait_for(resending_until_acknowledged(sims), "every record to be acknowledged", 60)
        assert ingest.alive()
        assert_every_record_stored_once(store, sims)
    finally:
        stop.set()
        ingest.stop()
        store.close()
