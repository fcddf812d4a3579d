"""Figures for `make bench`: back-office ingest throughput against the raw drain rate of the
same stream by mosquitto_sub, and the time from a terminal's death to its offline alert.

Owns only measuring: it starts a private Mosquitto on a free loopback port, opens persistent
sessions subscribed to the same topics (`mosquitto_sub` raw, a no-op paho client, the back
office's receiving pipe without storing, and the back office itself), publishes one
prepared stream ONCE so the broker queues the same messages for each, then times each
session draining its queue: `mosquitto_sub` until it has printed every message, the back
office until every message's batch has committed (SQLite store, synchronous=FULL). The
publisher is not running while any drain is timed, so no rate is really the publisher's.
Finally it kills a simulated terminal. It prints figures and never fails on a time
(docs/backoffice.md, "Benchmarks").
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from backoffice.config import BrokerConfig, Thresholds
from backoffice.contract import TERMINAL_KINDS, topic_for
from backoffice.fleet_sim import SimulatedTerminal
from backoffice.ingest import MqttIngest
from backoffice.ingest_check import FrameReader
from backoffice.store import Store

TIMEOUT_S = 300.0
# Default intervals (docs/mqtt.md): heartbeat every 60 s, health every 300 s; the stream is
# `rounds` heartbeat periods of every terminal, with a health report and one transaction
# record per terminal every HEALTH_EVERY rounds.
HEALTH_EVERY = 5
# The bench's records are well-formed journal records with a placeholder signature: the
# back office checks that a record is signed, not the signature (auditors verify it).
_PLACEHOLDER_SIG = "MEUCIQDbenchbenchbenchbenchbenchbenchbenchbenchbenchAiAbenchbenchbench="
_HASH = "ab" * 32
Message = tuple[str, bytes, int]  # topic, payload, QoS as the contract says


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stream(terminals: int, rounds: int) -> list[Message]:
    messages: list[Message] = []
    for n in range(rounds):
        for index in range(terminals):
            station, terminal = str(31000000 + index // 4), f"T-{index % 4 + 1:02d}"
            chain_seq = 10 * n + 1
            heartbeat = {
                "v": 1,
                "time": "2025-03-01T09:00:00+08:00",
                "seq_no": n,
                "uptime_s": 60 * n,
                "chain": {"seq": chain_seq, "hash": _HASH},
                "turnover_fen": 1000 * n,
                "boot_id": f"{index:032x}",
            }
            messages.append((topic_for(station, terminal, "heartbeat"), _json(heartbeat), 0))
            if n % HEALTH_EVERY:
                continue
            record = {
                "seq": chain_seq + 1,
                "prev": _HASH,
                "type": "tx_close",
                "time": "2025-03-01T09:00:30+08:00",
                "station": station,
                "terminal": terminal,
                "receipt_no": f"{station}-{terminal}-{n:06d}",
                "service": "electricity",
                "amount_fen": 10_000,
                "fee_fen": 100,
                "outcome": "paid",
                "turnover_fen": 1000 * n + 10_100,
                "signer": "software",
                "cert_sha256": _HASH,
                "sig": _PLACEHOLDER_SIG,
            }
            # The terminal's previous outbox record is the one HEALTH_EVERY periods ago.
            prev_seq = chain_seq + 1 - 10 * HEALTH_EVERY if n else 0
            outbox = {"v": 1, "seq": record["seq"], "prev_seq": prev_seq, "record": record}
            messages.append((topic_for(station, terminal, "outbox"), _json(outbox), 1))
            health = {
                "v": 1,
                "time": "2025-03-01T09:00:00+08:00",
                "devices": {"printer": {"online": True, "paper": "ok", "error": None}},
                "paper": "ok",
                "float_balance_fen": 200_000,
                "cert_days_left": 300,
                "disk_free_mb": 2048,
                "mem_free_mb": 256,
                "cpu_temp_c": 48.5,
                "uptime_s": 60 * n,
                "outbox_backlog": 0,
                "software": "bench",
                "firmware": None,
            }
            # Not retained (the contract retains health): a retained copy would be delivered
            # again on each resubscription and make the two counts differ.
            messages.append((topic_for(station, terminal, "health"), _json(health), 1))
    return messages


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _publish_all(port: int, messages: list[Message]) -> None:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-pub")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(topic, payload, qos=qos) for topic, payload, qos in messages]
    for info in infos:
        info.wait_for_publish(TIMEOUT_S)
    client.disconnect()
    client.loop_stop()


def _wait(condition: Any, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: timed out waiting for {what}")
        time.sleep(0.01)


class _PahoDrain:
    """The ceiling of any ingest built on paho-mqtt: the same drain with a callback that
    only counts (QoS 1 subscription, persistent session, like the back office's client)."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count, self.received = port, count, 0
        self.done = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id="bench-paho-noop",
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(f"kiosk/v1/+/+/{kind}", 1) for kind in TERMINAL_KINDS])
        self.client.loop_start()
        _wait(lambda: self.client.is_connected(), "paho to connect")
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.received += 1
        if self.received >= self.count:
            self.done.set()

    def drain(self) -> float:
        started = time.monotonic()
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        _wait(self.done.is_set, "paho to drain the stream")
        rate = self.count / (time.monotonic() - started)
        self.client.disconnect()
        self.client.loop_stop()
        return rate


