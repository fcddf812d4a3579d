"""backoffice.mqtt_subscribe, the ingest's hand-written MQTT 3.1.1 subscriber, as a specification.

The framing (`_split`) is checked as a codec against the MQTT 3.1.1 encoding rules; the
rest runs against a real Mosquitto: the plain-TCP test broker of tests/fixtures/backoffice.py
and the fleet's TLS broker with its ACL (tests/fixtures/mosquitto.py). The faults a real
broker will not produce on demand (a CONNACK refusal, a broker gone silent) come from a
small TCP server on loopback that speaks just enough MQTT.
"""

import logging
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from backoffice import mqtt_subscribe
from backoffice.config import BrokerConfig
from backoffice.errors import BackofficeError
from backoffice.mqtt_subscribe import (
    MqttSubscriber,
    SubscriberError,
    _packet,
    _remaining_length,
    _text,
)
from tests.fixtures.backoffice import DEADLINE_S, Broker, wait_for
from tests.fixtures.mosquitto import (
    STATION,
    MosquittoBroker,
    MqttPki,
    connect_peer,
    tls_broker_config,
)

Message = tuple[str, bytes]

# ------------------------------------------------------------------ framing, without a socket

# MQTT topics are UTF-8 without U+0000 (MQTT 3.1.1 section 1.5.3); payloads are any bytes.
topics = st.text(st.characters(blacklist_characters="\x00", codec="utf-8"), min_size=1)
# Mostly small payloads, some large enough for a remaining length of 2 and 3 bytes.
payloads = st.one_of(
    st.binary(max_size=300), st.binary(max_size=300), st.binary(min_size=200, max_size=20_000)
)
PINGRESP = b"\xd0\x00"


def publish_packet(
    topic: str,
    payload: bytes,
    qos: int,
    packet_id: int = 0,
    dup: bool = False,
    retain: bool = False,
) -> bytes:
    """A PUBLISH as a broker sends it (MQTT 3.1.1 section 3.3)."""
    first = 0x30 | (0x08 if dup else 0) | qos << 1 | (0x01 if retain else 0)
    packet_id_bytes = struct.pack("!H", packet_id) if qos else b""
    return _packet(first, _text(topic) + packet_id_bytes + payload)


def unconnected_subscriber() -> MqttSubscriber:
    return MqttSubscriber(BrokerConfig(), [], "x")


def feed(subscriber: MqttSubscriber, stream: bytes, cuts: list[int]) -> list[Message]:
    """Split `stream` into chunks at the cut points and pass them to _split in turn."""
    points = sorted({cut % (len(stream) + 1) for cut in cuts} | {0, len(stream)})
    out: list[Message] = []
    for start, end in zip(points, points[1:], strict=False):
        out += subscriber._split(stream[start:end])
    return out


# The remaining length's encoding, worked out by hand from MQTT 3.1.1 section 2.2.3 (its
# table gives the boundaries of each size), so _packet is not checked against itself.
REMAINING_LENGTHS = [
    (0, b"\x00"),
    (127, b"\x7f"),
    (128, b"\x80\x01"),
    (16_383, b"\xff\x7f"),
    (16_384, b"\x80\x80\x01"),
    (2_097_151, b"\xff\xff\x7f"),
    (2_097_152, b"\x80\x80\x80\x01"),
]


@pytest.mark.parametrize(("length", "encoded"), REMAINING_LENGTHS)
def test_the_remaining_length_is_encoded_and_decoded_as_mqtt_3_1_1_specifies(
    length: int, encoded: bytes
) -> None:
    body = bytes(length)
    assert _packet(0x30, body) == b"\x30" + encoded + body
    assert _remaining_length(b"\x30" + encoded, 0) == (length, 1 + len(encoded))


def test_a_remaining_length_of_more_than_four_bytes_is_a_broken_protocol() -> None:
    with pytest.raises(SubscriberError, match="more than four bytes"):
        unconnected_subscriber()._split(b"\x30\xff\xff\xff\xff\x01")


