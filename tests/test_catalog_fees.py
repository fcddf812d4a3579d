"""The published fee schedule: the fee formula, effective dates and the notice period."""

import math
from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.catalog import CatalogError, FeeRule, describe_fee_rule, earliest_fee_change
from kiosk.catalog.fees import add_working_days, is_working_day
from kiosk.catalog.model import parse_catalog
from kiosk.catalog.store import shipped_catalog_files
from kiosk.money import MAX_FEN, MoneyError

fen = st.integers(min_value=0, max_value=MAX_FEN)


@st.composite
def fee_rules(draw: st.DrawFn) -> FeeRule:
    low = draw(st.integers(0, 100_000))
    high = draw(st.integers(low, MAX_FEN))
    return FeeRule(
        effective_from=date(2026, 1, 1),
        flat_fen=draw(st.integers(0, 100_000)),
        rate_bp=draw(st.integers(0, 10_000)),
        min_fen=low,
        max_fen=high,
    )


@given(fee_rules(), fen)
def test_a_fee_is_whole_fen_never_negative_and_within_its_limits(
    rule: FeeRule, amount: int
) -> None:
    fee = rule.fee(amount)
    assert type(fee) is int
    assert 0 <= rule.min_fen <= fee <= rule.max_fen


@given(fee_rules(), fen)
def test_a_fee_is_the_flat_part_plus_the_rate_rounded_up(rule: FeeRule, amount: int) -> None:
    # An independent oracle: exact rational arithmetic, rounded up.
    proportional = math.ceil(Fraction(amount * rule.rate_bp, 10_000))
    expected = min(rule.max_fen, max(rule.min_fen, rule.flat_fen + proportional))
    assert rule.fee(amount) == expected


