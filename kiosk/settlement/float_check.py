"""Does the day's float balance? (账账相符: the terminal's books against the platform's)

Seed 002: at the end of every business day the station does 日终轧帐 and checks its float.
The check, in figures the day_close record carries (docs/transactions.md, "Does the day
balance"):

    opening_float_fen   the platform's balance at the previous check (at the station's
                        opening: the balance it opened with, 0 since the credit line is zero)
  + deposits_fen        deposits the platform confirmed since then (the whole station's)
  - debits_fen          this terminal's own debits, from its journal (paid amount + fee:
                        the turnover counter), plus the other terminals' of the station, net
                        of reversals, from the platform (one float serves every terminal)
  = closing_float_fen   what the float should be
  ? platform_float_fen  the platform's own balance, read in the same statement

balanced when they are equal. Every platform figure is the difference of two cumulative
statements (kiosk.platform.FloatStatement), so nothing depends on when each was read, and a
day whose check could not be made (the platform did not answer) is covered by the next one.
What can make a day unbalanced: a payment the platform debited that this terminal has not
closed yet (in doubt at the close: it closes into the next day, which then differs the
other way), a debit or refund the terminal knows nothing of, or a balance the platform
changed without a movement. Pure: no I/O, no clock.
"""

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kiosk.platform import FloatStatement


class FloatCheck(StrEnum):
    CHECKED = "checked"  # the figures above, against the platform's statement
    NOT_ANSWERED = "platform_did_not_answer"  # no statement: the next day's check covers it
    WITH_NEXT_DAY = "checked_with_next_day"  # closed in a catch-up: the last day checks all


@dataclass(frozen=True)
class FloatReading:
    """A platform statement taken at a day close, with this terminal's turnover then."""

    statement: FloatStatement
    turnover_fen: int

    def to_json(self) -> str:
        return json.dumps(
            {"statement": self.statement.to_json(), "turnover_fen": self.turnover_fen},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> "FloatReading":
        data = json.loads(text)
        return cls(FloatStatement.from_json(data["statement"]), int(data["turnover_fen"]))


def _net_terminal(statement: FloatStatement) -> int:
    return statement.terminal_debits_fen - statement.terminal_refunds_fen


def _net_station(statement: FloatStatement) -> int:
    return statement.debits_fen - statement.refunds_fen


def balance(
    previous: FloatReading | None, current: FloatStatement | None, turnover_fen: int
) -> dict[str, Any]:
    """The float part of a day_close report.

    previous: the reading of the last check (None: this terminal never checked, so the
    figures run from the station account's opening); current: the platform's statement now
    (None: it did not answer); turnover_fen: the journal's turnover counter now.
    """
    own_since = turnover_fen - (0 if previous is None else previous.turnover_fen)
    if current is None:
        return {
            "float_check": str(FloatCheck.NOT_ANSWERED),
            "opening_float_fen": None if previous is None else previous.statement.balance_fen,
            "deposits_fen": None,
            "debits_fen": None,
            "own_debits_fen": own_since,
            "other_terminals_debits_fen": None,
            "reversals_fen": None,
            "closing_float_fen": None,
            "platform_float_fen": None,
            "platform_held_fen": None,
            "float_difference_fen": None,
            "vouchers_outstanding_fen": None,
            "balanced": None,
        }
    if previous is None:
        opening = current.opening_fen
        before = FloatStatement(opening, 0, opening, 0, 0, 0, 0, 0, 0)
    else:
        opening = previous.statement.balance_fen
        before = previous.statement
    deposits = current.deposits_fen - before.deposits_fen
    own_on_platform = _net_terminal(current) - _net_terminal(before)
    others = (_net_station(current) - _net_station(before)) - own_on_platform
    debits = own_since + others
    closing = opening + deposits - debits
    return {
        "float_check": str(FloatCheck.CHECKED),
        "opening_float_fen": opening,
        "deposits_fen": deposits,
        "debits_fen": debits,
        "own_debits_fen": own_since,
        "other_terminals_debits_fen": others,
        "reversals_fen": current.terminal_refunds_fen - before.terminal_refunds_fen,
        "closing_float_fen": closing,
        "platform_float_fen": current.balance_fen,
        "platform_held_fen": current.held_fen,
        "float_difference_fen": current.balance_fen - closing,
        "vouchers_outstanding_fen": current.vouchers_outstanding_fen,
        "balanced": closing == current.balance_fen,
    }


def checked_with_next_day(previous: FloatReading | None, turnover_fen: int) -> dict[str, Any]:
    """The float part of a day closed in a catch-up before the last day (which checks all)."""
    figures = balance(previous, None, turnover_fen)
    figures["float_check"] = str(FloatCheck.WITH_NEXT_DAY)
    return figures
