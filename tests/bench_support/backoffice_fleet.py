"""The back office's ingest bench (`make bench`): one worker against a fleet of 100,000.

Owns the measurement of issue #19: a stream shaped like FLEET terminals at the default
intervals (a heartbeat every 120 s, health every 900 s, 150 transactions a day, each a
genuinely signed tx_close record verified at ingest) is queued in a private Mosquitto for
one worker's persistent session, then that worker drains it, durably, into the store it is
given (PostgreSQL with fsync on in `make bench`), from its start until the batch holding
the last message has committed. Its rate divided by the fleet's message rate is the
headline (target at least 5). The same stream drained by a paho-mqtt client that only
counts gives the MQTT client's own ceiling. Figures and method: docs/benchmarks.md.
"""

import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from backoffice.config import BrokerConfig, Thresholds
from backoffice.contract import TERMINAL_KINDS
from backoffice.store import Store
from backoffice.worker import MqttIngest
from kiosk.telemetry.topics import TopicKind, terminal_filter, topic
from simulators.fleet import SimulatedTerminal

TIMEOUT_S = 600.0
FLEET = 100_000
# The terminal's defaults (kiosk.telemetry.config, docs/mqtt.md section 5).
HEARTBEAT_S, HEALTH_S, TRANSACTIONS_PER_DAY = 120, 900, 150
Message = tuple[str, bytes, int]  # topic, payload, QoS
_PUBLISHING = 1000  # QoS 1 publishes outstanding at once while the stream is queued


def fleet_rates(fleet: int = FLEET) -> dict[str, float]:
    """Messages a second of each kind that `fleet` terminals send at the default intervals."""
    return {
        TopicKind.HEARTBEAT: fleet / HEARTBEAT_S,
        TopicKind.HEALTH: fleet / HEALTH_S,
        TopicKind.OUTBOX: fleet * TRANSACTIONS_PER_DAY / 86_400,
    }


