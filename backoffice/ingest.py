"""Ingest's storing side: checked messages into the store, exactly once, and record acks.

Owns the meaning of each incoming message for the store: terminal state, health history,
events, outbox records (idempotent on (station, terminal, seq), each signature verified
against the terminal's registered certificate, a bad one quarantined with an alert), the
terminal's security records turned into alerts, command results, chain continuity
(rollback, clone) and liveness (offline by silence, outbox gaps). A batch of messages is
one transaction; an outbox record is acknowledged ({"upto_seq"}) only after it has
committed, so a crash between the two makes the terminal resend, never lose, a record.
Any number of ingest workers may share one PostgreSQL database: each batch locks its
terminals' rows (docs/backoffice.md, "Ingest"). It never speaks MQTT: backoffice.worker
hands it messages and publishes what it returns.
"""

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from backoffice.alerts import ALERT_KINDS, AlertKind, BatchAlerts, clear_alert, raise_alert
from backoffice.config import Thresholds
from backoffice.contract import topic_for
from backoffice.errors import StoreError
from backoffice.follow_up import COLUMNS as FOLLOW_UP_COLUMNS
from backoffice.follow_up import follow_up_row
from backoffice.maintenance import visit_row, write_visits
from backoffice.messages import (
    CommandResult,
    Event,
    Health,
    Heartbeat,
    Intent,
    OutboxRecord,
    Rejected,
    Skip,
    Status,
    check_message,
    check_outbox,
)
from backoffice.rollouts import apply_update_events, update_events
from backoffice.signatures import SignatureStatus, certificates_of, verdict
from backoffice.store import Cursor, Store, key_chunks, key_table
from kiosk.journal.record_types import BoardEventKind, RecordType
from kiosk.journal.verify import StationCertificate
from kiosk.telemetry.topics import TopicKind

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, int], None]
Key = tuple[str, str]  # (station, terminal)
RECORD_COLUMNS = (
    "station",
    "terminal",
    "seq",
    "type",
    "time",
    "business_day",
    "outcome",
    "service",
    "amount_fen",
    "fee_fen",
    "receipt_no",
    "record",
    "record_hash",
    "prev_seq",
    "received",
    "signature",
    "tx_id",
    "awaiting_claim",
)
QUARANTINE_COLUMNS = (
    "station",
    "terminal",
    "seq",
    "type",
    "record",
    "record_hash",
    "prev_seq",
    "reason",
    "received",
)
HEALTH_COLUMNS = (
    "station",
    "terminal",
    "received",
    "time",
    "paper",
    "float_balance_fen",
    "cert_days_left",
    "outbox_backlog",
    "payload",
)
EVENT_COLUMNS = ("station", "terminal", "received", "time", "kind", "data")
# Terminal records that become back-office alerts of a fixed kind.
_RECORD_ALERTS = {
    RecordType.CASH_SUSPENSE: AlertKind.CASH_SUSPENSE,
    RecordType.CARD_CREDIT_CONFLICT: AlertKind.CARD_CREDIT_CONFLICT,
}


