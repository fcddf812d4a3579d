"""The terminal's configuration: one TOML file parsed into typed dataclasses at start.

A missing, unknown or wrongly typed key fails at start with the key's dotted name, never
deep inside a payment. kiosk-tool config init writes a complete, commented file.
"""

import dataclasses
import re
import tomllib
import types
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from kiosk.availability import parse_service_hours
from kiosk.errors import ConfigError
from kiosk.ledger.policy import LOW_FLOAT_THRESHOLD_FEN
from kiosk.message_text import MessageText, error_text
from kiosk.pkcs11_uri import parse_pkcs11_uri
from kiosk.telemetry.config import TelemetryConfig

DeviceChoice = Literal["real", "sim"]
# How the ESC/POS printer confirms a job (docs/printer.md): "auto" takes the model's way, or
# detects it at first contact when the model is "auto".
PrinterConfirm = Literal["auto", "process_id", "status_poll"]
# "auto": the kernel's usblp device when printer_port leads to /dev/usb/lp*, else serial.
PrinterTransport = Literal["auto", "serial", "usblp"]
# "none": no I/O board is supervised (door, tamper, lamp, watchdog): development only.
BoardChoice = Literal["real", "sim", "none"]
# "none": the terminal has no payment-code scanner (it takes no payment codes).
ScannerChoice = Literal["real", "sim", "none"]


@dataclass(frozen=True)
class StationConfig:
    institution_no: str  # 机构号, as on the station certificate
    name: str  # shown on screen and receipts
    terminal_id: str
    address: str = ""  # printed on receipts and slips
    # When the station's staff are there (HH:MM-HH:MM, local): shown on screen; outside them
    # nobody can pay a voucher out, and the cash screen says so before any cash goes in.
    service_hours: str = "08:00-20:00"
    phone: str = ""  # the station's telephone, printed on receipts and slips
    hotline: str = ""  # the operator's help hotline (服务热线), printed on receipts and slips


@dataclass(frozen=True)
class PlatformConfig:
    url: str
    timeout_s: float = 5.0
    retries: int = 3


@dataclass(frozen=True)
class TokenConfig:
    kind: Literal["pkcs11", "software"]
    # pkcs11: the module library and the token's label; software: a PEM key file.
    module: str = "/usr/lib/softhsm/libsofthsm2.so"
    label: str = "kiosk"
    key_label: str = "station"
    # Where the user PIN comes from: "env:NAME", "file:/path" or "prompt". Never logged.
    pin_source: str = "env:KIOSK_TOKEN_PIN"
    # For kind = "software": the demo key and certificate files.
    key_file: str = ""
    cert_file: str = ""
    # For SoftHSM2 tokens made by `kiosk-tool config init --token softhsm`.
    softhsm_conf: str = ""
    # An RFC 7512 PKCS#11 URI instead of module, label, key_label and pin_source (docs/token.md):
    # pkcs11:token=kiosk;object=station;type=private?module-path=/usr/lib/x.so&pin-source=file:/p
    uri: str = ""
    # The station key's type: "p256", "rsa2048" or "sm2" (kiosk.signing.KeyType).
    key_type: Literal["p256", "rsa2048", "sm2"] = "p256"
    # SM2 tokens: the vendor's PKCS#11 mechanism number for SM2 with SM3 (e.g. 0x80000xxx), and
    # whether it signs the digest SM3(Z || M) made on the host instead of the message.
    sm2_mechanism: int = 0
    sm2_hash_on_host: bool = False


@dataclass(frozen=True)
class DevicesConfig:
    printer: DeviceChoice = "sim"
    printer_port: str = ""
    # "auto" or a model of drivers/printer/profiles.toml (kiosk-tool printer models lists them).
    printer_model: str = "auto"
    printer_confirm: PrinterConfirm = "auto"
    printer_transport: PrinterTransport = "auto"
    paper_width_mm: Literal[58, 80] = 58
    card_reader: DeviceChoice = "sim"
    # The PC/SC reader to use: the start of its name or a glob on the whole name ("ACS*");
    # it must match exactly one reader. Empty: the first reader (docs/smartcard.md).
    reader_name: str = ""
    cash: DeviceChoice = "sim"
    # The I/O board counts the cash, so cash = "real" means ioboard = "real" on ioboard_port.
    ioboard: BoardChoice = "none"
    ioboard_port: str = ""
    # The payment-code scanner (docs/scanner.md). scanner_port: a HID-keyboard scanner's
    # input device (the udev link /dev/kiosk-scanner, or name:TEXT as the kernel names it) or
    # a serial scanner's port (/dev/kiosk-scanner-serial); the driver tells them apart.
    scanner: ScannerChoice = "none"
    scanner_port: str = ""

    @property
    def receipt_columns(self) -> int:
        """Characters a receipt line holds: 32 on 58 mm paper, 48 on 80 mm."""
        return 32 if self.paper_width_mm == 58 else 48


