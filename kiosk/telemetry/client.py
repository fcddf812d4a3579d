"""The terminal's MQTT client: birth and last will, heartbeat, health, events, outbox, commands.

Owns the MQTT session (paho-mqtt, MQTT 5 or 3.1.1 over TLS with the terminal's client
certificate) and one worker thread that does everything else: all SQLite access (its own
connection), publishing, acknowledgements and commands, so paho's network thread never
waits on the database or on a command handler. It never writes the journal and never
changes anything on a command it has not admitted (kiosk.telemetry.commands).
"""

import json
import logging
import queue
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

import kiosk
from kiosk.clock import Clock
from kiosk.errors import KioskError
from kiosk.events import Event, EventBus
from kiosk.storage import open_database
from kiosk.telemetry import payloads
from kiosk.telemetry.commands import (
    Command,
    CommandFailed,
    CommandGate,
    CommandHandlers,
    CommandRefused,
    CommandRunner,
)
from kiosk.telemetry.config import TelemetryConfig
from kiosk.telemetry.event_kinds import FORWARDED_EVENTS, JOURNAL_EVENTS, EventKind
from kiosk.telemetry.outbox import Outbox
from kiosk.telemetry.payloads import HealthFacts
from kiosk.telemetry.topics import TopicKind, terminal_identity, topic

log = logging.getLogger(__name__)

MIN_HEARTBEAT_S = 10
MAX_HEARTBEAT_S = 3_600