# topic, payload, QoS, packet id, DUP, RETAIN: the flags a broker may set must not matter.
Published = tuple[str, bytes, int, int, bool, bool]
published = st.tuples(
    topics, payloads, st.sampled_from([0, 1]), st.integers(1, 65535), st.booleans(), st.booleans()
)


@given(
    # A PINGRESP between messages stands for the control packets handled on the way.
    packets=st.lists(st.one_of(published, st.just(PINGRESP)), max_size=16),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_publish_packets_cut_anywhere_come_out_as_the_messages_sent_with_their_ids_in_order(
    packets: list[Published | bytes], cuts: list[int]
) -> None:
    stream, sent, ids = b"", [], []
    for item in packets:
        if isinstance(item, bytes):
            stream += item
            continue
        topic, payload, qos, packet_id, dup, retain = item
        stream += publish_packet(topic, payload, qos, packet_id, dup and qos > 0, retain)
        sent.append((topic, payload))
        if qos:
            ids.append(struct.pack("!H", packet_id))
    subscriber = unconnected_subscriber()
    assert feed(subscriber, stream, cuts) == sent
    assert subscriber._acks == ids
    assert subscriber._buffer == b""  # nothing left over, nothing waiting


def test_a_packet_fed_one_byte_at_a_time_comes_out_once_whole() -> None:
    packet = publish_packet("kiosk/v1/1/T/outbox", bytes(range(256)) * 80, 1, 513)
    subscriber = unconnected_subscriber()
    assert feed(subscriber, packet, list(range(len(packet)))) == [
        ("kiosk/v1/1/T/outbox", bytes(range(256)) * 80)
    ]
    assert subscriber._acks == [b"\x02\x01"]


SMALL_LARGEST = 4096


@given(
    extra=st.sampled_from([1, 100, SMALL_LARGEST + 1, 3 * SMALL_LARGEST]),
    qos=st.sampled_from([0, 1]),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_a_message_over_largest_is_passed_on_by_exactly_its_first_largest_bytes_however_cut(
    extra: int, qos: int, cuts: list[int]
) -> None:
    # mqtt_subscribe.LARGEST is read at each call; a small one keeps the examples small.
    # (Not the monkeypatch fixture: hypothesis runs many examples per fixture instance.)
    saved, mqtt_subscribe.LARGEST = mqtt_subscribe.LARGEST, SMALL_LARGEST
    try:
        big = bytes(index % 251 for index in range(SMALL_LARGEST + extra))
        stream = publish_packet("t/big", big, qos, 7) + publish_packet("t/next", b"after", 1, 8)
        subscriber = unconnected_subscriber()
        out = feed(subscriber, stream, cuts)
    finally:
        mqtt_subscribe.LARGEST = saved
    assert [(topic, len(payload)) for topic, payload in out] == [
        ("t/big", SMALL_LARGEST),
        ("t/next", len(b"after")),
    ]
    assert out == [("t/big", big[:SMALL_LARGEST]), ("t/next", b"after")]
    assert subscriber._acks == ([b"\x00\x07"] if qos else []) + [b"\x00\x08"]
    assert subscriber._buffer == b"" and subscriber._discard == 0


# ------------------------------------------------------------------ helpers for real brokers


def read_until(
    subscriber: MqttSubscriber,
    done: Callable[[list[Message]], bool],
    what: str,
    *,
    acknowledge: bool = True,
    timeout: float = DEADLINE_S,
) -> list[Message]:
    """read() until `done(everything read)`; acknowledge each read unless told not to."""
    received: list[Message] = []
    deadline = time.monotonic() + timeout
    while not done(received):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}: {received}")
        received += subscriber.read()
        if acknowledge:
            subscriber.acknowledge()
    return received


def until_subscribed(subscriber: MqttSubscriber) -> Callable[[list[Message]], bool]:
    return lambda received: subscriber.subscribed


def count(number: int) -> Callable[[list[Message]], bool]:
    return lambda received: len(received) >= number


def has_topic(topic: str) -> Callable[[list[Message]], bool]:
    return lambda received: any(message[0] == topic for message in received)


class Publisher:
    """A paho MQTT 3.1.1 client on the plain test broker; publish() returns once delivered
    to the broker (its PUBACK for QoS 1)."""

    def __init__(self, broker: Broker) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}"
        )
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(DEADLINE_S)
        assert info.is_published(), f"the broker did not take {topic}"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(backoffice_broker: Broker) -> Iterator[Publisher]:
    made = Publisher(backoffice_broker)
    yield made
    made.close()