@dataclass(frozen=True)
class BusinessConfig:
    day_cutoff: str = "23:30"  # local time at which the business day closes
    timezone: str = "Asia/Shanghai"
    # Under this float balance the terminal and the back office both say "low"
    # (kiosk.ledger.policy: one figure for both; docs/transactions.md).
    low_float_threshold_fen: int = LOW_FLOAT_THRESHOLD_FEN
    catalog_file: str = ""  # empty: the catalog shipped with the software
    operator_key_file: str = ""  # empty: the operator key shipped with the software
    # Days a refund voucher can be paid out, its issue day not counted (docs/transactions.md).
    voucher_valid_days: int = 180
    # A payment collecting cash that nobody touches this long is cancelled by housekeeping,
    # its cash becoming a voucher (a backstop behind the screen's own, shorter timeout).
    collect_timeout_s: int = 300

    def cutoff_time(self) -> time:
        hours, minutes = self.day_cutoff.split(":")
        return time(int(hours), int(minutes))


@dataclass(frozen=True)
class OperatorConfig:
    # The station operator's session (operator card and PIN) ends after this long without
    # an action: an unattended kiosk must not stay open to whoever walks up.
    session_timeout_s: int = 300


@dataclass(frozen=True)
class UpdatesConfig:
    # Where the A/B software slots live (kiosk-tool update; docs/updates.md). The terminal
    # confirms a version on trial once it has started healthy; without the directory (a
    # development checkout) there is nothing to confirm.
    root: str = "/opt/kiosk"


@dataclass(frozen=True)
class Config:
    station: StationConfig
    platform: PlatformConfig
    token: TokenConfig
    data_dir: str
    devices: DevicesConfig = field(default_factory=DevicesConfig)
    business: BusinessConfig = field(default_factory=BusinessConfig)
    operator: OperatorConfig = field(default_factory=OperatorConfig)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    updates: UpdatesConfig = field(default_factory=UpdatesConfig)
    source: str = "<defaults>"

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def database_path(self) -> Path:
        return self.data_path / "terminal.sqlite3"


_CUTOFF = re.compile(r"^([01]\d|2[0-3]):[0-5]\d\Z")
_PHONE = re.compile(r"[0-9 +()-]{0,24}")
# The form of a printer model name; whether the model exists is checked where the driver is
# built (station/composition.py), since the profiles belong to the driver.
_PRINTER_MODEL = re.compile(r"[a-z0-9][a-z0-9-]{0,39}\Z")
T = TypeVar("T")


def _check_value(name: str, hint: Any, value: Any) -> Any:
    origin = get_origin(hint)
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            choices = " or ".join(repr(a) for a in allowed)
            raise ConfigError(
                MessageText(
                    "config key '{name}' is {value!r}; it must be {choices}",
                    name=name,
                    value=value,
                    choices=choices,
                )
            )
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(
                MessageText(
                    "config key '{name}' must be true or false, not {value!r}",
                    name=name,
                    value=value,
                )
            )
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(
                MessageText(
                    "config key '{name}' must be a number, not {value!r}", name=name, value=value
                )
            )
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(
                MessageText(
                    "config key '{name}' must be a whole number, not {value!r}",
                    name=name,
                    value=value,
                )
            )
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(
                MessageText(
                    "config key '{name}' must be text in quotes, not {value!r}",
                    name=name,
                    value=value,
                )
            )
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(
                MessageText("config key '{name}' must be a table [{name}]", name=name)
            )
        return build_table(hint, value, name + ".")
    if isinstance(hint, types.UnionType):  # pragma: no cover - no optional keys yet
        raise ConfigError(MessageText("config key '{name}' has an unsupported type", name=name))
    raise ConfigError(
        MessageText("config key '{name}' has an unsupported type {hint!r}", name=name, hint=hint)
    )


def build_table(cls: type[T], table: dict[str, Any], prefix: str = "") -> T:
    """cls (a frozen dataclass) from a TOML table, every key checked against its type."""
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in table:
        if key not in fields or key == "source":
            raise ConfigError(
                MessageText(
                    "unknown config key '{prefix}{key}': remove it or check its spelling",
                    prefix=prefix,
                    key=key,
                )
            )
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        if name == "source":
            continue
        has_default = (
            spec.default is not dataclasses.MISSING
            or spec.default_factory is not dataclasses.MISSING
        )
        if name not in table:
            if has_default:
                continue
            raise ConfigError(
                MessageText(
                    "config key '{prefix}{name}' is missing: add it to the file",
                    prefix=prefix,
                    name=name,
                )
            )
        values[name] = _check_value(prefix + name, hints[name], table[name])
    return cls(**values)


