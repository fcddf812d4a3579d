"""Residents' payment codes (付款码): which scheme a scanned code belongs to, or why it is none.

A payment code is the one-time barcode a resident's wallet app shows; the kiosk reads it with
its scanner and passes it, once, to the operator platform (docs/scanner.md). The published
formats, checked here and nowhere else (sources cited in docs/scanner.md):

- WeChat Pay: 18 digits starting 10 to 15 (15: wallets of Hong Kong residents);
- Alipay: 16 to 24 digits starting 25 to 30;
- UnionPay (云闪付 and banks' apps): 19 digits starting 62.

Pure rules, no I/O. A code is a bearer credential for about a minute: it is never logged
whole (mask_code), and __repr__ of what holds one masks it.
"""

import re
from enum import StrEnum

from kiosk.errors import KioskError


class PaymentScheme(StrEnum):
    """The wallet a resident pays with; the value is its name on the platform's wire."""

    WECHAT = "wechat"
    ALIPAY = "alipay"
    UNIONPAY = "unionpay"


class CodeProblem(StrEnum):
    """Why a scan is not the code wanted: a payment code, or a voucher's (kiosk.voucher_codes)."""

    EMPTY = "empty"  # nothing but the terminator came
    GARBLED = "garbled"  # characters other than digits: a misread, or another kind of barcode
    PARTIAL = "partial"  # the scan stopped part-way (no terminator, or cut short)
    NOT_A_PAYMENT_CODE = "not_a_payment_code"  # digits, but no scheme's length and prefix
    NOT_A_VOUCHER = "not_a_voucher"  # read whole, but it names no voucher (a payment code...)


# (scheme, pattern): the first that matches decides. Prefix ranges are the published ones.
_FORMATS: tuple[tuple[PaymentScheme, re.Pattern[str]], ...] = (
    (PaymentScheme.WECHAT, re.compile(r"1[0-5][0-9]{16}")),
    (PaymentScheme.ALIPAY, re.compile(r"(2[5-9]|30)[0-9]{14,22}")),
    (PaymentScheme.UNIONPAY, re.compile(r"62[0-9]{17}")),
)
# The longest code of any scheme: a longer run of digits is two scans run together.
MAX_CODE_DIGITS = 24


class PaymentCodeInvalid(KioskError):
    """A scan that is not a resident's payment code; the message says what to do."""

    def __init__(self, problem: CodeProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


def scheme_of(code: str) -> PaymentScheme:
    """The scheme of a payment code; PaymentCodeInvalid (with its CodeProblem) if it is none."""
    if not code:
        raise PaymentCodeInvalid(
            CodeProblem.EMPTY, "the scanner read nothing: ask the resident to scan again"
        )
    if not code.isascii() or not code.isdigit():
        raise PaymentCodeInvalid(
            CodeProblem.GARBLED,
            f"the scan {mask_code(code)} is not all digits: a misread or another kind of "
            "barcode; ask the resident to show the payment code (付款码) and scan again",
        )
    for scheme, pattern in _FORMATS:
        if pattern.fullmatch(code):
            return scheme
    raise PaymentCodeInvalid(
        CodeProblem.NOT_A_PAYMENT_CODE,
        f"the scan {mask_code(code)} ({len(code)} digits) is no WeChat, Alipay or UnionPay "
        "payment code: ask the resident to show the payment code (付款码) and scan again",
    )


def mask_code(code: str) -> str:
    """A payment code fit for a log: its first two and last four characters, the rest *."""
    if len(code) <= 6:
        return "*" * len(code)
    return code[:2] + "*" * (len(code) - 6) + code[-4:]
