"""The checking half of ingest: each message, without the database, down to what storing needs.

Owns everything about one incoming message that needs no stored state: the topic, the
payload's JSON Schema, an outbox record's agreement with its topic and the journal's rules
and its canonical hash, and the alert decisions a health report or an event makes on its
own. It turns each message into an *intent*: one tuple of plain
values (text, numbers, None, nested tuples) that backoffice.ingest applies to the store in
order. Intents cross a process boundary with marshal for a fraction of what parsing the
JSON costs, so checking runs in its own process beside the storing one (docs/backoffice.md,
"Ingest"). It never opens the database and never decides anything that depends on it.

Intents, by their first element:

* `("heartbeat", station, terminal, boot_id, chain_seq, chain_hash, turnover_fen)`
* `("status", station, terminal, online, reason, software, firmware, boot_id)`
* `("health", station, terminal, time, paper, float_balance_fen, cert_days_left,
  outbox_backlog, payload_json, software, firmware, alert_changes)`
* `("event", station, terminal, time, kind, data_json, alert_changes)`
* `("cmd_result", station, terminal, result_ok, result_json, error, command_id)`
* `("outbox", station, terminal, seq, prev_seq, record_hash, record_row)`: record_row is the
  `records` row without `received`, in RECORD_COLUMNS order.
* `("rejected", topic, reason)`: stored in the `rejected` table, changes nothing else.
* `("skip",)`: the back office's own `ack`/`cmd` messages, when subscribed broadly.

alert_changes is a tuple of `("raise", kind, detail)` and `("clear", kind)` in the order
the rules in backoffice.alerts decided them.
"""

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from backoffice.alerts import apply_event, apply_health
from backoffice.config import Thresholds
from backoffice.contract import (
    BACKOFFICE_KINDS,
    MAX_PAYLOAD_BYTES,
    TERMINAL_KINDS,
    Topic,
    fast_validator_for,
    parse_payload,
    parse_topic,
)
from backoffice.errors import PayloadRejected
from kiosk.journal.canonical import JournalError, encode_record

Intent = tuple[Any, ...]
OUTBOX_TYPES = ("tx_close", "day_close")
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
)
SKIP: Intent = ("skip",)
# orjson reads an integer beyond 64 bits as a float, where json keeps it exact: a payload
# with a number of 19 digits or more (no field of the contract needs one) takes the
# reference path. The search is for any 19 digits in a row (translate makes every digit a
# "0", then one substring search: a fifth of a regular expression's time); digits inside a
# string only send a payload the slow way. Two kinds skip it: a heartbeat's schema admits
# no other property and bounds every number its intent keeps by 2**53, which both parsers
# read exactly; an outbox envelope admits nothing else either, and a record holding such a
# number (a float to orjson, over 2**53 to json) breaks the journal's rules, a refusal the
# reference path then decides.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19
_EXACT_NUMBERS_BY_SCHEMA = ("heartbeat", "outbox")
# A topic's (kind, station, terminal), all empty for a topic the contract refuses: every
# terminal publishes on the same few topics again and again. Bounded like parse_topic's
# cache: a flood of made-up topics only empties it.
_TOPICS: dict[str, tuple[str, str, str]] = {}
_TOPICS_LIMIT = 1 << 16


