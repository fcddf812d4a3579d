"""MQTT ingest: store what terminals publish, exactly once, and acknowledge stored records.

Owns the meaning of each incoming message for the store: terminal state, health history,
events, signed outbox records (idempotent on (station, terminal, seq)), command results,
chain continuity (rollback, clone) and liveness (offline by silence, outbox gaps). An
outbox record is acknowledged ({"upto_seq"}) only after the transaction holding it has
committed, so a crash between the two makes the terminal resend, never lose, a record.
Messages are checked without the database by backoffice.ingest_check (in a receiving
process of their own under MqttIngest); here one worker applies them in batches, each to
its terminals' rows read once, and writes each table once per batch (docs/backoffice.md,
"Ingest").
"""

import fcntl
import gc
import logging
import marshal
import multiprocessing
import os
import select
import signal
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from types import FrameType
from typing import Any, BinaryIO

from backoffice.alerts import BatchAlerts, clear_alert, raise_alert
from backoffice.config import BrokerConfig, Thresholds
from backoffice.contract import TERMINAL_KINDS, fast_validator_for, topic_for
from backoffice.errors import StoreError
from backoffice.ingest_check import (
    RECORD_COLUMNS,
    Intent,
    check_message,
    check_messages,
)
from backoffice.mqtt_publish import MosquittoPublisher
from backoffice.mqtt_subscribe import MqttSubscriber, SubscriberError
from backoffice.store import Cursor, Store, key_chunks, key_table, row_values

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, int], None]
Key = tuple[str, str]  # (station, terminal)
# Messages per batch at most: one transaction, one synchronous commit. A backlog drains in
# big batches (a terminal's many heartbeats become one row update).
BATCH_LIMIT = 5000
# A boot's `boots.last_seen` is refreshed at most this often (the terminal's own last_seen
# is exact): a backlog's many heartbeats of one boot, batch after batch, make one write.
BOOT_REFRESH_S = 60.0
# Under a backlog a batch starts at most this long after the previous one started, taking
# what came meanwhile: a terminal's heartbeats coalesce into one row update and there are
# fewer commits (storing the bench's stream costs 18-19 µs of processor time a message in
# batches of 300-1,500, 12 µs in batches of 5,000). A trickle is stored as it comes.
BATCH_INTERVAL_S = 0.02
# Keys per row-value query (3 parameters each at most): far under both engines' limits.
_INSERT_RECORD = (
    f"INSERT INTO records ({', '.join(RECORD_COLUMNS)}, received) "
    f"VALUES {row_values(1, len(RECORD_COLUMNS) + 1)} ON CONFLICT DO NOTHING"
)
# A blob of intents on the pipe from the receiving process: its length, then marshal data.
_BLOB_HEADER = struct.Struct("<I")
_PIPE_BYTES = 1 << 20  # Linux lets an unprivileged process grow a pipe to 1 MiB


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
        # The terminals' rows and the open alerts known, as the last batch left them, valid
        # while the store says that nothing else has written since (Store.change_mark):
        # then a batch reads neither again.
        self._terminals: dict[Key, _Terminal] = {}
        self._alerts: BatchAlerts | None = None
        self._mark: object = None
        self._committed = threading.Condition()  # notified after each batch's commit

    # ----------------------------------------------------------------- messages

    def handle_batch(self, messages: Iterable[tuple[str, bytes]]) -> None:
        """Check and store a batch of (topic, payload) in one transaction, then acknowledge
        the records it holds."""
        self.apply_batch([check_message(t, p, self.thresholds) for t, p in messages])

    def apply_batch(self, intents: Sequence[Intent]) -> None:
        """Store checked messages (backoffice.ingest_check) in one transaction, then
        acknowledge the records they hold."""
        now = self._clock()
        stats = self.stats
        stats.messages += len(intents)
        kinds = Counter(map(itemgetter(0), intents))  # counted in C: most batches hold no
        applied: Sequence[Intent] = intents  # refusal, and then need no loop here at all
        rejected: list[tuple[float, str, str]] = []
        if "rejected" in kinds or "skip" in kinds:
            applied = [intent for intent in intents if intent[0] not in ("rejected", "skip")]
            for intent in intents:
                if intent[0] == "rejected":
                    _, topic, reason = intent
                    stats.rejected += 1
                    stats.last_reject = reason
                    log.warning("rejected a message on %s: %s", topic, reason)
                    rejected.append((now, topic, reason))
        for kind, count in kinds.items():
            if kind != "rejected" and kind != "skip":
                stats.by_kind[kind] = stats.by_kind.get(kind, 0) + count
        try:
            with self.store.transaction() as cursor:
                if self.store.change_mark() == self._mark:
                    batch = _Batch(self, cursor, now, self._terminals, self._alerts)
                else:
                    batch = _Batch(self, cursor, now, {}, None)
                acks = batch.apply(applied) if applied else []
                cursor.executemany(
                    "INSERT INTO rejected (received, topic, reason) VALUES (?, ?, ?)", rejected
                )
                self._terminals, self._alerts = batch.terminals, batch.alerts
                self._mark = self.store.change_mark()
        except BaseException:
            # Read every row and open alert again next time.
            self._terminals, self._alerts, self._mark = {}, None, None
            raise
        stats.batches += 1
        with self._committed:
            stats.committed += len(intents)
            self._committed.notify_all()
        for (station, terminal), upto in acks:
            body = b'{"v":1,"upto_seq":%d}' % upto
            self._publish(topic_for(station, terminal, "ack"), body, 1)
            stats.acks_sent += 1

    def wait_committed(self, count: int, timeout_s: float) -> bool:
        """Wait until `count` messages in all have had their batch committed (False after
        timeout_s): the moment a drain ends, without polling."""
        with self._committed:
            return self._committed.wait_for(lambda: self.stats.committed >= count, timeout_s)

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
            # Gaps: an online terminal announced a backlog after its last record, and no
            # record has come for gap_after_s since that record or since it came online,
            # whichever is later (a terminal back from an outage gets time to upload).
            # Decided in SQL, so a fleet without gaps costs two reads and no write.
            waiting = cursor.execute(
                "SELECT station, terminal, outbox_backlog FROM terminals "
                "WHERE state = 'online' AND outbox_backlog > 0 AND health_at IS NOT NULL "
                "AND health_at > COALESCE(last_outbox_at, 0) "
                "AND ? - CASE WHEN COALESCE(last_outbox_at, 0) > COALESCE(state_at, 0) "
                "THEN COALESCE(last_outbox_at, 0) ELSE COALESCE(state_at, 0) END > ?",
                (now, limit.gap_after_s),
            )
            gaps = {(row["station"], row["terminal"]): row["outbox_backlog"] for row in waiting}
            open_gaps = cursor.execute(
                "SELECT a.station, a.terminal FROM alerts a JOIN terminals t "
                "ON t.station = a.station AND t.terminal = a.terminal "
                "WHERE a.kind = 'gap' AND a.cleared IS NULL "
                "AND t.state = 'online'"
            )
            opened = {(row["station"], row["terminal"]) for row in open_gaps}
            for station, terminal in sorted(gaps.keys() - opened):
                detail = f"{gaps[station, terminal]} records announced but not received"
                raise_alert(cursor, station, terminal, "gap", detail, now)
            for station, terminal in sorted(opened - gaps.keys()):
                clear_alert(cursor, station, terminal, "gap", now)