class TelemetryClient:
    def __init__(
        self,
        config: TelemetryConfig,
        *,
        station: str,
        terminal: str,
        database: Path,
        data_dir: Path,
        clock: Clock,
        health_facts: Callable[[], HealthFacts],
        events: EventBus | None = None,
        command_clock: Clock | None = None,
        software: str = kiosk.__version__,
        reconnect_max_delay_s: int = 60,
    ) -> None:
        if not config.enabled:
            raise KioskError("telemetry is off: set telemetry.broker_host to use it")
        self.config = config
        self.station = station
        self.terminal = terminal
        self.software = software
        self.boot_id = uuid.uuid4().hex
        self.handlers = CommandHandlers()
        self.handlers.register("set_heartbeat_interval", self._set_heartbeat_interval)
        self._clock = clock
        self._data_dir = data_dir
        self._health_facts = health_facts
        self._heartbeat_interval_s = config.heartbeat_interval_s
        self._conn = open_database(database)
        self.outbox = Outbox(self._conn)
        try:
            key_pem = Path(config.backoffice_key_file).read_bytes()
        except OSError as exc:
            raise KioskError(
                f"cannot read the back-office key {config.backoffice_key_file}: {exc.strerror}; "
                "check telemetry.backoffice_key_file"
            ) from None
        self.gate = CommandGate(
            self._conn,
            backoffice_public_pem=key_pem,
            station=station,
            terminal=terminal,
            # Expiry is judged by the platform-corrected clock when the caller has one.
            clock=command_clock or clock,
            max_lifetime_s=config.max_command_lifetime_s,
        )
        # Handlers run on threads of their own: a slow one never blocks this client.
        self.commands = CommandRunner(self.handlers, self._report_command)
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        self._started_at = time.monotonic()
        self._heartbeat_seq = 0
        self._connected = threading.Event()
        self._generation = 0  # connections made so far; the worker notices a new one
        self._seen_generation = 0
        self._sent_upto = 0  # the highest outbox seq published on this connection
        self._unacked: list[int] = []
        self._last_ack_progress = time.monotonic()
        self._last_health_signature = b""
        self._next_heartbeat = 0.0
        self._next_health = 0.0
        self._health_dirty = False
        self._mqtt = self._make_client(reconnect_max_delay_s)
        if events is not None:
            events.subscribe(self._on_core_event)

    # ------------------------------------------------------------------ public

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def heartbeat_interval_s(self) -> int:
        return self._heartbeat_interval_s

    def topic(self, kind: str) -> str:
        return topic(self.station, self.terminal, kind)

    def start(self) -> None:
        """Connect in the background (reconnecting for ever) and start the worker."""
        properties = None
        if self.config.mqtt_version == "5":
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self.config.session_expiry_s
            self._mqtt.connect_async(
                self.config.broker_host,
                self.config.broker_port,
                keepalive=self.config.keepalive_s,
                clean_start=False,
                properties=properties,
            )
        else:
            self._mqtt.connect_async(
                self.config.broker_host, self.config.broker_port, keepalive=self.config.keepalive_s
            )
        self._mqtt.loop_start()
        self._worker = threading.Thread(target=self._run, name="telemetry", daemon=True)
        self._worker.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Say "offline, shutdown" (if connected), disconnect cleanly and stop the threads."""
        self._stopping.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout_s)
        if self.connected:
            info = self._publish(
                TopicKind.STATUS, payloads.shutdown(self._clock.now(), self.boot_id)
            )
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError):
                log.warning("the shutdown status could not be published")
        self._mqtt.disconnect()
        self._mqtt.loop_stop()
        self._conn.close()

    def notify_journal_changed(self) -> None:
        """A record was journaled: publish the outbox now rather than at the next tick."""
        self._inbox.put(("journal", None))
        self._wake.set()

    def notify_health_changed(self) -> None:
        """Something health reports changed: compare and publish health now if it differs."""
        self._inbox.put(("health", None))
        self._wake.set()

    def send_heartbeat_now(self) -> None:
        """Publish a heartbeat at once (for a technician's check and the bandwidth bench)."""
        self._inbox.put(("heartbeat", None))
        self._wake.set()

    def send_health_now(self) -> None:
        """Publish a health report at once, changed or not."""
        self._inbox.put(("health_report", None))
        self._wake.set()

    def publish_event(self, kind: str, data: Mapping[str, Any] | None = None) -> None:
        self._inbox.put(("event", payloads.event(self._clock.now(), kind, data or {})))
        self._wake.set()

    # ------------------------------------------------------------------ paho side

    def _make_client(self, reconnect_max_delay_s: int) -> mqtt.Client:
        version5 = self.config.mqtt_version == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"kiosk-{self.station}-{self.terminal}",
            protocol=mqtt.MQTTv5 if version5 else mqtt.MQTTv311,
            clean_session=None if version5 else False,
        )
        client.tls_set(
            ca_certs=self.config.ca_file,
            certfile=self.config.cert_file,
            keyfile=self.config.key_file,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        client.will_set(
            self.topic(TopicKind.STATUS), payloads.encode(payloads.last_will(self.boot_id)), 1, True
        )
        client.reconnect_delay_set(1, reconnect_max_delay_s)
        client.max_inflight_messages_set(self.config.outbox_window + 5)
        # Events raised while offline wait in paho's queue, but not without bound.
        client.max_queued_messages_set(200)
        client.enable_logger(logging.getLogger("kiosk.telemetry.mqtt"))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        # Identity check: the broker's ACL keys on the CN; say it in the log once.
        log.info("telemetry identity %s", terminal_identity(self.station, self.terminal))
        return client

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.warning("the MQTT broker refused the connection: %s", reason_code)
            return
        facts = self._facts()
        firmware = facts.firmware if facts else None
        birth = payloads.birth(
            self._clock.now(), software=self.software, firmware=firmware, boot_id=self.boot_id
        )
        client.subscribe([(self.topic(TopicKind.CMD), 1), (self.topic(TopicKind.ACK), 1)])
        self._publish(TopicKind.STATUS, birth)
        self._generation += 1
        self._connected.set()
        self._wake.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        if not self._stopping.is_set():
            log.warning("telemetry lost the MQTT broker (%s); reconnecting", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == self.topic(TopicKind.ACK):
            self._inbox.put(("ack", bytes(message.payload)))
        elif message.topic == self.topic(TopicKind.CMD):
            self._inbox.put(("cmd", bytes(message.payload)))
        self._wake.set()

    def _on_core_event(self, event: Event) -> None:
        # Runs on the publisher's thread: only hand over, never publish or touch SQLite here.
        if event.kind in FORWARDED_EVENTS:
            self.publish_event(event.kind, event.data)
        if event.kind in JOURNAL_EVENTS:
            # The security-relevant ones were journaled: their records go durably.
            self.notify_journal_changed()
        if event.kind in FORWARDED_EVENTS or event.kind in JOURNAL_EVENTS:
            self.notify_health_changed()

    def _publish(self, kind: str, payload: Mapping[str, Any] | bytes) -> mqtt.MQTTMessageInfo:
        body = payload if isinstance(payload, bytes) else payloads.encode(payload)
        qos = 0 if kind == TopicKind.HEARTBEAT else 1
        retain = kind in (TopicKind.STATUS, TopicKind.HEALTH)
        return self._mqtt.publish(self.topic(kind), body, qos=qos, retain=retain)

    # ------------------------------------------------------------------ worker

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._seconds_to_next_duty())
            self._wake.clear()
            try:
                self._work()
            except Exception:
                # The link must outlive any one bad message or device; the log has the cause.
                log.exception("telemetry worker step failed")
                self._stopping.wait(1.0)

    def _seconds_to_next_duty(self) -> float:
        if not self.connected:
            # Nothing is due while offline; the connect callback wakes the worker.
            return 5.0
        now = time.monotonic()
        due = [self._next_heartbeat, self._next_health]
        if self._unacked:
            due.append(self._last_ack_progress + self.config.outbox_resend_s)
        return max(0.05, min(due) - now)

    def _work(self) -> None:
        while True:
            try:
                kind, item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if kind == "ack":
                self._handle_ack(item)
            elif kind == "cmd":
                self._handle_command(item)
            elif kind == "event":
                self._publish(TopicKind.EVENT, item)
            elif kind == "health":
                self._health_dirty = True
            elif kind == "heartbeat":
                self._next_heartbeat = 0.0
            elif kind == "health_report":
                self._next_health = 0.0
        if not self.connected:
            return
        now = time.monotonic()
        if self._generation != self._seen_generation:
            # A new connection: whatever was in flight may be lost, so start from the cursor.
            self._seen_generation = self._generation
            self._restart_outbox()
            self._next_heartbeat = now
            self._next_health = now
        if self._unacked and now - self._last_ack_progress >= self.config.outbox_resend_s:
            log.warning(
                "no outbox acknowledgement for %d s: resending", self.config.outbox_resend_s
            )
            self._restart_outbox()
        self._pump_outbox()
        if now >= self._next_heartbeat:
            self._send_heartbeat()
            self._next_heartbeat = now + self._heartbeat_interval_s
            self._health_dirty = True
        if now >= self._next_health or self._health_dirty:
            self._send_health(force=now >= self._next_health)

    def _restart_outbox(self) -> None:
        self._sent_upto = self.outbox.acked_seq()
        self._unacked = []
        self._last_ack_progress = time.monotonic()

    def _pump_outbox(self) -> None:
        room = self.config.outbox_window - len(self._unacked)
        if room <= 0:
            return
        for seq, prev_seq, text in self.outbox.pending(self._sent_upto, room):
            self._publish(TopicKind.OUTBOX, payloads.outbox_message(seq, prev_seq, text))
            self._sent_upto = seq
            self._unacked.append(seq)

    def _send_heartbeat(self) -> None:
        message = payloads.heartbeat(
            self._clock.now(),
            seq_no=self._heartbeat_seq,
            uptime_s=self._uptime_s(),
            chain=self.outbox.head(),
            turnover_fen=self.outbox.turnover_fen(),
            boot_id=self.boot_id,
        )
        self._publish(TopicKind.HEARTBEAT, message)
        self._heartbeat_seq += 1

    def _send_health(self, *, force: bool) -> None:
        self._health_dirty = False
        if force:
            self._next_health = time.monotonic() + self.config.health_interval_s
        facts = self._facts()
        if facts is None:
            return
        message = payloads.health(
            self._clock.now(),
            facts,
            payloads.host_facts(self._data_dir),
            uptime_s=self._uptime_s(),
            outbox_backlog=self.outbox.backlog(),
            software=self.software,
        )
        signature = payloads.health_signature(message)
        if not force and signature == self._last_health_signature:
            return
        self._last_health_signature = signature
        self._publish(TopicKind.HEALTH, message)

    def _facts(self) -> HealthFacts | None:
        try:
            return self._health_facts()
        except Exception:
            log.exception("the terminal's health facts could not be read")
            return None

    def _uptime_s(self) -> int:
        return int(time.monotonic() - self._started_at)

    def _handle_ack(self, body: bytes) -> None:
        try:
            ack = json.loads(body)
            upto = ack["upto_seq"]
            if ack.get("v") != 1 or isinstance(upto, bool) or not isinstance(upto, int):
                raise ValueError(upto)
            if upto < 0:
                raise ValueError(upto)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            log.warning("ignored a malformed outbox acknowledgement: %r", body[:200])
            return
        before = self.outbox.acked_seq()
        cursor = self.outbox.acknowledge(upto)
        if cursor > before:
            self._unacked = [seq for seq in self._unacked if seq > cursor]
            self._sent_upto = max(self._sent_upto, cursor)
            self._last_ack_progress = time.monotonic()
            self._health_dirty = True

    def _handle_command(self, body: bytes) -> None:
        try:
            command = self.gate.admit(body)
        except CommandRefused as refused:
            log.warning("refused a remote command (%s): %s", refused.command_id, refused)
            self._answer(refused.command_id, ok=False, error=str(refused))
            self._publish(
                TopicKind.EVENT,
                payloads.event(
                    self._clock.now(),
                    EventKind.COMMAND_REFUSED,
                    {"id": refused.command_id, "reason": str(refused)},
                ),
            )
            return
        log.info("running remote command %s (%s)", command.name, command.id)
        self.commands.run(command)

    def _report_command(
        self, command_id: str, ok: bool, result: Mapping[str, Any] | None, error: str | None
    ) -> None:
        self._answer(command_id, ok=ok, result=result, error=error)

    def _answer(
        self,
        command_id: str | None,
        *,
        ok: bool,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        message = payloads.command_result(
            self._clock.now(), command_id, ok=ok, result=result, error=error
        )
        self._publish(TopicKind.CMD_RESULT, message)

    def _set_heartbeat_interval(self, command: Command) -> dict[str, Any]:
        seconds = command.args.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise CommandFailed("set_heartbeat_interval needs args.seconds, a whole number")
        if not MIN_HEARTBEAT_S <= seconds <= MAX_HEARTBEAT_S:
            raise CommandFailed(
                f"heartbeat interval {seconds} s is outside {MIN_HEARTBEAT_S}-{MAX_HEARTBEAT_S} s"
            )
        # Until the next restart; the configuration file keeps the default.
        self._heartbeat_interval_s = seconds
        self._next_heartbeat = min(self._next_heartbeat, time.monotonic() + seconds)
        return {"heartbeat_interval_s": seconds}
