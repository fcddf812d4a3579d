"""The catalog of services and fees: its typed model and the parser of catalog.json.

Owns what a service is (kind, biller, account rule, amount bounds, presets, fee schedule)
and the full validation of a catalog document, every error naming the path of the bad
field. It never reads files, checks signatures or decides which catalog is in force
(kiosk.catalog.store does), and never branches on a particular service code.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any

from kiosk.catalog.account_rules import CHECKS, AccountRule
from kiosk.catalog.commission import CommissionBasis, CommissionRule, commission_rule_on
from kiosk.catalog.fees import FeeRule, next_rule_after, rule_in_force
from kiosk.errors import KioskError
from kiosk.i18n import Translate
from kiosk.money import MAX_FEN, check_bounds, format_fen

# The format this software writes; it reads every format in READABLE_FORMATS. Format 2 adds
# each service's commission rules (docs/catalog.md, "Commission"); format 1 has none.
CATALOG_FORMAT = 2
READABLE_FORMATS = (1, 2)
KINDS = ("bill", "card_topup", "phone_topup")

# How each kind calls the number a resident enters; message ids translated in catalog.po.
ACCOUNT_LABELS = {
    "bill": "{service} account number",
    "card_topup": "{service} card number",
    "phone_topup": "{service} phone number",
}

_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}\Z")
_IDENTIFIER = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}\Z")
# Dotted whole numbers, compared number by number: "2026.11" < "2026.11.1" < "2026.12".
_VERSION = re.compile(r"^\d{1,9}(?:\.\d{1,9}){0,3}\Z")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")


def _identity(message: str) -> str:
    return message


class CatalogError(KioskError):
    """A catalog is malformed, unsigned, badly signed or may not be installed."""


class UnknownService(CatalogError):
    """A service code is not in the catalog in force."""


def version_key(version: str) -> tuple[int, ...]:
    """The comparable form of a catalog version; trailing zero parts do not count."""
    if not _VERSION.match(version):
        raise CatalogError(
            f"catalog version {version!r} is not dotted whole numbers like 2026.11 or 2026.11.2"
        )
    parts = [int(part) for part in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


@dataclass(frozen=True)
class Service:
    code: str
    kind: str  # "bill" | "card_topup" | "phone_topup"
    name: str  # English message id; Chinese in catalog.po
    biller: str
    utility: str | None
    account_rule: AccountRule
    min_fen: int
    max_fen: int
    allows_overpay: bool
    presets_fen: tuple[int, ...]
    fees: tuple[FeeRule, ...]  # sorted by effective_from, strictly increasing
    # The carrier's or utility's commission, as its contract says (format 2; empty in a
    # format 1 catalog): sorted by effective_from, strictly increasing.
    commission: tuple[CommissionRule, ...] = ()

    def commission_rule_on(self, day: date) -> CommissionRule | None:
        """The commission rule in force on day, or None (no contract terms published)."""
        return commission_rule_on(self.commission, day)

    def fee_rule_on(self, day: date) -> FeeRule | None:
        """The published rule in force on day, or None before the service's first rule."""
        return rule_in_force(self.fees, day)

    def fee_on(self, day: date, amount_fen: int) -> int:
        """The fee for amount_fen on day under the rule in force that day, in integer fen."""
        rule = self.fee_rule_on(day)
        if rule is None:
            raise CatalogError(
                f"{self.name} ({self.code}) has no published fee for {day.isoformat()}: "
                f"it is on sale from {self.fees[0].effective_from.isoformat()}"
            )
        return rule.fee(amount_fen)

    def upcoming_fee_change(self, day: date) -> FeeRule | None:
        """The next announced rule that is not yet in force on day, if any."""
        return next_rule_after(self.fees, day)

    def account_label(self, translate: Translate = _identity) -> str:
        """What the resident enters, e.g. "Water bill account number", through translate."""
        return translate(ACCOUNT_LABELS[self.kind]).format(service=translate(self.name))

    def validate_account(self, account: str) -> str:
        """The normalised account number, or AccountInvalid naming this service's rule.

        To show the error in another language: error.translated(t, what=service.account_label(t)).
        """
        return self.account_rule.validate(account, self.account_label())

    def check_amount(self, amount_fen: int) -> int:
        """amount_fen if within this service's bounds; MoneyError naming them otherwise."""
        return check_bounds(amount_fen, self.min_fen, self.max_fen, self.name)