class _PrivateBroker:
    """A Mosquitto of the bench's own on a free loopback port, queueing without limits for
    persistent sessions (QoS 0 messages too), started at once."""

    def __init__(self, work: Path) -> None:
        self.port = _free_port()
        config = work / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 0\nmax_inflight_messages 0\nqueue_qos0_messages true\n"
        )
        self._process = subprocess.Popen(
            ["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            _wait(lambda: _listening(self.port), "mosquitto to listen")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _wait(condition: Any, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: timed out waiting for {what}")
        time.sleep(0.01)


class _Stream:
    """The fleet's messages in the proportions of fleet_rates, from terminals drawn across
    the whole fleet; records from `signers` simulated terminals that sign genuinely."""

    def __init__(self, work: Path, fleet: int, signers: int) -> None:
        self.fleet = fleet
        self.signers = [
            SimulatedTerminal(
                work / "keys",
                station=str(31_000_000 + n // 4),
                terminal=f"R-{n % 4 + 1:02d}",
                host="127.0.0.1",
                port=1,  # never started: its records are taken from its journal
                seed=n,
            )
            for n in range(signers)
        ]
        self._prev: dict[int, int] = {}

    def enrol(self, store: Store) -> None:
        """The fleet's rows, as a back office that has run for a while holds them: the
        bench measures the steady state, not every terminal's first message."""
        rows = [(*self._identity(n), self._boot_id(n)) for n in range(self.fleet)]
        rows += [(signer.station, signer.terminal, signer.boot_id) for signer in self.signers]
        with store.transaction() as cursor:
            cursor.executemany(
                "INSERT INTO terminals (station, terminal, state, boot_id) "
                "VALUES (?, ?, 'online', ?) ON CONFLICT DO NOTHING",
                rows,
            )
            cursor.executemany(
                "INSERT INTO boots (station, terminal, boot_id, first_seen, last_seen) "
                "VALUES (?, ?, ?, 0, 0) ON CONFLICT DO NOTHING",
                rows,
            )
        if store.dialect == "postgresql":  # its statistics, as autovacuum keeps them
            store.query("ANALYZE")

    def messages(self, count: int) -> list[Message]:
        rates = fleet_rates(self.fleet)
        total = sum(rates.values())
        made: list[Message] = []
        owed = dict.fromkeys(rates, 0.0)
        for n in range(count):
            for kind in owed:  # interleaved as the fleet sends them: the most owed goes next
                owed[kind] += rates[kind] / total
            kind = max(owed, key=lambda k: owed[k])
            owed[kind] -= 1.0
            made.append(self._message(kind, n))
        return made

    def _index(self, n: int) -> int:
        return (n * 7_919) % self.fleet  # the n-th message's terminal, spread across the fleet

    def _identity(self, n: int) -> tuple[str, str]:
        index = self._index(n)
        return str(32_000_000 + index // 4), f"T-{index % 4 + 1:02d}"

    def _boot_id(self, n: int) -> str:
        return f"{self._index(n):032x}"  # each terminal keeps its boot

    def _message(self, kind: str, n: int) -> Message:
        if kind == TopicKind.OUTBOX:
            signer = self.signers[n % len(self.signers)]
            record = signer.journal_record_unqueued(n)
            seq = int(str(record["seq"]))
            prev = self._prev.get(id(signer), 0)
            self._prev[id(signer)] = seq
            payload = signer.outbox_envelope(seq, prev, record)
            return topic(signer.station, signer.terminal, TopicKind.OUTBOX), payload, 1
        station, terminal = self._identity(n)
        if kind == TopicKind.HEARTBEAT:
            beat = {
                "v": 1,
                "time": "2025-03-01T09:00:00+08:00",
                "seq_no": n,
                "uptime_s": 60 * n,
                "chain": {"seq": 10 + n, "hash": "ab" * 32},
                "turnover_fen": 500 * n,
                "boot_id": self._boot_id(n),
            }
            return topic(station, terminal, TopicKind.HEARTBEAT), json.dumps(beat).encode(), 0
        health = self.signers[0].health_payload()
        return topic(station, terminal, TopicKind.HEALTH), json.dumps(health).encode(), 1


def _publish_all(port: int, messages: list[Message]) -> None:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-pub")
    client.max_inflight_messages_set(_PUBLISHING)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos: deque[mqtt.MQTTMessageInfo] = deque()
    for topic_name, payload, qos in messages:
        if len(infos) >= _PUBLISHING:
            infos.popleft().wait_for_publish(TIMEOUT_S)
        infos.append(client.publish(topic_name, payload, qos=qos))
    for info in infos:
        info.wait_for_publish(TIMEOUT_S)
    client.disconnect()
    client.loop_stop()


class _PahoDrain:
    """The MQTT client's own ceiling: the same drain by a paho-mqtt client (MQTT 5,
    persistent session, manual acknowledgement) whose callback only counts and acks."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count, self.received = port, count, 0
        self.done = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id="bench-paho-noop",
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self.client.on_message = self._on_message
        self._connect()
        self.client.subscribe([(terminal_filter(kind), 1) for kind in TERMINAL_KINDS])
        _wait(lambda: self.client.is_connected(), "paho to connect")
        time.sleep(0.2)  # the SUBACK: its subscriptions are in place before the stream
        self.client.disconnect()
        self.client.loop_stop()

    def _connect(self) -> None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 3600
        properties.ReceiveMaximum = 65_535
        self.client.connect("127.0.0.1", self.port, clean_start=False, properties=properties)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.qos:
            client.ack(message.mid, message.qos)
        self.received += 1
        if self.received >= self.count:
            self.done.set()

    def drain(self) -> float:
        started = time.monotonic()
        self._connect()
        _wait(self.done.is_set, "paho to drain the stream")
        rate = self.count / (time.monotonic() - started)
        self.client.disconnect()
        self.client.loop_stop()
        return rate


def run_backoffice_bench(
    *,
    messages: int = 30_000,
    fleet: int = FLEET,
    signers: int = 100,
    store_url: str | None = None,
    directory: Path | None = None,
) -> dict[str, Any]:
    """Queue `messages` of the fleet's stream, drain them with one ingest worker into
    store_url (a new SQLite file when None), and return the figures."""
    work = Path(tempfile.mkdtemp(prefix="bo-bench-", dir=directory))
    broker = _PrivateBroker(work)
    try:
        stream = _Stream(work, fleet, signers)
        queued = stream.messages(messages)
        store = Store(store_url or f"sqlite:///{work / 'bench.db'}")
        for signer in stream.signers:
            signer.register_with(store, by="bench")
        stream.enrol(store)
        config = BrokerConfig(host="127.0.0.1", port=broker.port, client_id="bench-ingest")
        ingest = MqttIngest(store, config, Thresholds(), liveness_every_s=3600)
        ingest.link.start()  # a persistent session subscribed before the stream is queued
        _wait(ingest.connected.is_set, "the worker to subscribe")
        ingest.link.stop()
        paho = _PahoDrain(broker.port, messages)
        _publish_all(broker.port, queued)
        paho_rate = paho.drain()
        cpu_before, started = time.process_time(), time.monotonic()
        ingest = MqttIngest(store, config, Thresholds(), liveness_every_s=3600)
        ingest.start()
        if not ingest.ingestor.wait_committed(messages, TIMEOUT_S):
            raise RuntimeError("bench: the worker did not store the whole stream")
        wall = time.monotonic() - started
        cpu = time.process_time() - cpu_before
        stats = ingest.ingestor.stats
        ingest.stop()
        dialect = store.dialect
        store.close()
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    fleet_rate = sum(fleet_rates(fleet).values())
    rate = messages / wall
    return {
        "backoffice_store": dialect,
        "backoffice_fleet_terminals": fleet,
        "backoffice_fleet_msg_s": round(fleet_rate, 1),
        "backoffice_messages": messages,
        "backoffice_records_verified": stats.records_stored,
        "backoffice_records_quarantined": stats.quarantined,
        "backoffice_rejected": stats.rejected,
        "backoffice_batches": stats.batches,
        "backoffice_worker_msg_s": round(rate, 1),
        "backoffice_worker_to_fleet_ratio": round(rate / fleet_rate, 2),
        "backoffice_worker_cpu_us_per_msg": round(cpu / messages * 1e6, 1),
        "backoffice_paho_noop_drain_msg_s": round(paho_rate, 1),
    }


if __name__ == "__main__":
    print(json.dumps(run_backoffice_bench(), indent=2))
