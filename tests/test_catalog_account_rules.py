"""Account, card and phone number rules of the catalog, and the Luhn check digit."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.catalog import (
    AccountInvalid,
    AccountRule,
    Catalog,
    CatalogStore,
    luhn_check_digit,
    luhn_valid,
)
from kiosk.catalog.store import shipped_operator_public_pem
from kiosk.i18n import translator

digits = st.text(alphabet="0123456789", min_size=1, max_size=30)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    store = CatalogStore(tmp_path_factory.mktemp("catalog"), shipped_operator_public_pem())
    return store.current()


@pytest.mark.parametrize(
    "number",
    ["79927398713", "4539578763621486", "1234567812345670", "0", "18", "3100000011"],
)
def test_known_luhn_numbers_pass(number: str) -> None:
    # 79927398713 is the worked example of ISO/IEC 7812-1 texts; the card numbers are
    # well-known test numbers. "0" alone is too short to carry a check digit.
    assert luhn_valid(number) is (len(number) >= 2)


@pytest.mark.parametrize("number", ["79927398710", "4539578763621487", "1234567812345678"])
def test_known_numbers_with_a_wrong_check_digit_fail(number: str) -> None:
    assert not luhn_valid(number)


def test_the_check_digit_of_the_worked_example_is_3() -> None:
    assert luhn_check_digit("7992739871") == "3"


@given(digits)
def test_a_payload_with_its_check_digit_appended_is_valid(payload: str) -> None:
    assert luhn_valid(payload + luhn_check_digit(payload))


@given(digits, st.data())
def test_changing_any_one_digit_is_detected(payload: str, data: st.DataObject) -> None:
    number = payload + luhn_check_digit(payload)
    position = data.draw(st.integers(0, len(number) - 1))
    replacement = data.draw(st.sampled_from([d for d in "0123456789" if d != number[position]]))
    assert not luhn_valid(number[:position] + replacement + number[position + 1 :])


@given(digits, st.data())
def test_swapping_two_adjacent_digits_is_detected_except_09(
    payload: str, data: st.DataObject
) -> None:
    number = payload + luhn_check_digit(payload)
    if len(number) < 2:
        return
    position = data.draw(st.integers(0, len(number) - 2))
    pair = number[position : position + 2]
    swapped = number[:position] + pair[::-1] + number[position + 2 :]
    if pair[0] == pair[1] or pair in ("09", "90"):
        return  # the one transposition Luhn cannot see, and no change at all
    assert not luhn_valid(swapped)


@pytest.mark.parametrize("bad", ["", "12a4", "١٢٣", "12 3"])
def test_luhn_refuses_payloads_that_are_not_ascii_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        luhn_check_digit(bad)
    assert not luhn_valid(bad)


VALID = {
    "water-bill": "3100000011",
    "electricity-bill": "6612345675",
    "gas-bill": "8812345679",
    "telecom-bill": "51234567",
    "catv-bill": "05123456781",
    "power-card": "912345678904",
    "gas-card": "712345678908",
    "mobile-topup": "13800138000",
}

# For each service: a wrong length, a wrong prefix, and (where Luhn applies) a wrong check digit.
INVALID = {
    "water-bill": ["310000001", "6612345675", "3100000012"],
    "electricity-bill": ["66123456751", "3100000011", "6612345670"],
    "gas-bill": ["881234567", "3100000011", "8812345670"],
    "telecom-bill": ["5123456", "61234567", "5123456a"],
    "catv-bill": ["0512345678", "15123456781", "05123456780"],
    "power-card": ["91234567890", "712345678908", "912345678900"],
    "gas-card": ["7123456789080", "912345678904", "712345678900"],
    "mobile-topup": ["1380013800", "23800138000", "1380013800x"],
}


def test_every_shipped_service_has_valid_and_invalid_examples(shipped: Catalog) -> None:
    assert set(VALID) == set(shipped.services) == set(INVALID)


@pytest.mark.parametrize(("code", "number"), sorted(VALID.items()))
def test_a_valid_number_is_accepted_and_spaces_are_removed(
    shipped: Catalog, code: str, number: str
) -> None:
    service = shipped.service(code)
    assert service.validate_account(number) == number
    spaced = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    assert service.validate_account(f" {spaced} ") == number


@pytest.mark.parametrize(
    ("code", "number"), [(code, n) for code, numbers in sorted(INVALID.items()) for n in numbers]
)
def test_an_invalid_number_is_refused_naming_the_service(
    shipped: Catalog, code: str, number: str
) -> None:
    service = shipped.service(code)
    with pytest.raises(AccountInvalid) as caught:
        service.validate_account(number)
    assert str(caught.value).startswith(service.name)
    assert "\n" not in str(caught.value)


def test_the_message_says_what_is_expected(shipped: Catalog) -> None:
    with pytest.raises(AccountInvalid) as caught:
        shipped.service("water-bill").validate_account("12345")
    assert str(caught.value) == "Water bill account number must be 10 digits starting with 31"


def test_a_mistyped_digit_is_reported_as_such(shipped: Catalog) -> None:
    with pytest.raises(AccountInvalid, match="3100000012 is not valid: a digit is mistyped"):
        shipped.service("water-bill").validate_account("3100000012")


def test_the_message_can_be_shown_in_chinese(shipped: Catalog) -> None:
    service = shipped.service("power-card")
    t = translator("zh_CN")
    with pytest.raises(AccountInvalid) as caught:
        service.validate_account("12345")
    text = caught.value.translated(t, what=service.account_label(t))
    assert text == "电卡充值卡号应为以9开头的12位数字"
    with pytest.raises(AccountInvalid) as caught:
        service.validate_account("912345678900")
    assert caught.value.translated(t, what=service.account_label(t)) == (
        "电卡充值卡号912345678900有误：有数字输错了，请核对"
    )


def test_a_rule_with_several_prefixes_names_them_all() -> None:
    rule = AccountRule(length=6, prefixes=("1", "23", "4"), check="none")
    assert rule.validate("234567", "Test number") == "234567"
    with pytest.raises(AccountInvalid) as caught:
        rule.validate("512345", "Test number")
    assert str(caught.value) == "Test number must be 6 digits starting with 1 or 23 or 4"
    assert caught.value.translated(translator("zh_CN"), what="号码") == (
        "号码应为以1或23或4开头的6位数字"
    )


def test_a_rule_without_prefix_only_names_the_length() -> None:
    rule = AccountRule(length=4, prefixes=(), check="none")
    with pytest.raises(AccountInvalid, match="^Card must be 4 digits$"):
        rule.validate("123", "Card")


@pytest.mark.parametrize("number", ["３１００００００１１", "310000001١"])
def test_non_ascii_digits_are_refused(number: str) -> None:
    with pytest.raises(AccountInvalid):
        AccountRule(length=10, prefixes=("31",), check="luhn").validate(number, "Water")


@pytest.mark.parametrize(
    ("length", "prefixes", "check"), [(0, (), "none"), (4, ("12345",), "none"), (4, (), "crc")]
)
def test_an_impossible_rule_cannot_be_made(
    length: int, prefixes: tuple[str, ...], check: str
) -> None:
    with pytest.raises(ValueError):
        AccountRule(length=length, prefixes=prefixes, check=check)


def test_an_account_error_can_carry_its_own_wording() -> None:
    error = AccountInvalid("This card is blocked by its issuer: call the utility")
    assert str(error) == "This card is blocked by its issuer: call the utility"
    assert error.translated(translator("zh_CN")) == str(error)
