"""Bytes per day on the wire for one terminal, measured from a real session (docs/mqtt.md s. 8).

Owns the byte-counting TCP relay put between a TelemetryClient and its broker, the measured
cost of each kind of traffic, and the extrapolation to a day at given intervals. Every byte
counted is a real TLS record carrying real MQTT packets; only the TCP/IP headers are an
estimate. It never changes what the client sends.
"""

import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from kiosk.telemetry.config import TelemetryConfig

# IPv4 (20) + TCP (20) + the timestamp option Linux sends (12), per segment.
TCP_IP_HEADER_BYTES = 52
# PINGREQ and PINGRESP are 2 bytes each; in TLS 1.3 each travels in its own record with
# 22 bytes of overhead (5 header, 1 inner content type, 16 AEAD tag).
PING_EXCHANGE_TLS_BYTES = 2 * (2 + 22)
DAY_S = 86_400
TARGET_BYTES_PER_DAY = 1_000_000


@dataclass
class Traffic:
    bytes: int = 0  # TLS bytes, both directions
    segments: int = 0  # reads by the relay, both directions: at least one TCP segment each

    def __sub__(self, other: "Traffic") -> "Traffic":
        return Traffic(self.bytes - other.bytes, self.segments - other.segments)


class CountingRelay:
    """A loopback TCP relay to (host, port) that counts what passes in both directions."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._lock = threading.Lock()
        self._traffic = Traffic()
        self._last_activity = time.monotonic()
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()

    def traffic(self) -> Traffic:
        with self._lock:
            return Traffic(self._traffic.bytes, self._traffic.segments)

    def idle_for(self) -> float:
        with self._lock:
            return time.monotonic() - self._last_activity

    def wait_quiet(self, quiet_s: float = 0.5, timeout_s: float = 30.0) -> None:
        """Wait until nothing has passed for quiet_s (acks and PUBACKs included)."""
        deadline = time.monotonic() + timeout_s
        while self.idle_for() < quiet_s:
            if time.monotonic() > deadline:
                raise TimeoutError("the relay never went quiet: traffic without end")
            time.sleep(0.05)

    def close(self) -> None:
        self._closed = True
        self._server.close()
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
                upstream = socket.create_connection(self._target)
            except OSError:
                return
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                chunk = source.recv(65_536)
                if not chunk:
                    break
                sink.sendall(chunk)
            except OSError:
                break
            with self._lock:
                self._traffic.bytes += len(chunk)
                self._traffic.segments += 1
                self._last_activity = time.monotonic()
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@dataclass(frozen=True)
class WireCosts:
    """Measured TLS bytes and segments of one occurrence of each kind of traffic."""

    connect: Traffic  # handshake, CONNECT, SUBSCRIBE, birth, first heartbeat and health
    heartbeat: Traffic
    health: Traffic
    outbox_record: Traffic  # PUBLISH + PUBACK, the back office's ack + its PUBACK


@dataclass(frozen=True)
class DailyBytes:
    heartbeat_interval_s: int
    health_interval_s: int
    keepalive_s: int
    transactions_per_day: int
    connects_per_day: int
    tls_bytes: dict[str, int]
    tcp_ip_bytes: int

    @property
    def total(self) -> int:
        return sum(self.tls_bytes.values()) + self.tcp_ip_bytes

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "total": self.total, "target": TARGET_BYTES_PER_DAY}


def daily_bytes(
    costs: WireCosts,
    config: TelemetryConfig,
    *,
    transactions_per_day: int = 150,
    connects_per_day: int = 4,
) -> DailyBytes:
    """Extrapolate one day at the configuration's intervals from measured costs."""
    heartbeats = DAY_S // config.heartbeat_interval_s
    healths = DAY_S // config.health_interval_s
    # paho pings only when it sent nothing for a keepalive period: heartbeats keep it busy.
    pings = 0 if config.heartbeat_interval_s < config.keepalive_s else DAY_S // config.keepalive_s
    counts = {
        "connect": (connects_per_day, costs.connect),
        "heartbeat": (heartbeats, costs.heartbeat),
        "health": (healths, costs.health),
        "outbox": (transactions_per_day, costs.outbox_record),
    }
    tls = {name: n * traffic.bytes for name, (n, traffic) in counts.items()}
    tls["keepalive"] = pings * PING_EXCHANGE_TLS_BYTES
    segments = sum(n * traffic.segments for n, traffic in counts.values()) + 2 * pings
    # Each data segment is answered by (at most) one pure TCP acknowledgement.
    tcp_ip = 2 * segments * TCP_IP_HEADER_BYTES
    return DailyBytes(
        config.heartbeat_interval_s,
        config.health_interval_s,
        config.keepalive_s,
        transactions_per_day,
        connects_per_day,
        tls,
        tcp_ip,
    )


def _average(
    relay: CountingRelay, repeat: int, once: Callable[[int], None], quiet_s: float
) -> Traffic:
    relay.wait_quiet(quiet_s)
    before = relay.traffic()
    for index in range(repeat):
        once(index)
        relay.wait_quiet(quiet_s)
    spent = relay.traffic() - before
    return Traffic(math.ceil(spent.bytes / repeat), math.ceil(spent.segments / repeat))


def measure_wire_costs(
    relay: CountingRelay,
    *,
    connect: Callable[[], None],
    heartbeat: Callable[[int], None],
    health: Callable[[int], None],
    outbox_record: Callable[[int], None],
    repeat: int = 5,
    quiet_s: float = 0.5,
) -> WireCosts:
    """Run each phase against the relay; each callable returns once its traffic was seen.

    connect starts a client through the relay and waits for its birth; heartbeat and
    health make it publish one; outbox_record journals one record and waits for the back
    office to have received and acknowledged it.
    """
    start = relay.traffic()
    connect()
    relay.wait_quiet(quiet_s)
    connected = relay.traffic() - start
    return WireCosts(
        connect=connected,
        heartbeat=_average(relay, repeat, heartbeat, quiet_s),
        health=_average(relay, repeat, health, quiet_s),
        outbox_record=_average(relay, repeat, outbox_record, quiet_s),
    )