@given(fee_rules(), fen, fen)
def test_a_larger_amount_never_costs_a_smaller_fee(rule: FeeRule, a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert rule.fee(low) <= rule.fee(high)


def test_rounding_goes_up_to_the_next_fen() -> None:
    rule = FeeRule(date(2026, 1, 1), flat_fen=0, rate_bp=30, min_fen=0, max_fen=MAX_FEN)
    assert rule.fee(100) == 1  # 0.3 fen
    assert rule.fee(10_000) == 30  # exactly 30 fen
    assert rule.fee(10_001) == 31  # 30.003 fen
    assert rule.fee(0) == 0


def test_a_minimum_and_a_maximum_clamp_the_fee() -> None:
    rule = FeeRule(date(2026, 1, 1), flat_fen=0, rate_bp=100, min_fen=200, max_fen=500)
    assert rule.fee(1_000) == 200
    assert rule.fee(30_000) == 300
    assert rule.fee(1_000_000) == 500


@pytest.mark.parametrize("amount", [-1, 1.5, True, MAX_FEN + 1])
def test_an_impossible_amount_gets_no_fee(amount: int) -> None:
    rule = FeeRule(date(2026, 1, 1), flat_fen=0, rate_bp=0, min_fen=0, max_fen=0)
    with pytest.raises(MoneyError):
        rule.fee(amount)


@pytest.mark.parametrize(
    "fields",
    [
        {"flat_fen": -1},
        {"rate_bp": 10_001},
        {"min_fen": 10, "max_fen": 5},
        {"flat_fen": 1.5},
        {"rate_bp": True},
    ],
)
def test_an_impossible_fee_rule_cannot_be_made(fields: dict[str, object]) -> None:
    values: dict[str, object] = {"flat_fen": 0, "rate_bp": 0, "min_fen": 0, "max_fen": 0}
    values.update(fields)
    with pytest.raises(ValueError):
        FeeRule(date(2026, 1, 1), **values)  # type: ignore[arg-type]


def test_the_water_bill_fee_changes_on_its_announced_date() -> None:
    catalog = parse_catalog(shipped_catalog_files()[0])
    water = catalog.service("water-bill")
    change = date(2027, 1, 4)
    assert water.fee_on(change - timedelta(days=1), 12_345) == 0
    assert water.fee_on(change, 12_345) == 50
    assert water.fee_on(change + timedelta(days=400), 1) == 50


def test_the_announced_change_is_known_before_it_takes_effect() -> None:
    catalog = parse_catalog(shipped_catalog_files()[0])
    water = catalog.service("water-bill")
    upcoming = water.upcoming_fee_change(date(2026, 11, 23))
    assert upcoming is not None
    assert upcoming.effective_from == date(2027, 1, 4)
    assert upcoming.flat_fen == 50
    assert water.upcoming_fee_change(date(2027, 1, 4)) is None
    assert catalog.service("gas-bill").upcoming_fee_change(date(2026, 11, 23)) is None


def test_cable_tv_costs_one_yuan_and_other_services_nothing_today() -> None:
    catalog = parse_catalog(shipped_catalog_files()[0])
    today = date(2026, 11, 23)
    for service in catalog.services.values():
        expected = 100 if service.code == "catv-bill" else 0
        assert service.fee_on(today, service.max_fen) == expected, service.code


def test_a_service_before_its_first_fee_rule_is_not_on_sale() -> None:
    catalog = parse_catalog(shipped_catalog_files()[0])
    with pytest.raises(CatalogError, match="on sale from 2024-01-01"):
        catalog.service("gas-bill").fee_on(date(2023, 12, 31), 100)


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (date(2026, 11, 16), 5, date(2026, 11, 23)),  # Monday -> next Monday
        (date(2026, 11, 20), 5, date(2026, 11, 27)),  # Friday -> next Friday
        (date(2026, 11, 21), 5, date(2026, 11, 27)),  # Saturday -> next Friday
        (date(2026, 11, 22), 1, date(2026, 11, 23)),  # Sunday -> Monday
        (date(2026, 11, 18), 0, date(2026, 11, 18)),
    ],
)
def test_working_days_skip_saturdays_and_sundays(start: date, days: int, expected: date) -> None:
    assert add_working_days(start, days) == expected


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        # 国庆节 2026: 1-7 October off, Saturday 10 October worked in their place.
        (date(2026, 9, 25), 5, date(2026, 10, 9)),  # Fri -> 28, 29, 30 Sep, 8, 9 Oct
        (date(2026, 9, 30), 1, date(2026, 10, 8)),
        (date(2026, 10, 9), 1, date(2026, 10, 10)),  # a Saturday worked in its place (调休)
        # 春节 2026: 15-23 February off, Saturdays 14 and 28 February worked.
        (date(2026, 2, 13), 1, date(2026, 2, 14)),
    ],
)
def test_working_days_follow_chinas_holidays_and_the_weekend_days_worked_in_their_place(
    start: date, days: int, expected: date
) -> None:
    assert add_working_days(start, days) == expected


def test_a_year_the_official_calendar_does_not_know_yet_counts_monday_to_friday() -> None:
    assert not is_working_day(date(2099, 1, 3))  # a Saturday
    assert is_working_day(date(2099, 1, 1))  # a Thursday: New Year not known that far ahead


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)))
def test_a_fee_change_takes_effect_on_the_fifth_working_day_after_publication(
    published: date,
) -> None:
    earliest = earliest_fee_change(published)
    days_between = [
        published + timedelta(days=n) for n in range(1, (earliest - published).days + 1)
    ]
    assert is_working_day(earliest)
    assert sum(1 for day in days_between if is_working_day(day)) == 5
    # Five working days are at least a week; the longest holiday (春节, 国庆) adds nine days.
    assert 5 <= (earliest - published).days <= 9 + 9


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (FeeRule(date(2026, 1, 1), 0, 0, 0, 0), "free"),
        (FeeRule(date(2026, 1, 1), 100, 0, 0, 100), "¥1.00 flat"),
        (
            FeeRule(date(2026, 1, 1), 0, 50, 100, 1_000),
            "0.50% of the amount, rounded up to the fen (at least ¥1.00, at most ¥10.00)",
        ),
        (
            FeeRule(date(2026, 1, 1), 20, 1_000, 0, MAX_FEN),
            "¥0.20 + 10.00% of the amount, rounded up to the fen",
        ),
    ],
)
def test_a_fee_rule_is_described_in_one_line(rule: FeeRule, text: str) -> None:
    assert describe_fee_rule(rule) == text
