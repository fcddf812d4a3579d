"""A business day's paid transactions split by how the resident paid (issue #21).

The signed day_close report carries `payment_methods`: for `cash` and for each wallet of a
payment by phone (`qr:wechat`, `qr:alipay`, `qr:unionpay`) the count, amount and fee of the
day's paid transactions, and `qr_refunded_fen`, what went back to wallets for payments by
phone that did not complete. Computed from the day's tx_close records like the other
totals (kiosk.journal.totals), so an auditor recomputes it from the journal alone. A close
written before payment methods existed is cash. Pure: no database, no clock.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from kiosk.transactions.kinds import PayMethod, TxOutcome

# The day sheet's label of each method (message ids, translated in qrpay.po).
METHOD_LABELS = {
    "cash": "Paid in cash",
    "qr:wechat": "Paid by WeChat Pay",
    "qr:alipay": "Paid by Alipay",
    "qr:unionpay": "Paid by UnionPay",
}
QR_REFUNDED_LABEL = "Refunded to wallets"


def _fen(record: Mapping[str, object], key: str) -> int:
    value = record.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def method_of(record: Mapping[str, object]) -> str:
    """`cash`, or `qr:<wallet>` for a payment by phone (`qr` if no wallet paid)."""
    method = str(record.get("payment_method") or PayMethod.CASH)
    if method == PayMethod.QR:
        wallet = record.get("paid_with")
        return f"{PayMethod.QR}:{wallet}" if wallet else str(PayMethod.QR)
    return method


def payment_method_split(
    closes: Iterable[Mapping[str, object]], business_day: str
) -> dict[str, Any]:
    """`payment_methods` and `qr_refunded_fen` of business_day's tx_close records."""
    methods: dict[str, dict[str, int]] = {str(PayMethod.CASH): _empty()}
    refunded = 0
    for record in closes:
        if record.get("business_day") != business_day:
            continue
        if record.get("outcome") == TxOutcome.PAID:
            figures = methods.setdefault(method_of(record), _empty())
            figures["count"] += 1
            figures["amount_fen"] += _fen(record, "amount_fen")
            figures["fee_fen"] += _fen(record, "fee_fen")
        if record.get("payment_method") == PayMethod.QR:
            refunded += _fen(record, "refunded_fen")
    return {"payment_methods": methods, "qr_refunded_fen": refunded}


def _empty() -> dict[str, int]:
    return {"count": 0, "amount_fen": 0, "fee_fen": 0}
