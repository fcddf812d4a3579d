"""Looking things up in the stored records: transactions, the operator's day, revenue.

Owns the read-only queries staff use to answer a resident or check a station: a
transaction by receipt number, masked account or time range; a station's float deposits,
float history and day closes (the float check of report_version 2), cash collections and
operator sessions; revenue by business type per day, week or month set against the
terminals' own day closes (账表相符). Everything is read from the signed records as
received (the `records` table keeps each in full); amounts are integer fen. It never writes.
"""

import datetime
import json
import re
from collections.abc import Iterable
from typing import Any

from backoffice import pay_methods
from backoffice.errors import BackofficeError
from backoffice.store import Row, Store
from kiosk.journal.record_types import RecordType
from kiosk.transactions.kinds import PayMethod

PAID = "paid"
LIMIT = 500
# What staff may type as an account: the masked form (31****1234) or its last digits.
_ACCOUNT = re.compile(r"^[0-9A-Za-z*]{2,40}\Z")
_RECEIPT = re.compile(r"^[0-9A-Za-z_-]{1,64}\Z")
# The day_close keys of the float check and the cash box (docs/transactions.md).
DAY_CLOSE_KEYS = (
    "paid_count",
    "paid_fen",
    "opening_float_fen",
    "deposits_fen",
    "debits_fen",
    "reversals_fen",
    "closing_float_fen",
    "platform_float_fen",
    "float_difference_fen",
    "balanced",
    "float_check",
    "cash_expected_fen",
    "cash_discrepancy_fen",
    "vouchers_outstanding_fen",
    "closed_by",
)


def _tx_row(row: Row) -> Row:
    record = json.loads(row.pop("record"))
    row["account_masked"] = record.get("account_masked")
    row["kind"] = record.get("kind")
    # cash, or qr with its wallet; a record from before payment methods is cash.
    row["payment_method"] = str(record.get("payment_method") or PayMethod.CASH)
    row["paid_with"] = record.get("paid_with")
    row["provider_ref"] = record.get("provider_ref")
    row["paid_in_fen"] = record.get("paid_in_fen")
    row["refunded_fen"] = record.get("refunded_fen")
    return row


def transactions(
    store: Store,
    *,
    receipt_no: str = "",
    account: str = "",
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
    station: str = "",
) -> list[Row]:
    """Closed transactions (tx_close, any outcome) matching every criterion given, newest
    first, at most LIMIT. account: the masked account as printed (31****1234), or its last
    digits. start/end: aware datetimes, end excluded. BackofficeError when nothing narrows
    the search or a criterion is malformed."""
    if not (receipt_no or account or (start and end)):
        raise BackofficeError("give a receipt number, an account, or a time range (from and to)")
    sql = (
        "SELECT station, terminal, seq, time, business_day, service, outcome, amount_fen, "
        "fee_fen, receipt_no, tx_id, signature, record FROM records WHERE type = ?"
    )
    params: list[Any] = [RecordType.TX_CLOSE]
    if receipt_no:
        if not _RECEIPT.match(receipt_no):
            raise BackofficeError("a receipt number is like T0001-000124")
        sql += " AND receipt_no = ?"
        params.append(receipt_no)
    if account:
        if not _ACCOUNT.match(account):
            raise BackofficeError("an account is its masked form (31****1234) or its last digits")
        # The stored record is canonical JSON (sorted keys, no spaces): the field is found
        # as text; '*' is no LIKE wildcard and the pattern above allows no other.
        tail = account if "*" in account else "%" + account
        sql += " AND record LIKE ?"
        params.append(f'%"account_masked":"{tail}"%')
    if start and end:
        if start.tzinfo is None or end.tzinfo is None or end <= start:
            raise BackofficeError("the time range's end must be after its start")
        # Times are ISO 8601 with the terminal's offset: the text bounds the search (a
        # local date is within a day of any other offset's), the moments are compared below.
        sql += " AND time >= ? AND time < ?"
        params += [
            (start.date() - datetime.timedelta(days=1)).isoformat(),
            (end.date() + datetime.timedelta(days=2)).isoformat(),
        ]
    if station:
        sql += " AND station = ?"
        params.append(station)
    rows = store.query(sql + " ORDER BY time DESC, station, terminal, seq DESC", params)
    found = []
    for row in rows:
        if start and end:
            moment = datetime.datetime.fromisoformat(str(row["time"]))
            if not start <= moment < end:
                continue
        found.append(_tx_row(row))
        if len(found) == LIMIT:
            break
    return found


def _records_of(
    store: Store, kind: str, station: str, terminal: str = "", limit: int = LIMIT
) -> Iterable[tuple[Row, dict[str, Any]]]:
    sql = (
        "SELECT station, terminal, seq, time, business_day, signature, record FROM records "
        "WHERE type = ? AND station = ?"
    )
    params: list[Any] = [kind, station]
    if terminal:
        sql += " AND terminal = ?"
        params.append(terminal)
    for row in store.query(sql + f" ORDER BY time DESC, seq DESC LIMIT {int(limit)}", params):
        yield row, json.loads(row.pop("record"))


def deposits(store: Store, station: str) -> list[Row]:
    """Every float_deposit record of the station, newest first: each state a deposit went
    through (pending, confirmed, refused) with its slip, amount and who recorded it."""
    result = []
    for row, record in _records_of(store, RecordType.FLOAT_DEPOSIT, station):
        for key in ("deposit_key", "slip_no", "amount_fen", "state", "by", "role", "refusal"):
            row[key] = record.get(key)
        result.append(row)
    return result