_UNSET: Any = object()  # a column no message of the batch has set


class _Terminal:
    """A terminal's row during a batch: the columns the rules read, and every column changed.

    Only these few are read (fetching the row's text columns costs more than the rules);
    the changes are written back in one UPDATE at the end of the batch.
    max_record_seq, the highest seq of the terminal's stored records (-1: none), is read
    with the row and follows the records the batch stores: a record or a heartbeat's chain
    seq above it is certainly not stored, so the batch need not look its hash up.
    boot_stored is the boot id whose `boots` row this worker has written (None: not known),
    at boot_written (the batch's time), so a later batch refreshes that row's last_seen
    only once BOOT_REFRESH_S have passed, instead of inserting it again.

    Heartbeats are most messages: what the last one of the batch leaves (chain, turnover,
    the boot heard) is kept in plain attributes and becomes columns only when the row is
    written, instead of a handful of dictionary stores per heartbeat.
    """

    __slots__ = (
        "state",
        "boot_id",
        "max_chain_seq",
        "acked_seq",
        "max_record_seq",
        "boot_stored",
        "boot_written",
        "changes",
        "chain",
        "turnover_fen",
        "boot_heard",
    )

    def __init__(
        self,
        state: str,
        boot_id: str | None,
        max_chain_seq: int,
        acked_seq: int,
        max_record_seq: int,
    ) -> None:
        self.state = state
        self.boot_id = boot_id
        self.max_chain_seq = max_chain_seq
        self.acked_seq = acked_seq
        self.max_record_seq = max_record_seq
        self.boot_stored: str | None = None
        self.boot_written = 0.0
        self.changes: dict[str, Any] = {}
        self.chain: tuple[int, str] | None = None  # the batch's last heartbeat's (seq, hash)
        self.turnover_fen: Any = _UNSET  # its last turnover counter given
        self.boot_heard: str | None = None  # the boot id the batch last added to its boots


