"""MQTT ingest: store what terminals publish, exactly once, and acknowledge stored records.

Owns the meaning of each incoming message for the store: terminal state, health history,
events, signed outbox records (idempotent on (station, terminal, seq)), command results,
chain continuity (rollback, clone) and liveness (offline by silence, outbox gaps). An
outbox record is acknowledged ({"upto_seq"}) only after the transaction holding it has
committed, so a crash between the two makes the terminal resend, never lose, a record.
The paho-mqtt client only queues messages; one worker thread stores them in batches.
"""

import json
import logging
import os
import queue
import secrets
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from backoffice.alerts import apply_event, apply_health, clear_alert, raise_alert
from backoffice.config import BrokerConfig, Thresholds
from backoffice.contract import (
    BACKOFFICE_KINDS,
    TERMINAL_KINDS,
    Topic,
    parse_payload,
    parse_topic,
    topic_for,
)
from backoffice.errors import BackofficeError, PayloadRejected
from backoffice.store import Cursor, Store
from kiosk.journal.canonical import JournalError, record_hash

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, int], None]
BATCH_LIMIT = 500
MOSQUITTO_SUB = "mosquitto_sub"  # Debian package mosquitto-clients
OUTBOX_TYPES = ("tx_close", "day_close")
# The SET clause of an upsert saying the terminal is alive now. Every right-hand side reads
# the row as it was before the statement (SQL semantics in both engines), so state_at only
# moves when the terminal comes back online.
_ALIVE = (
    "last_seen = excluded.last_seen, "
    "state_at = CASE WHEN terminals.state = 'online' THEN terminals.state_at "
    "ELSE excluded.state_at END, "
    "state_reason = CASE WHEN terminals.state = 'online' THEN terminals.state_reason "
    "ELSE NULL END, state = 'online'"
)


@dataclass
class IngestStats:
    messages: int = 0
    rejected: int = 0
    records_stored: int = 0
    duplicates: int = 0
    acks_sent: int = 0
    batches: int = 0
    committed: int = 0  # messages whose batch transaction has committed
    last_reject: str = ""
    by_kind: dict[str, int] = field(default_factory=dict)


