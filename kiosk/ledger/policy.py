"""The float rules the terminal and the back office both apply: one threshold, one minimum.

Seed 002: the credit line is zero, every purchase of float (信誉额度) is at least 500 yuan,
and "business must never stop for lack of float" (不得出现因预存额度不足,而造成便民业务无法
正常开办的现象). So a balance under LOW_FLOAT_THRESHOLD_FEN is "low" on the terminal (lamp,
low_float record and event, the operator's screen) and in the back office (its low-float
alert) alike: the back office imports this module rather than keeping a figure of its own.
Pure: no I/O.
"""

from kiosk.platform.models import MIN_DEPOSIT_FEN

# Twice the smallest purchase (1,000 yuan): when the balance falls under it, one purchase
# still leaves a day's typical business covered while the operator goes to the outlet
# (docs/transactions.md, "The operator's day", where the choice is explained).
LOW_FLOAT_THRESHOLD_FEN = 2 * MIN_DEPOSIT_FEN

__all__ = ["LOW_FLOAT_THRESHOLD_FEN", "MIN_DEPOSIT_FEN", "is_low"]


def is_low(balance_fen: int, threshold_fen: int = LOW_FLOAT_THRESHOLD_FEN) -> bool:
    """Whether a float balance is low: under the threshold (a zero threshold: never)."""
    return balance_fen < threshold_fen
