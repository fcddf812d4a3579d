"""Business reports from stored records: reconciliation, activity, receipts, payouts.

Owns the daily reconciliation (each end-of-day report against the transactions received for
that day, in total and split by payment method), weekly and monthly counts and amounts per
station (likewise split), unclaimed receipts and voucher
payouts. The exit report lives with the station registry (backoffice.stations: it counts a
station from its join month) and the commission statement in backoffice.commission (it is
earned on the carriers' terms, not on the residents' fees). Amounts are integer fen. Every
report is a list of flat rows, so one function writes any of them as CSV.
"""

import csv
import datetime
import io
import json
from collections.abc import Sequence
from typing import Any

from backoffice import pay_methods
from backoffice.store import Row, Store
from kiosk.journal.record_types import RecordType

PAID = "paid"


def reconciliation(store: Store, day: datetime.date) -> list[Row]:
    """Per terminal: what its day_close reports against the tx_close records received, in
    total (status) and split by payment method with the refunds to wallets (methods_status,
    backoffice.pay_methods)."""
    received = store.query(
        f"SELECT station, terminal, {pay_methods.METHOD_SQL} AS pay_method, COUNT(*) AS count, "
        "COALESCE(SUM(amount_fen), 0) AS amount, COALESCE(SUM(fee_fen), 0) AS fee "
        "FROM records WHERE type = ? AND outcome = ? AND business_day = ? "
        "GROUP BY station, terminal, pay_method",
        (RecordType.TX_CLOSE, PAID, day.isoformat()),
    )
    refunds = store.query(
        "SELECT station, terminal, record FROM records WHERE type = ? AND business_day = ? "
        f"AND {pay_methods.QR_REFUND_SQL}",
        (RecordType.TX_CLOSE, day.isoformat()),
    )
    closes = store.query(
        "SELECT station, terminal, record FROM records WHERE type = ? AND business_day = ?",
        (RecordType.DAY_CLOSE, day.isoformat()),
    )
    rows: dict[tuple[str, str], Row] = {}
    reports: dict[tuple[str, str], dict[str, Any]] = {}

    def entry(station: str, terminal: str) -> Row:
        return rows.setdefault(
            (station, terminal),
            {
                "station": station,
                "terminal": terminal,
                "day": day.isoformat(),
                "reported_count": None,
                "reported_fen": None,
                "received_count": 0,
                "received_fen": 0,
                **pay_methods.empty_columns(),
                "reported_qr_refunded_fen": None,
            },
        )

    for row in received:
        found = entry(row["station"], row["terminal"])
        count, amount, fee = int(row["count"]), int(row["amount"]), int(row["fee"])
        found["received_count"] += count
        found["received_fen"] += amount + fee
        pay_methods.add_paid(found, str(row["pay_method"]), count, amount, fee)
    for row in refunds:
        found = entry(row["station"], row["terminal"])
        found[pay_methods.QR_REFUNDED] += pay_methods.refunded_fen([row["record"]])
    for row in closes:
        report = json.loads(row["record"])
        found = entry(row["station"], row["terminal"])
        reports[(row["station"], row["terminal"])] = report
        found["reported_count"] = int(report.get("paid_count", 0))
        found["reported_fen"] = int(report.get("paid_fen", 0))
        found["reported_qr_refunded_fen"] = int(report.get(pay_methods.QR_REFUNDED) or 0)
    result = []
    for key in sorted(rows):
        found = rows[key]
        if found["reported_count"] is None:
            found["status"] = "no_day_close"
        elif (found["reported_count"], found["reported_fen"]) == (
            found["received_count"],
            found["received_fen"],
        ):
            found["status"] = "ok"
        else:
            found["status"] = "mismatch"
        found["methods_status"] = str(pay_methods.check(found, reports.get(key)))
        result.append(found)
    return result


def week_start(day: datetime.date) -> datetime.date:
    return day - datetime.timedelta(days=day.weekday())


