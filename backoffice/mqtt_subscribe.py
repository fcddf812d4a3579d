"""The ingest's MQTT connection: one persistent QoS 1 session, read a socket buffer at a time.

Owns the back office's ingest connection to the broker (MQTT 3.1.1): CONNECT with a
persistent session and the `[broker]` credentials and TLS files, SUBSCRIBE, the PUBLISH
packets of each read split in one loop, their PUBACKs sent together once the caller has
passed the messages on, keepalive pings, and the QoS 1 messages the caller gives it to
publish (the ingest's record acknowledgements), kept until the broker confirms each and
sent again after a reconnection. It never decides what a message means
(backoffice.ingest_check does) nor what to publish.

Written by hand rather than with paho-mqtt, libmosquitto or mosquitto_sub because each of
those hands messages over one at a time: paho's no-op drain runs at a fifth of
mosquitto_sub's rate, and mosquitto_sub itself, framing into a pipe for Python to split
again, spent more processor time per message than checking it (docs/backoffice.md,
"Benchmarks"). What a QoS 1 subscriber needs of the protocol is small (MQTT 3.1.1
sections 3.1-3.14: CONNECT/CONNACK, SUBSCRIBE/SUBACK, PUBLISH/PUBACK, PINGREQ/PINGRESP,
DISCONNECT), and tests/test_backoffice_subscriber.py runs it against a real Mosquitto.
Publishing the acknowledgements here too, on the connection that is already open, costs
about a microsecond each instead of libmosquitto's 10-15 (the calls, and its network
thread waking for every message): docs/backoffice.md, "Acknowledgement".
"""

import logging
import select
import socket
import ssl
import struct
import time
from collections.abc import Iterable, Sequence

from backoffice.config import BrokerConfig
from backoffice.errors import BackofficeError

log = logging.getLogger(__name__)

Message = tuple[str, bytes]  # topic, payload
READ_BYTES = 1 << 17  # a few hundred messages a read: checked while the broker sends more
# A message far over any the contract allows (backoffice.contract.MAX_PAYLOAD_BYTES) is
# not held whole: its first LARGEST bytes stand for it, so the contract refuses it by its
# size, and the rest is read past. The fleet's broker refuses such packets already
# (deploy/mosquitto: max_packet_size).
LARGEST = 1 << 20
# CONNACK return codes (MQTT 3.1.1 section 3.2.2.3).
_REFUSALS = {
    1: "the broker does not speak MQTT 3.1.1",
    2: "the broker refused the client id",
    3: "the broker is unavailable",
    4: "the broker refused the user name or password",
    5: "the broker refused this client: not authorised",
}
_PINGREQ = b"\xc0\x00"
_DISCONNECT = b"\xe0\x00"
_SUBSCRIBE_ID = 1
_PUBLISH_QOS1 = 0x32
_DUP = 0x08  # the flag of a PUBLISH sent again after a reconnection
# Packet ids of the messages this client publishes: 1 is the SUBSCRIBE's.
_FIRST_ID, _LAST_ID = 2, 0xFFFF


class SubscriberError(BackofficeError):
    """The connection cannot go on (refused, closed, silent, or broken protocol)."""


def _text(value: str) -> bytes:
    """An MQTT UTF-8 string: two bytes of length, then the bytes."""
    data = value.encode("utf-8")
    return struct.pack("!H", len(data)) + data


def _packet(first: int, body: bytes) -> bytes:
    """A control packet: its first byte, the remaining length (1-4 bytes of 7 bits), body."""
    length, encoded = len(body), bytearray()
    while True:
        length, digit = divmod(length, 128)
        encoded.append(digit | (0x80 if length else 0))
        if not length:
            return bytes([first]) + bytes(encoded) + body


def _remaining_length(data: bytes, position: int) -> tuple[int, int]:
    """(remaining length, header size) of the packet at `position`; (-1, 0) if the header is
    not all there yet."""
    length, shift = 0, 0
    for index in range(position + 1, min(position + 5, len(data))):
        length |= (data[index] & 0x7F) << shift
        if not data[index] & 0x80:
            return length, index + 1 - position
        shift += 7
    if len(data) - position >= 5:
        raise SubscriberError("the broker sent a packet length of more than four bytes")
    return -1, 0