class Ingestor:
    """The storage side of ingest, independent of MQTT so it can be driven directly."""

    def __init__(
        self,
        store: Store,
        thresholds: Thresholds,
        publish: Publish,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.thresholds = thresholds
        self._publish = publish
        self._clock = clock
        self.stats = IngestStats()

    # ----------------------------------------------------------------- messages

    def handle_batch(self, messages: Iterable[tuple[str, bytes]]) -> None:
        """Store a batch in one transaction, then acknowledge the records it holds."""
        now = self._clock()
        touched: set[tuple[str, str]] = set()
        batch = list(messages)
        with self.store.transaction() as cursor:
            for topic_text, payload in batch:
                self.stats.messages += 1
                try:
                    topic = parse_topic(topic_text)
                    if topic.kind in BACKOFFICE_KINDS:
                        continue  # our own acks and commands, when subscribed broadly
                    data = parse_payload(topic.kind, payload)
                    self.stats.by_kind[topic.kind] = self.stats.by_kind.get(topic.kind, 0) + 1
                    if self._handle(cursor, topic, data, now):
                        touched.add((topic.station, topic.terminal))
                except PayloadRejected as exc:
                    self._reject(cursor, topic_text, str(exc), now)
            acks = [(key, ack_point(cursor, *key)) for key in sorted(touched)]
        self.stats.batches += 1
        self.stats.committed += len(batch)
        for (station, terminal), upto in acks:
            body = json.dumps({"v": 1, "upto_seq": upto}, separators=(",", ":")).encode()
            self._publish(topic_for(station, terminal, "ack"), body, 1)
            self.stats.acks_sent += 1

    def _reject(self, cursor: Cursor, topic: str, reason: str, now: float) -> None:
        self.stats.rejected += 1
        self.stats.last_reject = reason
        log.warning("rejected a message on %s: %s", topic[:200], reason)
        cursor.execute(
            "INSERT INTO rejected (received, topic, reason) VALUES (?, ?, ?)",
            (now, topic[:200], reason[:500]),
        )

    def _handle(self, cursor: Cursor, topic: Topic, data: dict[str, Any], now: float) -> bool:
        station, terminal = topic.station, topic.terminal
        if topic.kind == "outbox":
            return self._store_record(cursor, topic, data, now)
        if topic.kind == "status":
            self._on_status(cursor, station, terminal, data, now)
        elif topic.kind == "heartbeat":
            self._on_heartbeat(cursor, station, terminal, data, now)
        elif topic.kind == "health":
            self._on_health(cursor, station, terminal, data, now)
        elif topic.kind == "event":
            self._seen(cursor, station, terminal, now)
            event_data = data.get("data") or {}
            cursor.execute(
                "INSERT INTO events (station, terminal, received, time, kind, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (station, terminal, now, data["time"], data["kind"], json.dumps(event_data)),
            )
            apply_event(cursor, station, terminal, data["kind"], event_data, now)
        elif topic.kind == "cmd_result":
            cursor.execute(
                "UPDATE commands SET result_ok = ?, result = ?, error = ?, result_at = ? "
                "WHERE id = ? AND station = ? AND terminal = ?",
                (
                    1 if data["ok"] else 0,
                    json.dumps(data.get("result")),
                    data.get("error"),
                    now,
                    data["id"],
                    station,
                    terminal,
                ),
            )
        return False

    def _seen(self, cursor: Cursor, station: str, terminal: str, now: float) -> None:
        """A message from the terminal itself: it is alive now."""
        went_online = cursor.execute(
            "INSERT INTO terminals (station, terminal, state, state_at, last_seen) "
            "VALUES (?, ?, 'online', ?, ?) ON CONFLICT (station, terminal) DO UPDATE SET "
            + _ALIVE
            + " RETURNING state_at",
            (station, terminal, now, now),
        )
        if went_online and went_online[0]["state_at"] == now:
            clear_alert(cursor, station, terminal, "offline", now)

    def _on_status(
        self, cursor: Cursor, station: str, terminal: str, data: dict[str, Any], now: float
    ) -> None:
        if data["state"] == "online":
            self._seen(cursor, station, terminal, now)
            cursor.execute(
                "UPDATE terminals SET software = COALESCE(?, software), "
                "firmware = COALESCE(?, firmware), boot_id = COALESCE(?, boot_id) "
                "WHERE station = ? AND terminal = ?",
                (
                    data.get("software"),
                    data.get("firmware"),
                    data.get("boot_id"),
                    station,
                    terminal,
                ),
            )
            return
        reason = str(data.get("reason") or "lost")
        cursor.execute(
            "INSERT INTO terminals (station, terminal, state, state_reason, state_at) "
            "VALUES (?, ?, 'offline', ?, ?) ON CONFLICT (station, terminal) DO UPDATE SET "
            "state = 'offline', state_reason = excluded.state_reason, "
            "state_at = excluded.state_at",
            (station, terminal, reason, now),
        )
        detail = "last will: connection lost" if reason == "lost" else f"offline: {reason}"
        raise_alert(cursor, station, terminal, "offline", detail, now)

    def _on_heartbeat(
        self, cursor: Cursor, station: str, terminal: str, data: dict[str, Any], now: float
    ) -> None:
        chain_seq, chain_hash = int(data["chain"]["seq"]), str(data["chain"]["hash"])
        boot_id = str(data["boot_id"])
        # One round trip reads everything the continuity checks compare against (the most
        # frequent message: three statements instead of six).
        before = cursor.execute(
            "SELECT t.state, t.boot_id, t.max_chain_seq, "
            "(SELECT 1 FROM boots b WHERE b.station = k.station AND b.terminal = k.terminal "
            "AND b.boot_id = ?) AS known_boot, "
            "(SELECT r.record_hash FROM records r WHERE r.station = k.station "
            "AND r.terminal = k.terminal AND r.seq = ?) AS held_hash "
            "FROM (SELECT ? AS station, ? AS terminal) k "
            "LEFT JOIN terminals t ON t.station = k.station AND t.terminal = k.terminal",
            (boot_id, chain_seq, station, terminal),
        )[0]
        if before["boot_id"] not in (None, boot_id) and before["known_boot"]:
            # A -> B -> A: an earlier boot is still talking, so two machines share one id.
            raise_alert(
                cursor,
                station,
                terminal,
                "clone",
                f"boots {before['boot_id']} and {boot_id} send heartbeats in turn",
                now,
            )
        max_chain_seq = before["max_chain_seq"] or 0
        if chain_seq < max_chain_seq:
            raise_alert(
                cursor,
                station,
                terminal,
                "rollback",
                f"journal head went back from {max_chain_seq} to {chain_seq}",
                now,
            )
        if before["held_hash"] is not None and before["held_hash"] != chain_hash:
            raise_alert(
                cursor,
                station,
                terminal,
                "clone",
                f"journal record {chain_seq} has another hash than the one received",
                now,
            )
        cursor.execute(
            "INSERT INTO terminals (station, terminal, state, state_at, last_seen, boot_id, "
            "chain_seq, chain_hash, max_chain_seq, turnover_fen) "
            "VALUES (?, ?, 'online', ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (station, terminal) DO UPDATE SET "
            + _ALIVE
            + ", boot_id = excluded.boot_id, chain_seq = excluded.chain_seq, "
            "chain_hash = excluded.chain_hash, max_chain_seq = CASE WHEN "
            "terminals.max_chain_seq > excluded.max_chain_seq THEN terminals.max_chain_seq "
            "ELSE excluded.max_chain_seq END, "
            "turnover_fen = COALESCE(excluded.turnover_fen, terminals.turnover_fen)",
            (
                station,
                terminal,
                now,
                now,
                boot_id,
                chain_seq,
                chain_hash,
                chain_seq,
                data.get("turnover_fen"),
            ),
        )
        if before["state"] != "online":
            clear_alert(cursor, station, terminal, "offline", now)
        cursor.execute(
            "INSERT INTO boots (station, terminal, boot_id, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (station, terminal, boot_id) DO UPDATE SET "
            "last_seen = excluded.last_seen",
            (station, terminal, boot_id, now, now),
        )

    def _on_health(
        self, cursor: Cursor, station: str, terminal: str, data: dict[str, Any], now: float
    ) -> None:
        self._seen(cursor, station, terminal, now)
        payload = json.dumps(data, ensure_ascii=False, sort_keys=True)
        values = (
            data.get("paper"),
            data.get("float_balance_fen"),
            data.get("cert_days_left"),
            data.get("outbox_backlog"),
        )
        cursor.execute(
            "UPDATE terminals SET paper = ?, float_balance_fen = ?, cert_days_left = ?, "
            "outbox_backlog = ?, health = ?, health_at = ?, "
            "software = COALESCE(?, software), firmware = COALESCE(?, firmware) "
            "WHERE station = ? AND terminal = ?",
            (
                *values,
                payload,
                now,
                data.get("software"),
                data.get("firmware"),
                station,
                terminal,
            ),
        )
        cursor.execute(
            "INSERT INTO health_history (station, terminal, received, time, paper, "
            "float_balance_fen, cert_days_left, outbox_backlog, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (station, terminal, now, data["time"], *values, payload),
        )
        apply_health(cursor, station, terminal, data, self.thresholds, now)

    def _store_record(self, cursor: Cursor, topic: Topic, data: dict[str, Any], now: float) -> bool:
        record = data["record"]
        seq = data["seq"]
        if record.get("station") != topic.station or record.get("terminal") != topic.terminal:
            raise PayloadRejected(
                f"outbox record {seq} names station {record.get('station')!r} terminal "
                f"{record.get('terminal')!r}, not the topic's {topic.station}/{topic.terminal}"
            )
        if record.get("seq") != seq:
            raise PayloadRejected(f"outbox seq {seq} differs from its record's seq")
        if record.get("type") not in OUTBOX_TYPES:
            raise PayloadRejected(f"outbox record {seq} has type {record.get('type')!r}")
        if "sig" not in record and record.get("sig_failed") is not True:
            raise PayloadRejected(f"outbox record {seq} carries neither sig nor sig_failed")
        prev_seq = data["prev_seq"]  # the schema makes it a whole number >= 0
        if prev_seq >= seq:
            raise PayloadRejected(f"outbox prev_seq {prev_seq} is not below its seq {seq}")
        try:
            digest = record_hash(record)
        except JournalError as exc:
            raise PayloadRejected(f"outbox record {seq} is not a journal record: {exc}") from None
        self._seen(cursor, topic.station, topic.terminal, now)
        business_day = str(record.get("business_day") or str(record["time"])[:10])
        if record["type"] == "tx_close":
            amount, fee = int(record.get("amount_fen") or 0), int(record.get("fee_fen") or 0)
        else:
            amount, fee = int(record.get("paid_fen") or 0), 0
        stored = cursor.execute(
            "INSERT INTO records (station, terminal, seq, type, time, business_day, outcome, "
            "service, amount_fen, fee_fen, receipt_no, record, record_hash, received, prev_seq) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING "
            "RETURNING seq",
            (
                topic.station,
                topic.terminal,
                seq,
                record["type"],
                record["time"],
                business_day,
                record.get("outcome"),
                record.get("service"),
                amount,
                fee,
                record.get("receipt_no"),
                json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
                digest,
                now,
                prev_seq,
            ),
        )
        if stored:
            self.stats.records_stored += 1
            cursor.execute(
                "UPDATE terminals SET last_outbox_at = ? WHERE station = ? AND terminal = ?",
                (now, topic.station, topic.terminal),
            )
            return True
        self.stats.duplicates += 1
        held = cursor.execute(
            "SELECT record_hash FROM records WHERE station = ? AND terminal = ? AND seq = ?",
            (topic.station, topic.terminal, seq),
        )
        if held[0]["record_hash"] != digest:
            raise_alert(
                cursor,
                topic.station,
                topic.terminal,
                "clone",
                f"two different journal records {seq} arrived for one terminal",
                now,
            )
        return True  # acknowledge again: the first acknowledgement may have been lost

    # ----------------------------------------------------------------- liveness

    def check_liveness(self) -> None:
        """Mark silent terminals offline and raise gap alerts for records that do not come."""
        now = self._clock()
        limit = self.thresholds
        with self.store.transaction() as cursor:
            silent = cursor.execute(
                "UPDATE terminals SET state = 'offline', state_reason = 'silent', state_at = ? "
                "WHERE state = 'online' AND last_seen < ? RETURNING station, terminal, last_seen",
                (now, now - limit.offline_after_s),
            )
            for row in silent:
                detail = f"no heartbeat for {int(now - row['last_seen'])} s"
                raise_alert(cursor, row["station"], row["terminal"], "offline", detail, now)
            waiting = cursor.execute(
                "SELECT station, terminal, outbox_backlog, last_outbox_at, health_at "
                "FROM terminals WHERE state = 'online'"
            )
            for row in waiting:
                since = row["last_outbox_at"] or 0.0
                gap = (
                    (row["outbox_backlog"] or 0) > 0
                    and row["health_at"] is not None
                    and row["health_at"] > since
                    and now - since > limit.gap_after_s
                )
                if gap:
                    detail = f"{row['outbox_backlog']} records announced but not received"
                    raise_alert(cursor, row["station"], row["terminal"], "gap", detail, now)
                else:
                    clear_alert(cursor, row["station"], row["terminal"], "gap", now)


def ack_point(cursor: Cursor, station: str, terminal: str) -> int:
    """Advance and return the terminal's ack: the highest seq up to which every outbox
    record is stored (docs/backoffice.md, "Acknowledgement").

    Journal seqs are not consecutive among outbox records, so each record's `prev_seq`
    (the seq of the terminal's previous outbox record, 0 for its first) says whether the
    run from the last ack reaches it without a hole. With several ingest workers on a
    shared subscription, a hole is a record another worker has not committed yet; the ack
    waits for it, whatever this worker has stored beyond it.
    """
    rows = cursor.execute(
        "SELECT t.acked_seq, r.seq, r.prev_seq FROM terminals t LEFT JOIN records r "
        "ON r.station = t.station AND r.terminal = t.terminal AND r.seq > t.acked_seq "
        "WHERE t.station = ? AND t.terminal = ? ORDER BY r.seq LIMIT 10000",
        (station, terminal),
    )
    if not rows:
        return 0
    upto = int(rows[0]["acked_seq"])
    for row in rows:
        # prev_seq <= upto: everything up to this record's predecessor is stored, and the
        # terminal has no outbox record between the two.
        if row["seq"] is None or row["prev_seq"] > upto:
            break
        upto = int(row["seq"])
    # Never backwards: another worker may have moved the ack further meanwhile.
    moved = cursor.execute(
        "UPDATE terminals SET acked_seq = CASE WHEN acked_seq > ? THEN acked_seq ELSE ? END "
        "WHERE station = ? AND terminal = ? RETURNING acked_seq",
        (upto, upto, station, terminal),
    )
    return int(moved[0]["acked_seq"])


class MqttIngest:
    """Receive through a mosquitto_sub subprocess, store in batches, publish acks with paho.

    The receiving side is mosquitto_sub (Debian mosquitto-clients), Mosquitto's own C
    client: it holds the persistent session and writes each message to a pipe framed as
    `<topic>NUL<payload length>NUL<payload>` (a topic can never hold NUL, and the length
    makes the payload binary-safe). Parsing MQTT in Python costs more than storing the
    message (docs/backoffice.md, "Benchmarks"). mosquitto_sub acknowledges a message to
    the broker (PUBACK) when it has written it to the pipe, before it is stored: that loses
    nothing that matters, because outbox records are acknowledged at the application level
    ({"upto_seq"}, only after the commit) and the terminal resends until then, while
    heartbeats, health and events are transient by contract and come again. A full pipe
    stops mosquitto_sub reading, so the broker queues instead of this process's memory.
    Acknowledgements and commands go out through a paho-mqtt client of their own.
    """

    FRAME_FORMAT = r"%t\0%l\0%p"
    QUEUE_CHUNKS = 64  # chunks of parsed frames waiting for the worker: the backpressure bound

    def __init__(
        self,
        store: Store,
        broker: BrokerConfig,
        thresholds: Thresholds,
        *,
        liveness_every_s: float = 1.0,
    ) -> None:
        self.broker = broker
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"{broker.client_id}-pub",
            protocol=mqtt.MQTTv311,
        )
        if broker.username:
            self.client.username_pw_set(broker.username, broker.password or None)
        if broker.tls_ca_file:
            self.client.tls_set(
                ca_certs=broker.tls_ca_file,
                certfile=broker.tls_cert_file or None,
                keyfile=broker.tls_key_file or None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.ingestor = Ingestor(store, thresholds, self.client_publish)
        # Set once mosquitto_sub's subscriptions are in place (its probe came back).
        self.connected = threading.Event()
        # A private topic this worker alone reads: a probe published on it and received
        # proves the subscriptions (one SUBSCRIBE packet) are active in the broker.
        self.probe_topic = topic_for("0", f"probe-{secrets.token_hex(12)}", "ack")
        self._queue: queue.Queue[list[tuple[str, bytes]]] = queue.Queue(self.QUEUE_CHUNKS)
        self._waiting = 0  # messages read from the pipe and not stored yet (backlog())
        self._waiting_lock = threading.Lock()
        self._stop = threading.Event()
        self._liveness_every_s = liveness_every_s
        self._process: subprocess.Popen[bytes] | None = None
        self._options_dir = tempfile.TemporaryDirectory(prefix="kiosk-bo-sub-")
        self._worker = threading.Thread(target=self._work, name="ingest-worker", daemon=True)
        self._reader = threading.Thread(target=self._read, name="ingest-reader", daemon=True)
        self._prober = threading.Thread(target=self._probe, name="ingest-probe", daemon=True)

    def subscriptions(self) -> list[str]:
        prefix = f"$share/{self.broker.shared_group}/" if self.broker.shared_group else ""
        return [f"{prefix}kiosk/v1/+/+/{kind}" for kind in TERMINAL_KINDS]

    def subscriber_command(self) -> list[str]:
        """The mosquitto_sub command line (the password goes in its options file, not here)."""
        executable = shutil.which(MOSQUITTO_SUB)
        if executable is None:
            raise BackofficeError(
                f"{MOSQUITTO_SUB} is not installed: install the Debian package mosquitto-clients"
            )
        b = self.broker
        command = [executable, "-h", b.host, "-p", str(b.port), "-i", b.client_id, "-c"]
        command += ["-q", "1", "-k", str(b.keepalive_s), "-N", "-F", self.FRAME_FORMAT]
        if b.tls_ca_file:
            command += ["--cafile", b.tls_ca_file]
            if b.tls_cert_file:
                command += ["--cert", b.tls_cert_file, "--key", b.tls_key_file]
        for topic in [*self.subscriptions(), self.probe_topic]:
            command += ["-t", topic]
        return command

    def _subscriber_environment(self) -> dict[str, str]:
        # mosquitto_sub reads default options from $XDG_CONFIG_HOME/mosquitto_sub: a private
        # directory keeps the credentials out of the process list and a user's own file out.
        options = Path(self._options_dir.name) / "mosquitto_sub"
        lines = [f"-u {self.broker.username}"] if self.broker.username else []
        if self.broker.password:
            lines.append(f"-P {self.broker.password}")
        options.touch(mode=0o600)
        options.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return {**os.environ, "XDG_CONFIG_HOME": self._options_dir.name}

    def start(self) -> None:
        self.subscriber_command()  # a missing mosquitto_sub fails here, at start
        self.client.connect_async(self.broker.host, self.broker.port, self.broker.keepalive_s)
        self.client.loop_start()
        self._reader.start()
        self._prober.start()
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()  # mosquitto_sub disconnects cleanly: the session stays
        self._reader.join(timeout=10)
        self._worker.join(timeout=30)  # stores what was already read before it ends
        self._prober.join(timeout=5)
        self.client.disconnect()
        self.client.loop_stop()
        self._options_dir.cleanup()

    def backlog(self) -> int:
        return self._waiting

    def _count_waiting(self, change: int) -> None:
        with self._waiting_lock:
            self._waiting += change

    def client_publish(self, topic: str, payload: bytes, qos: int) -> None:
        self.client.publish(topic, payload, qos=qos)

    def _read(self) -> None:
        """Run mosquitto_sub, again after each exit (broker down at start), and parse its pipe."""
        while not self._stop.is_set():
            self.connected.clear()
            try:
                process = subprocess.Popen(
                    self.subscriber_command(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=self._subscriber_environment(),
                )
            except (OSError, BackofficeError) as exc:
                log.error("cannot run %s: %s", MOSQUITTO_SUB, exc)
                self._stop.wait(1.0)
                continue
            self._process = process
            if self._stop.is_set():  # stop() came while it started: it saw no process
                process.terminate()
            assert process.stdout is not None and process.stderr is not None
            frames = FrameReader()
            while chunk := os.read(process.stdout.fileno(), 1 << 20):
                messages = frames.feed(chunk)
                if any(topic == self.probe_topic for topic, _ in messages):
                    self.connected.set()
                    messages = [m for m in messages if m[0] != self.probe_topic]
                if messages:
                    self._count_waiting(len(messages))
                    self._queue.put(messages)
            error = process.stderr.read().decode("utf-8", "replace").strip()
            code = process.wait()
            if frames.pending():
                log.error("%s ended in the middle of a message", MOSQUITTO_SUB)
            if not self._stop.is_set():
                log.warning(
                    "%s exited with %d (%s); starting it again",
                    MOSQUITTO_SUB,
                    code,
                    error.splitlines()[-1] if error else "no message",
                )
                self._stop.wait(1.0)

    def _probe(self) -> None:
        while not self._stop.wait(0.2):
            if not self.connected.is_set() and self.client.is_connected():
                self.client.publish(self.probe_topic, b"", qos=0)

    def _work(self) -> None:
        next_check = 0.0
        while True:
            stopping = self._stop.is_set() and not self._reader.is_alive()
            batch: list[tuple[str, bytes]] = []
            try:
                batch.extend(self._queue.get(timeout=0.2))
                while len(batch) < BATCH_LIMIT:
                    batch.extend(self._queue.get_nowait())
            except queue.Empty:
                pass
            if stopping and not batch:
                return
            try:
                if batch:
                    self.ingestor.handle_batch(batch)
                    self._count_waiting(-len(batch))
                if time.monotonic() >= next_check and not self._stop.is_set():
                    self.ingestor.check_liveness()
                    next_check = time.monotonic() + self._liveness_every_s
            except Exception:
                # The batch is lost here, not its records: they were not acknowledged, so
                # their terminals send them again. Telemetry comes again with the next period.
                log.exception("ingest could not store a batch of %d messages", len(batch))
                self._count_waiting(-len(batch))
                time.sleep(1.0)


class FrameReader:
    """Splits mosquitto_sub's `%t\\0%l\\0%p` output into (topic, payload) messages.

    Written by hand because it is the pipe's own framing (three fields, two separators); a
    chunk may end anywhere, so an incomplete frame waits for the next chunk.
    """

    def __init__(self) -> None:
        self._buffer = b""

    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        data = self._buffer + chunk if self._buffer else chunk
        messages: list[tuple[str, bytes]] = []
        position, end = 0, len(data)
        while True:
            topic_end = data.find(b"\0", position)
            if topic_end < 0:
                break
            length_end = data.find(b"\0", topic_end + 1)
            if length_end < 0:
                break
            payload_start = length_end + 1
            payload_end = payload_start + int(data[topic_end + 1 : length_end])
            if payload_end > end:
                break
            topic = data[position:topic_end].decode("utf-8", "replace")
            messages.append((topic, data[payload_start:payload_end]))
            position = payload_end
        self._buffer = data[position:]
        return messages
