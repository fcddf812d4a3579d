"""Each incoming MQTT message, checked without the database, as what storing it needs.

Owns everything about one message that needs no stored state: the topic, the payload's
JSON Schema (one parser, one validator: backoffice.contract), an outbox record's agreement
with its topic and the journal's rules, its canonical text and hash, and the alert
decisions a health report or an event makes on its own. The result is one small value per
message (a *message intent*) that backoffice.ingest applies to the store in order. Whether
a record's signature verifies needs the terminal's registered certificate, so
backoffice.ingest decides that (backoffice.signatures). It never opens the database.
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from backoffice.alerts import apply_event, apply_health
from backoffice.config import Thresholds
from backoffice.contract import BACKOFFICE_KINDS, Topic, parse_payload, parse_topic
from backoffice.errors import PayloadRejected
from kiosk.journal.canonical import JournalError, encode_record
from kiosk.journal.record_types import OUTBOX_TYPES, RecordType
from kiosk.telemetry.topics import TopicKind

# One alert decision: ("raise", kind, detail) or ("clear", kind), in the rules' order.
AlertChange = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Heartbeat:
    station: str
    terminal: str
    boot_id: str
    chain_seq: int
    chain_hash: str
    turnover_fen: int | None


@dataclass(frozen=True, slots=True)
class Status:
    station: str
    terminal: str
    online: bool
    reason: str | None
    software: str | None
    firmware: str | None
    boot_id: str | None


@dataclass(frozen=True, slots=True)
class Health:
    station: str
    terminal: str
    time: str
    paper: str | None
    float_balance_fen: int | None
    cert_days_left: int | None
    outbox_backlog: int | None
    payload_json: str
    software: str | None
    firmware: str | None
    alert_changes: tuple[AlertChange, ...]


@dataclass(frozen=True, slots=True)
class Event:
    station: str
    terminal: str
    time: str
    kind: str
    data_json: str
    alert_changes: tuple[AlertChange, ...]


@dataclass(frozen=True, slots=True)
class CommandResult:
    station: str
    terminal: str
    ok: bool
    result_json: str
    error: str | None
    command_id: str | None


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    station: str
    terminal: str
    seq: int
    prev_seq: int
    record: dict[str, Any]
    text: str  # the canonical JSON, as the journal export writes it
    digest: str  # its SHA-256: the journal's chain hash of this record
    business_day: str
    amount_fen: int
    fee_fen: int


@dataclass(frozen=True, slots=True)
class Rejected:
    topic: str
    reason: str


@dataclass(frozen=True, slots=True)
class Skip:
    """The back office's own ack/cmd messages, when subscribed broadly."""


Intent = Heartbeat | Status | Health | Event | CommandResult | OutboxRecord | Rejected | Skip


class _AlertDecisions:
    """Collects what the alert rules decide for one message (an AlertSink of one terminal)."""

    def __init__(self) -> None:
        self.changes: list[AlertChange] = []

    def raise_alert(self, station: str, terminal: str, kind: str, detail: str, now: float) -> None:
        self.changes.append(("raise", kind, detail))

    def clear_alerts(self, station: str, terminal: str, kinds: Sequence[str], now: float) -> None:
        self.changes.extend(("clear", kind) for kind in kinds)


def check_message(topic_text: str, payload: bytes, thresholds: Thresholds) -> Intent:
    """The intent of one message; a message that breaks the contract becomes Rejected."""
    try:
        topic = parse_topic(topic_text)
        if topic.kind in BACKOFFICE_KINDS:
            return Skip()
        return _intent(topic, parse_payload(topic.kind, payload), thresholds)
    except PayloadRejected as exc:
        return Rejected(topic_text[:200], str(exc)[:500])


