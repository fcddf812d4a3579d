"""Fee rules of the published fee schedule and the notice a fee change needs.

Owns the fee formula (integer fen, rounded up, clamped) and working-day arithmetic for the
notice period of seed 002 ("如需调整资费,须提前5个工作日通知"). It never charges anything
that is not computed from a published FeeRule, and never uses floats.
"""

from dataclasses import dataclass
from datetime import date, timedelta

import chinese_calendar

from kiosk.money import MAX_FEN, check_fen

# Seed 002: fee changes are announced at least 5 working days before they take effect.
FEE_NOTICE_WORKING_DAYS = 5
# Basis points: 10,000 bp = 100 % of the amount. A fee above the amount itself is refused.
MAX_RATE_BP = 10_000
_BASIS_POINTS = 10_000


@dataclass(frozen=True)
class FeeRule:
    effective_from: date
    flat_fen: int
    rate_bp: int
    min_fen: int
    max_fen: int

    def __post_init__(self) -> None:
        for name in ("flat_fen", "min_fen", "max_fen"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FEN:
                raise ValueError(f"{name} must be a whole number of fen from 0 to {MAX_FEN}")
        if isinstance(self.rate_bp, bool) or not isinstance(self.rate_bp, int):
            raise ValueError("rate_bp must be a whole number of basis points")
        if not 0 <= self.rate_bp <= MAX_RATE_BP:
            raise ValueError(f"rate_bp must be from 0 to {MAX_RATE_BP} basis points")
        if self.min_fen > self.max_fen:
            raise ValueError("min_fen must not be above max_fen")

    def fee(self, amount_fen: int) -> int:
        """clamp(flat + ceil(amount * rate_bp / 10000), min, max), all in integer fen."""
        check_fen(amount_fen)
        # Ceiling division on integers: a fraction of a fen is rounded up, never down, and
        # the exact value is never a float.
        proportional = -(-amount_fen * self.rate_bp // _BASIS_POINTS)
        return max(self.min_fen, min(self.max_fen, self.flat_fen + proportional))


def rule_in_force(rules: tuple[FeeRule, ...], day: date) -> FeeRule | None:
    """The rule with the latest effective_from on or before day (rules sorted by date)."""
    current = None
    for rule in rules:
        if rule.effective_from > day:
            break
        current = rule
    return current


def next_rule_after(rules: tuple[FeeRule, ...], day: date) -> FeeRule | None:
    """The first rule (rules sorted by date) that takes effect after day, if one is announced."""
    for rule in rules:
        if rule.effective_from > day:
            return rule
    return None


def is_working_day(day: date) -> bool:
    """A working day of China's official calendar: Monday to Friday except public holidays,
    plus the weekend days worked in their place (调休).

    The State Council publishes each year's calendar late in the year before; the
    chinese-calendar package carries the years published when it was released, so it must
    be updated with each release of this software (docs/catalog.md). A year it does not
    know yet counts Monday to Friday.
    """
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def add_working_days(start: date, working_days: int) -> date:
    """The date working_days working days (is_working_day) after start."""
    day = start
    remaining = working_days
    while remaining > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return day


def earliest_fee_change(published: date) -> date:
    """The first day a fee change published on `published` may take effect."""
    return add_working_days(published, FEE_NOTICE_WORKING_DAYS)
