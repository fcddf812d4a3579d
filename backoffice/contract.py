"""The MQTT contract (v1) as the back office reads it: topics and payload validation.

Owns turning a topic into (station, terminal, kind) and a payload into a checked dict, with
one JSON parser (the standard library's) and one schema validator (jsonschema-rs, compiled
once per kind) on one path. The topics and ids are the terminal side's own
(kiosk.telemetry.topics) and so are the JSON Schemas (kiosk/telemetry/schema/): both ends
read one contract. It never stores anything.
"""

import json
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any, NamedTuple

import jsonschema_rs

from backoffice.errors import PayloadRejected
from kiosk.telemetry.schemas import load_schema
from kiosk.telemetry.topics import (
    BACKOFFICE_PUBLISHES,
    TERMINAL_PUBLISHES,
    TOPIC_ROOT,
    valid_station,
    valid_terminal,
)
from kiosk.telemetry.topics import topic as topic_for

__all__ = [
    "BACKOFFICE_KINDS",
    "MAX_PAYLOAD_BYTES",
    "TERMINAL_KINDS",
    "Topic",
    "parse_payload",
    "parse_topic",
    "schema_for",
    "topic_for",
    "validator_for",
]

TERMINAL_KINDS = TERMINAL_PUBLISHES
BACKOFFICE_KINDS = BACKOFFICE_PUBLISHES
# A payload bigger than this is refused unread: a signed record is under 2 KiB.
MAX_PAYLOAD_BYTES = 64 * 1024


class Topic(NamedTuple):
    station: str
    terminal: str
    kind: str


# Every terminal publishes on the same few topics again and again: each is parsed once
# (bounded, so a flood of made-up topics only churns the cache).
@lru_cache(maxsize=1 << 16)
def parse_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise PayloadRejected(f"topic {topic!r} is not {TOPIC_ROOT}/<station>/<terminal>/<kind>")
    _, _, station, terminal, kind = parts
    if not valid_station(station) or not valid_terminal(terminal):
        raise PayloadRejected(f"topic {topic!r} names an impossible station or terminal id")
    return Topic(station, terminal, kind)


def schema_for(kind: str) -> dict[str, Any]:
    """The contract's JSON Schema of a kind, as the terminal ships it (kiosk/telemetry/schema/)."""
    return load_schema(kind)


@cache
def validator_for(kind: str) -> Any:
    """The compiled validator of a kind; compiled once, so a broken schema fails at start."""
    return jsonschema_rs.validator_for(schema_for(kind))


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_payload(kind: str, payload: bytes) -> dict[str, Any]:
    """The payload as a dict, or PayloadRejected saying which rule it broke."""
    if kind not in TERMINAL_KINDS:
        raise PayloadRejected(f"the back office does not read '{kind}' messages")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadRejected(f"{kind} payload of {len(payload)} bytes is over the limit")
    try:
        data = json.loads(payload.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadRejected(f"{kind} payload is not UTF-8 JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise PayloadRejected(f"{kind} payload is not a JSON object")
    validator = validator_for(kind)
    try:
        if validator.is_valid(data):
            return dict(data)
        errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.instance_path)))
    except ValueError as exc:  # a value the validator cannot represent (a lone surrogate...)
        raise PayloadRejected(f"{kind} payload cannot be checked: {exc}") from None
    first = errors[0]
    where = "/".join(str(p) for p in first.instance_path) or "payload"
    raise PayloadRejected(f"{kind} payload breaks the contract at {where}: {first.message}")
