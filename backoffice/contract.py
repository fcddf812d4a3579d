"""The MQTT contract (v1) as the back office reads it: topics and payload validation.

Owns parsing topics under kiosk/v1/<station>/<terminal>/<kind> and checking payloads. The
JSON Schemas are the terminal side's own (kiosk/telemetry/schema/), so both ends validate
against one contract. It never stores anything.
"""

import json
import re
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any, NamedTuple

import jsonschema
import jsonschema_rs

from backoffice.errors import PayloadRejected
from kiosk.telemetry.schemas import load_schema

ROOT = "kiosk/v1"
_ROOT_FIRST, _ROOT_SECOND = ROOT.split("/")
SHARED_SUBSCRIPTION = "$share/{group}/kiosk/v1/+/+/#"
TERMINAL_KINDS = ("status", "heartbeat", "health", "event", "outbox", "cmd_result")
BACKOFFICE_KINDS = ("ack", "cmd")
# A payload bigger than this is refused unread: a signed record is under 2 KiB.
MAX_PAYLOAD_BYTES = 64 * 1024

# Matched whole (fullmatch): "$" would also match before a final newline.
_STATION = re.compile(r"[0-9]{1,20}")
_TERMINAL = re.compile(r"[A-Za-z0-9-]{1,32}")


class Topic(NamedTuple):
    # A named tuple, not a frozen dataclass: made for every topic the first time it is seen
    # (a fleet's first minutes, or a back office's), and a third of the parse's time.
    station: str
    terminal: str
    kind: str


def topic_for(station: str, terminal: str, kind: str) -> str:
    return f"{ROOT}/{station}/{terminal}/{kind}"


# Every terminal publishes on the same few topics again and again: parsed once each (bounded,
# so a flood of made-up topics only churns the cache).
@lru_cache(maxsize=1 << 16)
def parse_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != _ROOT_FIRST or parts[1] != _ROOT_SECOND:
        raise PayloadRejected(f"topic {topic!r} is not kiosk/v1/<station>/<terminal>/<kind>")
    _, _, station, terminal, kind = parts
    if not _STATION.fullmatch(station) or not _TERMINAL.fullmatch(terminal):
        raise PayloadRejected(f"topic {topic!r} names an impossible station or terminal id")
    return Topic(station, terminal, kind)


@cache
def validator_for(kind: str) -> Any:
    """The reference validator per kind (jsonschema): it explains why a payload is refused."""
    schema = schema_for(kind)
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


@cache
def fast_validator_for(kind: str) -> Any:
    """The compiled validator per kind (jsonschema-rs) that answers valid or not per message.

    jsonschema walks the schema in Python for every payload (about 0.6 ms for a heartbeat,
    most of the ingest's time); the compiled one answers in microseconds. Both read the
    same schema and draft, so a payload it refuses is explained by validator_for.
    """
    validator_for(kind)  # the schema itself is checked once, by the reference implementation
    return jsonschema_rs.validator_for(schema_for(kind))


def schema_for(kind: str) -> dict[str, Any]:
    """The contract's JSON Schema of a kind, as the terminal ships it (kiosk/telemetry/schema/)."""
    return load_schema(kind)


def parse_payload(kind: str, payload: bytes) -> dict[str, Any]:
    """The payload as a dict, or PayloadRejected saying which rule it broke."""
    if kind not in TERMINAL_KINDS:
        raise PayloadRejected(f"the back office does not read '{kind}' messages")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadRejected(f"{kind} payload of {len(payload)} bytes is over the limit")
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadRejected(f"{kind} payload is not UTF-8 JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise PayloadRejected(f"{kind} payload is not a JSON object")
    if fast_validator_for(kind).is_valid(data):
        return dict(data)
    error = jsonschema.exceptions.best_match(validator_for(kind).iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "payload"
        raise PayloadRejected(f"{kind} payload breaks the contract at {where}: {error.message}")
    # Only if the two implementations ever disagree: the stricter answer wins.
    fast_error = next(iter(fast_validator_for(kind).iter_errors(data)))
    where = "/".join(str(p) for p in fast_error.instance_path) or "payload"
    raise PayloadRejected(f"{kind} payload breaks the contract at {where}: {fast_error.message}")
