"""The catalog document: what the shipped catalog offers and how a bad document is refused."""

import copy
import json
from datetime import date
from typing import Any

import pytest

from kiosk.catalog import (
    KINDS,
    CatalogError,
    UnknownService,
    parse_catalog,
    shipped_catalog_files,
    version_key,
)
from kiosk.i18n import translator
from kiosk.money import MoneyError


@pytest.fixture
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(shipped_catalog_files()[0])
    return loaded


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def test_the_shipped_catalog_offers_the_eight_starting_services() -> None:
    catalog = parse_catalog(shipped_catalog_files()[0])
    assert catalog.version == "2026.11.1"
    assert catalog.published == date(2026, 11, 16)
    assert [s.code for s in catalog.services_of_kind("bill")] == [
        "water-bill",
        "electricity-bill",
        "gas-bill",
        "telecom-bill",
        "catv-bill",
    ]
    assert [s.code for s in catalog.services_of_kind("card_topup")] == ["power-card", "gas-card"]
    assert [s.code for s in catalog.services_of_kind("phone_topup")] == ["mobile-topup"]


def test_shipped_services_carry_their_billers_utilities_and_overpay_rules() -> None:
    catalog = parse_catalog(shipped_catalog_files()[0])
    expected = {
        "water-bill": ("water", None, True),
        "electricity-bill": ("electricity", None, True),
        "gas-bill": ("gas", None, False),
        "telecom-bill": ("telecom", None, False),
        "catv-bill": ("catv", None, False),
        "power-card": ("electricity", "electricity", False),
        "gas-card": ("gas", "gas", False),
        "mobile-topup": ("mobile", None, False),
    }
    actual = {code: (s.biller, s.utility, s.allows_overpay) for code, s in catalog.services.items()}
    assert actual == expected


def test_every_service_name_has_a_chinese_translation() -> None:
    catalog = parse_catalog(shipped_catalog_files()[0])
    chinese = translator("zh_CN")
    names = {s.name: chinese(s.name) for s in catalog.services.values()}
    assert names == {
        "Water bill": "水费",
        "Electricity bill": "电费",
        "Gas bill": "燃气费",
        "Telephone bill": "固话费",
        "Cable TV bill": "有线电视费",
        "Power card top-up": "电卡充值",
        "Gas card top-up": "燃气卡充值",
        "Mobile phone top-up": "手机充值",
    }
    for kind in KINDS:
        service = catalog.services_of_kind(kind)[0]
        assert service.account_label(chinese) != service.account_label()


@pytest.mark.parametrize(
    ("code", "low", "high"),
    [
        ("water-bill", 1, 500_000),
        ("telecom-bill", 1, 500_000),
        ("power-card", 1_000, 200_000),
        ("gas-card", 1_000, 100_000),
        ("mobile-topup", 1_000, 50_000),
    ],
)
def test_amounts_outside_a_service_s_bounds_are_refused(code: str, low: int, high: int) -> None:
    service = parse_catalog(shipped_catalog_files()[0]).service(code)
    assert service.check_amount(low) == low
    assert service.check_amount(high) == high
    for outside in (low - 1, high + 1):
        with pytest.raises(MoneyError, match=f"{service.name}: .* is outside the allowed range"):
            service.check_amount(outside)


def test_presets_are_the_published_ones() -> None:
    catalog = parse_catalog(shipped_catalog_files()[0])
    assert catalog.service("power-card").presets_fen == (5_000, 10_000, 20_000, 50_000)
    assert catalog.service("gas-card").presets_fen == (5_000, 10_000, 20_000)
    assert catalog.service("mobile-topup").presets_fen == (1_000, 2_000, 3_000, 5_000, 10_000)


def test_an_unknown_service_code_is_refused_with_the_known_ones() -> None:
    catalog = parse_catalog(shipped_catalog_files()[0])
    with pytest.raises(
        UnknownService, match="'lottery' is not in catalog 2026.11.1: choose one of"
    ):
        catalog.service("lottery")


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(CatalogError, match="kind 'bills' is unknown"):
        parse_catalog(shipped_catalog_files()[0]).services_of_kind("bills")


