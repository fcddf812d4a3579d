"""Figures for `make bench`: back-office ingest throughput against the raw drain rate of the
same stream by mosquitto_sub, and the time from a terminal's death to its offline alert.

Owns only measuring: it starts a private Mosquitto on a free loopback port, opens persistent
sessions subscribed to the same topics (`mosquitto_sub` raw, a no-op paho client, the back
office's subscriber without checking or storing, and the back office itself), publishes one
prepared stream ONCE so the broker queues the same messages for each, then times each
session draining its queue: `mosquitto_sub` until it has printed every message, the back
office until every message's batch has committed (SQLite store, synchronous=FULL). The
publisher is not running while any drain is timed, so no rate is really the publisher's.
Finally it kills a simulated terminal. It prints figures and never fails on a time
(docs/backoffice.md, "Benchmarks"). Beside the rates it reports the processor time each
process (and each thread of the back office process) spent per message during the raw and
the ingest drains, read from /proc (Linux): which one is the bottleneck, and whether the
processors were saturated.
"""

import json
import os
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

from backoffice.config import BrokerConfig, Thresholds
from backoffice.contract import TERMINAL_KINDS, topic_for
from backoffice.fleet_sim import SimulatedTerminal
from backoffice.ingest import MqttIngest
from backoffice.mqtt_subscribe import MqttSubscriber
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
        self.pid = self._process.pid
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


# Publishes outstanding at once: paho's packet ids wrap at 65,535, and more than that
# many unacknowledged QoS 1 messages (a stream of 10,000 terminals) fail to queue.
_PUBLISHING = 10_000


def _publish_all(port: int, messages: list[Message]) -> None:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-pub")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos: deque[mqtt.MQTTMessageInfo] = deque()
    for topic, payload, qos in messages:
        if len(infos) >= _PUBLISHING:
            infos.popleft().wait_for_publish(TIMEOUT_S)
        infos.append(client.publish(topic, payload, qos=qos))
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


def _subscriber_drain(port: int, count: int) -> float:
    """The ceiling of the back office's receiving side alone: its subscriber reading and
    acknowledging every message exactly as MqttIngest's receiving process does, unchecked."""
    subscriber = _noop_subscriber(port)
    started = time.monotonic()
    subscriber.connect()
    received = 0
    while received < count:
        received += len(subscriber.read())
        subscriber.acknowledge()
    rate = count / (time.monotonic() - started)
    subscriber.disconnect()
    return rate


def _filters() -> list[str]:
    return [f"kiosk/v1/+/+/{kind}" for kind in TERMINAL_KINDS]  # the back office's


def _noop_subscriber(port: int) -> MqttSubscriber:
    """The back office's subscriber alone, on its own persistent session."""
    return MqttSubscriber(BrokerConfig(host="127.0.0.1", port=port), _filters(), "bench-subscriber")


def _back_office(work: Path, port: int, pair: int) -> MqttIngest:
    """The back office of one pair: its own persistent session and SQLite database (made
    empty when the session subscribes, reused when the pair drains)."""
    return MqttIngest(
        Store(f"sqlite:///{work / f'bench-{pair}.db'}"),
        BrokerConfig(host="127.0.0.1", port=port, client_id=f"bench-ingest-{pair}"),
        Thresholds(),
    )


def _raw_command(port: int, *extra: str, client_id: str = "bench-raw") -> list[str]:
    command = ["mosquitto_sub", "-p", str(port), "-q", "1", "-i", client_id, "-c"]
    for topic in _filters():
        command += ["-t", topic]
    return command + list(extra)