class _AlertDecisions:
    """Collects what the alert rules decide for one message (an AlertSink of one terminal)."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str] | tuple[str, str, str]] = []

    def raise_alert(self, station: str, terminal: str, kind: str, detail: str, now: float) -> None:
        self.changes.append(("raise", kind, detail))

    def clear_alerts(self, station: str, terminal: str, kinds: Sequence[str], now: float) -> None:
        self.changes.extend(("clear", kind) for kind in kinds)


def check_messages(messages: Iterable[tuple[str, bytes]], thresholds: Thresholds) -> list[Intent]:
    """The intents of these messages in order, as check_message makes them one by one.

    Heartbeats are most of the stream: a valid one takes a short path here (cached topic,
    orjson, the compiled schema) to the same intent check_message makes, _heartbeat_intent
    (tests/test_backoffice_check.py compares).
    """
    intents: list[Intent] = []
    append, topics, loads = intents.append, _TOPICS, orjson.loads
    heartbeat_valid = fast_validator_for("heartbeat").is_valid
    for topic_text, payload in messages:
        parsed = topics.get(topic_text)
        if parsed is None:
            parsed = _remember_topic(topic_text)
        if parsed[0] == "heartbeat" and len(payload) <= MAX_PAYLOAD_BYTES:
            try:
                data = loads(payload)
            except orjson.JSONDecodeError:
                data = None
            if type(data) is dict and heartbeat_valid(data):
                append(_heartbeat_intent(parsed[1], parsed[2], data))
                continue
        append(check_message(topic_text, payload, thresholds))
    return intents


def _heartbeat_intent(station: str, terminal: str, data: dict[str, Any]) -> Intent:
    chain = data["chain"]
    return (
        "heartbeat",
        station,
        terminal,
        str(data["boot_id"]),
        int(chain["seq"]),
        str(chain["hash"]),
        data.get("turnover_fen"),
    )


def _remember_topic(topic_text: str) -> tuple[str, str, str]:
    try:
        topic = parse_topic(topic_text)
        parsed = (topic.kind, topic.station, topic.terminal)
    except PayloadRejected:
        parsed = ("", "", "")  # check_message words the refusal
    if len(_TOPICS) >= _TOPICS_LIMIT:
        _TOPICS.clear()
    _TOPICS[topic_text] = parsed
    return parsed


def check_message(topic_text: str, payload: bytes, thresholds: Thresholds) -> Intent:
    """The intent of one message; a message that breaks the contract becomes "rejected"."""
    try:
        topic = parse_topic(topic_text)
        if topic.kind in BACKOFFICE_KINDS:
            return SKIP
        data = _parse_fast(topic.kind, payload)
        if data is not None:
            try:
                return _intent(topic, data, thresholds, fast=True)
            except PayloadRejected:
                pass  # the reference path below decides, and words, every refusal
        return _intent(topic, parse_payload(topic.kind, payload), thresholds, fast=False)
    except PayloadRejected as exc:
        return ("rejected", topic_text[:200], str(exc)[:500])


def _parse_fast(kind: str, payload: bytes) -> dict[str, Any] | None:
    """The payload as contract.parse_payload reads it, when it is valid; None otherwise.

    orjson parses about four times faster than json, and the compiled validator says
    valid. Anything else (a payload orjson refuses, such as NaN or a lone surrogate that
    json reads, a long number, a payload the schema refuses, a kind or size out of bounds)
    is None, for parse_payload to decide as always: orjson and json read the same object
    from any payload both accept (tests/test_backoffice_frames.py holds it).
    """
    if kind not in TERMINAL_KINDS or len(payload) > MAX_PAYLOAD_BYTES:
        return None
    if kind not in _EXACT_NUMBERS_BY_SCHEMA and _LONG_NUMBER in payload.translate(_DIGITS_AS_ZERO):
        return None
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if type(data) is dict and fast_validator_for(kind).is_valid(data):
        return data
    return None


def _intent(topic: Topic, data: dict[str, Any], thresholds: Thresholds, fast: bool) -> Intent:
    """The intent of a valid payload; `fast`: orjson read it (so it holds no NaN, no
    infinity and no integer beyond 64 bits, and orjson can write it back)."""
    kind, station, terminal = topic.kind, topic.station, topic.terminal
    if kind == "heartbeat":
        return _heartbeat_intent(station, terminal, data)
    if kind == "outbox":
        return _check_outbox(station, terminal, data)
    if kind == "health":
        return _check_health(station, terminal, data, thresholds, fast)
    if kind == "status":
        if data["state"] != "online":
            reason = str(data.get("reason") or "lost")
            return ("status", station, terminal, False, reason, None, None, None)
        software, firmware = data.get("software"), data.get("firmware")
        boot_id = data.get("boot_id")
        return ("status", station, terminal, True, None, software, firmware, boot_id)
    if kind == "event":
        event_data = data.get("data") or {}
        decisions = _AlertDecisions()
        apply_event(decisions, station, terminal, data["kind"], event_data, 0.0)
        data_json = json.dumps(event_data)
        changes = tuple(decisions.changes)
        return ("event", station, terminal, data["time"], data["kind"], data_json, changes)
    # cmd_result: parse_payload refuses any kind the back office does not read.
    result_json = json.dumps(data.get("result"))
    ok = 1 if data["ok"] else 0
    return ("cmd_result", station, terminal, ok, result_json, data.get("error"), data["id"])


def _check_health(
    station: str, terminal: str, data: dict[str, Any], thresholds: Thresholds, fast: bool
) -> Intent:
    decisions = _AlertDecisions()
    apply_health(decisions, station, terminal, data, thresholds, 0.0)
    # Stored as compact JSON with sorted keys: orjson writes what it read in half of json's
    # time; json writes what only it can read (NaN, numbers beyond 64 bits), the same way.
    if fast:
        stored = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    else:
        stored = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return (
        "health",
        station,
        terminal,
        data["time"],
        data.get("paper"),
        data.get("float_balance_fen"),
        data.get("cert_days_left"),
        data.get("outbox_backlog"),
        stored,
        data.get("software"),
        data.get("firmware"),
        tuple(decisions.changes),
    )


def _check_outbox(station: str, terminal: str, data: dict[str, Any]) -> Intent:
    """An outbox record checked against its topic and the journal's rules, and hashed."""
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
    if "sig" not in record and record.get("sig_failed") is not True:
        raise PayloadRejected(f"outbox record {seq} carries neither sig nor sig_failed")
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
        if record["type"] == "tx_close":
            amount, fee = int(record.get("amount_fen") or 0), int(record.get("fee_fen") or 0)
        else:
            amount, fee = int(record.get("paid_fen") or 0), 0
    except (TypeError, ValueError):
        raise PayloadRejected(f"outbox record {seq} has an amount that is not whole fen") from None
    digest = hashlib.sha256(canonical).hexdigest()
    row = (
        station,
        terminal,
        seq,
        record["type"],
        record["time"],
        business_day,
        record.get("outcome"),
        record.get("service"),
        amount,
        fee,
        record.get("receipt_no"),
        canonical.decode("utf-8"),
        digest,
        prev_seq,
    )
    return ("outbox", station, terminal, seq, prev_seq, digest, row)
