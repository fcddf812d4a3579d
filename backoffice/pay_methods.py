"""How the residents paid, as the back office reads it from stored records (issue #21).

Owns the split of paid transactions by payment method for the reports: the method of a
stored tx_close (cash, or the wallet of a payment by phone) as one SQL expression both
engines run, what went back to wallets, the flat columns a report row gains per method,
and the check of the tx_close records received against the day_close's own
`payment_methods`. The method keys and the terminal's rule for them are kiosk's
(kiosk.settlement.pay_methods), never a copy. A record written before payment methods
existed has no `payment_method`: it is cash. Amounts are integer fen.
"""

import json
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from backoffice.store import Row
from kiosk.settlement.pay_methods import METHOD_LABELS, payment_method_split
from kiosk.transactions.kinds import PayMethod

# cash, qr:wechat, qr:alipay, qr:unionpay: the day close's keys, in the day sheet's order.
METHODS: tuple[str, ...] = tuple(METHOD_LABELS)
FIGURES = ("count", "amount_fen", "fee_fen")
QR_REFUNDED = "qr_refunded_fen"
Split = dict[str, dict[str, int]]  # method key -> {count, amount_fen, fee_fen}


class MethodCheck(StrEnum):
    """The received tx_close records against the day close's `payment_methods`."""

    OK = "ok"
    MISMATCH = "mismatch"
    NO_DAY_CLOSE = "no_day_close"


def _wallet_case() -> str:
    wallets = " ".join(
        f"WHEN record LIKE '%\"paid_with\":\"{key.split(':', 1)[1]}\"%' THEN '{key}'"
        for key in METHODS
        if key.startswith(f"{PayMethod.QR}:")
    )
    return f"CASE {wallets} ELSE '{PayMethod.QR}' END"


# A tx_close's method key from its stored text. The record is kept as canonical JSON
# (sorted keys, no spaces: backoffice.messages), so each field is found as text by LIKE,
# which SQLite and PostgreSQL both run: the reports group by it in the database instead of
# parsing millions of records (decided over a new column, which would need ingest and a
# backfill, and would read NULL from a worker of the previous release).
METHOD_SQL = (
    f'CASE WHEN record LIKE \'%"payment_method":"{PayMethod.QR}"%\' '
    f"THEN {_wallet_case()} ELSE '{PayMethod.CASH}' END"
)
# The tx_close records of payments by phone that sent money back to a wallet (refunded_fen
# above 0); the few found are read whole and summed by kiosk's rule.
QR_REFUND_SQL = (
    f'record LIKE \'%"payment_method":"{PayMethod.QR}"%\' '
    "AND record LIKE '%\"refunded_fen\":%' "
    "AND record NOT LIKE '%\"refunded_fen\":0,%' AND record NOT LIKE '%\"refunded_fen\":0}%'"
)


def prefix(method: str) -> str:
    """A method key's column prefix: `cash`, `wechat`, `alipay`, `unionpay`."""
    return method.split(":", 1)[-1]


def columns() -> list[str]:
    """The flat columns a report row gains, per method in METHODS order, then refunds."""
    return [f"{prefix(m)}_{figure}" for m in METHODS for figure in FIGURES] + [QR_REFUNDED]


def empty_columns() -> dict[str, int]:
    return dict.fromkeys(columns(), 0)


def add_paid(row: Row, method: str, count: int, amount_fen: int, fee_fen: int) -> None:
    """Add a group of paid transactions of one method to a row's columns. A payment by phone
    without a known wallet (none is written: the schema names the three) has no column of
    its own; it still counts in the row's totals, so the reconciliation shows it."""
    if method not in METHODS:
        return
    name = prefix(method)
    row[f"{name}_count"] += count
    row[f"{name}_amount_fen"] += amount_fen
    row[f"{name}_fee_fen"] += fee_fen


def refunded_fen(texts: Iterable[str]) -> int:
    """What went back to wallets in these stored tx_close records (kiosk's rule)."""
    total = 0
    for text in texts:
        record = json.loads(text)
        split = payment_method_split([record], str(record.get("business_day")))
        total += int(split[QR_REFUNDED])
    return total


def paid_columns(split: Split | None) -> dict[str, int | None]:
    """`<method>_paid_fen` (amount + fee) per method of a day close's split, for a page;
    None for each when the report predates payment methods."""
    return {
        f"{prefix(m)}_paid_fen": None
        if split is None
        else split.get(m, {}).get("amount_fen", 0) + split.get(m, {}).get("fee_fen", 0)
        for m in METHODS
    }


def split_of(row: Mapping[str, Any]) -> Split:
    """A row's method columns back as a split (methods with transactions only)."""
    split: Split = {}
    for method in METHODS:
        figures = {f: int(row.get(f"{prefix(method)}_{f}") or 0) for f in FIGURES}
        if figures["count"] or figures["amount_fen"] or figures["fee_fen"]:
            split[method] = figures
    return split


def reported_split(day_close: Mapping[str, Any]) -> Split | None:
    """The day close's `payment_methods` (methods with transactions only), or None when the
    report predates payment methods."""
    methods = day_close.get("payment_methods")
    if not isinstance(methods, Mapping):
        return None
    split: Split = {}
    for method, figures in methods.items():
        values = {f: int((figures or {}).get(f, 0)) for f in FIGURES}
        if values["count"] or values["amount_fen"] or values["fee_fen"]:
            split[str(method)] = values
    return split


def check(received: Row, day_close: Mapping[str, Any] | None) -> MethodCheck:
    """Whether the received split and refunds agree with the day close's. A day close
    written before payment methods existed reports all its sales as cash: it agrees when
    nothing was received paid by phone or refunded to a wallet."""
    if day_close is None:
        return MethodCheck.NO_DAY_CLOSE
    mine = split_of(received)
    reported = reported_split(day_close)
    if reported is None:
        only_cash = set(mine) <= {str(PayMethod.CASH)} and not received.get(QR_REFUNDED)
        return MethodCheck.OK if only_cash else MethodCheck.MISMATCH
    refunded = int(day_close.get(QR_REFUNDED) or 0)
    agrees = mine == reported and int(received.get(QR_REFUNDED) or 0) == refunded
    return MethodCheck.OK if agrees else MethodCheck.MISMATCH
