"""The simulated operator's billers, account and card number rules, and its bills.

This is the simulator's data table, matching the shipped catalog (kiosk/catalog): biller
codes, account lengths, prefixes and check digits. Every well-formed account of a bill
biller has a bill, its amount derived from a hash of the account, so a soak test can invent
customers; a few named accounts below have fixed bills, no bill due, or are unknown.
It never touches the ledger: whether a bill was already paid is the ledger's business.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from kiosk.platform.models import Bill, PlatformRefused, Refusal


def luhn_check_digit(payload: str) -> str:
    """The Luhn (ISO/IEC 7812-1) check digit for a string of digits.

    Written here because it is six lines and the simulator must not depend on the terminal's
    catalog: the platform applies its own rules, as a real operator's would.
    """
    total = 0
    for position, char in enumerate(reversed(payload)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return str(-total % 10)


@dataclass(frozen=True)
class NumberRule:
    length: int
    prefix: str
    luhn: bool  # the last digit is a Luhn check digit over the whole number

    def accepts(self, number: str) -> bool:
        if len(number) != self.length or not number.isdigit():
            return False
        if not number.startswith(self.prefix):
            return False
        return not self.luhn or luhn_check_digit(number[:-1]) == number[-1]

    def describe(self) -> str:
        check = ", the last one a Luhn check digit" if self.luhn else ""
        return f"{self.length} digits starting with {self.prefix}{check}"


@dataclass(frozen=True)
class Biller:
    code: str
    account_rule: NumberRule
    issues_bills: bool  # False for phone top-up: any valid number, no bill
    card_rule: NumberRule | None = None  # set for billers selling prepaid card credit


BILLERS: Mapping[str, Biller] = {
    "water": Biller("water", NumberRule(10, "31", luhn=True), issues_bills=True),
    "electricity": Biller(
        "electricity",
        NumberRule(10, "66", luhn=True),
        issues_bills=True,
        card_rule=NumberRule(12, "9", luhn=True),
    ),
    "gas": Biller(
        "gas",
        NumberRule(10, "88", luhn=True),
        issues_bills=True,
        card_rule=NumberRule(12, "7", luhn=True),
    ),
    "telecom": Biller("telecom", NumberRule(8, "5", luhn=False), issues_bills=True),
    "catv": Biller("catv", NumberRule(11, "05", luhn=True), issues_bills=True),
    "mobile": Biller("mobile", NumberRule(11, "1", luhn=False), issues_bills=False),
}

# Named sample accounts (documented in docs/platform-api.md): biller, account -> (fen, surname).
FIXED_BILLS: Mapping[tuple[str, str], tuple[int, str]] = {
    ("water", "3100000011"): (12_345, "王"),
    ("water", "3100000029"): (8_800, "李"),
    ("water", "3100000037"): (30_000, "赵"),
    ("electricity", "6600000019"): (23_456, "张"),
    ("gas", "8800000013"): (4_590, "刘"),
    ("telecom", "51234567"): (5_800, "陈"),
    ("catv", "05000000017"): (2_650, "杨"),
}
NO_BILL_DUE: frozenset[tuple[str, str]] = frozenset(
    {
        ("water", "3100000094"),
        ("electricity", "6600000092"),
        ("gas", "8800000096"),
        ("telecom", "59999999"),
        ("catv", "05000000090"),
    }
)
# Well-formed, but the biller has never heard of it.
UNKNOWN_ACCOUNTS: frozenset[tuple[str, str]] = frozenset({("electricity", "6600000001")})

SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱")
DERIVED_MIN_FEN = 1_000  # 10.00 yuan
DERIVED_MAX_FEN = 30_000  # 300.00 yuan


def find_biller(code: str) -> Biller:
    biller = BILLERS.get(code)
    if biller is None:
        raise PlatformRefused(
            Refusal.UNKNOWN_BILLER,
            f"biller {code!r} is not served; known billers: {', '.join(sorted(BILLERS))}",
        )
    return biller


def check_account(biller: Biller, account: str) -> None:
    """Refuse an account the biller cannot know (malformed, or on the unknown list)."""
    if not biller.account_rule.accepts(account) or (biller.code, account) in UNKNOWN_ACCOUNTS:
        raise PlatformRefused(
            Refusal.UNKNOWN_ACCOUNT,
            f"{biller.code} account {account!r} is unknown "
            f"(accounts are {biller.account_rule.describe()})",
        )


def check_card(biller: Biller, card_no: str) -> None:
    if biller.card_rule is None:
        raise PlatformRefused(
            Refusal.UNKNOWN_BILLER, f"biller {biller.code!r} sells no prepaid card credit"
        )
    if not biller.card_rule.accepts(card_no):
        raise PlatformRefused(
            Refusal.UNKNOWN_ACCOUNT,
            f"{biller.code} card {card_no!r} is unknown (cards are {biller.card_rule.describe()})",
        )


def billing_period(today: date) -> str:
    """Bills are issued for the month before today."""
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def derived_amount_fen(biller: str, account: str) -> int:
    digest = hashlib.sha256(f"{biller}:{account}".encode("ascii")).digest()
    span = DERIVED_MAX_FEN - DERIVED_MIN_FEN + 1
    return DERIVED_MIN_FEN + int.from_bytes(digest[:8], "big") % span


def find_bill(biller_code: str, account: str, today: date) -> Bill:
    """The bill due on an account; a refusal when there is none."""
    biller = find_biller(biller_code)
    check_account(biller, account)
    if not biller.issues_bills or (biller_code, account) in NO_BILL_DUE:
        raise PlatformRefused(
            Refusal.NO_BILL_DUE, f"{biller_code} account {account} has no bill due"
        )
    fixed = FIXED_BILLS.get((biller_code, account))
    if fixed is not None:
        amount_fen, surname = fixed
    else:
        amount_fen = derived_amount_fen(biller_code, account)
        digest = hashlib.sha256(f"holder:{account}".encode("ascii")).digest()
        surname = SURNAMES[digest[0] % len(SURNAMES)]
    period = billing_period(today)
    return Bill(
        bill_id=f"{biller_code}-{account}-{period}",
        biller=biller_code,
        account=account,
        holder_masked=f"{surname}**",
        period=period,
        amount_due_fen=amount_fen,
    )