@dataclass
class IngestStats:
    messages: int = 0
    rejected: int = 0
    records_stored: int = 0
    quarantined: int = 0
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
        self._committed = threading.Condition()  # notified after each batch's commit

    def handle_batch(self, messages: Iterable[tuple[str, bytes]]) -> None:
        """Check and store a batch of (topic, payload) in one transaction, then acknowledge
        the records it holds."""
        self.apply_batch([check_message(t, p, self.thresholds) for t, p in messages])

    def apply_batch(self, intents: Sequence[Intent]) -> None:
        """Store checked messages (backoffice.messages) in one transaction, then acknowledge
        the records they hold. Raises StoreUnavailable, having committed nothing, when the
        database cannot be reached: the caller may try the same batch again."""
        now = self._clock()
        applied = [i for i in intents if not isinstance(i, Rejected | Skip)]
        rejected = [(now, i.topic, i.reason) for i in intents if isinstance(i, Rejected)]
        with self.store.transaction() as cursor:
            batch = _Batch(self, cursor, now)
            acks = batch.apply(applied) if applied else []
            cursor.executemany(
                "INSERT INTO rejected (received, topic, reason) VALUES (?, ?, ?)", rejected
            )
        stats = self.stats
        stats.messages += len(intents)
        stats.records_stored += batch.stored
        stats.quarantined += batch.quarantined
        stats.duplicates += batch.duplicates
        for intent in intents:
            name = type(intent).__name__
            stats.by_kind[name] = stats.by_kind.get(name, 0) + 1
        for _, topic, reason in rejected:
            stats.rejected += 1
            stats.last_reject = reason
            log.warning("rejected a message on %s: %s", topic, reason)
        stats.batches += 1
        with self._committed:
            stats.committed += len(intents)
            self._committed.notify_all()
        for (station, terminal), upto in acks:
            body = json.dumps({"v": 1, "upto_seq": upto}, separators=(",", ":")).encode()
            self._publish(topic_for(station, terminal, TopicKind.ACK), body, 1)
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
                raise_alert(cursor, row["station"], row["terminal"], AlertKind.OFFLINE, detail, now)
            # Gaps: an online terminal announced a backlog after its last record, and no
            # record has come for gap_after_s since that record or since it came online,
            # whichever is later (a terminal back from an outage gets time to upload).
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
                "WHERE a.kind = 'gap' AND a.cleared IS NULL AND t.state = 'online'"
            )
            opened = {(row["station"], row["terminal"]) for row in open_gaps}
            for station, terminal in sorted(gaps.keys() - opened):
                detail = f"{gaps[station, terminal]} records announced but not received"
                raise_alert(cursor, station, terminal, AlertKind.GAP, detail, now)
            for station, terminal in sorted(opened - gaps.keys()):
                clear_alert(cursor, station, terminal, AlertKind.GAP, now)


@dataclass
class _Terminal:
    """A terminal's row during a batch: the columns the rules read, and every column changed
    (written back in one UPDATE at the end of the batch). max_record_seq is the highest seq
    of its stored or quarantined records (-1: none)."""

    state: str
    boot_id: str | None
    max_chain_seq: int
    acked_seq: int
    max_record_seq: int
    changes: dict[str, Any] = field(default_factory=dict)