class MqttSubscriber:
    """One subscribing connection: connect(), then read() and acknowledge() in turn.

    read() returns the messages of one read of the socket and remembers the packet ids of
    the QoS 1 ones; acknowledge() sends their PUBACKs, so the caller acknowledges what it
    has passed on, never what it has not seen. Anything wrong with the connection is a
    SubscriberError or an OSError, after which the caller closes and connects again: the
    broker then delivers again what was not acknowledged.
    """

    def __init__(
        self, broker: BrokerConfig, topics: Sequence[str], client_id: str, qos: int = 1
    ) -> None:
        self.broker = broker
        self.topics = list(topics)
        self.client_id = client_id
        self.qos = qos
        self.subscribed = False  # the broker has answered the SUBSCRIBE
        self._socket: socket.socket | None = None
        self._buffer = b""
        self._acks: list[bytes] = []  # packet ids (two bytes each) to acknowledge
        # What publish() sent (or will send once connected) that the broker has not
        # confirmed yet, by packet id, in the order published.
        self._unconfirmed: dict[bytes, bytes] = {}
        self._next_id = _FIRST_ID
        self._forgetting = False  # warned that unconfirmed messages are being forgotten
        self._discard = 0  # bytes still to read past of a message over LARGEST
        self._last_sent = 0.0
        self._ping_sent = 0.0  # when the unanswered PINGREQ went out (0: none)
        self._tls = self._tls_context() if broker.tls_ca_file else None

    def _tls_context(self) -> ssl.SSLContext:
        b = self.broker
        try:
            context = ssl.create_default_context(cafile=b.tls_ca_file)
            if b.tls_cert_file:
                context.load_cert_chain(b.tls_cert_file, b.tls_key_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise BackofficeError(
                f"cannot use the TLS files of [broker] ({exc}): check that tls_ca_file, "
                "tls_cert_file and tls_key_file exist and can be read"
            ) from None
        return context

    def fileno(self) -> int:
        return self._socket.fileno() if self._socket is not None else -1

    def connect(self) -> bool:
        """Open the connection, persistent session kept, and subscribe; return whether the
        broker still held this client's session (its queued messages come first)."""
        self.close()
        b = self.broker
        sock = socket.create_connection((b.host, b.port), timeout=max(b.keepalive_s, 5))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=b.host)
            flags = 0x00  # clean session off: the broker keeps the session and its queue
            payload = _text(self.client_id)
            if b.username:
                flags |= 0x80
                payload += _text(b.username)
                if b.password:
                    flags |= 0x40
                    payload += _text(b.password)
            header = _text("MQTT") + bytes([4, flags]) + struct.pack("!H", b.keepalive_s)
            sock.sendall(_packet(0x10, header + payload))
            connack = self._read_exactly(sock, 4)
            if connack[:2] != b"\x20\x02":
                raise SubscriberError("the broker did not answer CONNECT with CONNACK")
            if connack[3]:
                reason = _REFUSALS.get(connack[3], f"refusal code {connack[3]}")
                raise SubscriberError(f"{reason} (CONNACK {connack[3]})")
            filters = b"".join(_text(topic) + bytes([self.qos]) for topic in self.topics)
            subscribe = _packet(0x82, struct.pack("!H", _SUBSCRIBE_ID) + filters)
            # What the last connection published and the broker did not confirm goes again
            # (MQTT 3.1.1 section 4.4), marked as a duplicate.
            again = b"".join(
                bytes([packet[0] | _DUP]) + packet[1:] for packet in self._unconfirmed.values()
            )
            sock.sendall(subscribe + again)
        except BaseException:
            sock.close()
            raise
        # read() waits in select with its own deadline; the timeout only ends a read or a
        # send that a broker gone silent in the middle of a TLS record would block forever.
        sock.settimeout(max(b.keepalive_s, 5))
        self._socket, self._buffer, self._acks, self._discard = sock, b"", [], 0
        self._forgetting = False
        self.subscribed = False
        self._last_sent, self._ping_sent = time.monotonic(), 0.0
        return bool(connack[2] & 1)

    @staticmethod
    def _read_exactly(sock: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                raise SubscriberError("the broker closed the connection")
            data += chunk
        return data

    def read(self, wake: Iterable[int] = ()) -> list[Message]:
        """The messages of one read of the socket, in order (none when it waited for
        nothing, or one of the `wake` descriptors became readable). It waits at most until
        a keepalive ping is due; a broker silent for a whole keepalive after a ping is a
        SubscriberError."""
        sock = self._socket
        if sock is None:
            raise SubscriberError("read() before connect()")
        # Bytes TLS has decrypted already are not the socket's to signal.
        if not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
            keepalive = self.broker.keepalive_s
            if self._ping_sent:
                due = self._ping_sent + keepalive  # the answer's deadline
            else:
                due = self._last_sent + keepalive / 2  # a ping well inside the keepalive
            wait = max(0.0, due - time.monotonic())
            fds = [sock.fileno(), *wake]
            if fds[0] not in select.select(fds, [], [], wait)[0]:
                self._keep_alive()
                return []
        chunk = sock.recv(READ_BYTES)
        if not chunk:
            raise SubscriberError("the broker closed the connection")
        self._ping_sent = 0.0  # anything from the broker shows the connection is alive
        # Messages at QoS 0 alone (heartbeats) need no PUBACK: without this, a steady
        # stream of them would keep the wait above from ever timing out to ping.
        if time.monotonic() - self._last_sent >= self.broker.keepalive_s / 2:
            self._keep_alive()
        return self._split(chunk)

    def _keep_alive(self) -> None:
        now = time.monotonic()
        if self._ping_sent and now - self._ping_sent >= self.broker.keepalive_s:
            raise SubscriberError(
                f"no answer from the broker for {self.broker.keepalive_s} s after a ping"
            )
        if not self._ping_sent and now - self._last_sent >= self.broker.keepalive_s / 2:
            self._send(_PINGREQ)
            self._ping_sent = now

    def _split(self, chunk: bytes) -> list[Message]:
        """The PUBLISH messages of the buffered bytes and this chunk; control packets are
        handled on the way, and an incomplete packet waits for the next chunk.

        This loop is the reason for the module: one pass over the bytes with indexing and
        slicing (reading, splitting and acknowledging cost 2.3-2.7 µs a message in all)."""
        if self._discard:
            skipped = min(self._discard, len(chunk))
            self._discard -= skipped
            chunk = chunk[skipped:]
        data = self._buffer + chunk if self._buffer else chunk
        messages: list[Message] = []
        append, acks = messages.append, self._acks
        position, end = 0, len(data)
        while end - position >= 3:  # the shortest packet is 2 bytes: see below
            first = data[position]
            length, header = data[position + 1], 2
            if length & 0x80:
                # Most messages (100 bytes to 16 KiB) take exactly two length bytes: read
                # inline, as a call per message cost a third of the loop.
                second = data[position + 2]
                if second & 0x80:
                    length, header = _remaining_length(data, position)
                    if length < 0:
                        break
                else:
                    length, header = (length & 0x7F) | second << 7, 3
            start = position + header
            packet_end = start + length
            if length > LARGEST and first >> 4 == 3:  # by its declared length, whole or not
                passed = self._pass_on_oversized(data, position, start, packet_end, messages)
                if passed < 0:
                    break  # its first LARGEST payload bytes are not all here yet
                position = passed
                continue
            if packet_end > end:
                break
            if first >> 4 == 3:  # PUBLISH
                topic_end = start + 2 + (data[start] << 8 | data[start + 1])
                topic = data[start + 2 : topic_end].decode("utf-8", "replace")
                if first & 0x06:  # QoS 1 (a QoS 1 subscription never receives QoS 2)
                    acks.append(data[topic_end : topic_end + 2])
                    append((topic, data[topic_end + 2 : packet_end]))
                else:
                    append((topic, data[topic_end:packet_end]))
            else:
                self._control(first, data[start:packet_end])
            position = packet_end
        if end - position == 2 and data[position + 1] == 0:  # a PINGRESP last in the read
            self._control(data[position], b"")
            position = end
        self._buffer = data[position:]
        return messages

    def _pass_on_oversized(
        self, data: bytes, position: int, start: int, packet_end: int, messages: list[Message]
    ) -> int:
        """A PUBLISH longer than LARGEST: pass on its first LARGEST payload bytes (and
        queue its acknowledgement) once they are buffered, and read past the rest; return
        where the next packet starts in `data`, or -1 while those bytes are not all here.
        A message whose topic makes it long but whose payload is within LARGEST is
        passed on whole, like any other."""
        end = len(data)
        if end - start < 2:
            return -1
        topic_end = start + 2 + (data[start] << 8 | data[start + 1])
        qos = data[position] & 0x06
        payload_start = topic_end + (2 if qos else 0)
        kept_end = min(packet_end, payload_start + LARGEST)
        if end < kept_end:
            return -1
        topic = data[start + 2 : topic_end].decode("utf-8", "replace")
        if kept_end < packet_end:
            log.warning(
                "a message of %d bytes on %s is over %d bytes: passed on by its first ones",
                packet_end - payload_start,
                topic[:200],
                LARGEST,
            )
        if qos:
            self._acks.append(data[topic_end : topic_end + 2])
        messages.append((topic, data[payload_start:kept_end]))
        self._discard = max(0, packet_end - end)
        return min(end, packet_end)

    def _control(self, first: int, body: bytes) -> None:
        kind = first >> 4
        if kind == 9:  # SUBACK: one return code per filter, 0x80 refused
            self.subscribed = True
            for topic, code in zip(self.topics, body[2:], strict=False):
                if code == 0x80:
                    log.error("the broker refused the subscription to %s", topic)
        elif kind == 4:  # PUBACK: the broker has a message this client published
            self._unconfirmed.pop(body[:2], None)
        elif kind == 13:  # PINGRESP
            pass
        else:
            raise SubscriberError(f"the broker sent an unexpected packet (type {kind})")

    def acknowledge(self) -> None:
        """Send the PUBACKs of every QoS 1 message read() returned since the last call."""
        if self._acks:
            acks, self._acks = self._acks, []
            self._send(b"".join(b"\x40\x02" + packet_id for packet_id in acks))

    def publish(self, messages: Iterable[tuple[str, bytes]]) -> None:
        """Publish these (topic, payload) at QoS 1, in one write. Each is kept until the
        broker confirms it, and sent again after a reconnection; while there is no
        connection they wait for the next one. Should the broker leave 65,534 unconfirmed,
        the oldest is forgotten for the newest (an acknowledgement lost that way only makes
        its terminal send the record again)."""
        unconfirmed, packets = self._unconfirmed, []
        for topic, payload in messages:
            packet_id = self._next_id.to_bytes(2, "big")
            self._next_id = self._next_id + 1 if self._next_id < _LAST_ID else _FIRST_ID
            if packet_id in unconfirmed:
                del unconfirmed[packet_id]
                if not self._forgetting:
                    log.warning(
                        "the broker leaves 65,534 messages unconfirmed: forgetting the oldest"
                    )
                    self._forgetting = True
            topic_bytes = topic.encode("utf-8")
            body = len(topic_bytes).to_bytes(2, "big") + topic_bytes + packet_id + payload
            packet = _packet(_PUBLISH_QOS1, body)
            unconfirmed[packet_id] = packet
            packets.append(packet)
        if packets and self._socket is not None:
            self._send(b"".join(packets))

    def unconfirmed(self) -> int:
        """How many published messages the broker has not confirmed yet."""
        return len(self._unconfirmed)

    def _send(self, data: bytes) -> None:
        if self._socket is None:
            raise SubscriberError("the connection is closed")
        self._socket.sendall(data)
        self._last_sent = time.monotonic()

    def disconnect(self) -> None:
        """End cleanly: the broker keeps the session, and delivers again whatever was read
        and not acknowledged. It waits (up to 2 s) for the broker to close the connection,
        which it does once it has read everything sent before the DISCONNECT: a client that
        connects again at once then finds the acknowledged messages gone."""
        if self._socket is not None:
            try:
                self._socket.sendall(_DISCONNECT)
                self._socket.settimeout(2.0)
                while self._socket.recv(READ_BYTES):
                    pass  # messages sent before the broker read the DISCONNECT: unacknowledged
            except OSError:
                pass
        self.close()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