def _validate(config: Config) -> Config:
    if not _CUTOFF.match(config.business.day_cutoff):
        raise ConfigError(
            MessageText(
                "config key 'business.day_cutoff' is {day_cutoff!r}; write it as HH:MM",
                day_cutoff=config.business.day_cutoff,
            )
        )
    if config.business.low_float_threshold_fen < 0:
        raise ConfigError("config key 'business.low_float_threshold_fen' must not be negative")
    if not 1 <= config.business.voucher_valid_days <= 3660:
        raise ConfigError(
            "config key 'business.voucher_valid_days' must be between 1 and 3660 days"
        )
    if not 60 <= config.business.collect_timeout_s <= 3600:
        raise ConfigError(
            "config key 'business.collect_timeout_s' must be between 60 and 3600 seconds"
        )
    if not 30 <= config.operator.session_timeout_s <= 3600:
        raise ConfigError(
            "config key 'operator.session_timeout_s' must be between 30 and 3600 seconds"
        )
    if not config.station.institution_no.isdigit():
        raise ConfigError("config key 'station.institution_no' must be digits (the 机构号)")
    if not re.fullmatch(r"[A-Za-z0-9-]{1,32}", config.station.terminal_id):
        raise ConfigError("config key 'station.terminal_id' must be 1-32 letters, digits or '-'")
    try:
        parse_service_hours(config.station.service_hours)
    except ValueError:
        raise ConfigError(
            MessageText(
                "config key 'station.service_hours' is {service_hours!r}; write it as HH:MM-HH:MM, "
                'e.g. "08:00-20:00" (a closing time before the opening one runs past midnight)',
                service_hours=config.station.service_hours,
            )
        ) from None
    for key in ("phone", "hotline"):
        if not _PHONE.fullmatch(getattr(config.station, key)):
            raise ConfigError(
                MessageText(
                    "config key 'station.{key}' must be a telephone number: up to 24 digits, "
                    "spaces and + - ( ), or empty",
                    key=key,
                )
            )
    if not config.platform.url.startswith(("http://", "https://")):
        raise ConfigError("config key 'platform.url' must start with http:// or https://")
    devices = config.devices
    if devices.cash == "real" and devices.ioboard != "real":
        raise ConfigError(
            "config key 'devices.ioboard' must be 'real' when devices.cash is 'real':"
            " the I/O board counts the cash"
        )
    for kind, port_key in (
        ("printer", "printer_port"),
        ("ioboard", "ioboard_port"),
    ):
        if getattr(devices, kind) == "real" and not getattr(devices, port_key):
            raise ConfigError(
                MessageText(
                    "config key 'devices.{port_key}' is needed when devices.{kind} is 'real' (e.g. "
                    "the stable name the udev rules give it)",
                    port_key=port_key,
                    kind=kind,
                )
            )
    _check_scanner(devices)
    if not devices.reader_name.isprintable():
        raise ConfigError(
            "config key 'devices.reader_name' must be one line of printable text: the PC/SC"
            " reader's name, the start of it, or a glob such as 'ACS ACR39U*'"
        )
    if not _PRINTER_MODEL.match(devices.printer_model):
        raise ConfigError(
            MessageText(
                "config key 'devices.printer_model' is {printer_model!r}; write \"auto\" or a "
                'model name in lower case (see docs/printer.md), e.g. "clone-58"',
                printer_model=devices.printer_model,
            )
        )
    config.telemetry.check()
    _check_token(config.token)
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(config.business.timezone)
    except Exception as exc:
        raise ConfigError(
            MessageText(
                "config key 'business.timezone' is {timezone!r}, not a known zone",
                timezone=config.business.timezone,
            )
        ) from exc
    return config


def _check_scanner(devices: DevicesConfig) -> None:
    if devices.scanner == "real" and not devices.scanner_port:
        raise ConfigError(
            "config key 'devices.scanner_port' is needed when devices.scanner is 'real'"
            " (e.g. /dev/kiosk-scanner, the stable name the udev rules give it)"
        )
    if not devices.scanner_port.isprintable():
        raise ConfigError(
            "config key 'devices.scanner_port' must be one line of printable text: a device"
            " path such as /dev/kiosk-scanner, or name: and the scanner's input device name"
        )


# The [token] keys a PKCS#11 URI stands for (kiosk/pkcs11_uri.py).
_URI_KEYS = {
    "module": "module_path",
    "label": "token",
    "key_label": "object",
    "pin_source": "pin_source",
}