def _set(document: dict[str, Any], path: list[Any], value: Any) -> None:
    target = document
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["format"], 3, "format 3 is not supported"),
        (["format"], True, "format true is not supported"),
        (["format"], 1.0, "format 1.0 is not supported"),
        (["version"], "v2", "field version is 'v2'; write it as dotted whole numbers"),
        (["published"], "2026-13-01", "field published must be a date written YYYY-MM-DD"),
        (["published"], "20261116", "field published must be a date"),
        (["services"], [], "field services is empty"),
        (["extra"], 1, "field extra is not a catalog field"),
        (["services", 0, "kind"], "tax", r"services\[0\] \(water-bill\).kind is 'tax'"),
        (["services", 0, "code"], "Water Bill", r"services\[0\].code is 'Water Bill'"),
        (["services", 1, "code"], "water-bill", r"services\[1\].code repeats service"),
        (["services", 0, "min_fen"], 0, r"min_fen is 0; it must be from 1"),
        (["services", 0, "max_fen"], 1.5, r"max_fen must be a whole number, not 1.5"),
        (["services", 0, "max_fen"], "500000", r"max_fen must be a whole number, not '500000'"),
        (["services", 0, "allows_overpay"], 1, "allows_overpay must be true or false"),
        (["services", 5, "allows_overpay"], True, "allows_overpay may only be true for a bill"),
        (["services", 5, "utility"], None, "utility is needed for a card top-up"),
        (["services", 0, "utility"], "water", "utility must be null"),
        (["services", 5, "presets_fen"], [5_000, 5_000], r"presets_fen\[1\] must be larger"),
        (["services", 5, "presets_fen"], [500], r"presets_fen\[0\] is 500; it must be from 1000"),
        (["services", 0, "fees"], [], "fees is empty"),
        (["services", 0, "fees", 1, "effective_from"], "2023-01-01", r"fees\[1\].effective_from"),
        (["services", 0, "fees", 0, "rate_bp"], 10_001, r"fees\[0\].rate_bp is 10001"),
        (["services", 0, "fees", 0, "max_fen"], -1, r"fees\[0\].max_fen is -1"),
        (["services", 0, "fees", 0, "flat_fen"], _DELETE, r"fees\[0\].flat_fen is missing"),
        (["services", 0, "account", "check"], "crc", r"account.check is 'crc'"),
        (["services", 0, "account", "prefixes"], ["3a"], r"account.prefixes\[0\] must be"),
        (["services", 0, "account", "prefixes"], "31", r"account.prefixes must be a list"),
        (["services", 0, "account", "length"], 33, r"account.length is 33"),
        (["services", 0, "name"], "", r"name must be non-empty text"),
    ],
)
def test_a_bad_field_is_refused_with_its_path(
    document: dict[str, Any], path: list[Any], value: Any, message: str
) -> None:
    _set(document, path, value)
    with pytest.raises(CatalogError, match=message) as caught:
        parse_catalog(encode(document))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"format": 1,', "not valid JSON: .* at line 1"),
        (b"[]", "must be an object"),
        (b'{"format": 1, "format": 1}', "key 'format' twice"),
        (b'{"format": NaN}', "NaN"),
    ],
)
def test_a_document_that_is_not_a_catalog_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        parse_catalog(data)


def test_a_new_service_is_configuration_not_code(document: dict[str, Any]) -> None:
    newspaper = copy.deepcopy(document["services"][3])
    newspaper.update(code="newspaper-bill", name="Newspaper subscription", biller="post")
    document["services"].append(newspaper)
    catalog = parse_catalog(encode(document))
    assert catalog.service("newspaper-bill").validate_account("5123 4567") == "51234567"


@pytest.mark.parametrize(
    ("older", "newer"),
    [("2026.11", "2026.12"), ("2026.11", "2026.11.1"), ("2026.9", "2026.10"), ("1", "2")],
)
def test_versions_compare_number_by_number(older: str, newer: str) -> None:
    assert version_key(older) < version_key(newer)


def test_trailing_zero_parts_do_not_make_a_version_newer() -> None:
    assert version_key("2026.11.0") == version_key("2026.11")
