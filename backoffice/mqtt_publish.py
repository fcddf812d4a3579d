"""The back office's publishing client: commands to terminals, through libmosquitto.

Owns one MQTT connection that only publishes (QoS as the caller says), kept up by
libmosquitto's own network thread, with the broker settings of `[broker]` (credentials,
TLS). libmosquitto (Debian libmosquitto1, the library under mosquitto_sub) is called
through ctypes rather than through paho-mqtt because a QoS 1 publish costs paho's Python
network loop about 100 us of processor time (one recv call per byte of each PUBACK) and
libmosquitto about 20 us, most of it in C without the GIL. Record acknowledgements, many
times more numerous, go out on the ingest's own connection instead (backoffice.ingest,
backoffice.mqtt_subscribe). It never subscribes and never decides what to publish.
"""

import ctypes
import ctypes.util
import logging
import threading
from collections import deque

from backoffice.config import BrokerConfig
from backoffice.errors import BackofficeError

log = logging.getLogger(__name__)

# libmosquitto's return codes that matter here (mosquitto.h).
MOSQ_ERR_SUCCESS = 0
MOSQ_ERR_NO_CONN = 4
_INFLIGHT = 100  # QoS 1 messages sent and not yet acknowledged by the broker
_library: ctypes.CDLL | None = None
_library_lock = threading.Lock()


def _libmosquitto() -> ctypes.CDLL:
    """libmosquitto, loaded and initialised once per process, with its C signatures."""
    global _library
    with _library_lock:
        if _library is not None:
            return _library
        name = ctypes.util.find_library("mosquitto") or "libmosquitto.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            raise BackofficeError(
                "libmosquitto is not installed: install the Debian package libmosquitto1"
            ) from None
        handle, text, number = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        signatures: dict[str, tuple[list[type], type | None]] = {
            "mosquitto_lib_init": ([], number),
            "mosquitto_new": ([text, ctypes.c_bool, handle], handle),
            "mosquitto_destroy": ([handle], None),
            "mosquitto_username_pw_set": ([handle, text, text], number),
            "mosquitto_tls_set": ([handle, text, text, text, text, handle], number),
            "mosquitto_max_inflight_messages_set": ([handle, ctypes.c_uint], number),
            "mosquitto_connect_async": ([handle, text, number, number], number),
            "mosquitto_loop_start": ([handle], number),
            "mosquitto_loop_stop": ([handle, ctypes.c_bool], number),
            "mosquitto_disconnect": ([handle], number),
            "mosquitto_publish": (
                [handle, handle, text, number, text, number, ctypes.c_bool],
                number,
            ),
            "mosquitto_strerror": ([number], text),
        }
        for function, (arguments, result) in signatures.items():
            getattr(lib, function).argtypes = arguments
            getattr(lib, function).restype = result
        lib.mosquitto_lib_init()
        _library = lib
        return lib


class MosquittoPublisher:
    """Publishes through one libmosquitto client that reconnects by itself.

    A QoS 1 or 2 message published while the connection is down waits here, in order,
    and goes out with the next publish or retry() once it is back (libmosquitto refuses
    messages before its first connection); a QoS 0 message is dropped then.
    """

    def __init__(self, broker: BrokerConfig, client_id: str) -> None:
        self.broker = broker
        self._lib = _libmosquitto()
        self._client = self._lib.mosquitto_new(client_id.encode(), True, None)
        if not self._client:
            raise BackofficeError(f"libmosquitto could not make the MQTT client {client_id}")
        self._started = False  # connected once: libmosquitto's thread runs from then on
        self._warned = False
        self._waiting: deque[tuple[bytes, bytes, int]] = deque()
        self._waiting_lock = threading.Lock()
        if broker.username:
            self._check(
                self._lib.mosquitto_username_pw_set(
                    self._client, broker.username.encode(), _text(broker.password)
                ),
                "set the broker credentials",
            )
        if broker.tls_ca_file:
            self._check(
                self._lib.mosquitto_tls_set(
                    self._client,
                    broker.tls_ca_file.encode(),
                    None,
                    _text(broker.tls_cert_file),
                    _text(broker.tls_key_file),
                    None,
                ),
                "use the TLS files of [broker]",
                "check that tls_ca_file, tls_cert_file and tls_key_file exist and can be read",
            )
        self._lib.mosquitto_max_inflight_messages_set(self._client, _INFLIGHT)

    def _reason(self, code: int) -> str:
        return str(self._lib.mosquitto_strerror(code).decode("utf-8", "replace")).rstrip(".")

    def _check(self, code: int, what: str, advice: str = "check [broker]") -> None:
        if code != MOSQ_ERR_SUCCESS:
            raise BackofficeError(f"libmosquitto could not {what}: {self._reason(code)}; {advice}")

    def start(self) -> None:
        """Connect in the background; libmosquitto's thread keeps the connection up."""
        self._connect()

    def _connect(self) -> None:
        # libmosquitto's thread reconnects after a lost connection, but gives up when the
        # first attempt fails (broker down at start): until one succeeds, retry() calls here.
        b = self.broker
        code = self._lib.mosquitto_connect_async(
            self._client, b.host.encode(), b.port, b.keepalive_s
        )
        if code != MOSQ_ERR_SUCCESS:
            if not self._warned:
                log.warning(
                    "cannot reach the broker at %s:%d yet: %s", b.host, b.port, self._reason(code)
                )
                self._warned = True
            return
        self._check(self._lib.mosquitto_loop_start(self._client), "start its network thread")
        self._started = True

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        """Send a message, or keep it (QoS 1 and 2) until the connection is back."""
        message = (topic.encode(), payload, qos)
        with self._waiting_lock:
            if self._waiting and qos:
                self._waiting.append(message)  # behind the ones already waiting, in order
                return
            if not self._send(message) and qos:
                self._waiting.append(message)

    def retry(self) -> None:
        """Connect if the first attempt failed; send what waits, in order, as far as it goes."""
        if not self._started:
            self._connect()
        with self._waiting_lock:
            while self._waiting and self._send(self._waiting[0]):
                self._waiting.popleft()

    def _send(self, message: tuple[bytes, bytes, int]) -> bool:
        """Hand one message to libmosquitto: False while it has no connection."""
        topic, payload, qos = message
        code = int(
            self._lib.mosquitto_publish(
                self._client, None, topic, len(payload), payload, qos, False
            )
        )
        if code not in (MOSQ_ERR_SUCCESS, MOSQ_ERR_NO_CONN):
            # A message libmosquitto refuses for good (too big, bad topic): not kept.
            log.warning("could not publish on %s: %s", topic[:200], self._reason(code))
        return code != MOSQ_ERR_NO_CONN

    def stop(self) -> None:
        """Disconnect (what is already queued goes out first) and free the client."""
        if self._started:
            self._lib.mosquitto_disconnect(self._client)
            self._lib.mosquitto_loop_stop(self._client, False)
            self._started = False
        if self._client:
            self._lib.mosquitto_destroy(self._client)
            self._client = None


def _text(value: str) -> bytes | None:
    return value.encode() if value else None