def _pipe_drain(port: int, count: int) -> float:
    """The ceiling of the back office's receiving side alone: mosquitto_sub framing every
    message into a pipe exactly as MqttIngest runs it, parsed by FrameReader, not stored."""
    command = _raw_command(port, "-N", "-F", MqttIngest.FRAME_FORMAT, client_id="bench-pipe")
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    frames, received = FrameReader(), 0
    while received < count:
        chunk = os.read(process.stdout.fileno(), 1 << 20)
        if not chunk:
            raise RuntimeError("bench: mosquitto_sub ended before the stream did")
        received += len(frames.feed(chunk))
    rate = count / (time.monotonic() - started)
    process.terminate()
    process.wait(10)
    return rate


def _raw_command(port: int, *extra: str, client_id: str = "bench-raw") -> list[str]:
    command = ["mosquitto_sub", "-p", str(port), "-q", "1", "-i", client_id, "-c"]
    for kind in TERMINAL_KINDS:  # the same filters as the back office's subscription
        command += ["-t", f"kiosk/v1/+/+/{kind}"]
    return command + list(extra)


def run_backoffice_bench(
    terminals: int = 1000, rounds: int = 10, directory: Path | None = None
) -> dict[str, Any]:
    """Run both measurements and return the figures (rates in messages per second)."""
    work = Path(tempfile.mkdtemp(prefix="kiosk-bo-bench-", dir=directory))
    port = _free_port()
    config = work / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 0\nmax_inflight_messages 0\nqueue_qos0_messages true\n"
    )
    broker = subprocess.Popen(
        ["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait(lambda: _listening(port), "mosquitto to listen")
        stream = _stream(terminals, rounds)
        count = len(stream)

        # 1. Both persistent sessions subscribe, then go away: the broker queues for both.
        subprocess.run(
            _raw_command(port, "-C", "1", "-W", "1"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=TIMEOUT_S,
        )
        subprocess.run(
            _raw_command(port, "-C", "1", "-W", "1", client_id="bench-pipe"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=TIMEOUT_S,
        )
        paho_noop = _PahoDrain(port, count)
        store = Store(f"sqlite:///{work / 'bench.db'}")
        broker_config = BrokerConfig(host="127.0.0.1", port=port, client_id="bench-ingest")
        ingest = MqttIngest(store, broker_config, Thresholds())
        ingest.start()
        _wait(ingest.connected.is_set, "the back office to subscribe")
        ingest.stop()

        # 2. The stream, published once, with the contract's QoS per kind.
        _publish_all(port, stream)

        # 3. Each session drains the same queued messages; nothing else runs meanwhile.
        started = time.monotonic()
        subprocess.run(
            _raw_command(port, "-C", str(count)),
            stdout=subprocess.DEVNULL,
            check=True,
            timeout=TIMEOUT_S,
        )
        raw_rate = count / (time.monotonic() - started)

        paho_rate = paho_noop.drain()
        pipe_rate = _pipe_drain(port, count)

        ingest = MqttIngest(store, broker_config, Thresholds())
        started = time.monotonic()
        ingest.start()
        _wait(lambda: ingest.ingestor.stats.committed >= count, "ingest to store the stream")
        ingest_rate = count / (time.monotonic() - started)
        stored = store.query("SELECT COUNT(*) AS n FROM records")[0]["n"]
        expected = sum(1 for _, _, qos in stream if qos == 1) // 2  # outbox and health
        if stored != expected:
            raise RuntimeError(f"bench: the back office stored {stored} records, not all")
        stats = ingest.ingestor.stats

        sim = SimulatedTerminal(
            work, station="39990001", terminal="T-01", host="127.0.0.1", port=port
        )
        sim.start()
        sim.heartbeat()
        _wait(lambda: store.query("SELECT 1 FROM terminals WHERE station = '39990001'"), "birth")
        sim.die()
        # Death is the socket closing, at the end of die(): before it, die() waits up to a
        # second for paho's network thread to stop, which is not the back office's time.
        died = time.monotonic()
        _wait(
            lambda: store.query(
                "SELECT 1 FROM alerts WHERE station = '39990001' AND kind = 'offline'"
            ),
            "the offline alert",
        )
        death_to_alert = time.monotonic() - died
        ingest.stop()
        store.close()
    finally:
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    return {
        "backoffice_messages": count,
        "backoffice_stream": f"{terminals} terminals x {rounds} heartbeat periods "
        f"(heartbeat QoS 0; health and one tx_close record QoS 1 every {HEALTH_EVERY})",
        "backoffice_raw_drain_msg_s": round(raw_rate, 1),
        "backoffice_ingest_msg_s": round(ingest_rate, 1),
        "backoffice_ingest_ratio": round(ingest_rate / raw_rate, 3),
        "backoffice_ingest_target_ratio": 0.5,
        "backoffice_paho_noop_drain_msg_s": round(paho_rate, 1),
        "backoffice_paho_noop_ratio": round(paho_rate / raw_rate, 3),
        "backoffice_pipe_noop_drain_msg_s": round(pipe_rate, 1),
        "backoffice_pipe_noop_ratio": round(pipe_rate / raw_rate, 3),
        "backoffice_ingest_batches": stats.batches,
        "backoffice_acks_sent": stats.acks_sent,
        "backoffice_death_to_offline_alert_s": round(death_to_alert, 3),
    }


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    print(json.dumps(run_backoffice_bench(), indent=2))
