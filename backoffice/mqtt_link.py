"""The back office's one MQTT client: receive with acknowledgements after commit, publish.

Owns one paho-mqtt 2.x client per ingest worker, MQTT 5: a persistent session (clean start
off, a session expiry), the subscriptions (shared among the workers of a group when
[broker] shared_group is set), QoS 1 messages acknowledged (PUBACK) only when the caller
says so (manual acknowledgement: after the batch holding them has committed), and
publishing (record acks, and commands with a message expiry matching their `expires`).
paho's network thread reconnects by itself and the subscriptions are made again on every
connection (docs/mqtt.md section 5). It never decides what a message means.
"""

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from backoffice.config import BrokerConfig
from backoffice.errors import BackofficeError

log = logging.getLogger(__name__)

# QoS 1 messages the broker may send before the first is acknowledged: MQTT's largest.
# Acknowledging after the commit holds a batch's messages unacknowledged for a commit's
# time, so the window must hold at least a batch (backoffice.worker.BATCH_LIMIT); and
# Mosquitto 2.0.11 lost half the QoS 1 messages of a queued backlog mixed with QoS 0 ones
# that was longer than a smaller window (docs/backoffice.md, "Ingest").
RECEIVE_MAXIMUM = 65_535
# QoS 1 messages this client has published and the broker has not yet confirmed.
OUTGOING_INFLIGHT = 1_000


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    mid: int
    qos: int


class MqttLink:
    """One MQTT 5 session for receiving and publishing; call start(), then stop()."""

    def __init__(
        self,
        broker: BrokerConfig,
        filters: list[str],
        on_message: Callable[[Received], None],
        client_id: str | None = None,
    ) -> None:
        self.broker = broker
        self.filters = filters
        self.client_id = client_id or broker.client_id
        self._on_received = on_message
        self.subscribed = threading.Event()  # the broker has answered this connection's SUBSCRIBE
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if broker.username:
            self._client.username_pw_set(broker.username, broker.password or None)
        if broker.tls_ca_file:
            try:
                self._client.tls_set(
                    ca_certs=broker.tls_ca_file,
                    certfile=broker.tls_cert_file or None,
                    keyfile=broker.tls_key_file or None,
                    tls_version=ssl.PROTOCOL_TLS_CLIENT,
                )
            except (OSError, ssl.SSLError) as exc:
                raise BackofficeError(
                    f"cannot use the TLS files of [broker] ({exc}): check that tls_ca_file, "
                    "tls_cert_file and tls_key_file exist and can be read"
                ) from None
        self._client.reconnect_delay_set(1, 30)
        self._client.max_inflight_messages_set(OUTGOING_INFLIGHT)
        self._client.max_queued_messages_set(0)  # QoS 1 publishes wait for the connection
        self._client.enable_logger(logging.getLogger("backoffice.mqtt"))
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._warned = False

    def start(self) -> None:
        """Connect in the background; paho's thread reconnects after any loss (or a broker
        unreachable at start)."""
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.broker.session_expiry_s
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        self._client.connect_async(
            self.broker.host,
            self.broker.port,
            keepalive=self.broker.keepalive_s,
            clean_start=False,
            properties=properties,
        )
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect cleanly (the broker keeps the session and what was not acknowledged)."""
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a received QoS 1 message: the broker may forget it."""
        if qos > 0:
            self._client.ack(mid, qos)

    def publish(self, topic: str, payload: bytes, qos: int, expiry_s: int | None = None) -> None:
        """Publish; a QoS 1 message published without a connection goes out when it is back.
        With expiry_s the broker drops it, undelivered, after that many seconds."""
        properties = None
        if expiry_s is not None:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.MessageExpiryInterval = max(1, expiry_s)
        info = self._client.publish(topic, payload, qos=qos, properties=properties)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            log.warning("could not publish on %s: %s", topic[:200], mqtt.error_string(info.rc))

    # ------------------------------------------------------------- paho's thread

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
        self._warned = False
        log.info("connected to the MQTT broker as %s", self.client_id)
        # Again on every connection: Mosquitto does not reliably restore a persisted
        # session's subscriptions after its own restart (docs/mqtt.md section 5).
        if self.filters:
            client.subscribe([(name, SubscribeOptions(qos=1)) for name in self.filters])
        else:
            self.subscribed.set()  # a link that only publishes is ready once connected

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        for name, code in zip(self.filters, reason_codes, strict=False):
            if code.is_failure:
                log.error("the broker refused the subscription %s: %s", name, code)
        log.info("subscribed to %d topic filters as %s", len(self.filters), self.client_id)
        self.subscribed.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.subscribed.clear()
        if reason_code.is_failure and not self._warned:
            log.warning("lost the MQTT broker (%s); connecting again", reason_code)
            self._warned = True

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = "(a topic that is not UTF-8)"  # refused by the contract like any other
        self._on_received(Received(topic, bytes(message.payload), message.mid, message.qos))