def activity(store: Store, period: str, first: datetime.date, last: datetime.date) -> list[Row]:
    """Paid transactions and amounts per station and ISO week ("week") or month ("month"),
    in total and per payment method, with what went back to wallets."""
    if period not in ("week", "month"):
        raise ValueError("period must be 'week' or 'month'")
    bounds = (first.isoformat(), last.isoformat())
    rows = store.query(
        f"SELECT station, business_day, {pay_methods.METHOD_SQL} AS pay_method, "
        "COUNT(*) AS count, COALESCE(SUM(amount_fen), 0) AS amount, "
        "COALESCE(SUM(fee_fen), 0) AS fee FROM records WHERE type = ? AND outcome = ? "
        "AND business_day >= ? AND business_day <= ? GROUP BY station, business_day, pay_method",
        (RecordType.TX_CLOSE, PAID, *bounds),
    )
    refunds = store.query(
        "SELECT station, business_day, record FROM records WHERE type = ? "
        f"AND business_day >= ? AND business_day <= ? AND {pay_methods.QR_REFUND_SQL}",
        (RecordType.TX_CLOSE, *bounds),
    )
    totals: dict[tuple[str, str], Row] = {}

    def entry(station: str, business_day: str) -> Row:
        day = datetime.date.fromisoformat(business_day)
        label = week_start(day).isoformat() if period == "week" else day.isoformat()[:7]
        return totals.setdefault(
            (station, label),
            {"station": station, period: label, "count": 0, "amount_fen": 0, "fee_fen": 0}
            | pay_methods.empty_columns(),
        )

    for row in rows:
        found = entry(row["station"], row["business_day"])
        count, amount, fee = int(row["count"]), int(row["amount"]), int(row["fee"])
        found["count"] += count
        found["amount_fen"] += amount
        found["fee_fen"] += fee
        pay_methods.add_paid(found, str(row["pay_method"]), count, amount, fee)
    for row in refunds:
        found = entry(row["station"], row["business_day"])
        found[pay_methods.QR_REFUNDED] += pay_methods.refunded_fen([row["record"]])
    return [totals[key] for key in sorted(totals)]


def month_bounds(month: str) -> tuple[datetime.date, datetime.date]:
    first = datetime.date.fromisoformat(month + "-01")
    following = (first.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    return first, following - datetime.timedelta(days=1)


def previous_month(month: str) -> str:
    first, _ = month_bounds(month)
    return (first - datetime.timedelta(days=1)).isoformat()[:7]


def unclaimed_receipts(store: Store, station: str | None = None) -> list[Row]:
    """Transactions whose receipt was not printed (tx_close with awaiting_claim) and that no
    receipt_claimed record has claimed yet, oldest first: each is money a resident may
    still come for."""
    sql = (
        "SELECT r.station, r.terminal, r.seq, r.tx_id, r.time, r.business_day, r.service, "
        "r.amount_fen, r.fee_fen, r.receipt_no, r.signature FROM records r "
        "WHERE r.type = ? AND r.awaiting_claim = 1 AND NOT EXISTS (SELECT 1 FROM records c "
        "WHERE c.type = ? AND c.station = r.station AND c.terminal = r.terminal "
        "AND c.tx_id = r.tx_id)"
    )
    params: list[Any] = [RecordType.TX_CLOSE, RecordType.RECEIPT_CLAIMED]
    if station is not None:
        sql += " AND r.station = ?"
        params.append(station)
    return store.query(sql + " ORDER BY r.time, r.station, r.terminal, r.seq", params)


def voucher_payouts(store: Store, first: datetime.date, last: datetime.date) -> list[Row]:
    """Every voucher payout record of the business days first..last (asked, paid or
    refused), with who paid it out and whether its signature verified."""
    rows = store.query(
        "SELECT station, terminal, seq, time, business_day, amount_fen, record, signature "
        "FROM records WHERE type = ? AND business_day >= ? AND business_day <= ? "
        "ORDER BY time, station, terminal, seq",
        (RecordType.VOUCHER_PAYOUT, first.isoformat(), last.isoformat()),
    )
    result = []
    for row in rows:
        record = json.loads(row.pop("record"))
        row["voucher_id"] = record.get("voucher_id")
        row["operator"] = record.get("operator")
        row["state"] = record.get("state")
        result.append(row)
    return result


def to_csv(rows: Sequence[Row], columns: Sequence[str] | None = None) -> str:
    out = io.StringIO()
    names = list(columns or (rows[0].keys() if rows else []))
    writer = csv.DictWriter(out, fieldnames=names, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_value(row.get(key)) for key in names})
    return out.getvalue()


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return spreadsheet_text(value)
    return value


def spreadsheet_text(value: str) -> str:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe (OWASP's
    advice on CSV injection); numbers stay numbers."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
