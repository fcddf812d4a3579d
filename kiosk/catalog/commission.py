"""The carrier's or utility's commission (运营商的酬金) per service, and its 3 : 7 split.

Seed 002 and its copy in 003: the station earns a commission on the business it brings to
each carrier or utility, as each contract says: so much per transaction, or so many per mille
of the amount paid (never of the residents' fees, which are the post's). The post and the
station share it 3 : 7 (郵政与加盟網點3:7分成運營商的酬金); it is worked out at the start
of each month for the month before, listed by the 15th and paid after tax by the 20th. The
rules are data in the signed catalog (docs/catalog.md, "Commission"); the monthly statement
is the back office's, which feeds commission_statement() the days of the month. Pure: no
I/O, no floats; a fraction of a fen is rounded half up once per service and rule, on the
period's total, never per transaction.
"""

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

# Seed 003: 郵政與加盟網點3:7分成運營商的酬金.
POST_SHARE = 3
STATION_SHARE = 7
# A per-mille rate as the catalog writes it: up to 3 digits and 2 decimals, in quotes.
PER_MILLE_PATTERN = re.compile(r"^(\d{1,3})(?:\.(\d{1,2}))?\Z")
_PER_100K = 100_000  # per_100k: the rate in hundredths of a per mille (1.5 per mille = 150)


class CommissionBasis(StrEnum):
    PER_TRANSACTION = "per_transaction"  # fen per paid transaction
    PER_MILLE = "per_mille"  # per mille of the amount paid to the carrier or utility


@dataclass(frozen=True)
class CommissionRule:
    effective_from: date
    basis: CommissionBasis
    fen: int = 0  # PER_TRANSACTION: fen per transaction
    per_100k: int = 0  # PER_MILLE: hundredths of a per mille

    def __post_init__(self) -> None:
        for name in ("fen", "per_100k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"commission {name} must be a whole number >= 0")
        if self.per_100k > _PER_100K:
            raise ValueError("a commission rate is at most 1000 per mille")

    @classmethod
    def per_mille(cls, effective_from: date, text: str) -> "CommissionRule":
        """A per-mille rule from the catalog's text ("3", "1.5"); ValueError otherwise."""
        match = PER_MILLE_PATTERN.match(text)
        if match is None:
            raise ValueError(f'{text!r} is not a per-mille rate like "3" or "1.5"')
        whole, hundredths = match.group(1), (match.group(2) or "").ljust(2, "0")
        return cls(
            effective_from, CommissionBasis.PER_MILLE, per_100k=int(whole) * 100 + int(hundredths)
        )

    @property
    def per_mille_text(self) -> str:
        whole, hundredths = divmod(self.per_100k, 100)
        return f"{whole}.{hundredths:02d}".rstrip("0").rstrip(".")

    def commission_fen(self, count: int, amount_fen: int) -> int:
        """The commission on count paid transactions of amount_fen in all, under this rule."""
        if self.basis is CommissionBasis.PER_TRANSACTION:
            return count * self.fen
        # amount x per_100k / 100,000, rounded half up on integers.
        return (2 * amount_fen * self.per_100k + _PER_100K) // (2 * _PER_100K)

    def describe(self) -> str:
        if self.basis is CommissionBasis.PER_TRANSACTION:
            whole, cents = divmod(self.fen, 100)
            return f"¥{whole}.{cents:02d} per transaction"
        return f"{self.per_mille_text} per mille of the amount"


def commission_rule_on(rules: tuple[CommissionRule, ...], day: date) -> CommissionRule | None:
    """The rule in force on day: the latest effective_from on or before it (rules sorted)."""
    current = None
    for rule in rules:
        if rule.effective_from > day:
            break
        current = rule
    return current


@dataclass(frozen=True)
class CommissionSplit:
    total_fen: int
    post_fen: int
    station_fen: int


def split_commission(total_fen: int) -> CommissionSplit:
    """The post's 3 and the station's 7 tenths of a commission. The station's share is
    rounded down to the fen and the post keeps the remainder, so the two add up exactly."""
    station = total_fen * STATION_SHARE // (POST_SHARE + STATION_SHARE)
    return CommissionSplit(total_fen, total_fen - station, station)


@dataclass(frozen=True)
class CommissionLine:
    service: str
    rule: CommissionRule
    count: int
    amount_fen: int
    commission_fen: int


@dataclass(frozen=True)
class CommissionStatement:
    lines: tuple[CommissionLine, ...]
    uncovered: tuple[str, ...]  # services paid on days without a commission rule
    split: CommissionSplit


def commission_statement(
    rules_of: Callable[[str], tuple[CommissionRule, ...]],
    days: Iterable[tuple[date, Mapping[str, Mapping[str, int]]]],
) -> CommissionStatement:
    """The commission of a period (a month) from its days' business by service.

    rules_of: a service code's commission rules (Service.commission of the catalog in force;
    an unknown service: ()). days: each business day with its paid totals per service, as a
    day_close record's "services" gives them ({"water-bill": {"count": 3, "amount_fen": ...}}).
    Each day's business goes under the rule in force on that day, so a contract change in
    the middle of the month splits a service into two lines.
    """
    totals: dict[tuple[str, CommissionRule], list[int]] = {}
    uncovered: set[str] = set()
    for day, services in days:
        for code, figures in services.items():
            rule = commission_rule_on(rules_of(code), day)
            if rule is None:
                uncovered.add(code)
                continue
            entry = totals.setdefault((code, rule), [0, 0])
            entry[0] += int(figures.get("count", 0))
            entry[1] += int(figures.get("amount_fen", 0))
    lines = tuple(
        CommissionLine(code, rule, count, amount, rule.commission_fen(count, amount))
        for (code, rule), (count, amount) in sorted(
            totals.items(), key=lambda item: (item[0][0], item[0][1].effective_from)
        )
    )
    total = sum(line.commission_fen for line in lines)
    return CommissionStatement(lines, tuple(sorted(uncovered)), split_commission(total))
