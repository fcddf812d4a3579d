"""Residents' ratings (好差评) and complaints in the back office: the follow-up queue and
satisfaction per station per month.

Owns the `follow_ups` table (migration 4 of backoffice.migrations): every dissatisfied
rating and every complaint a terminal sends (signed `rating` and `complaint` records through
its durable outbox, kiosk/ratings.py) opens a follow-up when ingest stores the record, in the
same transaction. Staff take it (handling, with who), then close it with a note saying what
was done; both are recorded in `staff_actions`. Satisfaction is satisfied ratings over all
ratings of a station's month, against seed 002's 98 %. It never renders a page.
"""

import datetime
import json
from enum import StrEnum
from typing import Any

from backoffice.errors import BackofficeError
from backoffice.roles import Action
from backoffice.staff import Staff, record_action
from backoffice.stations import month_bounds
from backoffice.store import Cursor, Row, Store
from kiosk.journal.record_types import RecordType

# Seed 002: 满意率 at least 98 %.
SATISFACTION_TARGET_PERCENT = 98
COLUMNS = ("station", "terminal", "seq", "kind", "time", "opened")


class FollowUpState(StrEnum):
    OPEN = "open"
    HANDLING = "handling"
    CLOSED = "closed"


# Each state's label (message id in stations.po): "open" alone reads as a door's state.
STATE_LABELS = {
    FollowUpState.OPEN: "Waiting to be handled",
    FollowUpState.HANDLING: "Being handled",
    FollowUpState.CLOSED: "Followed up",
}


class FollowUpError(BackofficeError):
    """A follow-up action that is not possible now; the message says why."""


def follow_up_row(
    station: str, terminal: str, seq: int, record: dict[str, Any], now: float
) -> tuple[Any, ...] | None:
    """The follow_ups row a stored record opens (COLUMNS), or None: a dissatisfied rating
    or any complaint."""
    kind = record.get("type")
    if kind == RecordType.RATING and record.get("satisfied") is False:
        return (station, terminal, seq, kind, str(record.get("time")), now)
    if kind == RecordType.COMPLAINT:
        return (station, terminal, seq, kind, str(record.get("time")), now)
    return None


def queue(store: Store, state: str = "", station: str = "") -> list[Row]:
    """Follow-ups, oldest first (of one state or station when given), each with what the
    resident said: service, reason(s), call-back number and the transaction."""
    sql = (
        "SELECT f.*, r.record FROM follow_ups f JOIN records r ON r.station = f.station "
        "AND r.terminal = f.terminal AND r.seq = f.seq"
    )
    where, params = [], []
    if state:
        where.append("f.state = ?")
        params.append(state)
    if station:
        where.append("f.station = ?")
        params.append(station)
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = store.query(sql + " ORDER BY f.opened, f.station, f.terminal, f.seq", params)
    for row in rows:
        record = json.loads(row.pop("record"))
        row["service"] = record.get("service")
        reasons = record.get("reasons") or ([record["reason"]] if record.get("reason") else [])
        row["reasons"] = [str(reason) for reason in reasons]
        row["callback_phone"] = record.get("callback_phone")
        row["tx_id"] = record.get("tx_id")
        row["state_label"] = STATE_LABELS[FollowUpState(row["state"])]
    return rows


def _current(cursor: Cursor, station: str, terminal: str, seq: int) -> FollowUpState:
    rows = cursor.execute(
        "SELECT state FROM follow_ups WHERE station = ? AND terminal = ? AND seq = ?",
        (station, terminal, seq),
    )
    if not rows:
        raise FollowUpError(f"there is no follow-up {station}/{terminal}/{seq}")
    return FollowUpState(rows[0]["state"])


def handle(cursor: Cursor, station: str, terminal: str, seq: int, staff: Staff, now: float) -> None:
    """Staff take the follow-up: it is being handled, by them."""
    if _current(cursor, station, terminal, seq) is FollowUpState.CLOSED:
        raise FollowUpError("this follow-up is closed already")
    cursor.execute(
        "UPDATE follow_ups SET state = ?, handler = ?, handled_at = ? "
        "WHERE station = ? AND terminal = ? AND seq = ?",
        (FollowUpState.HANDLING.value, staff.name, now, station, terminal, seq),
    )
    record_action(
        cursor,
        staff,
        Action.HANDLE_FOLLOW_UP,
        now,
        station=station,
        terminal=terminal,
        detail={"seq": seq},
    )


def close(
    cursor: Cursor, station: str, terminal: str, seq: int, note: str, staff: Staff, now: float
) -> None:
    """Staff close the follow-up with a note saying what was done (required)."""
    note = note.strip()
    if not note:
        raise FollowUpError("write what was done: a follow-up is closed with a note")
    if len(note) > 2000:
        raise FollowUpError("the note is longer than 2000 characters")
    if _current(cursor, station, terminal, seq) is FollowUpState.CLOSED:
        raise FollowUpError("this follow-up is closed already")
    cursor.execute(
        "UPDATE follow_ups SET state = ?, closed_by = ?, closed_at = ?, note = ?, "
        "handler = COALESCE(handler, ?), handled_at = COALESCE(handled_at, ?) "
        "WHERE station = ? AND terminal = ? AND seq = ?",
        (FollowUpState.CLOSED.value, staff.name, now, note, staff.name, now)
        + (station, terminal, seq),
    )
    record_action(
        cursor,
        staff,
        Action.CLOSE_FOLLOW_UP,
        now,
        station=station,
        terminal=terminal,
        detail={"seq": seq, "note": note},
    )


def satisfaction(store: Store, first_month: str, last_month: str) -> list[Row]:
    """Per station and month: ratings, satisfied, dissatisfied, the satisfied percentage
    (one decimal, rounded down so 97.96 % is not shown as 98.0 %) and whether it reaches
    SATISFACTION_TARGET_PERCENT; complaints counted beside them."""
    first, _ = month_bounds(first_month)
    _, last = month_bounds(last_month)
    rows = store.query(
        "SELECT station, business_day, type, record FROM records WHERE type IN (?, ?) "
        "AND business_day >= ? AND business_day <= ?",
        (RecordType.RATING, RecordType.COMPLAINT, first.isoformat(), last.isoformat()),
    )
    totals: dict[tuple[str, str], Row] = {}
    for row in rows:
        key = (row["station"], str(row["business_day"])[:7])
        entry = totals.setdefault(
            key,
            {
                "station": key[0],
                "month": key[1],
                "ratings": 0,
                "satisfied": 0,
                "dissatisfied": 0,
                "complaints": 0,
            },
        )
        if row["type"] == RecordType.COMPLAINT:
            entry["complaints"] += 1
            continue
        entry["ratings"] += 1
        if json.loads(row["record"]).get("satisfied") is True:
            entry["satisfied"] += 1
        else:
            entry["dissatisfied"] += 1
    result = []
    for key in sorted(totals):
        entry = totals[key]
        ratings = entry["ratings"]
        if ratings:
            tenths = entry["satisfied"] * 1000 // ratings
            entry["satisfaction"] = f"{tenths // 10}.{tenths % 10}%"
            entry["meets_target"] = (
                entry["satisfied"] * 100 >= SATISFACTION_TARGET_PERCENT * ratings
            )
        else:
            entry["satisfaction"] = None
            entry["meets_target"] = None
        result.append(entry)
    return result


def months_back(today: datetime.date, count: int) -> tuple[str, str]:
    """The first and last month of the `count` months up to today's."""
    index = today.year * 12 + today.month - 1 - (count - 1)
    return f"{index // 12:04d}-{index % 12 + 1:02d}", today.isoformat()[:7]