class _Batch:
    """One batch applied to its terminals' rows in memory, then written in a few statements.

    In the batch's transaction it reads, once, the rows of the terminals the batch speaks
    for (locked with FOR UPDATE on PostgreSQL, so another ingest worker waits for them; a
    SQLite write transaction is the only writer anyway), the stored hashes of the records
    the batch names, and the open alerts of the terminals whose health or events can clear
    one. It then takes every message in order, as one statement per message would: what a
    message reads is what the messages before it left. Last, it writes each table once:
    the terminals' changed columns (a terminal's many heartbeats become one update),
    records, health history, events, boots, alert changes in their order, and acks.
    """

    def __init__(
        self,
        ingestor: Ingestor,
        cursor: Cursor,
        now: float,
        known: dict[Key, "_Terminal"],
        alerts: BatchAlerts | None,
    ) -> None:
        self.ingestor = ingestor
        self.cursor = cursor
        self.now = now
        self.lock = " FOR UPDATE OF t" if ingestor.store.dialect == "postgresql" else ""
        # Rows as the previous batch left them (when nothing else wrote since), then these.
        self.terminals: dict[Key, _Terminal] = dict(known)
        self.hashes: dict[tuple[str, str, int], str] = {}  # stored, or stored by this batch
        # The open alerts the previous batch knew (and wrote), when nothing else wrote since.
        self.alerts = alerts if alerts is not None else BatchAlerts()
        self.boots: set[tuple[str, str, str]] = set()
        self.records: list[tuple[Any, ...]] = []
        # Per terminal storing records: its max_record_seq before the batch, and the
        # (seq, prev_seq) of the records the batch stores.
        self.new_records: dict[Key, tuple[int, list[tuple[int, int]]]] = {}
        self.health: list[tuple[Any, ...]] = []
        self.events: list[tuple[Any, ...]] = []
        self.outbox_terminals: set[Key] = set()

    def apply(self, intents: Sequence[Intent]) -> list[tuple[Key, int]]:
        """Apply the checked messages; return each outbox terminal's ack to publish."""
        self._load(intents)
        handlers: dict[str, Callable[[Intent], None]] = {
            "health": self._on_health,
            "outbox": self._on_outbox,
            "status": self._on_status,
            "event": self._on_event,
            "cmd_result": self._on_cmd_result,
        }
        heartbeat = self._on_heartbeat
        for intent in intents:
            if intent[0] == "heartbeat":
                heartbeat(intent)
            else:
                handlers[intent[0]](intent)
        return self._write()

    # ------------------------------------------------------------- reading once

    def _load(self, intents: Sequence[Intent]) -> None:
        # One comprehension per question: each runs at C speed over the batch.
        keys = {(i[1], i[2]) for i in intents if i[0] != "cmd_result"}  # its row only
        clearing = {(i[1], i[2]) for i in intents if i[0] == "health" or i[0] == "event"}
        self._load_terminals(keys)
        terminals = self.terminals
        # A record a heartbeat or an outbox message names; only a seq at or below the
        # terminal's highest stored one can name a stored record.
        named = {
            (i[1], i[2], i[4] if i[0] == "heartbeat" else i[3])
            for i in intents
            if (i[0] == "heartbeat" and i[4] <= terminals[i[1], i[2]].max_record_seq)
            or (i[0] == "outbox" and i[3] <= terminals[i[1], i[2]].max_record_seq)
        }
        for chunk in key_chunks(sorted(named)):
            rows = self.cursor.execute(
                f"SELECT r.station, r.terminal, r.seq, r.record_hash FROM {key_table(chunk)} "
                "JOIN records r ON r.station = k.column1 AND r.terminal = k.column2 "
                "AND r.seq = k.column3",
                [value for key in chunk for value in key],
            )
            for row in rows:
                self.hashes[(row["station"], row["terminal"], row["seq"])] = row["record_hash"]
        self.alerts.load_open(self.cursor, clearing)

    def _load_terminals(self, keys: set[Key]) -> None:
        """Read (and on PostgreSQL lock, in key order: no deadlock between two workers) the
        rows of these terminals not known yet, creating the rows of terminals never seen."""
        self._select_terminals(sorted(keys - self.terminals.keys()))
        missing = sorted(keys - self.terminals.keys())
        if missing:
            self.cursor.executemany(
                "INSERT INTO terminals (station, terminal) VALUES (?, ?) "
                "ON CONFLICT (station, terminal) DO NOTHING",
                missing,
            )
            self._select_terminals(missing)

    def _select_terminals(self, keys: list[Key]) -> None:
        for chunk in key_chunks(keys):
            rows = self.cursor.execute(
                "SELECT t.station, t.terminal, t.state, t.boot_id, t.max_chain_seq, t.acked_seq, "
                "COALESCE((SELECT MAX(r.seq) FROM records r WHERE r.station = t.station "
                "AND r.terminal = t.terminal), -1) AS max_record_seq "
                f"FROM {key_table(chunk)} JOIN terminals t "
                "ON t.station = k.column1 AND t.terminal = k.column2 "
                f"ORDER BY t.station, t.terminal{self.lock}",
                [value for key in chunk for value in key],
            )
            for row in rows:
                self.terminals[(row["station"], row["terminal"])] = _Terminal(
                    row["state"],
                    row["boot_id"],
                    row["max_chain_seq"],
                    row["acked_seq"],
                    row["max_record_seq"],
                )

    # ------------------------------------------------------------- each message

    def _alive(self, station: str, terminal: str) -> _Terminal:
        """A message from the terminal itself: it is alive now (and online if it was not)."""
        row = self.terminals[(station, terminal)]
        changes = row.changes
        if row.state != "online":
            row.state = changes["state"] = "online"
            changes["state_at"], changes["state_reason"] = self.now, None
            self.alerts.clear_alerts(station, terminal, ["offline"], self.now)
        changes["last_seen"] = self.now
        return row

    def _on_heartbeat(self, intent: Intent) -> None:
        _, station, terminal, boot_id, chain_seq, chain_hash, turnover_fen = intent
        row = self.terminals[(station, terminal)]
        if row.boot_id != boot_id and row.boot_id is not None:
            if self._known_boot(station, terminal, boot_id):
                # A -> B -> A: an earlier boot is still talking, so two machines share one id.
                detail = f"boots {row.boot_id} and {boot_id} send heartbeats in turn"
                self.alerts.raise_alert(station, terminal, "clone", detail, self.now)
        max_chain_seq = row.max_chain_seq
        if chain_seq < max_chain_seq:
            detail = f"journal head went back from {max_chain_seq} to {chain_seq}"
            self.alerts.raise_alert(station, terminal, "rollback", detail, self.now)
        elif chain_seq > max_chain_seq:
            row.max_chain_seq = chain_seq
        if chain_seq <= row.max_record_seq:  # above it, no record is stored to compare
            held_hash = self.hashes.get((station, terminal, chain_seq))
            if held_hash is not None and held_hash != chain_hash:
                detail = f"journal record {chain_seq} has another hash than the one received"
                self.alerts.raise_alert(station, terminal, "clone", detail, self.now)
        if row.state != "online":
            self._alive(station, terminal)
        row.boot_id = boot_id
        row.chain = (chain_seq, chain_hash)
        if turnover_fen is not None:
            row.turnover_fen = turnover_fen
        if boot_id != row.boot_heard:
            self.boots.add((station, terminal, boot_id))
            row.boot_heard = boot_id

    def _known_boot(self, station: str, terminal: str, boot_id: str) -> bool:
        """Whether this boot id was seen before (asked only when the boot id changes)."""
        if (station, terminal, boot_id) in self.boots:
            return True
        return bool(
            self.cursor.execute(
                "SELECT 1 FROM boots WHERE station = ? AND terminal = ? AND boot_id = ?",
                (station, terminal, boot_id),
            )
        )

    def _on_status(self, intent: Intent) -> None:
        _, station, terminal, online, reason, software, firmware, boot_id = intent
        if online:
            row = self._alive(station, terminal)
            if software is not None:
                row.changes["software"] = software
            if firmware is not None:
                row.changes["firmware"] = firmware
            if boot_id is not None:
                row.boot_id = row.changes["boot_id"] = boot_id
            return
        row = self.terminals[(station, terminal)]
        row.state = row.changes["state"] = "offline"
        row.changes["state_reason"], row.changes["state_at"] = reason, self.now
        detail = "last will: connection lost" if reason == "lost" else f"offline: {reason}"
        self.alerts.raise_alert(station, terminal, "offline", detail, self.now)

    def _on_health(self, intent: Intent) -> None:
        _, station, terminal, sent, paper, balance, days, backlog, payload = intent[:9]
        software, firmware, alert_changes = intent[9:]
        changes = self._alive(station, terminal).changes
        changes["paper"], changes["float_balance_fen"], changes["cert_days_left"] = (
            paper,
            balance,
            days,
        )
        # The report itself goes to health_history only: a copy in the terminal's row
        # made every batch rewrite twice the pages (the row is rewritten for heartbeats).
        changes["outbox_backlog"], changes["health_at"] = backlog, self.now
        if software is not None:
            changes["software"] = software
        if firmware is not None:
            changes["firmware"] = firmware
        self.health.append(
            (station, terminal, self.now, sent, paper, balance, days, backlog, payload)
        )
        self._decided(station, terminal, alert_changes)

    def _decided(self, station: str, terminal: str, alert_changes: Iterable[Intent]) -> None:
        """The alert changes the rules decided from the message alone, in their order (a run
        of clears in one call: a health report clears five kinds or so)."""
        clears: list[str] = []
        for change in alert_changes:
            if change[0] == "raise":
                if clears:
                    self.alerts.clear_alerts(station, terminal, clears, self.now)
                    clears = []
                self.alerts.raise_alert(station, terminal, change[1], change[2], self.now)
            else:
                clears.append(change[1])
        if clears:
            self.alerts.clear_alerts(station, terminal, clears, self.now)

    def _on_event(self, intent: Intent) -> None:
        _, station, terminal, sent, kind, data_json, alert_changes = intent
        self._alive(station, terminal)
        self.events.append((station, terminal, self.now, sent, kind, data_json))
        self._decided(station, terminal, alert_changes)

    def _on_cmd_result(self, intent: Intent) -> None:
        _, station, terminal, result_ok, result_json, error, command_id = intent
        self.cursor.execute(
            "UPDATE commands SET result_ok = ?, result = ?, error = ?, result_at = ? "
            "WHERE id = ? AND station = ? AND terminal = ?",
            (result_ok, result_json, error, self.now, command_id, station, terminal),
        )

    def _on_outbox(self, intent: Intent) -> None:
        _, station, terminal, seq, prev_seq, digest, record_row = intent
        row = self._alive(station, terminal)
        self.outbox_terminals.add((station, terminal))  # acknowledged even if a duplicate
        key = (station, terminal, seq)
        held = self.hashes.get(key)
        if held is None:
            self.hashes[key] = digest
            self.records.append((*record_row, self.now))
            mine = self.new_records.get((station, terminal))
            if mine is None:
                mine = self.new_records[(station, terminal)] = (row.max_record_seq, [])
            mine[1].append((seq, prev_seq))
            row.max_record_seq = max(row.max_record_seq, seq)
            row.changes["last_outbox_at"] = self.now
            self.ingestor.stats.records_stored += 1
            return
        self.ingestor.stats.duplicates += 1
        if held != digest:
            detail = f"two different journal records {seq} arrived for one terminal"
            self.alerts.raise_alert(station, terminal, "clone", detail, self.now)

    # ------------------------------------------------------------- writing once

    def _write(self) -> list[tuple[Key, int]]:
        cursor = self.cursor
        stored = cursor.executemany(_INSERT_RECORD, self.records)
        if stored != len(self.records):
            # Cannot happen while every writer of records holds its terminal's row (above);
            # if it did, a record stored by someone else would be acknowledged unchecked.
            raise StoreError(
                f"{len(self.records) - stored} records appeared while this batch held their "
                "terminals: is another program writing the records table?"
            )
        cursor.executemany(
            "INSERT INTO health_history (station, terminal, received, time, paper, "
            "float_balance_fen, cert_days_left, outbox_backlog, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self.health,
        )
        cursor.executemany(
            "INSERT INTO events (station, terminal, received, time, kind, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            self.events,
        )
        self._write_boots()
        self.alerts.write(cursor)
        acks = self._advance_acks()
        self._write_terminals()
        return acks

    def _write_boots(self) -> None:
        """Each boot heard in the batch is seen now: nothing to write for a boot whose row
        this worker wrote less than BOOT_REFRESH_S ago, an UPDATE of the other rows it wrote
        (a third cheaper than an upsert), an upsert of the rest."""
        now, terminals = self.now, self.terminals
        fresh, known = set(), []
        for key in self.boots:
            row = terminals[key[0], key[1]]
            if row.boot_stored == key[2]:
                if now - row.boot_written < BOOT_REFRESH_S:
                    fresh.add(key)
                else:
                    known.append((now, *key))
        if known:
            updated = self.cursor.executemany(
                "UPDATE boots SET last_seen = ? WHERE station = ? AND terminal = ? AND boot_id = ?",
                known,
            )
            if updated != len(known):  # a row went (only if someone deleted it): upsert all
                known = []
        written = {(station, terminal, boot_id) for _, station, terminal, boot_id in known}
        self.cursor.executemany(
            "INSERT INTO boots (station, terminal, boot_id, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (station, terminal, boot_id) DO UPDATE SET "
            "last_seen = excluded.last_seen",
            [(*key, now, now) for key in self.boots if key not in written and key not in fresh],
        )
        for station, terminal, boot_id in self.boots:
            row = terminals[station, terminal]
            if row.boot_id == boot_id and (station, terminal, boot_id) not in fresh:
                row.boot_stored, row.boot_written = boot_id, now

    def _advance_acks(self) -> list[tuple[Key, int]]:
        """Each outbox terminal's new ack, walked over its records above its last ack."""
        above: dict[Key, list[tuple[int, int]]] = {}
        stored_above: list[Key] = []  # terminals with records stored above their ack before
        for key in self.outbox_terminals:
            terminal = self.terminals[key]
            before, mine = self.new_records.get(key, (terminal.max_record_seq, []))
            if before > terminal.acked_seq:
                stored_above.append(key)
            else:  # above the ack, only what this batch stores
                above[key] = sorted(record for record in mine if record[0] > terminal.acked_seq)
        for chunk in key_chunks(sorted(stored_above)):
            rows = self.cursor.execute(
                f"SELECT r.station, r.terminal, r.seq, r.prev_seq FROM {key_table(chunk)} "
                "JOIN terminals t ON t.station = k.column1 AND t.terminal = k.column2 "
                "JOIN records r ON r.station = t.station AND r.terminal = t.terminal "
                "AND r.seq > t.acked_seq ORDER BY r.station, r.terminal, r.seq",
                [value for key in chunk for value in key],
            )
            for row in rows:
                key = (row["station"], row["terminal"])
                above.setdefault(key, []).append((row["seq"], row["prev_seq"]))
        acks = []
        for key in sorted(self.outbox_terminals):
            terminal = self.terminals[key]
            upto = walk_ack(terminal.acked_seq, above.get(key, []))
            if upto != terminal.acked_seq:
                terminal.acked_seq = terminal.changes["acked_seq"] = upto
            acks.append((key, upto))
        return acks

    def _write_terminals(self) -> None:
        """One UPDATE per set of changed columns (a few sets: heartbeat only, with health...)."""
        now = self.now
        beats: list[tuple[Any, ...]] = []  # rows only heartbeats changed, the most common
        by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for key, row in self.terminals.items():
            changes, chain = row.changes, row.chain
            if chain is not None:
                turnover_fen = row.turnover_fen
                if not changes and turnover_fen is not _UNSET:
                    beats.append((now, row.boot_id, *chain, row.max_chain_seq, turnover_fen, *key))
                    row.chain, row.turnover_fen, row.boot_heard = None, _UNSET, None
                    continue
                changes["last_seen"], changes["boot_id"] = now, row.boot_id
                changes["chain_seq"], changes["chain_hash"] = chain
                changes["max_chain_seq"] = row.max_chain_seq
                if turnover_fen is not _UNSET:
                    changes["turnover_fen"] = turnover_fen
                row.chain, row.turnover_fen = None, _UNSET
            row.boot_heard = None
            if not changes:
                continue
            columns = tuple(sorted(changes))
            values = (*[changes[name] for name in columns], *key)
            by_columns.setdefault(columns, []).append(values)
            row.changes = {}  # written: the row now holds them
        self.cursor.executemany(
            "UPDATE terminals SET last_seen = ?, boot_id = ?, chain_seq = ?, chain_hash = ?, "
            "max_chain_seq = ?, turnover_fen = ? WHERE station = ? AND terminal = ?",
            beats,
        )
        for columns, rows in by_columns.items():
            assignments = ", ".join(f"{name} = ?" for name in columns)
            self.cursor.executemany(
                f"UPDATE terminals SET {assignments} WHERE station = ? AND terminal = ?", rows
            )