@dataclass(frozen=True)
class Catalog:
    version: str
    published: date
    services: Mapping[str, Service]  # in the order of the document

    def service(self, code: str) -> Service:
        try:
            return self.services[code]
        except KeyError:
            raise UnknownService(
                f"service {code!r} is not in catalog {self.version}: "
                f"choose one of {', '.join(self.services)}"
            ) from None

    def services_of_kind(self, kind: str) -> list[Service]:
        if kind not in KINDS:
            raise CatalogError(f"service kind {kind!r} is unknown: use one of {', '.join(KINDS)}")
        return [service for service in self.services.values() if service.kind == kind]

    def is_newer_than(self, other: "Catalog") -> bool:
        return version_key(self.version) > version_key(other.version)


# ------------------------------------------------------------------------------ parsing
# Written by hand rather than with a JSON Schema library: the result is typed dataclasses,
# several rules span fields (presets within bounds, dates in order), and every message
# must name the field's path in words a technician can act on.


class _Object:
    """One JSON object being read: takes typed fields by name, then refuses leftovers."""

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _error(path, f"must be an object {{...}}, not {_describe(value)}")
        self._fields: dict[str, Any] = dict(value)
        self.path = path

    def _at(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def take(self, name: str) -> tuple[Any, str]:
        if name not in self._fields:
            raise _error(self._at(name), "is missing: add it")
        return self._fields.pop(name), self._at(name)

    def text(self, name: str, pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
        value, path = self.take(name)
        if not isinstance(value, str) or not value.strip():
            raise _error(path, f"must be non-empty text, not {_describe(value)}")
        if pattern is not None and not pattern.match(value):
            raise _error(path, f"is {value!r}; {hint}")
        return value

    def optional_text(self, name: str, pattern: re.Pattern[str], hint: str) -> str | None:
        value, path = self.take(name)
        if value is None:
            return None
        if not isinstance(value, str) or not pattern.match(value):
            raise _error(path, f"is {_describe(value)}; {hint}, or null")
        return value

    def whole(self, name: str, low: int, high: int) -> int:
        value, path = self.take(name)
        return _whole(value, path, low, high)

    def flag(self, name: str) -> bool:
        value, path = self.take(name)
        if not isinstance(value, bool):
            raise _error(path, f"must be true or false, not {_describe(value)}")
        return value

    def day(self, name: str) -> date:
        value, path = self.take(name)
        if isinstance(value, str) and _ISO_DATE.match(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise _error(path, f"must be a date written YYYY-MM-DD, not {_describe(value)}")

    def array(self, name: str) -> tuple[list[Any], str]:
        value, path = self.take(name)
        if not isinstance(value, list):
            raise _error(path, f"must be a list [...], not {_describe(value)}")
        return value, path

    def finish(self) -> None:
        if self._fields:
            unknown = sorted(self._fields)[0]
            raise _error(self._at(unknown), "is not a catalog field: remove it or fix its spelling")


def _error(path: str, problem: str) -> CatalogError:
    return CatalogError(f"catalog field {path} {problem}")


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _whole(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _error(path, f"must be a whole number, not {_describe(value)}")
    if not low <= value <= high:
        raise _error(path, f"is {value}; it must be from {low} to {high}")
    return value


def _parse_account_rule(value: Any, path: str) -> AccountRule:
    table = _Object(value, path)
    length = table.whole("length", 1, 32)
    prefixes_value, prefixes_path = table.array("prefixes")
    prefixes: list[str] = []
    for index, prefix in enumerate(prefixes_value):
        where = f"{prefixes_path}[{index}]"
        if not (
            isinstance(prefix, str)
            and prefix.isascii()
            and prefix.isdigit()
            and len(prefix) < length
        ):
            shape = f"must be 1 to {length - 1} digits in quotes"
            raise _error(where, f"{shape}, not {_describe(prefix)}")
        if prefix in prefixes:
            raise _error(where, f"repeats prefix {prefix!r}")
        prefixes.append(prefix)
    check = table.text("check")
    if check not in CHECKS:
        raise _error(f"{path}.check", f"is {check!r}; it must be one of {', '.join(CHECKS)}")
    table.finish()
    return AccountRule(length=length, prefixes=tuple(prefixes), check=check)


def _parse_fee_rule(value: Any, path: str) -> FeeRule:
    table = _Object(value, path)
    effective_from = table.day("effective_from")
    flat_fen = table.whole("flat_fen", 0, MAX_FEN)
    rate_bp = table.whole("rate_bp", 0, 10_000)
    min_fen = table.whole("min_fen", 0, MAX_FEN)
    max_fen = table.whole("max_fen", min_fen, MAX_FEN)
    table.finish()
    return FeeRule(effective_from, flat_fen, rate_bp, min_fen, max_fen)


def _parse_commission_rule(value: Any, path: str) -> CommissionRule:
    table = _Object(value, path)
    effective_from = table.day("effective_from")
    basis = table.text("basis")
    if basis == CommissionBasis.PER_TRANSACTION:
        rule = CommissionRule(
            effective_from, CommissionBasis.PER_TRANSACTION, fen=table.whole("fen", 0, MAX_FEN)
        )
    elif basis == CommissionBasis.PER_MILLE:
        rate, rate_path = table.take("per_mille")
        try:
            rule = CommissionRule.per_mille(effective_from, rate if isinstance(rate, str) else "")
        except ValueError:
            raise _error(
                rate_path,
                f"is {_describe(rate)}; write the rate in quotes with up to 2 decimals, "
                'like "3" or "1.5" (per mille, at most "1000")',
            ) from None
    else:
        bases = ", ".join(CommissionBasis)
        raise _error(f"{path}.basis", f"is {basis!r}; it must be one of {bases}")
    table.finish()
    return rule


def _parse_commission(table: "_Object", path: str, format_: int) -> tuple[CommissionRule, ...]:
    if format_ < 2:
        return ()
    value, where = table.array("commission")
    rules = [_parse_commission_rule(rule, f"{where}[{i}]") for i, rule in enumerate(value)]
    for index in range(1, len(rules)):
        if rules[index].effective_from <= rules[index - 1].effective_from:
            raise _error(
                f"{where}[{index}].effective_from",
                "must be later than the rule before it: list commission rules oldest first",
            )
    return tuple(rules)


def _parse_service(value: Any, path: str, format_: int = CATALOG_FORMAT) -> Service:
    table = _Object(value, path)
    code = table.text("code", _CODE, "use lowercase letters, digits and '-' (up to 40)")
    table.path = path = f"{path} ({code})"
    kind = table.text("kind")
    if kind not in KINDS:
        raise _error(f"{path}.kind", f"is {kind!r}; it must be one of {', '.join(KINDS)}")
    name = table.text("name")
    biller = table.text("biller", _IDENTIFIER, "use lowercase letters, digits, '-' and '_'")
    utility = table.optional_text(
        "utility", _IDENTIFIER, "use a prepaid card utility such as electricity or gas"
    )
    if kind == "card_topup" and utility is None:
        raise _error(f"{path}.utility", "is needed for a card top-up: the card's utility")
    if kind != "card_topup" and utility is not None:
        raise _error(f"{path}.utility", "must be null: only card top-ups write to a utility card")
    account_value, account_path = table.take("account")
    account_rule = _parse_account_rule(account_value, account_path)
    min_fen = table.whole("min_fen", 1, MAX_FEN)
    max_fen = table.whole("max_fen", min_fen, MAX_FEN)
    allows_overpay = table.flag("allows_overpay")
    if allows_overpay and kind != "bill":
        raise _error(f"{path}.allows_overpay", "may only be true for a bill")
    presets_value, presets_path = table.array("presets_fen")
    presets: list[int] = []
    for index, preset in enumerate(presets_value):
        where = f"{presets_path}[{index}]"
        presets.append(_whole(preset, where, min_fen, max_fen))
        if len(presets) > 1 and presets[-1] <= presets[-2]:
            raise _error(where, "must be larger than the preset before it")
    fees_value, fees_path = table.array("fees")
    if not fees_value:
        raise _error(fees_path, "is empty: publish at least one fee rule")
    fees = [_parse_fee_rule(rule, f"{fees_path}[{i}]") for i, rule in enumerate(fees_value)]
    for index in range(1, len(fees)):
        if fees[index].effective_from <= fees[index - 1].effective_from:
            raise _error(
                f"{fees_path}[{index}].effective_from",
                "must be later than the rule before it: list fee rules oldest first",
            )
    commission = _parse_commission(table, path, format_)
    table.finish()
    return Service(
        code=code,
        kind=kind,
        name=name,
        biller=biller,
        utility=utility,
        account_rule=account_rule,
        min_fen=min_fen,
        max_fen=max_fen,
        allows_overpay=allows_overpay,
        presets_fen=tuple(presets),
        fees=tuple(fees),
        commission=commission,
    )


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for key, value in pairs:
        if key in table:
            raise CatalogError(f"catalog has the key {key!r} twice in one object: keep one")
        table[key] = value
    return table


def _refuse_constant(name: str) -> Any:
    raise CatalogError(f"catalog contains {name}, which is not a number JSON allows")


def parse_catalog(data: bytes) -> Catalog:
    """Parse and fully validate a catalog document (UTF-8 JSON, format 1 or 2)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogError(
            f"catalog is not UTF-8 text (bad byte at {exc.start}): save it as UTF-8"
        ) from None
    try:
        document = json.loads(
            text,
            object_pairs_hook=_refuse_duplicate_keys,
            parse_constant=_refuse_constant,
        )
    except json.JSONDecodeError as exc:
        raise CatalogError(
            f"catalog is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    root = _Object(document, "")
    format_value, _ = root.take("format")
    if type(format_value) is not int or format_value not in READABLE_FORMATS:
        readable = " and ".join(map(str, READABLE_FORMATS))
        raise CatalogError(
            f"catalog format {_describe(format_value)} is not supported: this software reads "
            f"formats {readable}; update the terminal software or publish format "
            f"{CATALOG_FORMAT}"
        )
    version = root.text("version", _VERSION, "write it as dotted whole numbers like 2026.11")
    published = root.day("published")
    services_value, services_path = root.array("services")
    if not services_value:
        raise _error(services_path, "is empty: a catalog offers at least one service")
    services: dict[str, Service] = {}
    for index, item in enumerate(services_value):
        service = _parse_service(item, f"{services_path}[{index}]", format_value)
        if service.code in services:
            raise _error(f"{services_path}[{index}].code", f"repeats service {service.code!r}")
        services[service.code] = service
    root.finish()
    return Catalog(version=version, published=published, services=MappingProxyType(services))


def describe_fee_rule(rule: FeeRule) -> str:
    """A fee rule in one line of English as technicians read it: "free", "¥1.00 flat"..."""
    if rule.rate_bp == 0:
        constant = max(rule.min_fen, min(rule.max_fen, rule.flat_fen))
        return f"{format_fen(constant)} flat" if constant else "free"
    whole, hundredths = divmod(rule.rate_bp, 100)
    text = f"{whole}.{hundredths:02d}% of the amount, rounded up to the fen"
    if rule.flat_fen:
        text = f"{format_fen(rule.flat_fen)} + {text}"
    limits = []
    if rule.min_fen:
        limits.append(f"at least {format_fen(rule.min_fen)}")
    if rule.max_fen < MAX_FEN:
        limits.append(f"at most {format_fen(rule.max_fen)}")
    return f"{text} ({', '.join(limits)})" if limits else text
