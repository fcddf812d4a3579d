"""The back office's configuration: one TOML file parsed into typed dataclasses at start.

A missing, unknown or wrongly typed key fails at start with the key's dotted name. The
parsing rules are the terminal's (kiosk.config), so both files behave the same way.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# Reused on purpose: one set of rules for every TOML file of the project.
from kiosk.config import build_table, read_toml
from kiosk.errors import ConfigError


@dataclass(frozen=True)
class BrokerConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    # One fixed client id per worker: the broker keeps its session (and QoS 1 messages)
    # while the back office restarts.
    client_id: str = "backoffice-ingest-1"
    # "" subscribes directly; "ingest" joins $share/ingest/... with other workers.
    shared_group: str = ""
    username: str = ""
    password: str = ""
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    keepalive_s: int = 30
    # How long the broker keeps this worker's session (and its unacknowledged messages)
    # while the worker is away.
    session_expiry_s: int = 86_400


@dataclass(frozen=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True)
class CommandConfig:
    # PEM EC P-256 private key of the back office; terminals hold its public key.
    key_file: str = ""
    ttl_s: int = 300


@dataclass(frozen=True)
class CertificateConfig:
    # PEM of the operator CA: when set, a station certificate is registered only if this CA
    # issued it. Empty: staff vouch for each certificate they register.
    operator_ca_file: str = ""


@dataclass(frozen=True)
class Thresholds:
    # A terminal without a heartbeat for this long is offline, even without a last will.
    offline_after_s: float = 180.0
    low_float_fen: int = 50_000
    cert_days: int = 30
    outbox_backlog: int = 20
    # An outbox record the terminal says is waiting but that has not arrived for this long.
    gap_after_s: float = 600.0


@dataclass(frozen=True)
class ReportConfig:
    timezone: str = "Asia/Shanghai"
    # Monthly agency-fee commission, operator:station (seed 002 gives 3:7 as example).
    commission_operator: int = 3
    commission_station: int = 7
    exit_min_monthly: int = 20
    exit_months: int = 3


@dataclass(frozen=True)
class BackofficeConfig:
    # sqlite:///absolute/path.db or postgresql://user@host:port/db
    store: str
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    commands: CommandConfig = field(default_factory=CommandConfig)
    certificates: CertificateConfig = field(default_factory=CertificateConfig)
    thresholds: Thresholds = field(default_factory=Thresholds)
    reports: ReportConfig = field(default_factory=ReportConfig)
    source: str = "<defaults>"


def parse_config(table: dict[str, Any], source: str = "<defaults>") -> BackofficeConfig:
    config = build_table(BackofficeConfig, table)
    if not config.store.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigError(
            "config key 'store' must start with sqlite:/// (a file) or postgresql:// (a server)"
        )
    if (
        config.reports.commission_operator < 0
        or config.reports.commission_station < 0
        or (config.reports.commission_operator + config.reports.commission_station == 0)
    ):
        raise ConfigError(
            "config keys 'reports.commission_operator' and 'reports.commission_station' must be "
            "whole numbers >= 0 that do not both equal 0, e.g. 3 and 7"
        )
    try:
        ZoneInfo(config.reports.timezone)
    except Exception:
        raise ConfigError(
            f"config key 'reports.timezone' is {config.reports.timezone!r}, not a known zone"
        ) from None
    return dataclasses.replace(config, source=source)


def load_config(path: Path) -> BackofficeConfig:
    """Read and validate a back-office configuration file; raise ConfigError naming the problem."""
    table = read_toml(path, "write one as docs/backoffice.md shows")
    try:
        return parse_config(table, source=str(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
