"""Fleet telemetry: the terminal's MQTT link to the back office (docs/mqtt.md).

Owns the MQTT client (birth, last will, heartbeat, health, events), the durable outbox of
signed journal records (the journal is its store; only the acknowledged cursor is kept
here), and the verification of remote commands. It never writes the journal, never
decides a business outcome, and runs a remote command only through a handler the
terminal registered.
"""

from kiosk.telemetry.client import TelemetryClient
from kiosk.telemetry.commands import (
    COMMAND_NAMES,
    Command,
    CommandGate,
    CommandHandlers,
    CommandRefused,
    sign_command,
    unsigned_command,
)
from kiosk.telemetry.config import TelemetryConfig
from kiosk.telemetry.outbox import Outbox
from kiosk.telemetry.payloads import HealthFacts
from kiosk.telemetry.topics import TOPIC_ROOT, terminal_identity, topic

__all__ = [
    "COMMAND_NAMES",
    "TOPIC_ROOT",
    "Command",
    "CommandGate",
    "CommandHandlers",
    "CommandRefused",
    "HealthFacts",
    "Outbox",
    "TelemetryClient",
    "TelemetryConfig",
    "sign_command",
    "terminal_identity",
    "topic",
    "unsigned_command",
]