@pytest.fixture
def subscribers() -> Iterator[list[MqttSubscriber]]:
    """Subscribers to close after the test, whatever happened."""
    made: list[MqttSubscriber] = []
    yield made
    for subscriber in made:
        subscriber.close()


def plain(broker: Broker, **options: object) -> BrokerConfig:
    return BrokerConfig(host=broker.host, port=broker.port, **options)  # type: ignore[arg-type]


def run_id() -> str:
    return uuid.uuid4().hex[:8]


def subscribed(
    subscribers: list[MqttSubscriber], config: BrokerConfig, filters: list[str], client_id: str
) -> tuple[MqttSubscriber, bool]:
    """A subscriber connected and answered with its SUBACK (closed after the test), and
    whether the broker held a session for its client id."""
    subscriber = MqttSubscriber(config, filters, client_id)
    subscribers.append(subscriber)
    session_present = subscriber.connect()
    read_until(subscriber, until_subscribed(subscriber), "the SUBACK")
    return subscriber, session_present


# ------------------------------------------------------------------ a real Mosquitto, plain TCP


def test_binary_payloads_and_odd_topics_arrive_byte_exact_from_a_real_mosquitto(
    backoffice_broker: Broker, publisher: Publisher, subscribers: list[MqttSubscriber]
) -> None:
    subscriber, session_present = subscribed(
        subscribers, plain(backoffice_broker), ["a/#"], f"exact-{run_id()}"
    )
    assert session_present is False  # a new client id: no session held yet
    sent = [
        ("a/b c/", b"x\x00y\nz"),
        ("a/empty", b""),
        ("a/\u4e2d\u6587/\U0001f600", "电费".encode()),
        ("a//level/ /$x", b"\xff\xfe\xc3\x28 not UTF-8 \x80"),
        ("a/all-bytes", bytes(range(256)) * 3),
        ("a/" + "t" * 2000, b"\x00" * 70_000),  # remaining length of 3 bytes
    ]
    for index, (topic, payload) in enumerate(sent):
        publisher.publish(topic, payload, qos=index % 2)
    received = read_until(subscriber, count(len(sent)), f"{len(sent)} messages")
    assert received == sent


def test_a_session_keeps_what_was_not_acknowledged_and_forgets_what_was(
    backoffice_broker: Broker, publisher: Publisher, subscribers: list[MqttSubscriber]
) -> None:
    subscriber, _ = subscribed(
        subscribers, plain(backoffice_broker), ["s/#"], f"session-{run_id()}"
    )
    subscriber.disconnect()

    away = [("s/away", b"one"), ("s/away", b"two"), ("s/away", b"three")]
    for topic, payload in away:
        publisher.publish(topic, payload)
    assert subscriber.connect() is True  # the broker held the session and its queue
    assert read_until(subscriber, count(3), "the queued messages", acknowledge=False) == away
    subscriber.close()  # read but never acknowledged

    assert subscriber.connect() is True
    assert read_until(subscriber, count(3), "the unacknowledged messages again") == away
    # Acknowledged this time (read_until acknowledges every read). disconnect() waits for
    # the broker to close the connection, so it has read the PUBACKs before the next
    # connection: after a bare close(), the broker may take the new connection first.
    subscriber.disconnect()

    assert subscriber.connect() is True
    publisher.publish("s/marker", b"after")
    received = read_until(subscriber, has_topic("s/marker"), "the marker")
    assert received == [("s/marker", b"after")]


def sender_and_receiver(
    broker: Broker, subscribers: list[MqttSubscriber]
) -> tuple[MqttSubscriber, MqttSubscriber, str]:
    """Two subscribed connections: one to publish, one subscribed to `<run>/#` to see what
    arrives; and the run's topic prefix."""
    config, run = plain(broker), run_id()
    receiver, _ = subscribed(subscribers, config, [f"{run}/#"], f"in-{run}")
    sender, _ = subscribed(subscribers, config, [f"nothing-{run}"], f"out-{run}")
    return sender, receiver, run


