import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.money import MAX_FEN, MoneyError, check_bounds, format_fen, parse_yuan


@pytest.mark.parametrize(
    ("text", "fen"),
    [("12", 1200), ("12.3", 1230), ("12.30", 1230), ("¥12.05", 1205), ("0.01", 1), ("0", 0)],
)
def test_parse_yuan_reads_whole_and_fractional_amounts(text: str, fen: int) -> None:
    assert parse_yuan(text) == fen


@pytest.mark.parametrize("text", ["", "12.345", "-1", "1e3", "12,30", "abc", "12.", "1 2"])
def test_parse_yuan_refuses_anything_that_is_not_an_amount(text: str) -> None:
    with pytest.raises(MoneyError, match="not a yuan amount"):
        parse_yuan(text)


def test_amounts_above_the_limit_are_refused() -> None:
    with pytest.raises(MoneyError, match="above the limit"):
        parse_yuan("1000000.01")


@given(st.integers(min_value=0, max_value=MAX_FEN))
def test_format_and_parse_are_inverse(fen: int) -> None:
    assert parse_yuan(format_fen(fen)) == fen


def test_format_shows_two_decimals_and_sign() -> None:
    assert format_fen(1230) == "¥12.30"
    assert format_fen(5) == "¥0.05"
    assert format_fen(-250) == "-¥2.50"


def test_bounds_name_the_allowed_range() -> None:
    assert check_bounds(500, 100, 1000, "water bill") == 500
    with pytest.raises(MoneyError, match=r"water bill: ¥20.00 is outside .* ¥1.00 to ¥10.00"):
        check_bounds(2000, 100, 1000, "water bill")
