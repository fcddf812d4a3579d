"""The published payment-code formats (kiosk/payment_codes.py, sources in docs/scanner.md)."""

import pytest

from kiosk.devices import ScanMisread, ScannedCode
from kiosk.i18n import catalog, translator
from kiosk.payment_codes import (
    CodeProblem,
    PaymentCodeInvalid,
    PaymentScheme,
    mask_code,
    scheme_of,
)
from kiosk.platform.models import RESIDENT_NOTICES


@pytest.mark.parametrize(
    ("code", "scheme"),
    [
        ("100000000000000000", PaymentScheme.WECHAT),
        ("134567890123456789", PaymentScheme.WECHAT),
        ("159999999999999999", PaymentScheme.WECHAT),  # 15: wallets of Hong Kong residents
        ("2500000000000000", PaymentScheme.ALIPAY),  # 16 digits, the shortest
        ("289431869362714645", PaymentScheme.ALIPAY),
        ("300000000000000000000000", PaymentScheme.ALIPAY),  # 24 digits, the longest
        ("6200000000000000000", PaymentScheme.UNIONPAY),
        ("6299999999999999999", PaymentScheme.UNIONPAY),
    ],
)
def test_each_scheme_is_told_by_its_prefix_and_length(code: str, scheme: PaymentScheme) -> None:
    assert scheme_of(code) is scheme


@pytest.mark.parametrize(
    "code",
    [
        "090000000000000000",  # 18 digits, prefix 09
        "160000000000000000",  # 18 digits, prefix 16
        "13456789012345678",  # WeChat prefix, 17 digits
        "1345678901234567890",  # WeChat prefix, 19 digits
        "240000000000000000",  # prefix 24
        "310000000000000000",  # prefix 31
        "250000000000000",  # Alipay prefix, 15 digits
        "3000000000000000000000000",  # Alipay prefix, 25 digits
        "620000000000000000",  # UnionPay prefix, 18 digits
        "62000000000000000000",  # UnionPay prefix, 20 digits
        "6900000000000000000",  # 19 digits, prefix 69
    ],
)
def test_digits_outside_every_scheme_are_not_a_payment_code(code: str) -> None:
    with pytest.raises(PaymentCodeInvalid) as raised:
        scheme_of(code)
    assert raised.value.problem is CodeProblem.NOT_A_PAYMENT_CODE
    assert "scan again" in str(raised.value)


@pytest.mark.parametrize("code", ["13456789O123456789", "1345 6789012345678", "١٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨"])
def test_anything_but_ascii_digits_is_garbled(code: str) -> None:
    # The last one is Arabic-Indic digits, which str.isdigit alone would take.
    with pytest.raises(PaymentCodeInvalid) as raised:
        scheme_of(code)
    assert raised.value.problem is CodeProblem.GARBLED


def test_nothing_is_empty() -> None:
    with pytest.raises(PaymentCodeInvalid) as raised:
        scheme_of("")
    assert raised.value.problem is CodeProblem.EMPTY


def test_a_code_is_masked_for_logs_and_never_shown_whole() -> None:
    assert mask_code("134567890123456789") == "13************6789"
    assert mask_code("12345") == "*****"
    with pytest.raises(PaymentCodeInvalid) as raised:
        scheme_of("160000000000001234")
    assert "160000000000001234" not in str(raised.value)


def test_a_scanned_code_hides_its_digits_in_repr() -> None:
    scanned = ScannedCode("134567890123456789", PaymentScheme.WECHAT)
    assert "134567890123456789" not in repr(scanned)
    assert scanned.masked in repr(scanned)


def test_what_a_resident_is_told_about_a_misread_is_in_both_catalogs() -> None:
    notice = ScanMisread.RESIDENT_NOTICE
    assert translator("zh_CN")(notice).startswith("未能识别付款码")
    assert notice in catalog("en")
    for code in ("payment_declined", "auth_code_invalid", "method_mismatch", "order_pending"):
        assert translator("zh_CN")(RESIDENT_NOTICES[code]) != RESIDENT_NOTICES[code]