class _Batch:
    """One batch applied to its terminals' rows in memory, then written in a few statements.

    In the batch's transaction it reads, once, the rows of the terminals the batch speaks
    for (locked with FOR UPDATE on PostgreSQL in key order, so another ingest worker waits
    for them and two never deadlock; a SQLite write transaction is the only writer anyway),
    the stored hashes of the records the batch names, the registered certificates of the
    terminals sending records, and the open alerts of the terminals whose health or events
    can clear one. It then takes every message in order, as one transaction per message
    would: what a message reads is what the messages before it left. Last, it writes each
    table once and walks each outbox terminal's ack.
    """

    def __init__(self, ingestor: Ingestor, cursor: Cursor, now: float) -> None:
        self.ingestor = ingestor
        self.cursor = cursor
        self.now = now
        self.lock = " FOR UPDATE OF t" if ingestor.store.dialect == "postgresql" else ""
        self.terminals: dict[Key, _Terminal] = {}
        self.hashes: dict[tuple[str, str, int], str] = {}  # stored, or stored by this batch
        self.certificates: dict[Key, dict[str, StationCertificate]] = {}
        self.alerts = BatchAlerts()
        self.new_boots: list[tuple[str, str, str]] = []
        self.records: list[tuple[Any, ...]] = []
        self.quarantine: list[tuple[Any, ...]] = []
        # Per terminal storing records: its max_record_seq before the batch, and the
        # (seq, prev_seq) of the records the batch stores or quarantines.
        self.new_records: dict[Key, tuple[int, list[tuple[int, int]]]] = {}
        self.health: list[tuple[Any, ...]] = []
        self.events: list[tuple[Any, ...]] = []
        self.visits: list[tuple[Any, ...]] = []  # maintenance_visit records stored
        self.follow_ups: list[tuple[Any, ...]] = []
        self.outbox_terminals: set[Key] = set()
        self.stored = self.quarantined = self.duplicates = 0

    def apply(self, intents: Sequence[Intent]) -> list[tuple[Key, int]]:
        """Apply the checked messages; return each outbox terminal's ack to publish."""
        self._load(intents)
        for intent in intents:
            if isinstance(intent, Heartbeat):
                self._on_heartbeat(intent)
            elif isinstance(intent, OutboxRecord):
                self._on_outbox(intent)
            elif isinstance(intent, Health):
                self._on_health(intent)
            elif isinstance(intent, Status):
                self._on_status(intent)
            elif isinstance(intent, Event):
                self._on_event(intent)
            elif isinstance(intent, CommandResult):
                self._on_cmd_result(intent)
        return self._write()

    # ------------------------------------------------------------- reading once

    def _load(self, intents: Sequence[Intent]) -> None:
        keys = {
            (i.station, i.terminal)
            for i in intents
            if isinstance(i, Heartbeat | Status | Health | Event | OutboxRecord)
        }
        self._load_terminals(keys)
        named = {
            (i.station, i.terminal, i.chain_seq)
            for i in intents
            if isinstance(i, Heartbeat)
            and i.chain_seq <= self.terminals[i.station, i.terminal].max_record_seq
        }
        outbox = {(i.station, i.terminal, i.seq) for i in intents if isinstance(i, OutboxRecord)}
        self._load_hashes("records", named | outbox)
        self._load_hashes("quarantine", outbox)
        senders = {(station, terminal) for station, terminal, _ in outbox}
        self.certificates = certificates_of(self.cursor, senders)
        clearing = {(i.station, i.terminal) for i in intents if isinstance(i, Health | Event)}
        self.alerts.load_open(self.cursor, clearing | senders)

    def _load_hashes(self, table: str, keys: set[tuple[str, str, int]]) -> None:
        for chunk in key_chunks(sorted(keys)):
            rows = self.cursor.execute(
                f"SELECT r.station, r.terminal, r.seq, r.record_hash FROM {key_table(chunk)} "
                f"JOIN {table} r ON r.station = k.column1 AND r.terminal = k.column2 "
                "AND r.seq = k.column3",
                [value for key in chunk for value in key],
            )
            for row in rows:
                self.hashes[(row["station"], row["terminal"], row["seq"])] = row["record_hash"]

    def _load_terminals(self, keys: set[Key]) -> None:
        """Read (and on PostgreSQL lock) the rows of these terminals, creating the rows of
        terminals never seen."""
        self._select_terminals(sorted(keys))
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
                "AND r.terminal = t.terminal), -1) AS max_stored, "
                "COALESCE((SELECT MAX(q.seq) FROM quarantine q WHERE q.station = t.station "
                "AND q.terminal = t.terminal), -1) AS max_quarantined "
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
                    max(row["max_stored"], row["max_quarantined"]),
                )

    # ------------------------------------------------------------- each message

    def _alive(self, station: str, terminal: str) -> _Terminal:
        """A message from the terminal itself: it is alive now (and online if it was not)."""
        row = self.terminals[(station, terminal)]
        if row.state != "online":
            row.state = row.changes["state"] = "online"
            row.changes["state_at"], row.changes["state_reason"] = self.now, None
            self.alerts.clear_alerts(station, terminal, [AlertKind.OFFLINE], self.now)
        row.changes["last_seen"] = self.now
        return row

    def _on_heartbeat(self, beat: Heartbeat) -> None:
        station, terminal = beat.station, beat.terminal
        row = self._alive(station, terminal)
        if row.boot_id != beat.boot_id:
            if row.boot_id is not None and self._known_boot(station, terminal, beat.boot_id):
                # A -> B -> A: an earlier boot is still talking, so two machines share one id.
                detail = f"boots {row.boot_id} and {beat.boot_id} send heartbeats in turn"
                self.alerts.raise_alert(station, terminal, AlertKind.CLONE, detail, self.now)
            self.new_boots.append((station, terminal, beat.boot_id))
            row.boot_id = row.changes["boot_id"] = beat.boot_id
        if beat.chain_seq < row.max_chain_seq:
            detail = f"journal head went back from {row.max_chain_seq} to {beat.chain_seq}"
            self.alerts.raise_alert(station, terminal, AlertKind.ROLLBACK, detail, self.now)
        elif beat.chain_seq > row.max_chain_seq:
            row.max_chain_seq = row.changes["max_chain_seq"] = beat.chain_seq
        held_hash = self.hashes.get((station, terminal, beat.chain_seq))
        if held_hash is not None and held_hash != beat.chain_hash:
            detail = f"journal record {beat.chain_seq} has another hash than the one received"
            self.alerts.raise_alert(station, terminal, AlertKind.CLONE, detail, self.now)
        row.changes["chain_seq"], row.changes["chain_hash"] = beat.chain_seq, beat.chain_hash
        if beat.turnover_fen is not None:
            row.changes["turnover_fen"] = beat.turnover_fen

    def _known_boot(self, station: str, terminal: str, boot_id: str) -> bool:
        """Whether this boot id was seen before (asked only when the boot id changes)."""
        if (station, terminal, boot_id) in self.new_boots:
            return True
        return bool(
            self.cursor.execute(
                "SELECT 1 FROM boots WHERE station = ? AND terminal = ? AND boot_id = ?",
                (station, terminal, boot_id),
            )
        )

    def _on_status(self, status: Status) -> None:
        station, terminal = status.station, status.terminal
        if status.online:
            row = self._alive(station, terminal)
            if status.software is not None:
                row.changes["software"] = status.software
            if status.firmware is not None:
                row.changes["firmware"] = status.firmware
            if status.boot_id is not None and status.boot_id != row.boot_id:
                self.new_boots.append((station, terminal, status.boot_id))
                row.boot_id = row.changes["boot_id"] = status.boot_id
            return
        row = self.terminals[(station, terminal)]
        row.state = row.changes["state"] = "offline"
        row.changes["state_reason"], row.changes["state_at"] = status.reason, self.now
        detail = (
            "last will: connection lost"
            if status.reason == "lost"
            else (f"offline: {status.reason}")
        )
        self.alerts.raise_alert(station, terminal, AlertKind.OFFLINE, detail, self.now)

    def _on_health(self, health: Health) -> None:
        station, terminal = health.station, health.terminal
        changes = self._alive(station, terminal).changes
        changes["paper"] = health.paper
        changes["float_balance_fen"] = health.float_balance_fen
        changes["cert_days_left"] = health.cert_days_left
        # The report itself goes to health_history only, so that the row every heartbeat
        # rewrites stays small.
        changes["outbox_backlog"], changes["health_at"] = health.outbox_backlog, self.now
        if health.software is not None:
            changes["software"] = health.software
        if health.firmware is not None:
            changes["firmware"] = health.firmware
        self.health.append(
            (
                station,
                terminal,
                self.now,
                health.time,
                health.paper,
                health.float_balance_fen,
                health.cert_days_left,
                health.outbox_backlog,
                health.payload_json,
            )
        )
        self._decided(station, terminal, health.alert_changes)

    def _decided(self, station: str, terminal: str, changes: Iterable[tuple[str, ...]]) -> None:
        """The alert changes the rules decided from the message alone, in their order."""
        for change in changes:
            if change[0] == "raise":
                self.alerts.raise_alert(station, terminal, change[1], change[2], self.now)
            else:
                self.alerts.clear_alerts(station, terminal, [change[1]], self.now)

    def _on_event(self, event: Event) -> None:
        self._alive(event.station, event.terminal)
        self.events.append(
            (event.station, event.terminal, self.now, event.time, event.kind, event.data_json)
        )
        self._decided(event.station, event.terminal, event.alert_changes)

    def _on_cmd_result(self, result: CommandResult) -> None:
        self.cursor.execute(
            "UPDATE commands SET result_ok = ?, result = ?, error = ?, result_at = ? "
            "WHERE id = ? AND station = ? AND terminal = ?",
            (
                1 if result.ok else 0,
                result.result_json,
                result.error,
                self.now,
                result.command_id,
                result.station,
                result.terminal,
            ),
        )

    def _on_outbox(self, message: OutboxRecord) -> None:
        station, terminal, seq = message.station, message.terminal, message.seq
        row = self._alive(station, terminal)
        self.outbox_terminals.add((station, terminal))  # acknowledged even if a duplicate
        held = self.hashes.get((station, terminal, seq))
        if held is not None:
            self.duplicates += 1
            if held != message.digest:
                detail = f"two different journal records {seq} arrived for one terminal"
                self.alerts.raise_alert(station, terminal, AlertKind.CLONE, detail, self.now)
            return
        self.hashes[(station, terminal, seq)] = message.digest
        mine = self.new_records.setdefault((station, terminal), (row.max_record_seq, []))
        mine[1].append((seq, message.prev_seq))
        row.max_record_seq = max(row.max_record_seq, seq)
        row.changes["last_outbox_at"] = self.now
        found = verdict(message.record, self.certificates.get((station, terminal), {}))
        record = message.record
        if found.status == SignatureStatus.BAD:
            self.quarantined += 1
            self.quarantine.append(
                (
                    station,
                    terminal,
                    seq,
                    record["type"],
                    message.text,
                    message.digest,
                    message.prev_seq,
                    found.problem,
                    self.now,
                )
            )
            detail = f"record {seq} ({record['type']}) quarantined: {found.problem}"
            log.warning("terminal %s/%s: %s", station, terminal, detail)
            self.alerts.raise_alert(station, terminal, AlertKind.BAD_SIGNATURE, detail, self.now)
            return
        self.stored += 1
        self.records.append(_record_row(message, found.status, self.now))
        if record["type"] == RecordType.MAINTENANCE_VISIT:
            self.visits.append(visit_row(station, terminal, seq, record, self.now))
        self._record_alerts(station, terminal, seq, record)
        opened = follow_up_row(station, terminal, seq, record, self.now)
        if opened is not None:
            self.follow_ups.append(opened)

    def _record_alerts(self, station: str, terminal: str, seq: int, record: dict[str, Any]) -> None:
        """The alerts a terminal's stored record raises or clears."""
        kind = record["type"]
        detail = json.dumps(
            {key: record[key] for key in ("tx_id", "detail", "event_id") if key in record}
            | {"seq": seq},
            ensure_ascii=False,
            sort_keys=True,
        )
        if record.get("sig_failed") is True:
            outage = f"record {seq} journaled without a signature: the signing token failed"
            self.alerts.raise_alert(station, terminal, AlertKind.SIGNER_OUTAGE, outage, self.now)
        if kind == RecordType.SIGNATURE_RECOVERED:
            self.alerts.clear_alerts(station, terminal, [AlertKind.SIGNER_OUTAGE], self.now)
        elif kind == RecordType.ALERT:
            alert = record.get("alert")
            if isinstance(alert, str) and alert in ALERT_KINDS:
                self.alerts.raise_alert(station, terminal, alert, detail, self.now)
            else:
                log.warning(
                    "terminal %s/%s alert record %d names %r", station, terminal, seq, alert
                )
        elif kind in _RECORD_ALERTS:
            self.alerts.raise_alert(station, terminal, _RECORD_ALERTS[kind], detail, self.now)
        elif kind == RecordType.DAY_CLOSE and record.get("balanced") is False:
            # The terminal journals a day_not_balanced alert record with its report; the
            # report alone says so too, should that record be late or lost in a migration.
            unbalanced = json.dumps(
                {
                    key: record.get(key)
                    for key in ("business_day", "float_check", "float_difference_fen")
                }
                | {"day_close_seq": seq},
                ensure_ascii=False,
                sort_keys=True,
            )
            self.alerts.raise_alert(
                station, terminal, AlertKind.DAY_NOT_BALANCED, unbalanced, self.now
            )
        elif kind == RecordType.BOARD_EVENT and record.get("kind") == BoardEventKind.TAMPER:
            self.alerts.raise_alert(station, terminal, AlertKind.TAMPER, detail, self.now)

    # ------------------------------------------------------------- writing once

    def _write(self) -> list[tuple[Key, int]]:
        cursor = self.cursor
        conflict = "ON CONFLICT DO NOTHING"
        stored = cursor.insert_rows("records", RECORD_COLUMNS, self.records, conflict)
        quarantined = cursor.insert_rows(
            "quarantine", QUARANTINE_COLUMNS, self.quarantine, conflict
        )
        if stored + quarantined != len(self.records) + len(self.quarantine):
            # Cannot happen while every writer of records holds its terminal's row (above);
            # if it did, a record stored by someone else would be acknowledged unchecked.
            raise StoreError(
                "records appeared while this batch held their terminals: is another program "
                "writing the records table?"
            )
        cursor.insert_rows("health_history", HEALTH_COLUMNS, self.health)
        cursor.insert_rows("events", EVENT_COLUMNS, self.events)
        write_visits(cursor, self.visits)
        # Rollouts count their terminals' update events, and may halt, in this transaction.
        apply_update_events(cursor, update_events(self.events), self.alerts, self.now)
        cursor.insert_rows("follow_ups", FOLLOW_UP_COLUMNS, self.follow_ups, conflict)
        # A boot's row is written when a terminal changes to it (that is all the clone
        # check asks: was this boot heard before?).
        cursor.executemany(
            "INSERT INTO boots (station, terminal, boot_id, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (station, terminal, boot_id) DO UPDATE SET "
            "last_seen = excluded.last_seen",
            [(*key, self.now, self.now) for key in dict.fromkeys(self.new_boots)],
        )
        self.alerts.write(cursor)
        acks = self._advance_acks()
        self._write_terminals()
        return acks

    def _advance_acks(self) -> list[tuple[Key, int]]:
        """Each outbox terminal's new ack, walked over its records above its last ack, and
        the hash of the record it ends at (the acknowledged chain head an auditor checks
        the terminal's journal against)."""
        above: dict[Key, list[tuple[int, int]]] = {}
        stored_above: list[Key] = []  # terminals with records stored above their ack before
        for key in self.outbox_terminals:
            terminal = self.terminals[key]
            before, mine = self.new_records.get(key, (terminal.max_record_seq, []))
            if before > terminal.acked_seq:
                stored_above.append(key)
            else:  # above the ack, only what this batch stores
                above[key] = sorted(record for record in mine if record[0] > terminal.acked_seq)
        for table in ("records", "quarantine"):
            for chunk in key_chunks(sorted(stored_above)):
                rows = self.cursor.execute(
                    f"SELECT r.station, r.terminal, r.seq, r.prev_seq FROM {key_table(chunk)} "
                    "JOIN terminals t ON t.station = k.column1 AND t.terminal = k.column2 "
                    f"JOIN {table} r ON r.station = t.station AND r.terminal = t.terminal "
                    "AND r.seq > t.acked_seq",
                    [value for key in chunk for value in key],
                )
                for row in rows:
                    key = (row["station"], row["terminal"])
                    above.setdefault(key, []).append((row["seq"], row["prev_seq"]))
        acks = []
        for key in sorted(self.outbox_terminals):
            terminal = self.terminals[key]
            upto = walk_ack(terminal.acked_seq, sorted(set(above.get(key, []))))
            if upto != terminal.acked_seq:
                terminal.acked_seq = terminal.changes["acked_seq"] = upto
                terminal.changes["acked_hash"] = self._hash_of(key, upto)
            acks.append((key, upto))
        return acks

    def _hash_of(self, key: Key, seq: int) -> str | None:
        held = self.hashes.get((*key, seq))
        if held is not None:
            return held
        rows = self.cursor.execute(
            "SELECT record_hash FROM records WHERE station = ? AND terminal = ? AND seq = ? "
            "UNION ALL SELECT record_hash FROM quarantine WHERE station = ? AND terminal = ? "
            "AND seq = ?",
            (*key, seq, *key, seq),
        )
        return str(rows[0]["record_hash"]) if rows else None

    def _write_terminals(self) -> None:
        """One UPDATE statement per set of changed columns (a few sets: heartbeat only,
        with health...) and KEY_CHUNK terminals."""
        by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for key, row in self.terminals.items():
            if not row.changes:
                continue
            columns = tuple(sorted(row.changes))
            by_columns.setdefault(columns, []).append(
                (*key, *[row.changes[name] for name in columns])
            )
        for columns, rows in by_columns.items():
            self.cursor.update_rows("terminals", ("station", "terminal"), columns, rows)


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def walk_ack(acked_seq: int, above: Iterable[tuple[int, int]]) -> int:
    """The highest seq up to which every outbox record is stored, from the last ack and the
    (seq, prev_seq) of the stored records above it in seq order (docs/backoffice.md,
    "Acknowledgement").

    Journal seqs are not consecutive among outbox records, so each record's `prev_seq`
    (the seq of the terminal's previous outbox record, 0 for its first) says whether the
    run from the last ack reaches it without a hole. With several ingest workers on a
    shared subscription, a hole is a record another worker has not committed yet; the ack
    waits for it, whatever this worker has stored beyond it. A quarantined record counts as
    received: it is kept, and the terminal need not send it again.
    """
    upto = acked_seq
    for seq, prev_seq in above:
        # prev_seq <= upto: everything up to this record's predecessor is stored, and the
        # terminal has no outbox record between the two.
        if prev_seq > upto:
            break
        upto = int(seq)
    return upto


