"""The MQTT topic names of contract v1 (docs/mqtt.md section 1) and the ids inside them.

Owns the topic root, the message kinds (TopicKind), who publishes which, the patterns of a
station id (机构号) and a terminal id, the certificate CN that the broker's ACL turns into a
terminal's topic root, and the back office's subscriptions (shared or not). Both ends import
this module; nothing else in the project spells a topic (tests/test_telemetry_contract.py).
"""

import re
from enum import StrEnum

TOPIC_ROOT = "kiosk/v1"


class TopicKind(StrEnum):
    """The last level of a topic: what kind of message it carries."""

    STATUS = "status"
    HEARTBEAT = "heartbeat"
    HEALTH = "health"
    EVENT = "event"
    OUTBOX = "outbox"
    CMD_RESULT = "cmd_result"
    ACK = "ack"
    CMD = "cmd"


TERMINAL_PUBLISHES: tuple[str, ...] = (
    TopicKind.STATUS,
    TopicKind.HEARTBEAT,
    TopicKind.HEALTH,
    TopicKind.EVENT,
    TopicKind.OUTBOX,
    TopicKind.CMD_RESULT,
)
BACKOFFICE_PUBLISHES: tuple[str, ...] = (TopicKind.ACK, TopicKind.CMD)
# The shared-subscription group ingest workers join by default (docs/mqtt.md section 7).
INGEST_GROUP = "ingest"
SHARED_INGEST_SUBSCRIPTION = f"$share/{INGEST_GROUP}/{TOPIC_ROOT}/+/+/#"

# The ids as the journal, the configuration and the topics write them. Matched whole
# (fullmatch), so a trailing newline cannot slip through as "$" would let it.
STATION_PATTERN = re.compile(r"[0-9]{1,20}")
TERMINAL_PATTERN = re.compile(r"[A-Za-z0-9-]{1,32}")


def valid_station(station: str) -> bool:
    return STATION_PATTERN.fullmatch(station) is not None


def valid_terminal(terminal: str) -> bool:
    return TERMINAL_PATTERN.fullmatch(terminal) is not None


def terminal_identity(station: str, terminal: str) -> str:
    """The terminal's certificate CN and MQTT username: "<station>/<terminal>".

    The broker ACL (deploy/mosquitto/acl) expands %u to it, so it is the terminal's own
    topic root below kiosk/v1/.
    """
    if not valid_station(station):
        raise ValueError(f"station {station!r} must be digits (the 机构号), at most 20")
    if not valid_terminal(terminal):
        raise ValueError(f"terminal {terminal!r} must be 1-32 letters, digits or '-'")
    return f"{station}/{terminal}"


def topic(station: str, terminal: str, kind: str) -> str:
    if kind not in TERMINAL_PUBLISHES + BACKOFFICE_PUBLISHES:
        raise ValueError(f"{kind!r} is not a topic of contract v1")
    return f"{TOPIC_ROOT}/{terminal_identity(station, terminal)}/{kind}"


def parse_topic(name: str) -> tuple[str, str, str] | None:
    """(station, terminal, kind) of a contract topic, or None for any other topic."""
    parts = name.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_ROOT:
        return None
    station, terminal, kind = parts[2:]
    if kind not in TERMINAL_PUBLISHES + BACKOFFICE_PUBLISHES:
        return None
    if not (valid_station(station) and valid_terminal(terminal)):
        return None
    return station, terminal, kind


def terminal_filter(kind: str, shared_group: str = "") -> str:
    """The back office's subscription to one kind from every terminal, shared among the
    workers of shared_group when it is given (MQTT 5 shared subscription)."""
    if kind not in TERMINAL_PUBLISHES:
        raise ValueError(f"{kind!r} is not something terminals publish")
    prefix = f"$share/{shared_group}/" if shared_group else ""
    return f"{prefix}{TOPIC_ROOT}/+/+/{kind}"
