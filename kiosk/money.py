"""Money as an integer number of fen (分): parsing and formatting.

No float ever touches money: amounts are parsed from text digit by digit.
"""

import re

from kiosk.errors import KioskError

FEN_PER_YUAN = 100
# The largest amount any service of this terminal may handle: 1,000,000 yuan.
MAX_FEN = 100_000_000
# Renminbi notes a cash acceptor may take: 1, 5, 10, 20, 50 and 100 yuan.
RMB_NOTES_FEN = (100, 500, 1_000, 2_000, 5_000, 10_000)

_AMOUNT = re.compile(r"^(?:¥|￥)?\s*(\d{1,9})(?:\.(\d{1,2}))?\Z")


class MoneyError(KioskError):
    """An amount is malformed or out of range."""


def parse_yuan(text: str) -> int:
    """Parse '12', '12.3', '12.30' or '¥12.30' into fen; anything else is refused."""
    match = _AMOUNT.match(text.strip())
    if match is None:
        raise MoneyError(f"amount {text!r} is not a yuan amount: write it like 12 or 12.30")
    yuan, fraction = match.group(1), match.group(2) or ""
    fen = int(yuan) * FEN_PER_YUAN + int(fraction.ljust(2, "0"))
    check_fen(fen)
    return fen


def check_fen(fen: int) -> int:
    """Return fen if it is a valid, non-negative amount; raise MoneyError otherwise."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise MoneyError(f"amount {fen!r} is not a whole number of fen")
    if fen < 0:
        raise MoneyError(f"amount {fen} fen is negative")
    if fen > MAX_FEN:
        raise MoneyError(f"amount {fen} fen is above the limit of {format_fen(MAX_FEN)}")
    return fen


def format_fen(fen: int, symbol: str = "¥") -> str:
    """Format fen as '¥12.30' (negative amounts as '-¥12.30')."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{symbol}{yuan}.{cents:02d}"


def check_bounds(fen: int, minimum: int, maximum: int, what: str) -> int:
    """Refuse an amount outside [minimum, maximum] with a message naming the bounds."""
    check_fen(fen)
    if not minimum <= fen <= maximum:
        raise MoneyError(
            f"{what}: {format_fen(fen)} is outside the allowed range "
            f"{format_fen(minimum)} to {format_fen(maximum)}"
        )
    return fen
