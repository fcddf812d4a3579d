"""The back office's configuration: one TOML file parsed into typed dataclasses at start.

A missing, unknown or wrongly typed key fails at start with the key's dotted name. The
parsing rules are the terminal's (kiosk.config), so both files behave the same way.
"""

import copy
import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo

from backoffice.roles import Role

# Reused on purpose: one set of rules for every TOML file of the project.
from kiosk.config import build_table, read_toml
from kiosk.errors import ConfigError
from kiosk.ledger.policy import LOW_FLOAT_THRESHOLD_FEN

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]\Z")


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
    cert_days: int = 30
    outbox_backlog: int = 20
    # An outbox record the terminal says is waiting but that has not arrived for this long.
    gap_after_s: float = 600.0

    @property
    def low_float_fen(self) -> int:
        """The terminal's threshold, one figure for both ends (docs/transactions.md, "One
        low-float threshold"): not configurable here, so the two can never disagree."""
        return LOW_FLOAT_THRESHOLD_FEN


@dataclass(frozen=True)
class ReportConfig:
    timezone: str = "Asia/Shanghai"
    # Monthly agency-fee commission, operator:station (seed 002 gives 3:7 as example).
    commission_operator: int = 3
    commission_station: int = 7
    exit_min_monthly: int = 20
    exit_months: int = 3


@dataclass(frozen=True)
class DashboardConfig:
    # The operator's time zone: every time on the dashboard is shown in it.
    timezone: str = "Asia/Shanghai"
    page_size: int = 50
    refresh_s: int = 30
    # How often the fleet's state is sampled for the "online over time" chart.
    sample_every_s: float = 300.0


@dataclass(frozen=True)
class AuthConfig:
    # The authenticating reverse proxy puts the signed-in user's name in this header.
    user_header: str = "X-Forwarded-User"
    # Only requests from these addresses (or networks) are believed; others are refused.
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    # user name -> role; a user not listed gets default_role ("" refuses them).
    users: Mapping[str, Role] = field(default_factory=lambda: MappingProxyType({}))
    default_role: str = "viewer"
    # A file holding the secret of the forms' CSRF tokens (several workers share it);
    # empty: a new secret at each start (forms open across a restart must be sent again).
    csrf_secret_file: str = ""
    csrf_max_age_s: int = 8 * 3600


When = Literal["always", "outside_quiet_hours", "never"]


@dataclass(frozen=True)
class KindPolicy:
    """How one alert kind reaches people."""

    when: When = "outside_quiet_hours"
    # Sent only if still open this long after it was raised (a short outage passes quietly).
    delay_s: float = 0.0
    # Apprise URLs for this kind; empty: notify.urls.
    urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotifyConfig:
    # Apprise URLs (wecombot://, dingtalk://, mailtos://, json://...); empty: no notifications.
    urls: tuple[str, ...] = ()
    # "22:00-07:00" in the dashboard's time zone; "" for none.
    quiet_hours: str = ""
    poll_s: float = 5.0
    retry_s: float = 60.0
    max_attempts: int = 5
    # Alerts raised this long before the notifier first runs are not sent (no flood at start).
    backfill_s: float = 3600.0
    # The dashboard's address as staff open it (through the proxy): notices link to it.
    dashboard_url: str = ""
    # alert kind -> its policy; kinds not listed take backoffice.notify.DEFAULT_POLICIES.
    kinds: Mapping[str, KindPolicy] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class RevocationConfig:
    # The operator CA that issued the terminals' certificates (PEM); its key signs the CRL.
    ca_cert_file: str = ""
    ca_key_file: str = ""
    # Where the CRL is written (Mosquitto's crlfile, the platform's CRL).
    crl_file: str = ""
    # Where issued certificates are kept (*.pem); revoke finds a terminal's there.
    certificates_dir: str = ""
    crl_days: int = 30
    # Mosquitto's pid file: it is sent SIGHUP after the CRL is written; "" to leave it.
    broker_pid_file: str = ""


@dataclass(frozen=True)
class CommissionConfig:
    """The monthly commission statement (backoffice.commission; seed 002)."""

    # The signed catalog whose services carry the carriers' commission terms, its signature
    # ("" = catalog_file + ".sig") and the operator's public key; "" for all three: the
    # catalog the software ships (the sample terms of docs/catalog.md).
    catalog_file: str = ""
    catalog_sig_file: str = ""
    operator_public_key_file: str = ""
    # Tax withheld from the station's share, in basis points (100 = 1 %).
    tax_rate_bp: int = 0
    # The statement is listed by this day and paid by that day of the following month.
    listing_day: int = 15
    payment_day: int = 20


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
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    revocation: RevocationConfig = field(default_factory=RevocationConfig)
    commission: CommissionConfig = field(default_factory=CommissionConfig)
    source: str = "<defaults>"