def test_what_it_publishes_arrives_and_is_forgotten_once_the_broker_confirms_it(
    backoffice_broker: Broker, subscribers: list[MqttSubscriber]
) -> None:
    sender, receiver, run = sender_and_receiver(backoffice_broker, subscribers)
    sent = [(f"{run}/T-{n:02d}/ack", b'{"v":1,"upto_seq":%d}' % n) for n in range(1, 70)]
    sender.publish(sent[:3])
    sender.publish(sent[3:])
    assert sender.unconfirmed() == len(sent)
    # Its PUBACKs come back on the connection it reads: read() takes them in.
    read_until(sender, lambda _: sender.unconfirmed() == 0, "the broker's PUBACKs")
    assert read_until(receiver, count(len(sent)), f"{len(sent)} messages") == sent


def test_what_the_broker_did_not_confirm_goes_again_after_a_reconnection(
    backoffice_broker: Broker, subscribers: list[MqttSubscriber]
) -> None:
    sender, receiver, run = sender_and_receiver(backoffice_broker, subscribers)
    sender.publish([(f"{run}/a", b"sent, never confirmed")])
    sender.close()  # before reading its PUBACK
    sender.publish([(f"{run}/b", b"published without a connection")])
    assert sender.unconfirmed() == 2
    sender.connect()
    read_until(sender, lambda _: sender.unconfirmed() == 0, "the PUBACKs of both")
    received = read_until(receiver, has_topic(f"{run}/b"), "the second message")
    # At least once, in order: the first may have arrived twice (QoS 1).
    assert list(dict.fromkeys(received)) == [
        (f"{run}/a", b"sent, never confirmed"),
        (f"{run}/b", b"published without a connection"),
    ]


# Mosquitto drops a client silent for 1.5 keepalives, but 2.0.11 checks coarsely: with a
# keepalive of 2 s, a client that sent nothing was dropped 4.7 to 6.0 s after its last packet
# (measured). Longer than that, a client that did not ping would have been dropped.
OUTLIVES_MOSQUITTO_S = 7.0


def test_the_subscriber_pings_through_silence_longer_than_its_keepalive(
    backoffice_broker: Broker, publisher: Publisher, subscribers: list[MqttSubscriber]
) -> None:
    subscriber, _ = subscribed(
        subscribers, plain(backoffice_broker, keepalive_s=2), ["k/#"], f"keepalive-{run_id()}"
    )
    silence_ends = time.monotonic() + OUTLIVES_MOSQUITTO_S
    while time.monotonic() < silence_ends:
        assert subscriber.read() == []
    publisher.publish("k/after", b"still here")
    assert read_until(subscriber, count(1), "the message after the silence") == [
        ("k/after", b"still here")
    ]


def test_the_subscriber_pings_while_qos_0_messages_keep_it_busy(
    backoffice_broker: Broker, publisher: Publisher, subscribers: list[MqttSubscriber]
) -> None:
    # A QoS 0 message needs no PUBACK, so a subscriber that receives only those sends
    # nothing unless it pings: a busy one must ping as well as an idle one. The heartbeats
    # of the fleet are QoS 0 (kiosk.telemetry.client).
    subscriber, _ = subscribed(
        subscribers, plain(backoffice_broker, keepalive_s=2), ["busy/#"], f"busy-{run_id()}"
    )
    stop = threading.Event()

    def publish_heartbeats() -> None:
        while not stop.wait(0.05):
            publisher.publish("busy/heartbeat", b"beat", qos=0)

    heartbeats = threading.Thread(target=publish_heartbeats, daemon=True)
    heartbeats.start()
    try:
        busy_until, received = time.monotonic() + OUTLIVES_MOSQUITTO_S, 0
        while time.monotonic() < busy_until:
            time.sleep(0.25)  # busy checking: the socket always has more when it reads
            received += len(subscriber.read())
    finally:
        stop.set()
        heartbeats.join(DEADLINE_S)
    assert received > 20
    publisher.publish("busy/after", b"still here")
    read_until(subscriber, has_topic("busy/after"), "the message after the busy time")


