"""Business reports from stored records: reconciliation, activity, receipts, payouts.

Owns the daily reconciliation (each end-of-day report against the transactions received for
that day), weekly and monthly counts and amounts per station, unclaimed receipts and voucher
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

from backoffice.store import Row, Store
from kiosk.journal.record_types import RecordType

PAID = "paid"


def reconciliation(store: Store, day: datetime.date) -> list[Row]:
    """Per terminal: what its day_close reports against the tx_close records received."""
    received = store.query(
        "SELECT station, terminal, COUNT(*) AS count, "
        "COALESCE(SUM(amount_fen + fee_fen), 0) AS fen FROM records "
        "WHERE type = ? AND outcome = ? AND business_day = ? "
        "GROUP BY station, terminal",
        (RecordType.TX_CLOSE, PAID, day.isoformat()),
    )
    closes = store.query(
        "SELECT station, terminal, record FROM records WHERE type = ? AND business_day = ?",
        (RecordType.DAY_CLOSE, day.isoformat()),
    )
    rows: dict[tuple[str, str], Row] = {}
    for row in received:
        rows[(row["station"], row["terminal"])] = {
            "station": row["station"],
            "terminal": row["terminal"],
            "day": day.isoformat(),
            "reported_count": None,
            "reported_fen": None,
            "received_count": int(row["count"]),
            "received_fen": int(row["fen"]),
        }
    for row in closes:
        report = json.loads(row["record"])
        entry = rows.setdefault(
            (row["station"], row["terminal"]),
            {
                "station": row["station"],
                "terminal": row["terminal"],
                "day": day.isoformat(),
                "received_count": 0,
                "received_fen": 0,
            },
        )
        entry["reported_count"] = int(report.get("paid_count", 0))
        entry["reported_fen"] = int(report.get("paid_fen", 0))
    result = []
    for key in sorted(rows):
        entry = rows[key]
        if entry["reported_count"] is None:
            entry["status"] = "no_day_close"
        elif (entry["reported_count"], entry["reported_fen"]) == (
            entry["received_count"],
            entry["received_fen"],
        ):
            entry["status"] = "ok"
        else:
            entry["status"] = "mismatch"
        result.append(entry)
    return result


def week_start(day: datetime.date) -> datetime.date:
    return day - datetime.timedelta(days=day.weekday())


def activity(store: Store, period: str, first: datetime.date, last: datetime.date) -> list[Row]:
    """Paid transactions and amounts per station and ISO week ("week") or month ("month")."""
    if period not in ("week", "month"):
        raise ValueError("period must be 'week' or 'month'")
    rows = store.query(
        "SELECT station, business_day, COUNT(*) AS count, COALESCE(SUM(amount_fen), 0) AS amount, "
        "COALESCE(SUM(fee_fen), 0) AS fee FROM records WHERE type = ? AND outcome = ? "
        "AND business_day >= ? AND business_day <= ? GROUP BY station, business_day",
        (RecordType.TX_CLOSE, PAID, first.isoformat(), last.isoformat()),
    )
    totals: dict[tuple[str, str], Row] = {}
    for row in rows:
        day = datetime.date.fromisoformat(row["business_day"])
        label = week_start(day).isoformat() if period == "week" else day.isoformat()[:7]
        entry = totals.setdefault(
            (row["station"], label),
            {"station": row["station"], period: label, "count": 0, "amount_fen": 0, "fee_fen": 0},
        )
        entry["count"] += int(row["count"])
        entry["amount_fen"] += int(row["amount"])
        entry["fee_fen"] += int(row["fee"])
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
    return value