def release_quarantine(store: Store, now: float) -> list[tuple[str, str, int]]:
    """Verify the quarantined records again (a certificate registered since, say) and move
    those that now verify into the records; return their (station, terminal, seq)."""
    released: list[tuple[str, str, int]] = []
    with store.transaction() as cursor:
        rows = cursor.execute(
            "SELECT station, terminal, seq, prev_seq, record FROM quarantine "
            "ORDER BY station, terminal, seq" + (" FOR UPDATE" if store.dialect != "sqlite" else "")
        )
        certificates = certificates_of(cursor, {(r["station"], r["terminal"]) for r in rows})
        for row in rows:
            key = (row["station"], row["terminal"])
            record = json.loads(row["record"])
            message = check_outbox(
                *key, {"v": 1, "seq": row["seq"], "prev_seq": row["prev_seq"], "record": record}
            )
            found = verdict(record, certificates[key])
            if found.status == SignatureStatus.BAD:
                continue
            cursor.insert_rows("records", RECORD_COLUMNS, [_record_row(message, found.status, now)])
            if record.get("type") == RecordType.MAINTENANCE_VISIT:
                write_visits(cursor, [visit_row(*key, row["seq"], record, now)])
            opened = follow_up_row(*key, row["seq"], record, now)
            if opened is not None:
                cursor.insert_rows(
                    "follow_ups", FOLLOW_UP_COLUMNS, [opened], "ON CONFLICT DO NOTHING"
                )
            cursor.execute(
                "DELETE FROM quarantine WHERE station = ? AND terminal = ? AND seq = ?",
                (*key, row["seq"]),
            )
            released.append((*key, row["seq"]))
    return released