def parse_config(table: dict[str, Any], source: str = "<defaults>") -> BackofficeConfig:
    table = copy.deepcopy(table)
    # kiosk.config reads scalar keys only: lists and tables of these sections are read here.
    auth = _section(table, "auth")
    proxies = _texts("auth.trusted_proxies", auth.pop("trusted_proxies", None))
    users = _users(auth.pop("users", None))
    notify = _section(table, "notify")
    urls = _texts("notify.urls", notify.pop("urls", None))
    kinds = _kinds(notify.pop("kinds", None))
    config = build_table(BackofficeConfig, table)
    if proxies is not None:
        config = dataclasses.replace(
            config, auth=dataclasses.replace(config.auth, trusted_proxies=proxies)
        )
    config = dataclasses.replace(
        config,
        auth=dataclasses.replace(config.auth, users=MappingProxyType(users)),
        notify=dataclasses.replace(config.notify, urls=urls or (), kinds=MappingProxyType(kinds)),
    )
    _check_extensions(config)
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
    commission = config.commission
    if not 0 <= commission.tax_rate_bp <= 10_000:
        raise ConfigError(
            "config key 'commission.tax_rate_bp' must be 0 to 10000 (basis points: 2000 is 20 %)"
        )
    if not 1 <= commission.listing_day <= commission.payment_day <= 28:
        raise ConfigError(
            "config keys 'commission.listing_day' and 'commission.payment_day' must be days "
            "1 to 28 with the listing not after the payment, e.g. 15 and 20"
        )
    try:
        ZoneInfo(config.reports.timezone)
    except Exception:
        raise ConfigError(
            f"config key 'reports.timezone' is {config.reports.timezone!r}, not a known zone"
        ) from None
    return dataclasses.replace(config, source=source)


def _section(table: dict[str, Any], name: str) -> dict[str, Any]:
    section = table.get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"config key '{name}' must be a table [{name}]")
    return section


def _texts(name: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f'config key \'{name}\' must be a list of texts, e.g. ["a", "b"]')
    return tuple(value)


def _users(value: Any) -> dict[str, Role]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("config key 'auth.users' must be a table [auth.users] of name = role")
    users = {}
    for name, role in value.items():
        try:
            users[name] = Role.named(role if isinstance(role, str) else "")
        except ValueError as exc:
            raise ConfigError(f"config key 'auth.users.{name}': {exc}") from None
    return users


def _kinds(value: Any) -> dict[str, KindPolicy]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("config key 'notify.kinds' must be a table [notify.kinds.<kind>]")
    kinds = {}
    for kind, policy in value.items():
        name = f"notify.kinds.{kind}"
        if not isinstance(policy, dict):
            raise ConfigError(f"config key '{name}' must be a table [{name}]")
        policy = dict(policy)
        urls = _texts(f"{name}.urls", policy.pop("urls", None))
        built = build_table(KindPolicy, policy, name + ".")
        kinds[kind] = dataclasses.replace(built, urls=urls or ())
    return kinds


def _check_extensions(config: BackofficeConfig) -> None:
    """The dashboard's, sign-in's, notifications' and revocation's keys."""
    try:
        ZoneInfo(config.dashboard.timezone)
    except Exception:
        raise ConfigError(
            f"config key 'dashboard.timezone' is {config.dashboard.timezone!r}, not a known zone"
            " (e.g. Asia/Shanghai)"
        ) from None
    if not 5 <= config.dashboard.page_size <= 1000:
        raise ConfigError("config key 'dashboard.page_size' must be between 5 and 1000")
    for proxy in config.auth.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(
                f"config key 'auth.trusted_proxies' holds {proxy!r}, not an address or network"
            ) from None
    if config.auth.default_role:
        try:
            Role.named(config.auth.default_role)
        except ValueError as exc:
            raise ConfigError(f"config key 'auth.default_role': {exc} (or \"\")") from None
    if not config.auth.user_header.strip():
        raise ConfigError("config key 'auth.user_header' must name the proxy's user header")
    quiet = config.notify.quiet_hours
    if (
        quiet
        and not all(_CLOCK.match(part) for part in quiet.split("-", 1))
        or (quiet and quiet.count("-") != 1)
    ):
        raise ConfigError(
            f"config key 'notify.quiet_hours' is {quiet!r}; write it as HH:MM-HH:MM, e.g."
            ' "22:00-07:00", or "" for none'
        )
    from backoffice.alerts import ALERT_KINDS

    for kind in config.notify.kinds:
        if kind not in ALERT_KINDS:
            raise ConfigError(
                f"config key 'notify.kinds.{kind}': no alert kind {kind!r}; kinds are "
                + ", ".join(ALERT_KINDS)
            )
    revocation = config.revocation
    if revocation.ca_cert_file or revocation.ca_key_file or revocation.crl_file:
        for key in ("ca_cert_file", "ca_key_file", "crl_file"):
            if not getattr(revocation, key):
                raise ConfigError(
                    f"config key 'revocation.{key}' is needed with the other revocation keys"
                )
    if revocation.crl_days < 1:
        raise ConfigError("config key 'revocation.crl_days' must be at least 1")


def load_config(path: Path) -> BackofficeConfig:
    """Read and validate a back-office configuration file; raise ConfigError naming the problem."""
    table = read_toml(path, "write one as docs/backoffice.md shows")
    try:
        return parse_config(table, source=str(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
