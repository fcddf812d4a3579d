"""Figures recomputable from the journal: the turnover counter, a day's totals, the cash box.

Owns the rules an auditor recomputes from a journal alone (docs/journal-format.md,
section 6): how much a closed transaction adds to the cumulative turnover, the totals of a
business day's end-of-day report (日终轧帐) from its tx_close records, and how each record
moves the cash that should be in the cash box (cash_box_movement). The day closer and the
cash box write their figures with these functions and the verifier recomputes them with the
same ones, so each rule is written once. Pure: no database, no clock.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from kiosk.journal.record_types import RecordType, VoucherPayoutState

# The keys of a day_close report that come from its tx_close records. The report's other
# keys (float_balance_fen: the platform's figure) cannot be recomputed from the journal.
RECOMPUTED_KEYS = (
    "business_day",
    "services",
    "outcomes",
    "paid_count",
    "paid_fen",
    "cash_in_fen",
    "voucher_count",
    "voucher_fen",
    "credited_fen",
)


def _fen(record: Mapping[str, object], key: str) -> int:
    value = record.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def tx_close_turnover_fen(record: Mapping[str, object]) -> int:
    """What a tx_close adds to the turnover counter: its amount and fee (0 unless paid).

    The counter is what the station's float paid: a payment by phone (payment_method "qr")
    is funded by its paid order, not the float, so it adds nothing (the day's float check).
    """
    if record.get("payment_method") == "qr":
        return 0
    return _fen(record, "amount_fen") + _fen(record, "fee_fen")


def day_totals(closes: Iterable[Mapping[str, object]], business_day: str) -> dict[str, Any]:
    """The recomputable part of the day_close report of business_day (RECOMPUTED_KEYS).

    closes: the tx_close records after the previous day_close, in journal order. Those that
    carry another business_day are left out (only a journal written before transactions
    closed into the open day has them).
    """
    services: dict[str, dict[str, int]] = {}
    outcomes: dict[str, int] = {}
    cash_in = vouchers = voucher_count = credited = 0
    for record in closes:
        if record.get("business_day") != business_day:
            continue
        outcome = str(record.get("outcome") or "unknown")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        cash_in += _fen(record, "cash_in_fen")
        if _fen(record, "voucher_fen"):
            vouchers += _fen(record, "voucher_fen")
            voucher_count += 1
        if outcome == "paid":
            totals = services.setdefault(
                str(record.get("service")), {"count": 0, "amount_fen": 0, "fee_fen": 0}
            )
            totals["count"] += 1
            totals["amount_fen"] += _fen(record, "amount_fen")
            totals["fee_fen"] += _fen(record, "fee_fen")
            credited += _fen(record, "credited_fen")
    return {
        "business_day": business_day,
        "services": services,
        "outcomes": outcomes,
        "paid_count": sum(s["count"] for s in services.values()),
        "paid_fen": sum(s["amount_fen"] + s["fee_fen"] for s in services.values()),
        "cash_in_fen": cash_in,
        "voucher_count": voucher_count,
        "voucher_fen": vouchers,
        "credited_fen": credited,
    }


# The journal record of each note or coin the acceptor counted (kiosk.transactions.cash);
# it stays on the terminal (not an outbox type), so it has no RecordType.
CASH_IN_RECORD = "cash_in"
# The day_close reports whose cash_expected_fen is the cash box's figure (cash_box_movement
# since the last cash collection); earlier ones carried the day's cash in under that name.
CASH_BOX_REPORT_VERSION = 2


def cash_box_movement(record: Mapping[str, object]) -> int:
    """What a record changes in the cash that should be in the cash box, in fen.

    Every note and coin the acceptor counted goes into the box (pulse acceptors give no
    change): + its value, the moment it is journaled, whichever transaction it belongs to
    (so cash of a payment still in doubt is counted too). A voucher paid out in cash from the
    box: - its amount, once the platform's redemption said paid. A cash_collection empties
    the box (the caller resets its tally there); nothing else moves it.
    """
    kind = record.get("type")
    if kind == CASH_IN_RECORD:
        return _fen(record, "value_fen")
    if kind == RecordType.VOUCHER_PAYOUT and record.get("state") == VoucherPayoutState.PAID:
        return -_fen(record, "amount_fen")
    return 0
