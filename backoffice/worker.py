"""An ingest worker: MQTT messages in, stored in batches, acknowledged after the commit.

Owns the loop between the MQTT link (backoffice.mqtt_link) and the store's ingest
(backoffice.ingest): messages wait in a queue while a batch commits, the next batch takes
what came meanwhile, each message is checked (backoffice.messages), the batch is stored in
one transaction, and only then are its QoS 1 messages acknowledged to the broker and its
records' acks published. A worker keeps nothing between batches, so any number of them can
share one PostgreSQL database through the broker's shared subscription; a worker killed
mid-stream leaves its unacknowledged messages to the broker, which delivers them again
when it reconnects, and the terminals resend unacknowledged records anyway
(docs/backoffice.md, "Ingest").
"""

import logging
import queue
import threading
import time

from backoffice.config import BrokerConfig, Thresholds
from backoffice.contract import TERMINAL_KINDS, validator_for
from backoffice.errors import StoreUnavailable
from backoffice.ingest import Ingestor
from backoffice.messages import check_message
from backoffice.mqtt_link import MqttLink, Received
from backoffice.store import Store
from kiosk.telemetry.topics import terminal_filter

log = logging.getLogger(__name__)

# Messages per batch at most: one transaction, one durable commit.
BATCH_LIMIT = 5000
# How long a batch that failed for a reason other than an unreachable database is tried
# again before its messages are given up (acknowledged unstored; terminals resend records).
FAILED_BATCH_TRIES = 3


class MqttIngest:
    """One ingest worker: an MQTT session, a queue and a thread that stores batches."""

    def __init__(
        self,
        store: Store,
        broker: BrokerConfig,
        thresholds: Thresholds,
        *,
        client_id: str | None = None,
        liveness_every_s: float = 1.0,
    ) -> None:
        self.broker = broker
        for kind in TERMINAL_KINDS:
            validator_for(kind)  # compiled now: a broken schema fails at start
        self._queue: queue.SimpleQueue[Received] = queue.SimpleQueue()
        self.link = MqttLink(broker, self.subscriptions(), self._queue.put, client_id)
        self.ingestor = Ingestor(store, thresholds, self._publish_ack)
        self._stop = threading.Event()
        self._liveness_every_s = liveness_every_s
        self._worker = threading.Thread(target=self._work, name="ingest-worker", daemon=True)
        self.last_progress = time.monotonic()  # the worker's loop last went round (watchdog)

    @property
    def connected(self) -> threading.Event:
        """Set once the broker has answered the SUBSCRIBE of the current connection."""
        return self.link.subscribed

    def subscriptions(self) -> list[str]:
        return [terminal_filter(kind, self.broker.shared_group) for kind in TERMINAL_KINDS]

    def start(self) -> None:
        self.link.start()
        self._worker.start()

    def stop(self) -> None:
        """Store what was received, acknowledge it, then disconnect (the session stays)."""
        self._stop.set()
        self._worker.join(timeout=30)
        self.link.stop()

    def alive(self) -> bool:
        return self._worker.is_alive()

    def publish_command(self, topic: str, payload: bytes, expiry_s: int) -> None:
        """A signed command (QoS 1) that the broker drops once it has expired."""
        self.link.publish(topic, payload, 1, expiry_s)

    def _publish_ack(self, topic: str, payload: bytes, qos: int) -> None:
        self.link.publish(topic, payload, qos)

    # ------------------------------------------------------------- the worker thread

    def _work(self) -> None:
        next_check = 0.0
        while True:
            self.last_progress = time.monotonic()
            batch = self._gather()
            if batch:
                self._store(batch)
            elif self._stop.is_set():
                return
            if time.monotonic() >= next_check and not self._stop.is_set():
                try:
                    self.ingestor.check_liveness()
                except Exception:
                    log.exception("the liveness check failed; it runs again in a second")
                next_check = time.monotonic() + self._liveness_every_s

    def _gather(self) -> list[Received]:
        """The next batch: waiting up to 0.2 s for a first message, then what has come,
        up to BATCH_LIMIT. Under a backlog a batch is what came during the last commit."""
        try:
            batch = [self._queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(batch) < BATCH_LIMIT:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _store(self, batch: list[Received]) -> None:
        intents = [check_message(m.topic, m.payload, self.ingestor.thresholds) for m in batch]
        failures = 0
        while True:
            try:
                self.ingestor.apply_batch(intents)
                break
            except StoreUnavailable as exc:
                # Nothing was committed: try the same batch again until the database is
                # back. Unacknowledged, its messages stay the broker's meanwhile.
                log.warning("%s", exc)
                self.last_progress = time.monotonic()  # waiting, not stuck (watchdog)
                if self._stop.wait(1.0):
                    log.warning(
                        "stopping with %d messages not stored: the broker delivers them again",
                        len(batch),
                    )
                    return
            except Exception:
                failures += 1
                log.exception("ingest could not store a batch of %d messages", len(batch))
                if failures >= FAILED_BATCH_TRIES:
                    # Given up: outbox records were not acknowledged, so their terminals
                    # send them again; telemetry comes again with the next period.
                    break
                time.sleep(1.0)
        for message in batch:
            self.link.ack(message.mid, message.qos)