def day_closes(store: Store, station: str, terminal: str = "") -> list[Row]:
    """The station's day closes, newest first, with the float check and cash figures."""
    result = []
    for row, record in _records_of(store, RecordType.DAY_CLOSE, station, terminal, 366):
        for key in DAY_CLOSE_KEYS:
            row[key] = record.get(key)
        row["report_version"] = record.get("report_version", 1)
        row["float_balance_fen"] = record.get("float_balance_fen")
        # {method: {count, amount_fen, fee_fen}} with transactions; None before issue #21.
        row["payment_methods"] = pay_methods.reported_split(record)
        row.update(pay_methods.paid_columns(row["payment_methods"]))
        row[pay_methods.QR_REFUNDED] = record.get(pay_methods.QR_REFUNDED)
        result.append(row)
    return result


def cash_collections(store: Store, station: str) -> list[Row]:
    result = []
    for row, record in _records_of(store, RecordType.CASH_COLLECTION, station):
        for key in ("expected_fen", "counted_fen", "discrepancy_fen", "suspense_items", "by"):
            row[key] = record.get(key)
        result.append(row)
    return result


def operator_sessions(store: Store, station: str) -> list[Row]:
    result = []
    for row, record in _records_of(store, RecordType.OPERATOR_SESSION, station, limit=200):
        for key in ("action", "by", "role"):
            row[key] = record.get(key)
        result.append(row)
    return result


def voucher_payouts(store: Store, station: str) -> list[Row]:
    result = []
    for row, record in _records_of(store, RecordType.VOUCHER_PAYOUT, station, limit=200):
        for key in ("voucher_id", "amount_fen", "state", "operator"):
            row[key] = record.get(key)
        result.append(row)
    return result


def _label(day: datetime.date, period: str) -> str:
    if period == "week":
        return (day - datetime.timedelta(days=day.weekday())).isoformat()
    if period == "month":
        return day.isoformat()[:7]
    return day.isoformat()


def revenue(
    store: Store,
    period: str,
    first: datetime.date,
    last: datetime.date,
    station: str = "",
    *,
    by_method: bool = False,
) -> list[Row]:
    """Revenue by business type (service) per station and day, ISO week (labelled by its
    Monday) or month: the paid tx_close records received against the `services` of the
    terminals' day closes of the same business days (账表相符). status: `ok` when both
    agree, `mismatch`, or `no_day_close` when a day with business has no report yet.
    by_method: each row also splits what was received by payment method
    (backoffice.pay_methods columns: cash and each wallet, and refunds to wallets); the
    check stays on the totals, since the day close's `services` are not split."""
    if period not in ("day", "week", "month"):
        raise BackofficeError("period must be day, week or month")
    where = "business_day >= ? AND business_day <= ?"
    params: list[Any] = [first.isoformat(), last.isoformat()]
    if station:
        where += " AND station = ?"
        params.append(station)
    received = store.query(
        f"SELECT station, business_day, service, {pay_methods.METHOD_SQL} AS pay_method, "
        "COUNT(*) AS count, COALESCE(SUM(amount_fen), 0) AS amount, "
        f"COALESCE(SUM(fee_fen), 0) AS fee FROM records WHERE type = ? AND outcome = ? "
        f"AND {where} GROUP BY station, business_day, service, pay_method",
        [RecordType.TX_CLOSE, PAID, *params],
    )
    refunds = (
        store.query(
            f"SELECT station, business_day, service, record FROM records WHERE type = ? "
            f"AND {where} AND {pay_methods.QR_REFUND_SQL}",
            [RecordType.TX_CLOSE, *params],
        )
        if by_method
        else []
    )
    closes = store.query(
        f"SELECT station, business_day, record FROM records WHERE type = ? AND {where}",
        [RecordType.DAY_CLOSE, *params],
    )
    totals: dict[tuple[str, str, str], Row] = {}
    closed_days: set[tuple[str, str]] = set()

    def entry(number: str, day: str, service: str) -> Row:
        label = _label(datetime.date.fromisoformat(day), period)
        return totals.setdefault(
            (number, label, service),
            {
                "station": number,
                period: label,
                "service": service,
                "count": 0,
                "amount_fen": 0,
                "fee_fen": 0,
                "reported_count": 0,
                "reported_amount_fen": 0,
                "reported_fee_fen": 0,
                "days_unreported": 0,
            }
            | (pay_methods.empty_columns() if by_method else {}),
        )

    for row in closes:
        closed_days.add((row["station"], row["business_day"]))
        services = json.loads(row["record"]).get("services") or {}
        for service, figures in services.items():
            found = entry(row["station"], row["business_day"], str(service))
            found["reported_count"] += int(figures.get("count", 0))
            found["reported_amount_fen"] += int(figures.get("amount_fen", 0))
            found["reported_fee_fen"] += int(figures.get("fee_fen", 0))
    for row in received:
        found = entry(row["station"], row["business_day"], str(row["service"]))
        count, amount, fee = int(row["count"]), int(row["amount"]), int(row["fee"])
        found["count"] += count
        found["amount_fen"] += amount
        found["fee_fen"] += fee
        if by_method:
            pay_methods.add_paid(found, str(row["pay_method"]), count, amount, fee)
        if (row["station"], row["business_day"]) not in closed_days:
            found["days_unreported"] = 1
    for row in refunds:
        found = entry(row["station"], row["business_day"], str(row["service"]))
        found[pay_methods.QR_REFUNDED] += pay_methods.refunded_fen([row["record"]])
    result = []
    for key in sorted(totals):
        found = totals[key]
        if found["days_unreported"]:
            found["status"] = "no_day_close"
        elif (found["count"], found["amount_fen"], found["fee_fen"]) == (
            found["reported_count"],
            found["reported_amount_fen"],
            found["reported_fee_fen"],
        ):
            found["status"] = "ok"
        else:
            found["status"] = "mismatch"
        del found["days_unreported"]
        result.append(found)
    return result
