"""What a valid account, card or phone number looks like for a service: length, prefix, check.

Owns the Luhn check digit and the AccountInvalid error. It never decides which rule a
service uses (that is catalog data) and never asks the platform whether an account exists.
"""

import re
from dataclasses import dataclass

from kiosk.errors import KioskError
from kiosk.i18n import Translate

CHECKS = ("luhn", "none")

# Whitespace a resident or a bill may put between digit groups ("3100 1234 56").
_SEPARATORS = re.compile(r"\s+")

# The English templates are also the message ids of the translations in catalog.po.
WRONG_SHAPE = "{what} must be {length} digits starting with {prefixes}"
WRONG_LENGTH = "{what} must be {length} digits"
WRONG_CHECK_DIGIT = "{what} {account} is not valid: a digit is mistyped, please check it"
ONE_OF = "{first} or {second}"


def _identity(message: str) -> str:
    return message


class AccountInvalid(KioskError):
    """An account, card or phone number does not fit its service's rule.

    The message names the service and says what is expected. The fields let a screen
    build the same message in the resident's language (see AccountInvalid.translated).
    """

    def __init__(
        self,
        what: str,
        rule: "AccountRule | None" = None,
        reason: str = "shape",
        account: str = "",
    ) -> None:
        # Without a rule, `what` is the whole message (for callers with their own wording).
        self.what = what  # e.g. "Water bill account number"
        self.rule = rule
        self.reason = reason  # "shape" (length, digits, prefix) or "check" (check digit)
        self.account = account
        super().__init__(self.translated(_identity))

    def translated(self, translate: Translate, what: str | None = None) -> str:
        """The message through translate; what replaces the (English) label when given."""
        label = what if what is not None else translate(self.what)
        if self.rule is None:
            return label
        if self.reason == "check":
            return translate(WRONG_CHECK_DIGIT).format(what=label, account=self.account)
        if not self.rule.prefixes:
            return translate(WRONG_LENGTH).format(what=label, length=self.rule.length)
        prefixes = self.rule.prefixes[0]
        for prefix in self.rule.prefixes[1:]:
            prefixes = translate(ONE_OF).format(first=prefixes, second=prefix)
        return translate(WRONG_SHAPE).format(what=label, length=self.rule.length, prefixes=prefixes)


def luhn_check_digit(payload: str) -> str:
    """The Luhn (ISO/IEC 7812-1) check digit to append to payload, a string of digits.

    Written by hand: it is ten lines, and a dependency for it would be larger than the code.
    """
    if not payload.isdigit() or not payload.isascii():
        raise ValueError(f"Luhn payload must be ASCII digits, not {payload!r}")
    total = 0
    # Double every second digit counted from the right of the payload, starting with the
    # rightmost one, because the check digit will take the rightmost (undoubled) place.
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    """True if number (ASCII digits, check digit last) passes the Luhn check."""
    if len(number) < 2 or not number.isdigit() or not number.isascii():
        return False
    return luhn_check_digit(number[:-1]) == number[-1]


@dataclass(frozen=True)
class AccountRule:
    length: int
    prefixes: tuple[str, ...]
    check: str  # "luhn" | "none"

    def __post_init__(self) -> None:
        if self.check not in CHECKS:
            raise ValueError(f"account check must be one of {CHECKS}, not {self.check!r}")
        if not 1 <= self.length <= 32:
            raise ValueError(f"account length must be 1 to 32 digits, not {self.length}")
        for prefix in self.prefixes:
            if not (prefix.isascii() and prefix.isdigit() and len(prefix) <= self.length):
                raise ValueError(f"account prefix {prefix!r} must be up to {self.length} digits")

    def validate(self, account: str, what: str) -> str:
        """Return the account without spaces, or raise AccountInvalid naming what is expected."""
        normalised = _SEPARATORS.sub("", account)
        if (
            len(normalised) != self.length
            or not normalised.isascii()
            or not normalised.isdigit()
            or (self.prefixes and not normalised.startswith(self.prefixes))
        ):
            raise AccountInvalid(what, self, "shape", normalised)
        if self.check == "luhn" and not luhn_valid(normalised):
            raise AccountInvalid(what, self, "check", normalised)
        return normalised