def _token_from_uri(token: TokenConfig, table: dict[str, Any]) -> TokenConfig:
    """token with module, label, key_label and pin_source taken from token.uri, if given."""
    if not token.uri:
        return token
    given = sorted(key for key in _URI_KEYS if key in table)
    if given:
        raise ConfigError(
            MessageText(
                "config keys 'token.uri' and 'token.{key}' are both given: keep the URI (its "
                "{attribute} attribute) or the separate keys, not both",
                key=given[0],
                attribute=_URI_KEYS[given[0]],
            )
        )
    parsed = parse_pkcs11_uri(token.uri)
    replaced = {
        key: getattr(parsed, attribute)
        for key, attribute in _URI_KEYS.items()
        if getattr(parsed, attribute) is not None
    }
    return dataclasses.replace(token, **replaced)


def _check_token(token: TokenConfig) -> None:
    if token.kind == "software" and not token.key_file:
        raise ConfigError("config key 'token.key_file' is needed when token.kind is 'software'")
    if not 0 <= token.sm2_mechanism <= 0xFFFFFFFF:
        raise ConfigError(
            "config key 'token.sm2_mechanism' must be a PKCS#11 mechanism number (0x80000000"
            " and up for a vendor's)"
        )
    if token.kind == "pkcs11" and token.key_type == "sm2" and not token.sm2_mechanism:
        raise ConfigError(
            "config key 'token.sm2_mechanism' is needed when token.key_type is 'sm2': give the"
            " USBKey vendor's SM2 with SM3 mechanism number (e.g. 0x80000xxx)"
        )


def parse_config(table: dict[str, Any], source: str = "<defaults>") -> Config:
    config = build_table(Config, table)
    raw_token = table.get("token")
    token = _token_from_uri(config.token, raw_token if isinstance(raw_token, dict) else {})
    return _validate(dataclasses.replace(config, token=token, source=source))


def real_token(token: TokenConfig) -> bool:
    """Whether the token is a real USBKey: a PKCS#11 module that is not SoftHSM2.

    SoftHSM2 (a configured softhsm_conf, or its module libsofthsm2) and the software signer
    are development and test tokens.
    """
    if token.kind != "pkcs11" or token.softhsm_conf:
        return False
    return "softhsm" not in Path(token.module).name.lower()


def trusts_development_key(config: Config) -> bool:
    """Whether catalogs are verified with the public development operator key: no
    business.operator_key_file, or one whose key is the development key."""
    from kiosk.catalog import shipped_operator_public_pem  # the catalog package reads config

    key_file = config.business.operator_key_file
    if not key_file:
        return True
    try:
        key = Path(key_file).read_bytes()
    except OSError:
        return False  # not readable: loading the catalog says so with the file's name
    return key.strip() == shipped_operator_public_pem().strip()


def development_trust_problem(config: Config) -> str | None:
    """Why this configuration must not run a terminal, or None.

    A terminal with a real token handles residents' money; the development operator key
    is public (its private half is in the repository's tests), so anyone could sign a
    catalog such a terminal would accept.
    """
    if real_token(config.token) and trusts_development_key(config):
        return MessageText(
            "{source}: this terminal's token is a real PKCS#11 module ({module}) but catalogs "
            "are verified with the public development operator key: set "
            "business.operator_key_file to the operator's production public key "
            "(docs/catalog.md)",
            source=config.source,
            module=config.token.module,
        )
    return None


def refuse_development_trust(config: Config) -> None:
    """Raise ConfigError (one line) if a production terminal trusts the development key."""
    problem = development_trust_problem(config)
    if problem is not None:
        raise ConfigError(problem)


def read_toml(path: Path, how_to_make_one: str) -> dict[str, Any]:
    """The TOML table in path; ConfigError naming the file and what to do when it cannot be read.

    Shared by every service's configuration (the terminal's, the back office's) so that they
    fail the same way.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            MessageText(
                "configuration file {path} does not exist: {how_to_make_one}",
                path=path,
                how_to_make_one=how_to_make_one,
            )
        ) from None
    except OSError as exc:
        raise ConfigError(
            MessageText(
                "cannot read configuration file {path}: {problem}", path=path, problem=exc.strerror
            )
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            MessageText(
                "configuration file {path} is not valid TOML: {problem}",
                path=path,
                problem=error_text(exc),
            )
        ) from None


def load_config(path: Path) -> Config:
    """Read and validate a configuration file; raise ConfigError naming the problem."""
    table = read_toml(path, "create one with 'kiosk-tool config init'")
    try:
        return parse_config(table, source=str(path))
    except ConfigError as exc:
        raise ConfigError(
            MessageText("{path}: {problem}", path=path, problem=error_text(exc))
        ) from None