def _intent(topic: Topic, data: dict[str, Any], thresholds: Thresholds) -> Intent:
    kind, station, terminal = topic.kind, topic.station, topic.terminal
    if kind == TopicKind.HEARTBEAT:
        chain = data["chain"]
        return Heartbeat(
            station,
            terminal,
            str(data["boot_id"]),
            int(chain["seq"]),
            str(chain["hash"]),
            data.get("turnover_fen"),
        )
    if kind == TopicKind.OUTBOX:
        return check_outbox(station, terminal, data)
    if kind == TopicKind.HEALTH:
        decisions = _AlertDecisions()
        apply_health(decisions, station, terminal, data, thresholds, 0.0)
        return Health(
            station,
            terminal,
            data["time"],
            data.get("paper"),
            data.get("float_balance_fen"),
            data.get("cert_days_left"),
            data.get("outbox_backlog"),
            json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
            data.get("software"),
            data.get("firmware"),
            tuple(decisions.changes),
        )
    if kind == TopicKind.STATUS:
        if data["state"] != "online":
            reason = str(data.get("reason") or "lost")
            return Status(station, terminal, False, reason, None, None, None)
        return Status(
            station,
            terminal,
            True,
            None,
            data.get("software"),
            data.get("firmware"),
            data.get("boot_id"),
        )
    if kind == TopicKind.EVENT:
        event_data = data.get("data") or {}
        decisions = _AlertDecisions()
        apply_event(decisions, station, terminal, data["kind"], event_data, 0.0)
        return Event(
            station,
            terminal,
            data["time"],
            data["kind"],
            json.dumps(event_data, ensure_ascii=False),
            tuple(decisions.changes),
        )
    # cmd_result: parse_payload refuses any kind the back office does not read.
    return CommandResult(
        station,
        terminal,
        bool(data["ok"]),
        json.dumps(data.get("result"), ensure_ascii=False),
        data.get("error"),
        data["id"],
    )


def check_outbox(station: str, terminal: str, data: dict[str, Any]) -> OutboxRecord:
    """An outbox envelope checked against its topic and the journal's rules, and hashed."""
    record = data["record"]
    seq = data["seq"]
    if record.get("station") != station or record.get("terminal") != terminal:
        raise PayloadRejected(
            f"outbox record {seq} names station {record.get('station')!r} terminal "
            f"{record.get('terminal')!r}, not the topic's {station}/{terminal}"
        )
    if record.get("seq") != seq:
        raise PayloadRejected(f"outbox seq {seq} differs from its record's seq")
    if record.get("type") not in OUTBOX_TYPES:
        raise PayloadRejected(f"outbox record {seq} has type {record.get('type')!r}")
    prev_seq = data["prev_seq"]  # the schema makes it a whole number >= 0
    if prev_seq >= seq:
        raise PayloadRejected(f"outbox prev_seq {prev_seq} is not below its seq {seq}")
    try:
        # The canonical JSON (sorted keys, no spaces, UTF-8) is both what is hashed and the
        # text stored, as the journal export writes it.
        canonical = encode_record(record)
    except JournalError as exc:
        raise PayloadRejected(f"outbox record {seq} is not a journal record: {exc}") from None
    business_day = str(record.get("business_day") or str(record["time"])[:10])
    try:
        if record["type"] == RecordType.TX_CLOSE:
            amount, fee = int(record.get("amount_fen") or 0), int(record.get("fee_fen") or 0)
        elif record["type"] == RecordType.DAY_CLOSE:
            amount, fee = int(record.get("paid_fen") or 0), 0
        else:
            amount, fee = int(record.get("amount_fen") or 0), 0
    except (TypeError, ValueError):
        raise PayloadRejected(f"outbox record {seq} has an amount that is not whole fen") from None
    return OutboxRecord(
        station,
        terminal,
        seq,
        prev_seq,
        record,
        canonical.decode("utf-8"),
        hashlib.sha256(canonical).hexdigest(),
        business_day,
        amount,
        fee,
    )


__all__ = ["Intent", "check_message", "check_outbox"]
