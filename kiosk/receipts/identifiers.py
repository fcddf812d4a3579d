"""The codes a receipt prints for people to read out or type: voucher ids and receipt tokens.

Owns their alphabets, how they are made and how they are printed and read back. A voucher
id is single-use money's own name (16 characters of Crockford's base32: digits and capital
letters without I, L, O and U, so that 0/O and 1/I/L cannot be confused); a receipt token is
a random 6-digit code printed only on the original receipt and never journaled, which a
resident gives to have the receipt reprinted. The engine generates both with these
functions. Randomness is the secrets module's.
"""

import hmac
import secrets

# Crockford's base32 alphabet, in value order (it is also how a voucher id packs into
# 10 bytes in the receipt code: kiosk/receipts/compact.py).
VOUCHER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
VOUCHER_ID_LENGTH = 16
VOUCHER_GROUP = 4
# What a person may type for a character of the alphabet (Crockford's decoding rules).
_READ_AS = {"O": "0", "I": "1", "L": "1"}

# Eight digits: typed on the kiosk's keypad, and 10^8 codes keep guessing hopeless.
RECEIPT_TOKEN_DIGITS = 8


def new_voucher_id() -> str:
    """A fresh voucher id: 16 random characters of VOUCHER_ALPHABET (80 bits)."""
    return "".join(secrets.choice(VOUCHER_ALPHABET) for _ in range(VOUCHER_ID_LENGTH))


def is_voucher_id(text: str) -> bool:
    return len(text) == VOUCHER_ID_LENGTH and all(char in VOUCHER_ALPHABET for char in text)


def grouped_voucher_id(voucher_id: str) -> str:
    """XXXX-XXXX-XXXX-XXXX: the id as printed, in groups a person can type."""
    return "-".join(
        voucher_id[start : start + VOUCHER_GROUP]
        for start in range(0, len(voucher_id), VOUCHER_GROUP)
    )


def read_voucher_id(typed: str) -> str | None:
    """The voucher id a person typed (any case, with or without dashes and spaces, O for 0,
    I or L for 1), or None when it cannot be one."""
    cleaned = "".join(typed.split()).replace("-", "").upper()
    normalised = "".join(_READ_AS.get(char, char) for char in cleaned)
    return normalised if is_voucher_id(normalised) else None


def new_receipt_token() -> str:
    """A fresh receipt token: RECEIPT_TOKEN_DIGITS random decimal digits."""
    return f"{secrets.randbelow(10**RECEIPT_TOKEN_DIGITS):0{RECEIPT_TOKEN_DIGITS}d}"


def receipt_token_matches(expected: str, given: str) -> bool:
    """Whether given (spaces ignored) is the receipt's token; compared in constant time."""
    typed = "".join(given.split())
    return hmac.compare_digest(expected.encode("ascii"), typed.encode("utf-8", "replace"))
