"""Typed configuration of the telemetry link: the [telemetry] table of the terminal's TOML.

Owns the keys, their defaults (chosen to stay under 1 MB a day, docs/mqtt.md section 5)
and their validation. kiosk.config embeds this table; this module never reads files
other than checking that the files it names exist.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kiosk.errors import ConfigError


@dataclass(frozen=True)
class TelemetryConfig:
    # Empty: telemetry is off (a bench or demo terminal without a broker).
    broker_host: str = ""
    broker_port: int = 8883
    # PEM files: the fleet CA, this terminal's certificate (CN "<station>/<terminal>") and key.
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    # The back office's command-signing public key (PEM); commands are refused without it.
    backoffice_key_file: str = ""
    mqtt_version: Literal["5", "3.1.1"] = "5"
    heartbeat_interval_s: int = 120
    health_interval_s: int = 900
    keepalive_s: int = 180
    # Outbox records published but not yet acknowledged, at most.
    outbox_window: int = 20
    # Without an ack for this long, the unacknowledged records are published again.
    outbox_resend_s: int = 600
    # A command may not expire further ahead than this: it bounds the nonce store.
    max_command_lifetime_s: int = 86_400
    # How long the broker keeps this terminal's session (queued commands and acks).
    session_expiry_s: int = 86_400

    @property
    def enabled(self) -> bool:
        return bool(self.broker_host)

    def check(self) -> "TelemetryConfig":
        """Raise ConfigError naming the first wrong key; return self when all is well."""
        ranges = {
            "broker_port": (self.broker_port, 1, 65_535),
            "heartbeat_interval_s": (self.heartbeat_interval_s, 10, 3_600),
            "health_interval_s": (self.health_interval_s, 60, 86_400),
            "keepalive_s": (self.keepalive_s, 10, 600),
            "outbox_window": (self.outbox_window, 1, 1_000),
            "outbox_resend_s": (self.outbox_resend_s, 10, 86_400),
            "max_command_lifetime_s": (self.max_command_lifetime_s, 60, 7 * 86_400),
            "session_expiry_s": (self.session_expiry_s, 0, 7 * 86_400),
        }
        for key, (value, low, high) in ranges.items():
            if not low <= value <= high:
                raise ConfigError(
                    f"config key 'telemetry.{key}' is {value}; it must be from {low} to {high}"
                )
        if not self.enabled:
            return self
        for key in ("ca_file", "cert_file", "key_file", "backoffice_key_file"):
            name = getattr(self, key)
            if not name:
                raise ConfigError(
                    f"config key 'telemetry.{key}' is needed when telemetry.broker_host is set"
                )
            if not Path(name).is_file():
                raise ConfigError(
                    f"config key 'telemetry.{key}' names {name}, which does not exist: "
                    "install the file or correct the path"
                )
        return self