def _record_row(message: OutboxRecord, status: SignatureStatus, now: float) -> tuple[Any, ...]:
    """A records row (RECORD_COLUMNS) of a checked outbox record."""
    record = message.record
    return (
        message.station,
        message.terminal,
        message.seq,
        record["type"],
        record["time"],
        message.business_day,
        record.get("outcome"),
        record.get("service"),
        message.amount_fen,
        message.fee_fen,
        record.get("receipt_no"),
        message.text,
        message.digest,
        message.prev_seq,
        now,
        status.value,
        _text_or_none(record.get("tx_id")),
        1 if record.get("awaiting_claim") is True else 0,
    )


def ack_point(cursor: Cursor, station: str, terminal: str) -> int:
    """Advance and return one terminal's ack (walk_ack) in the store, never backwards."""
    rows = cursor.execute(
        "SELECT acked_seq FROM terminals WHERE station = ? AND terminal = ?", (station, terminal)
    )
    if not rows:
        return 0
    acked = int(rows[0]["acked_seq"])
    above = cursor.execute(
        "SELECT seq, prev_seq FROM records WHERE station = ? AND terminal = ? AND seq > ? "
        "UNION ALL SELECT seq, prev_seq FROM quarantine WHERE station = ? AND terminal = ? "
        "AND seq > ? ORDER BY seq LIMIT 10000",
        (station, terminal, acked, station, terminal, acked),
    )
    upto = walk_ack(acked, [(row["seq"], row["prev_seq"]) for row in above])
    # Never backwards: another worker may have moved the ack further meanwhile.
    moved = cursor.execute(
        "UPDATE terminals SET acked_seq = CASE WHEN acked_seq > ? THEN acked_seq ELSE ? END "
        "WHERE station = ? AND terminal = ? RETURNING acked_seq",
        (upto, upto, station, terminal),
    )
    return int(moved[0]["acked_seq"])
