"""The carrier's or utility's commission in the signed catalog: per transaction or per mille of
the amount, as each contract says, effective by date, and split post 3 : station 7 (seed 002,
003: 郵政與加盟網點3:7分成運營商的酬金)."""

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from kiosk.catalog import CatalogError, parse_catalog, shipped_catalog_files
from kiosk.catalog.commission import (
    CommissionBasis,
    CommissionRule,
    commission_statement,
    split_commission,
)

D = date(2024, 1, 1)


def shipped() -> dict[str, Any]:
    data, _ = shipped_catalog_files()
    document: dict[str, Any] = json.loads(data)
    return document


def with_commission(code: str, rules: list[dict[str, Any]]) -> bytes:
    document = shipped()
    for service in document["services"]:
        if service["code"] == code:
            service["commission"] = rules
    return json.dumps(document).encode()


def test_the_shipped_catalog_carries_each_services_contract_terms() -> None:
    catalog = parse_catalog(shipped_catalog_files()[0])
    day = date(2026, 11, 23)
    water = catalog.service("water-bill").commission_rule_on(day)
    power = catalog.service("power-card").commission_rule_on(day)
    assert water == CommissionRule(D, CommissionBasis.PER_TRANSACTION, fen=30)
    assert power is not None and (power.basis, power.per_mille_text) == ("per_mille", "1.5")
    assert all(s.commission for s in catalog.services.values())


def test_per_transaction_and_per_mille_on_the_periods_totals_rounded_half_up() -> None:
    per_tx = CommissionRule(D, CommissionBasis.PER_TRANSACTION, fen=30)
    assert per_tx.commission_fen(count=7, amount_fen=123_456) == 210
    rate = CommissionRule.per_mille(D, "1.5")
    assert rate.per_100k == 150
    assert rate.commission_fen(count=3, amount_fen=100_000) == 150  # 1000 yuan: 1.50 yuan
    assert rate.commission_fen(count=1, amount_fen=333) == 0  # 0.4995 fen
    assert rate.commission_fen(count=1, amount_fen=334) == 1  # 0.501 fen
    assert CommissionRule.per_mille(D, "2").commission_fen(1, 25) == 0  # 0.05 fen
    assert CommissionRule.per_mille(D, "2").commission_fen(1, 250) == 1  # 0.5 fen: half up


@pytest.mark.parametrize("total", [0, 1, 3, 7, 9, 10, 999, 12_345])
def test_the_split_is_three_to_seven_and_adds_up_to_the_fen(total: int) -> None:
    split = split_commission(total)
    assert split.post_fen + split.station_fen == total
    assert split.station_fen == total * 7 // 10
    assert 0 <= split.post_fen - total * 3 // 10 <= 1


def test_a_contract_change_in_the_month_splits_the_service_into_two_lines() -> None:
    rules = {
        "water-bill": (
            CommissionRule(D, CommissionBasis.PER_TRANSACTION, fen=30),
            CommissionRule(date(2026, 11, 16), CommissionBasis.PER_TRANSACTION, fen=40),
        ),
        "mobile-topup": (CommissionRule.per_mille(D, "5"),),
    }
    days = [
        (date(2026, 11, 14), {"water-bill": {"count": 2, "amount_fen": 20_000, "fee_fen": 0}}),
        (date(2026, 11, 20), {"water-bill": {"count": 3, "amount_fen": 9_000, "fee_fen": 0}}),
        (date(2026, 11, 21), {"mobile-topup": {"count": 4, "amount_fen": 20_000, "fee_fen": 0}}),
        (date(2026, 11, 22), {"lottery": {"count": 1, "amount_fen": 500, "fee_fen": 0}}),
    ]
    statement = commission_statement(lambda code: rules.get(code, ()), days)
    assert [(line.service, line.count, line.commission_fen) for line in statement.lines] == [
        ("mobile-topup", 4, 100),
        ("water-bill", 2, 60),
        ("water-bill", 3, 120),
    ]
    assert statement.uncovered == ("lottery",)
    assert (statement.split.total_fen, statement.split.station_fen) == (280, 196)


Change = Callable[[dict[str, Any]], None]


@pytest.mark.parametrize(
    ("rules", "complaint"),
    [
        ([{"effective_from": "2024-01-01", "basis": "per_mille", "per_mille": 1.5}], "in quotes"),
        (
            [{"effective_from": "2024-01-01", "basis": "per_mille", "per_mille": "1.555"}],
            "in quotes",
        ),
        ([{"effective_from": "2024-01-01", "basis": "per_mille", "per_mille": "1001"}], "at most"),
        ([{"effective_from": "2024-01-01", "basis": "per_cent", "fen": 1}], "must be one of"),
        ([{"effective_from": "2024-01-01", "basis": "per_transaction", "fen": -1}], "from 0"),
        (
            [
                {
                    "effective_from": "2024-01-01",
                    "basis": "per_transaction",
                    "fen": 1,
                    "per_mille": "2",
                }
            ],
            "not a catalog field",
        ),
        (
            [
                {"effective_from": "2025-01-01", "basis": "per_transaction", "fen": 1},
                {"effective_from": "2024-01-01", "basis": "per_transaction", "fen": 2},
            ],
            "oldest first",
        ),
    ],
)
def test_a_bad_commission_rule_is_refused_with_its_path(
    rules: list[dict[str, Any]], complaint: str
) -> None:
    with pytest.raises(CatalogError, match=r"services\[0\] \(water-bill\).commission") as refused:
        parse_catalog(with_commission("water-bill", rules))
    assert complaint in str(refused.value)


def test_format_2_needs_the_commission_and_format_1_has_none() -> None:
    document = shipped()
    del document["services"][0]["commission"]
    with pytest.raises(CatalogError, match=r"\(water-bill\).commission is missing"):
        parse_catalog(json.dumps(document).encode())
    document["format"] = 1
    for service in document["services"]:
        service.pop("commission", None)
    catalog = parse_catalog(json.dumps(document).encode())
    assert all(s.commission == () for s in catalog.services.values())
    document["services"][0]["commission"] = []
    with pytest.raises(CatalogError, match="commission is not a catalog field"):
        parse_catalog(json.dumps(document).encode())