def walk_ack(acked_seq: int, above: Iterable[tuple[int, int]]) -> int:
    """The highest seq up to which every outbox record is stored, from the last ack and the
    (seq, prev_seq) of the stored records above it in seq order (docs/backoffice.md,
    "Acknowledgement").

    Journal seqs are not consecutive among outbox records, so each record's `prev_seq`
    (the seq of the terminal's previous outbox record, 0 for its first) says whether the
    run from the last ack reaches it without a hole. With several ingest workers on a
    shared subscription, a hole is a record another worker has not committed yet; the ack
    waits for it, whatever this worker has stored beyond it.
    """
    upto = acked_seq
    for seq, prev_seq in above:
        # prev_seq <= upto: everything up to this record's predecessor is stored, and the
        # terminal has no outbox record between the two.
        if prev_seq > upto:
            break
        upto = int(seq)
    return upto


def ack_point(cursor: Cursor, station: str, terminal: str) -> int:
    """Advance and return one terminal's ack (walk_ack) in the store, never backwards."""
    rows = cursor.execute(
        "SELECT t.acked_seq, r.seq, r.prev_seq FROM terminals t LEFT JOIN records r "
        "ON r.station = t.station AND r.terminal = t.terminal AND r.seq > t.acked_seq "
        "WHERE t.station = ? AND t.terminal = ? ORDER BY r.seq LIMIT 10000",
        (station, terminal),
    )
    if not rows:
        return 0
    above = [(row["seq"], row["prev_seq"]) for row in rows if row["seq"] is not None]
    upto = walk_ack(int(rows[0]["acked_seq"]), above)
    # Never backwards: another worker may have moved the ack further meanwhile.
    moved = cursor.execute(
        "UPDATE terminals SET acked_seq = CASE WHEN acked_seq > ? THEN acked_seq ELSE ? END "
        "WHERE station = ? AND terminal = ? RETURNING acked_seq",
        (upto, upto, station, terminal),
    )
    return int(moved[0]["acked_seq"])