def test_a_message_over_largest_arrives_once_truncated_acknowledged_and_the_next_intact(
    backoffice_broker: Broker, publisher: Publisher, subscribers: list[MqttSubscriber]
) -> None:
    # The test broker sets no max_packet_size, so the real LARGEST (1 MiB) is what counts.
    largest = mqtt_subscribe.LARGEST
    subscriber, _ = subscribed(subscribers, plain(backoffice_broker), ["big/#"], f"big-{run_id()}")
    huge = (bytes(range(251)) * (3 * largest // 251 + 100))[: 3 * largest + 12_345]
    publisher.publish("big/huge", huge)
    publisher.publish("big/next", b"intact")
    received = read_until(subscriber, has_topic("big/next"), "the message after the huge one")
    assert received == [("big/huge", huge[:largest]), ("big/next", b"intact")]
    subscriber.close()

    # Both were acknowledged: a new connection of the session gets neither again.
    assert subscriber.connect() is True
    publisher.publish("big/marker", b"")
    assert read_until(subscriber, has_topic("big/marker"), "the marker") == [("big/marker", b"")]


# ------------------------------------------------------------------ a broker that misbehaves


class FakeBroker:
    """A TCP server on loopback for one connection, speaking just enough MQTT: the n-th
    packet the client sends is answered with replies[n] (None: the connection is closed
    instead); once the replies run out it records what the client sends and answers nothing."""

    def __init__(self, replies: list[bytes | None]) -> None:
        self.replies = replies
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.packets: list[bytes] = []  # what the client sent, a packet each
        self._buffer = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.server.settimeout(DEADLINE_S)
        connection, _ = self.server.accept()
        with connection:
            connection.settimeout(0.1)
            while not self._stop.is_set():
                try:
                    chunk = connection.recv(4096)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                self._buffer += chunk
                while packet := self._next_packet():
                    answered = len(self.packets)
                    self.packets.append(packet)
                    if answered < len(self.replies):
                        reply = self.replies[answered]
                        if reply is None:
                            return
                        connection.sendall(reply)

    def _next_packet(self) -> bytes:
        if len(self._buffer) < 2:
            return b""
        length, header = _remaining_length(self._buffer, 0)
        if length < 0 or len(self._buffer) < header + length:
            return b""
        packet, self._buffer = self._buffer[: header + length], self._buffer[header + length :]
        return packet

    def close(self) -> None:
        self._stop.set()
        self._thread.join(DEADLINE_S)
        self.server.close()


@pytest.fixture
def fake_broker() -> Iterator[Callable[..., FakeBroker]]:
    made: list[FakeBroker] = []

    def make(*replies: bytes | None) -> FakeBroker:
        made.append(FakeBroker(list(replies)))
        return made[-1]

    yield make
    for fake in made:
        fake.close()


def fake_config(fake: FakeBroker, **options: object) -> BrokerConfig:
    return BrokerConfig(host="127.0.0.1", port=fake.port, **options)  # type: ignore[arg-type]


ACCEPTED = b"\x20\x02\x00\x00"
NOT_AUTHORISED = b"\x20\x02\x00\x05"
PINGREQ = b"\xc0\x00"


def test_the_connect_asks_for_a_persistent_session_with_the_configured_credentials(
    fake_broker: Callable[..., FakeBroker], subscribers: list[MqttSubscriber]
) -> None:
    fake = fake_broker(ACCEPTED)
    config = fake_config(fake, username="backoffice", password="p\u00e4ss", keepalive_s=45)
    subscriber = MqttSubscriber(config, ["kiosk/v1/+/+/outbox", "kiosk/v1/+/+/event"], "bo-1")
    subscribers.append(subscriber)
    assert subscriber.connect() is False  # CONNACK's session-present flag was 0
    wait_for(lambda: len(fake.packets) >= 2, "the SUBSCRIBE")
    connect, subscribe = fake.packets[:2]
    # MQTT 3.1.1 section 3.1: protocol "MQTT" level 4; flags user name, password, and NOT
    # clean session (0x02), so the broker keeps the session; keepalive 45 s.
    assert connect == _packet(
        0x10,
        b"\x00\x04MQTT\x04\xc0\x00\x2d"
        + b"\x00\x04bo-1"
        + b"\x00\x0abackoffice"
        + b"\x00\x05p\xc3\xa4ss",
    )
    # Section 3.8: packet id, then each filter with its QoS 1.
    assert subscribe == _packet(
        0x82,
        b"\x00\x01" + b"\x00\x13kiosk/v1/+/+/outbox\x01" + b"\x00\x12kiosk/v1/+/+/event\x01",
    )


def test_a_broker_that_stops_answering_is_an_error_after_one_and_a_half_keepalives(
    fake_broker: Callable[..., FakeBroker], subscribers: list[MqttSubscriber]
) -> None:
    fake = fake_broker(ACCEPTED)
    subscriber = MqttSubscriber(fake_config(fake, keepalive_s=1), ["t/#"], "silent")
    subscribers.append(subscriber)
    connected = time.monotonic()
    subscriber.connect()
    with pytest.raises(SubscriberError, match="no answer from the broker for 1 s after a ping"):
        while time.monotonic() - connected < DEADLINE_S:  # a bound if it never gives up
            assert subscriber.read() == []
    silent_for = time.monotonic() - connected
    # A ping half a keepalive in, then a whole keepalive for its answer.
    assert 1.0 <= silent_for < 3.0
    assert fake.packets[-1] == PINGREQ  # the ping that went unanswered


def test_a_connack_refusal_is_one_clear_error(
    fake_broker: Callable[..., FakeBroker], subscribers: list[MqttSubscriber]
) -> None:
    fake = fake_broker(NOT_AUTHORISED)
    subscriber = MqttSubscriber(fake_config(fake), ["t/#"], "refused")
    subscribers.append(subscriber)
    with pytest.raises(SubscriberError, match="not authorised") as refused:
        subscriber.connect()
    assert "\n" not in str(refused.value)
    assert subscriber.fileno() == -1  # nothing left open
    assert len(fake.packets) == 1  # no SUBSCRIBE after a refusal


def test_a_broker_that_closes_the_connection_at_once_is_one_clear_error(
    fake_broker: Callable[..., FakeBroker], subscribers: list[MqttSubscriber]
) -> None:
    # It reads the CONNECT first: a server closing with unread bytes would reset the
    # connection instead, an OSError (see the class's docstring), not this error.
    fake = fake_broker(None)
    subscriber = MqttSubscriber(fake_config(fake), ["t/#"], "closed")
    subscribers.append(subscriber)
    with pytest.raises(SubscriberError, match="^the broker closed the connection$"):
        subscriber.connect()
    assert subscriber.fileno() == -1


def test_a_filter_the_broker_refuses_is_logged_and_the_others_still_deliver(
    fake_broker: Callable[..., FakeBroker],
    subscribers: list[MqttSubscriber],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A fake broker, because the fleet's Mosquitto (2.0.11, deploy/mosquitto/acl) grants
    # every SUBSCRIBE, even outside the ACL, and applies the ACL when it delivers.
    suback = _packet(0x90, b"\x00\x01\x80\x01")  # packet id 1: refused, granted QoS 1
    heartbeat = publish_packet("kiosk/v1/1/T/heartbeat", b"alive", 1, 9)
    fake = fake_broker(ACCEPTED, suback + heartbeat)
    topics = ["fleet/elsewhere/#", "kiosk/v1/+/+/heartbeat"]
    subscriber = MqttSubscriber(fake_config(fake), topics, "backoffice-refused-filter")
    subscribers.append(subscriber)
    subscriber.connect()
    with caplog.at_level(logging.ERROR, logger=mqtt_subscribe.__name__):
        received = read_until(subscriber, count(1), "the heartbeat")
    assert subscriber.subscribed
    assert received == [("kiosk/v1/1/T/heartbeat", b"alive")]
    assert [record.getMessage() for record in caplog.records] == [
        "the broker refused the subscription to fleet/elsewhere/#"
    ]
    wait_for(lambda: len(fake.packets) == 3, "the PUBACK")
    assert fake.packets[2] == b"\x40\x02\x00\x09"


# ------------------------------------------------------------------ the fleet's TLS broker


@pytest.fixture
def office_session(mosquitto: MosquittoBroker, mqtt_pki: MqttPki) -> Iterator[str]:
    """A back-office client id (the ACL grants by certificate, not by id) whose persistent
    session is removed after the test, so the session-wide broker does not queue for it."""
    client_id = f"backoffice-subscriber-{run_id()}"
    yield client_id
    cert = mqtt_pki.backoffice()
    cleaner = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    cleaner.tls_set(str(cert.ca), str(cert.cert), str(cert.key))
    cleaner.connect(mosquitto.host, mosquitto.port)
    cleaner.loop_start()
    cleaner.disconnect()
    cleaner.loop_stop()


def test_a_terminal_message_arrives_over_tls_with_the_back_office_certificate(
    mosquitto: MosquittoBroker,
    mqtt_pki: MqttPki,
    office_session: str,
    subscribers: list[MqttSubscriber],
) -> None:
    topics = ["kiosk/v1/+/+/heartbeat", "kiosk/v1/+/+/outbox"]
    subscriber, session_present = subscribed(
        subscribers, tls_broker_config(mosquitto, mqtt_pki), topics, office_session
    )
    assert session_present is False  # a session of its own, new
    terminal = connect_peer(
        mosquitto, mqtt_pki.terminal("TSUB1"), f"kiosk-{STATION}-TSUB1-{run_id()}"
    )
    try:
        record = b'{"v":1,"seq":1}' + bytes(range(256)) * 100  # a few TLS records long
        terminal.publish(f"kiosk/v1/{STATION}/TSUB1/outbox", record)
    finally:
        terminal.close()
    received = read_until(subscriber, count(1), "the terminal's record")
    assert received == [(f"kiosk/v1/{STATION}/TSUB1/outbox", record)]
    subscriber.disconnect()


def test_an_ack_it_publishes_over_tls_reaches_the_terminal_under_the_fleets_acl(
    mosquitto: MosquittoBroker,
    mqtt_pki: MqttPki,
    office_session: str,
    subscribers: list[MqttSubscriber],
) -> None:
    # The ingest's acks go out on this connection: the ACL (deploy/mosquitto/acl) lets the
    # back office's certificate write kiosk/v1/+/+/ack, and the terminal read its own.
    subscriber, _ = subscribed(
        subscribers, tls_broker_config(mosquitto, mqtt_pki), ["kiosk/v1/+/+/outbox"], office_session
    )
    terminal = connect_peer(
        mosquitto, mqtt_pki.terminal("TACK1"), f"kiosk-{STATION}-TACK1-{run_id()}"
    )
    try:
        terminal.subscribe(f"kiosk/v1/{STATION}/TACK1/ack")
        subscriber.publish([(f"kiosk/v1/{STATION}/TACK1/ack", b'{"v":1,"upto_seq":12}')])
        read_until(subscriber, lambda _: subscriber.unconfirmed() == 0, "the broker's PUBACK")
        [ack] = terminal.wait_for("/ack")
        assert ack.payload == b'{"v":1,"upto_seq":12}'
    finally:
        terminal.close()
    subscriber.disconnect()


@pytest.mark.parametrize("missing", ["tls_ca_file", "tls_key_file"])
def test_unreadable_tls_files_are_an_error_at_construction_naming_the_settings(
    mqtt_pki: MqttPki, tmp_path: Path, missing: str
) -> None:
    cert = mqtt_pki.backoffice()
    files = {"tls_ca_file": cert.ca, "tls_cert_file": cert.cert, "tls_key_file": cert.key}
    files[missing] = tmp_path / "no-such-file.pem"
    config = BrokerConfig(
        tls_ca_file=str(files["tls_ca_file"]),
        tls_cert_file=str(files["tls_cert_file"]),
        tls_key_file=str(files["tls_key_file"]),
    )
    with pytest.raises(BackofficeError) as unreadable:
        MqttSubscriber(config, ["kiosk/v1/#"], "backoffice-unreadable")
    message = str(unreadable.value)
    assert "\n" not in message
    for setting in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
        assert setting in message
