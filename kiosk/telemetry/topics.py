"""The MQTT topic names of contract v1 (docs/mqtt.md section 1) and the broker identity.

Owns the topic root, the topic of each message kind and the certificate CN that the broker's
ACL turns into a terminal's topic root. Nothing else in the project spells a topic by hand.
"""

import re

TOPIC_ROOT = "kiosk/v1"
TERMINAL_PUBLISHES = ("status", "heartbeat", "health", "event", "outbox", "cmd_result")
BACKOFFICE_PUBLISHES = ("ack", "cmd")
SHARED_INGEST_SUBSCRIPTION = f"$share/ingest/{TOPIC_ROOT}/+/+/#"

_STATION = re.compile(r"^[0-9]+\Z")
_TERMINAL = re.compile(r"^[A-Za-z0-9-]{1,32}\Z")


def terminal_identity(station: str, terminal: str) -> str:
    """The terminal's certificate CN and MQTT username: "<station>/<terminal>".

    The broker ACL (deploy/mosquitto/acl) expands %u to it, so it is the terminal's own
    topic root below kiosk/v1/.
    """
    if not _STATION.match(station):
        raise ValueError(f"station {station!r} must be digits (the 机构号)")
    if not _TERMINAL.match(terminal):
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
    if not (_STATION.match(station) and _TERMINAL.match(terminal)):
        return None
    return station, terminal, kind