class MqttIngest:
    """Receive and check in a process of its own, store in batches, acknowledge records.

    A receiving process forked from this one holds the persistent session
    (backoffice.mqtt_subscribe, a QoS 1 subscriber that reads a socket buffer at a time),
    connecting again a second after each loss, checks each message
    (backoffice.ingest_check: JSON, schema, record rules, hash), and writes the intents
    to a pipe as marshal blobs; one worker thread here reads them and stores them in
    batches (no reader thread: it only fought the worker for the interpreter lock, and the
    pipe is the queue). Checking and storing then use both processor cores, and the
    storing process never parses JSON (docs/backoffice.md, "Ingest").

    The receiving process acknowledges messages to the broker (PUBACK) once it has written
    their intents to the pipe, before they are stored: that loses nothing that matters,
    because outbox records are acknowledged at the application level ({"upto_seq"}, only
    after the commit) and the terminal resends until then, while heartbeats, health and
    events are transient by contract and come again. A full pipe stops the receiving
    process reading, so the broker queues instead of this process's memory.

    The record acknowledgements of each batch go back to the receiving process on a
    second pipe, once the batch has committed, and out on its connection (QoS 1, sent
    again after a reconnection until the broker confirms them): an acknowledgement costs
    about a microsecond there, against 10-15 for a libmosquitto client's calls and its
    network thread (docs/backoffice.md, "Acknowledgement"). Commands from the dashboard go
    out through a libmosquitto client of their own (backoffice.mqtt_publish).
    """

    def __init__(
        self,
        store: Store,
        broker: BrokerConfig,
        thresholds: Thresholds,
        *,
        liveness_every_s: float = 1.0,
    ) -> None:
        self.broker = broker
        self.client = MosquittoPublisher(broker, f"{broker.client_id}-pub")
        # Made here so unreadable TLS files fail at start, in this process.
        self.subscriber = MqttSubscriber(broker, self.subscriptions(), broker.client_id)
        self.ingestor = Ingestor(store, thresholds, self._queue_ack)
        self._acks: list[tuple[str, bytes]] = []  # the batch's, for the receiving process
        self._ack_writer: _AckWriter | None = None
        for kind in TERMINAL_KINDS:
            # Compiled here, once: a broken schema fails at start, and every receiving
            # process forked later has them instead of compiling on its first messages.
            fast_validator_for(kind)
        # Set once the broker has answered the receiving process's SUBSCRIBE.
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._liveness_every_s = liveness_every_s
        self._receiver: multiprocessing.process.BaseProcess | None = None
        self._intents: int | None = None  # the pipe from the receiving process
        self._lifeline = -1  # held open while this process lives (see _receive)
        self._worker = threading.Thread(target=self._work, name="ingest-worker", daemon=True)
        self._retrier = threading.Thread(target=self._retry, name="ingest-retry", daemon=True)

    def subscriptions(self) -> list[str]:
        prefix = f"$share/{self.broker.shared_group}/" if self.broker.shared_group else ""
        return [f"{prefix}kiosk/v1/+/+/{kind}" for kind in TERMINAL_KINDS]

    def start(self) -> None:
        _tune_collector()  # before the fork: the receiving process inherits the frozen heap
        intents_out, intents_in = os.pipe()
        _grow_pipe(intents_in)
        acks_out, acks_in = os.pipe()
        _grow_pipe(acks_in)
        lifeline_out, self._lifeline = os.pipe()
        # Forked, not spawned: the child has every module loaded already and starts in
        # milliseconds. It runs only _receive (no store, no MQTT client of this process's).
        receiver = multiprocessing.get_context("fork").Process(
            target=self._receive,
            args=(intents_out, intents_in, lifeline_out, acks_out, acks_in),
            name="ingest-receiver",
            daemon=True,  # ended (by SIGTERM, see _receive) if this process exits unstopped
        )
        receiver.start()
        os.close(intents_in)
        os.close(lifeline_out)
        os.close(acks_out)
        self._ack_writer = _AckWriter(acks_in)
        self._receiver = receiver
        self._intents = intents_out
        self.client.start()
        self._retrier.start()
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        receiver = self._receiver
        if receiver is not None and receiver.is_alive() and receiver.pid is not None:
            # It passes on what was already read, publishes the acknowledgements of its
            # storing, and disconnects cleanly (the session stays) before it exits.
            os.kill(receiver.pid, signal.SIGTERM)
        self._worker.join(timeout=30)  # stores what was already read before it ends
        self._retrier.join(timeout=5)
        if receiver is not None:
            receiver.join(timeout=10)
            os.close(self._lifeline)
        if self._intents is not None and not self._worker.is_alive():
            os.close(self._intents)
            self._intents = None
        self.client.stop()

    def receiver_pid(self) -> int:
        """The receiving process's id (0 before start): for measuring, as the bench does."""
        return (self._receiver.pid or 0) if self._receiver is not None else 0

    def thread_ids(self) -> dict[str, int]:
        """This process's ingest threads by role, as native thread ids (for measuring)."""
        threads = {"worker": self._worker.native_id, "retry": self._retrier.native_id}
        checkpointer = self.ingestor.store.checkpointer
        if checkpointer is not None:
            threads["checkpoint"] = checkpointer.native_id
        return {f"{name} thread": native_id or 0 for name, native_id in threads.items()}

    def client_publish(self, topic: str, payload: bytes, qos: int) -> None:
        """Publish through the back office's own client (commands)."""
        self.client.publish(topic, payload, qos)

    def _queue_ack(self, topic: str, payload: bytes, qos: int) -> None:
        """The ingestor's publish: a committed batch's acknowledgements (QoS 1), gathered
        for the receiving process's connection."""
        self._acks.append((topic, payload))

    # ------------------------------------------------------------- receiving process

    def _receive(
        self, intents_out: int, intents_in: int, lifeline: int, acks_out: int, acks_in: int
    ) -> None:
        """The receiving process: hold the session, connecting again a second after each
        loss (or a broker unreachable at start), write the intents of its messages to the
        intents pipe and publish what comes on the acks pipe, until SIGTERM, or until this
        process ends (its lifeline pipe closes), whatever way it ends. Stopping, it passes
        on what it has read and publishes the acknowledgements of the last batches (until
        the worker closes the acks pipe) before it disconnects."""
        os.close(intents_out)
        os.close(acks_in)
        os.close(self._lifeline)  # this process's copy of the write end: the parent's alone
        pipe = os.fdopen(intents_in, "wb")
        acks = _BlobReader(acks_out)
        stopping = False

        def on_term(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        # The signal's byte on this pipe wakes the subscriber's wait at once.
        wake_out, wake_in = os.pipe()
        os.set_blocking(wake_in, False)
        signal.set_wakeup_fd(wake_in)
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        # Without this, a back office killed outright would leave this process holding the
        # client id, to fight the next one for the session.
        threading.Thread(target=_stop_when_closed, args=(lifeline,), daemon=True).start()
        thresholds, subscriber = self.ingestor.thresholds, self.subscriber

        def pause(seconds: float) -> None:
            """Wait this long (or for a signal) without a connection; acknowledgements
            that come meanwhile wait in the subscriber for the next one."""
            deadline = time.monotonic() + seconds
            while not stopping:
                left = max(0.0, deadline - time.monotonic())
                if not _pause(wake_out, left, -1 if acks.closed else acks.fd):
                    return
                _publish_acks(acks, subscriber)

        while not stopping:
            try:
                subscriber.connect()
            except (OSError, SubscriberError) as exc:
                log.warning("cannot connect to the broker (%s); trying again in 1 s", exc)
                pause(1.0)
                continue
            announced = False
            try:
                _send(pipe, [("restart",)])
                while not stopping:
                    messages = subscriber.read((wake_out,) if acks.closed else (wake_out, acks.fd))
                    if subscriber.subscribed and not announced:
                        _send(pipe, [("subscribed",)])
                        announced = True
                    if messages:
                        _send(pipe, check_messages(messages, thresholds))
                        subscriber.acknowledge()  # passed on: the broker may forget them
                    else:
                        _pause(wake_out, 0.0)  # woken by a signal: read its byte
                    _publish_acks(acks, subscriber)
            except _PassedOnNothing:
                break  # the back office process is gone: nothing to receive for
            except (OSError, SubscriberError) as exc:
                log.warning("lost the broker (%s); connecting again in 1 s", exc)
                subscriber.close()
                pause(1.0)
        try:
            pipe.close()  # the worker stores what came, then closes the acks pipe
        except OSError:
            pass  # the back office process is gone
        _finish_acks(acks, subscriber)
        subscriber.disconnect()  # cleanly: the broker keeps the session for the next start

    # ------------------------------------------------------------- this process

    def _retry(self) -> None:
        while not self._stop.wait(0.2):
            self.client.retry()  # acks and commands that waited for the connection

    def _work(self) -> None:
        """Store the receiving process's intents in batches until its pipe closes on a
        stop (what was read is stored first)."""
        assert self._intents is not None
        blobs = _BlobReader(self._intents)
        next_check = batch_started = 0.0
        reported = False  # that the receiving process ended without a stop
        while True:
            batch = self._gather(blobs, batch_started)
            batch_started = time.monotonic()
            if blobs.closed and not batch:
                if self._stop.is_set():
                    assert self._ack_writer is not None
                    self._ack_writer.close()  # the receiving process publishes the rest
                    return
                if not reported:
                    log.error("the receiving process ended: nothing is received until a restart")
                    reported = True
                self._stop.wait(self._liveness_every_s)  # liveness checks go on meanwhile
            try:
                if batch:
                    self.ingestor.apply_batch(batch)
                self._pass_acks()
                if time.monotonic() >= next_check and not self._stop.is_set():
                    self.ingestor.check_liveness()
                    next_check = time.monotonic() + self._liveness_every_s
            except Exception:
                # The batch is lost here, not its records: they were not acknowledged, so
                # their terminals send them again. Telemetry comes again with the next period.
                log.exception("ingest could not store a batch of %d messages", len(batch))
                time.sleep(1.0)

    def _pass_acks(self) -> None:
        """Hand the committed batch's acknowledgements to the receiving process (without
        waiting: what its pipe cannot take now goes with the next batch)."""
        assert self._ack_writer is not None
        acks, self._acks = self._acks, []
        self._ack_writer.write(acks)

    def _gather(self, blobs: "_BlobReader", previous_start: float) -> list[Intent]:
        """The next batch: waiting up to 0.2 s for its first messages, then taking what
        comes until BATCH_INTERVAL_S after the previous batch started (at once when
        stopping), up to BATCH_LIMIT messages. Under a backlog, waiting a few
        milliseconds for more costs less than committing a few messages at a time."""
        batch: list[Intent] = []
        first_by = time.monotonic() + 0.2
        while len(batch) < BATCH_LIMIT and not blobs.closed:
            if not batch:
                wait = first_by - time.monotonic()
            elif self._stop.is_set():
                wait = 0.0
            else:
                wait = previous_start + BATCH_INTERVAL_S - time.monotonic()
            read = blobs.read(max(0.0, wait))
            if not read:
                break
            for intents in read:
                if intents[0][0] == "restart":
                    self.connected.clear()  # a new connection: subscribed once answered
                elif intents[0][0] == "subscribed":
                    self.connected.set()
                else:
                    batch.extend(intents)
        return batch


class _BlobReader:
    """Length-prefixed marshal blobs on a pipe: intents from the receiving process, or
    acknowledgements to it."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.closed = False
        self._buffer = b""

    def read(self, timeout: float) -> list[list[Intent]]:
        """The blobs that arrive within `timeout` seconds (what is there already, with 0),
        each a list of intents; [] when none did. At the end of the pipe, closed is set."""
        if not select.select([self.fd], [], [], timeout)[0]:
            return []
        chunk = os.read(self.fd, _PIPE_BYTES)
        if not chunk:
            self.closed = True
            if self._buffer:
                log.error("the pipe ended in the middle of a message: its writer is gone")
            return []
        data = self._buffer + chunk if self._buffer else chunk
        blobs, position = [], 0
        while len(data) - position >= _BLOB_HEADER.size:
            size = _BLOB_HEADER.unpack_from(data, position)[0]
            end = position + _BLOB_HEADER.size + size
            if end > len(data):
                break
            blobs.append(marshal.loads(data[position + _BLOB_HEADER.size : end]))
            position = end
        self._buffer = data[position:]
        return blobs

    def close(self) -> None:
        os.close(self.fd)


class _AckWriter:
    """The worker's end of the acks pipe: length-prefixed marshal blobs of (topic, payload),
    written without blocking. What the pipe cannot take yet waits here for the next write
    (the receiving process may be busy, or between connections), so the worker never
    waits for it and the two processes can never wait for each other."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self._pending = bytearray()
        self._gone = False

    def write(self, acks: list[tuple[str, bytes]]) -> None:
        if self._gone:
            return
        if acks:
            self._pending += _framed(acks)
        try:
            while self._pending:
                written = os.write(self.fd, self._pending)
                del self._pending[:written]
        except BlockingIOError:
            pass
        except BrokenPipeError:
            self._receiver_gone()

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what waits (for up to timeout_s), then close: the end of the acks."""
        deadline = time.monotonic() + timeout_s
        while self._pending and not self._gone:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self.fd], [], left)[1]:
                log.warning(
                    "%d bytes of acknowledgements not passed on at stop", len(self._pending)
                )
                break
            self.write([])
        os.close(self.fd)

    def _receiver_gone(self) -> None:
        # Lost acknowledgements lose nothing: their terminals send the records again,
        # and the store acknowledges duplicates.
        log.error("the receiving process is gone: acknowledgements wait for a restart")
        self._gone = True
        self._pending.clear()


def _publish_acks(acks: "_BlobReader", subscriber: MqttSubscriber, wait_s: float = 0.0) -> None:
    """In the receiving process: publish the acknowledgements that reach the acks pipe
    within wait_s (what it holds now, with 0)."""
    for blob in acks.read(wait_s):
        subscriber.publish(blob)


def _finish_acks(acks: "_BlobReader", subscriber: MqttSubscriber, timeout_s: float = 10.0) -> None:
    """Stopping: publish the acknowledgements the worker still sends, until it closes the
    pipe (or timeout_s, should it hang); without a connection they are lost, which only
    makes their terminals send the records again."""
    deadline = time.monotonic() + timeout_s
    while not acks.closed and time.monotonic() < deadline:
        try:
            _publish_acks(acks, subscriber, max(0.0, deadline - time.monotonic()))
        except (OSError, SubscriberError) as exc:
            log.warning("could not publish acknowledgements at stop (%s)", exc)
            subscriber.close()
    acks.close()


class _PassedOnNothing(Exception):
    """The pipe to the back office process is closed: that process is gone."""


def _framed(items: list[Any]) -> bytes:
    """One blob as _BlobReader reads it: its length, then the marshal data."""
    blob = marshal.dumps(items)
    return _BLOB_HEADER.pack(len(blob)) + blob


def _send(pipe: BinaryIO, intents: list[Intent]) -> None:
    try:
        pipe.write(_framed(intents))
        pipe.flush()
    except BrokenPipeError:
        raise _PassedOnNothing from None


def _tune_collector() -> None:
    """Set the cyclic garbage collector for a process that ingests.

    Freezing what is alive now (modules, schemas, configuration: it lives as long as the
    process) keeps every later full collection from walking it, and keeps the receiving
    process forked next from copying the pages a collection would touch (the recipe of
    gc.freeze's documentation). Ingest allocates hundreds of thousands of short-lived
    containers a second, almost none in cycles: a young generation of 20,000 instead of
    700 collects them 30 times less often. Measured in the bench's three ingest windows
    (1.1-1.5 s), the collector's time in both processes went from 65 ms to 7 ms.
    """
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _pause(wake: int, seconds: float, other: int = -1) -> bool:
    """Wait this long, or until a signal's byte arrives on `wake` (and read it), or until
    `other` (if given) becomes readable; return whether `other` did."""
    ready = select.select([wake] if other < 0 else [wake, other], [], [], seconds)[0]
    if wake in ready:
        os.read(wake, 64)
    return other in ready


def _stop_when_closed(lifeline: int) -> None:
    """In the receiving process: stop as on SIGTERM once the back office process is gone."""
    os.read(lifeline, 1)  # end of file: every copy of the write end is closed
    os.kill(os.getpid(), signal.SIGTERM)


def _grow_pipe(fd: int) -> None:
    """Let a pipe hold 1 MiB (Linux; default 64 KiB), so a busy reader does not stall the
    writer after a few hundred messages."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except OSError:
        pass  # over /proc/sys/fs/pipe-max-size: the default size still works, only slower