def run_backoffice_bench(
    terminals: int = 1000, rounds: int = 10, directory: Path | None = None, pairs: int = 5
) -> dict[str, Any]:
    """Run the measurements and return the figures (rates in messages per second).

    The raw drain and the ingest are timed `pairs` times, each pair back to back on its own
    queued copy of the stream and the ingest on a new database, and the pair with the
    median ratio gives the headline figures: on a shared 2-core machine one drain alone
    moves by a third from run to run (docs/backoffice.md, "Benchmarks")."""
    work = Path(tempfile.mkdtemp(prefix="kiosk-bo-bench-", dir=directory))
    try:
        broker = _PrivateBroker(work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    port = broker.port
    try:
        stream = _stream(terminals, rounds)
        count = len(stream)

        # 1. Every persistent session subscribes, then goes away: the broker queues for all.
        for pair in range(pairs):
            subprocess.run(
                _raw_command(port, "-C", "1", "-W", "1", client_id=f"bench-raw-{pair}"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=TIMEOUT_S,
            )
            ingest = _back_office(work, port, pair)
            ingest.start()
            _wait(ingest.connected.is_set, "the back office to subscribe")
            ingest.stop()
            ingest.ingestor.store.close()
        noop_subscriber = _noop_subscriber(port)
        noop_subscriber.connect()
        while not noop_subscriber.subscribed:
            noop_subscriber.read()
        noop_subscriber.disconnect()
        paho_noop = _PahoDrain(port, count)

        # 2. The stream, published once, with the contract's QoS per kind.
        _publish_all(port, stream)

        # 3. Each session drains the same queued messages; nothing else runs meanwhile.
        records = sum(1 for _, _, qos in stream if qos == 1) // 2  # outbox and health
        runs = [_drain_pair(work, port, broker.pid, count, records, pair) for pair in range(pairs)]
        paho_rate = paho_noop.drain()
        subscriber_rate = _subscriber_drain(port, count)
        runs.sort(key=lambda run: run["ingest_msg_s"] / run["raw_msg_s"])
        median = runs[len(runs) // 2]
        raw_rate, ingest_rate = median["raw_msg_s"], median["ingest_msg_s"]
        stats = median["stats"]

        ingest = _back_office(work, port, 0)
        store = ingest.ingestor.store
        ingest.start()
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
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "backoffice_messages": count,
        "backoffice_stream": f"{terminals} terminals x {rounds} heartbeat periods "
        f"(heartbeat QoS 0; health and one tx_close record QoS 1 every {HEALTH_EVERY})",
        "backoffice_raw_drain_msg_s": round(raw_rate, 1),
        "backoffice_ingest_msg_s": round(ingest_rate, 1),
        "backoffice_ingest_ratio": round(ingest_rate / raw_rate, 3),
        "backoffice_ingest_ratios_of_each_pair": [
            round(run["ingest_msg_s"] / run["raw_msg_s"], 3) for run in runs
        ],
        "backoffice_ingest_target_ratio": 0.5,
        "backoffice_paho_noop_drain_msg_s": round(paho_rate, 1),
        "backoffice_paho_noop_ratio": round(paho_rate / raw_rate, 3),
        "backoffice_subscriber_noop_drain_msg_s": round(subscriber_rate, 1),
        "backoffice_subscriber_noop_ratio": round(subscriber_rate / raw_rate, 3),
        "backoffice_ingest_batches": stats.batches,
        "backoffice_acks_sent": stats.acks_sent,
        "backoffice_death_to_offline_alert_s": round(death_to_alert, 3),
        "backoffice_raw_cpu_us_per_msg": median["raw_cpu"],
        "backoffice_ingest_cpu_us_per_msg": median["ingest_cpu"],
    }


def _drain_pair(
    work: Path, port: int, broker_pid: int, count: int, records: int, pair: int
) -> dict[str, Any]:
    """Time mosquitto_sub, then the back office, each draining its own queued copy of the
    stream of `count` messages, `records` of them outbox records."""
    raw_cpu = _CpuAccount(count, {"broker": broker_pid})
    raw_cpu.start()
    started = time.monotonic()
    raw = subprocess.Popen(
        _raw_command(port, "-C", str(count), client_id=f"bench-raw-{pair}"),
        stdout=subprocess.DEVNULL,
    )
    too_long = threading.Timer(TIMEOUT_S, raw.kill)
    too_long.start()
    # wait4 rather than wait: the exited process's own processor time comes with it.
    _, status, usage = os.wait4(raw.pid, 0)
    too_long.cancel()
    raw.returncode = os.waitstatus_to_exitcode(status)
    raw_rate = count / (time.monotonic() - started)
    if raw.returncode != 0:
        raise RuntimeError(f"bench: mosquitto_sub exited with {raw.returncode}")
    raw_figures = raw_cpu.stop()
    raw_sub_us = 1e6 * (usage.ru_utime + usage.ru_stime) / count
    raw_figures["mosquitto_sub"] = round(raw_sub_us, 2)
    raw_figures["all processes"] = round(raw_figures["all processes"] + raw_sub_us, 2)

    ingest = _back_office(work, port, pair)
    store = ingest.ingestor.store
    ingest_cpu = _CpuAccount(count, {"broker": broker_pid, "back office": os.getpid()})
    ingest_cpu.start()
    started = time.monotonic()
    ingest.start()
    # Told by the ingestor at the commit, as exact as the raw drain's end (its process's
    # exit): polling every 10 ms added 5 ms on average to the ingest's time, and polling
    # more often took the interpreter lock from the worker.
    if not ingest.ingestor.wait_committed(count, TIMEOUT_S):
        raise RuntimeError("bench: timed out waiting for ingest to store the stream")
    ingest_rate = count / (time.monotonic() - started)
    threads = {"main thread (waits)": threading.main_thread().native_id or 0}
    threads.update(ingest.thread_ids())
    ingest_cpu.stop(threads, **{"receiving process": ingest.receiver_pid()})
    stored = store.query("SELECT COUNT(*) AS n FROM records")[0]["n"]
    ingest.stop()
    store.close()
    if stored != records:
        raise RuntimeError(f"bench: the back office stored {stored} records, not all")
    return {
        "raw_msg_s": raw_rate,
        "ingest_msg_s": ingest_rate,
        "raw_cpu": raw_figures,
        "ingest_cpu": ingest_cpu.figures,
        "stats": ingest.ingestor.stats,
    }


_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def _thread_ticks(pid: int) -> dict[int, int]:
    """utime + stime of each thread of a process, in clock ticks (/proc/PID/task/*/stat);
    empty once the process is gone."""
    ticks: dict[int, int] = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return ticks
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as stat:
                # Fields after the command name (which may hold spaces), counted from 3.
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        ticks[int(tid)] = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks


class _CpuAccount:
    """Processor time per message of each process of a drain, from /proc: what it spent
    between start() and stop() (a process started in between spent it all in between)."""

    def __init__(self, count: int, processes: dict[str, int]) -> None:
        self.count = count
        self.processes = processes  # label -> pid, known at start
        self._before: dict[str, dict[int, int]] = {}
        self._started = 0.0
        self.figures: dict[str, float] = {}

    def start(self) -> None:
        self._before = {label: _thread_ticks(pid) for label, pid in self.processes.items()}
        self._started = time.monotonic()

    def stop(self, threads: dict[str, int] | None = None, **late: int) -> dict[str, float]:
        """Read every process now: `late` names processes started after start(), `threads`
        names threads of this process (native ids; the rest are counted as "other")."""
        wall = time.monotonic() - self._started
        per_message = 1e6 * _TICK_S / self.count
        spent: dict[str, float] = {}
        for label, pid in {**self.processes, **late}.items():
            now, before = _thread_ticks(pid), self._before.get(label, {})
            if pid == os.getpid() and threads is not None:
                named = {tid: name for name, tid in threads.items()}
                for tid, ticks in now.items():
                    key = f"{label}: {named.get(tid, 'other threads')}"
                    spent[key] = spent.get(key, 0.0) + ticks - before.get(tid, 0)
            else:
                spent[label] = float(sum(now.values()) - sum(before.values()))
        self.figures = {key: round(ticks * per_message, 2) for key, ticks in spent.items()}
        self.figures["all processes"] = round(sum(spent.values()) * per_message, 2)
        self.figures["wall time"] = round(1e6 * wall / self.count, 2)
        return self.figures


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    print(json.dumps(run_backoffice_bench(), indent=2))
