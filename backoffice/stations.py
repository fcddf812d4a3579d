"""The station registry: who the back office serves, on what agreement, and in what state.

Owns the `stations` table (migration 4 of backoffice.migrations): each station's name,
address and contact, join date, agreement term and expiry, status (active, suspended,
exited) with the reason and who changed it, the post : station share of the carriers'
commission in its agreement, and the payee account (绿卡) the commission is paid into.
Registering, editing, suspending, reactivating and exiting are staff actions recorded in
`staff_actions` in the same transaction as the change (backoffice.staff). It also holds the
exit report's rule (seed 002), since that rule depends on when a station joined. It never
renders a page.
"""

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from backoffice.config import ReportConfig
from backoffice.errors import BackofficeError
from backoffice.roles import Action
from backoffice.staff import Staff, record_action
from backoffice.store import Cursor, Row, Store
from kiosk.journal.record_types import RecordType

PAID = "paid"
# An agreement runs whole months, at most 10 years.
MAX_AGREEMENT_MONTHS = 120


class StationStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    EXITED = "exited"


# Which status each action leads to, and from which statuses it may be taken. An exited
# station stays exited: a station that comes back signs a new agreement under a new number.
TRANSITIONS: dict[Action, tuple[StationStatus, frozenset[StationStatus]]] = {
    Action.SUSPEND_STATION: (StationStatus.SUSPENDED, frozenset({StationStatus.ACTIVE})),
    Action.REACTIVATE_STATION: (StationStatus.ACTIVE, frozenset({StationStatus.SUSPENDED})),
    Action.EXIT_STATION: (
        StationStatus.EXITED,
        frozenset({StationStatus.ACTIVE, StationStatus.SUSPENDED}),
    ),
}


class RegistryError(BackofficeError):
    """A registry change that is not allowed or not well formed; the message says why."""


@dataclass(frozen=True)
class StationDetails:
    """What staff type when registering or editing a station (checked by from_form)."""

    station: str
    name: str
    address: str
    contact_name: str
    contact_phone: str
    joined: datetime.date
    agreement_months: int
    post_share: int | None
    station_share: int | None
    payee_name: str
    payee_account: str

    @property
    def agreement_expires(self) -> datetime.date:
        return add_months(self.joined, self.agreement_months) - datetime.timedelta(days=1)

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> "StationDetails":
        """The details from a form's fields; RegistryError naming the first wrong field."""

        def text(name: str, limit: int = 200, required: bool = False) -> str:
            value = (form.get(name) or "").strip()
            if required and not value:
                raise RegistryError(f"the field {name} is required")
            if len(value) > limit:
                raise RegistryError(f"the field {name} is longer than {limit} characters")
            return value

        station = text("station", 32, required=True)
        if not station.isalnum():
            raise RegistryError("the station number is letters and digits only (its 机构号)")
        try:
            joined = datetime.date.fromisoformat(text("joined", 10, required=True))
        except ValueError:
            raise RegistryError("the join date is a date like 2026-03-01") from None
        months = text("agreement_months", 4, required=True)
        if not months.isdigit() or not 1 <= int(months) <= MAX_AGREEMENT_MONTHS:
            raise RegistryError(
                f"the agreement term is a number of months from 1 to {MAX_AGREEMENT_MONTHS}"
            )
        post, mine = text("post_share", 3), text("station_share", 3)
        if bool(post) != bool(mine):
            raise RegistryError("give both shares of the commission (post and station) or neither")
        if post and not (post.isdigit() and mine.isdigit() and int(post) + int(mine) > 0):
            raise RegistryError("the commission shares are whole numbers like 3 and 7")
        account = text("payee_account", 34).replace(" ", "")
        if account and not account.isdigit():
            raise RegistryError("the payee account (绿卡) is digits only")
        return cls(
            station=station,
            name=text("name", required=True),
            address=text("address"),
            contact_name=text("contact_name", 64),
            contact_phone=text("contact_phone", 32),
            joined=joined,
            agreement_months=int(months),
            post_share=int(post) if post else None,
            station_share=int(mine) if mine else None,
            payee_name=text("payee_name", 64),
            payee_account=account,
        )


def add_months(day: datetime.date, months: int) -> datetime.date:
    """The same day of the month `months` later (the month's last day where it is shorter)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    first_next = datetime.date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    last_day = (first_next - datetime.timedelta(days=1)).day
    return datetime.date(year, month + 1, min(day.day, last_day))


_COLUMNS = (
    "name",
    "address",
    "contact_name",
    "contact_phone",
    "joined",
    "agreement_months",
    "agreement_expires",
    "post_share",
    "station_share",
    "payee_name",
    "payee_account",
)


def _values(details: StationDetails) -> list[Any]:
    return [
        details.name,
        details.address,
        details.contact_name,
        details.contact_phone,
        details.joined.isoformat(),
        details.agreement_months,
        details.agreement_expires.isoformat(),
        details.post_share,
        details.station_share,
        details.payee_name,
        details.payee_account,
    ]


def save_station(
    cursor: Cursor, details: StationDetails, staff: Staff, now: float, *, new: bool
) -> None:
    """Register a station (new) or change its details, recorded with who did it."""
    exists = bool(cursor.execute("SELECT 1 FROM stations WHERE station = ?", (details.station,)))
    if new and exists:
        raise RegistryError(f"station {details.station} is registered already: edit it instead")
    if not new and not exists:
        raise RegistryError(f"station {details.station} is not registered")
    if new:
        cursor.execute(
            f"INSERT INTO stations (station, {', '.join(_COLUMNS)}, updated, updated_by) "
            f"VALUES (?, {', '.join('?' * len(_COLUMNS))}, ?, ?)",
            (details.station, *_values(details), now, staff.name),
        )
    else:
        assignments = ", ".join(f"{c} = ?" for c in _COLUMNS)
        cursor.execute(
            f"UPDATE stations SET {assignments}, updated = ?, updated_by = ? WHERE station = ?",
            (*_values(details), now, staff.name, details.station),
        )
    detail = {c: v for c, v in zip(_COLUMNS, _values(details), strict=True)}
    action = Action.REGISTER_STATION if new else Action.EDIT_STATION
    record_action(cursor, staff, action, now, station=details.station, detail=detail)


def change_status(
    cursor: Cursor, station: str, action: Action, reason: str, staff: Staff, now: float
) -> StationStatus:
    """Suspend, reactivate or exit a station with its reason, recorded with who did it."""
    if action not in TRANSITIONS:
        raise ValueError(f"{action} does not change a station's status")
    reason = reason.strip()
    if not reason:
        raise RegistryError("say why: the reason is required")
    if len(reason) > 500:
        raise RegistryError("the reason is longer than 500 characters")
    target, allowed_from = TRANSITIONS[action]
    rows = cursor.execute("SELECT status FROM stations WHERE station = ?", (station,))
    if not rows:
        raise RegistryError(f"station {station} is not registered")
    current = StationStatus(rows[0]["status"])
    if current not in allowed_from:
        raise RegistryError(f"station {station} is {current.value}: it cannot be {target.value}")
    cursor.execute(
        "UPDATE stations SET status = ?, status_reason = ?, status_at = ?, status_by = ? "
        "WHERE station = ?",
        (target.value, reason, now, staff.name, station),
    )
    record_action(
        cursor,
        staff,
        action,
        now,
        station=station,
        detail={"from": current.value, "to": target.value, "reason": reason},
    )
    return target


def station(store: Store, number: str) -> Row | None:
    rows = store.query("SELECT * FROM stations WHERE station = ?", (number,))
    return rows[0] if rows else None


def registry(store: Store, status: str = "") -> list[Row]:
    """Every registered station (of one status when given), with its terminal count."""
    sql = (
        "SELECT s.*, (SELECT COUNT(*) FROM terminals t WHERE t.station = s.station) "
        "AS terminals FROM stations s"
    )
    params: list[Any] = []
    if status:
        sql += " WHERE s.status = ?"
        params.append(status)
    return store.query(sql + " ORDER BY s.station", params)


def unregistered(store: Store) -> list[str]:
    """Stations whose terminals report but that nobody has registered."""
    rows = store.query(
        "SELECT DISTINCT t.station FROM terminals t WHERE NOT EXISTS "
        "(SELECT 1 FROM stations s WHERE s.station = t.station) ORDER BY t.station"
    )
    return [row["station"] for row in rows]


# ------------------------------------------------------------------ exit report


def month_bounds(month: str) -> tuple[datetime.date, datetime.date]:
    first = datetime.date.fromisoformat(month + "-01")
    following = add_months(first, 1)
    return first, following - datetime.timedelta(days=1)


def last_completed_month(today: datetime.date) -> str:
    return (today.replace(day=1) - datetime.timedelta(days=1)).isoformat()[:7]


def exit_report(
    store: Store, month: str | None, config: ReportConfig, today: datetime.date
) -> list[Row]:
    """Seed 002's exit rule as of a completed month (the last one when month is None).

    A station is flagged when it had no paid transaction in the month (`no_business`), or
    fewer than exit_min_monthly in each of the last exit_months months (`low_activity`).
    Only completed months are judged: the month in progress is refused (on the 1st it has
    no business yet, which would flag every station). A station counts from its join month
    (the registry's join date; an unregistered station's first record): a month before it
    joined is no month of low activity, and a station that has not been in for
    exit_months months yet is not judged on low activity. Exited stations are left out.
    """
    current = today.isoformat()[:7]
    month = month or last_completed_month(today)
    month_bounds(month)  # ValueError for a month that is not YYYY-MM
    if month >= current:
        raise BackofficeError(
            f"{month} is not a completed month: the exit report covers completed months only "
            f"(the last is {last_completed_month(today)})"
        )
    months = [month]
    for _ in range(config.exit_months - 1):
        months.append(_previous(months[-1]))
    first, _ = month_bounds(months[-1])
    _, last = month_bounds(month)
    counts = {
        (row["station"], row["month"]): int(row["count"])
        for row in store.query(
            "SELECT station, SUBSTR(business_day, 1, 7) AS month, COUNT(*) AS count "
            "FROM records WHERE type = ? AND outcome = ? AND business_day >= ? "
            "AND business_day <= ? GROUP BY station, SUBSTR(business_day, 1, 7)",
            (RecordType.TX_CLOSE, PAID, first.isoformat(), last.isoformat()),
        )
    }
    joined: dict[str, tuple[str, str]] = {}  # station -> (join month, status)
    for known in store.query("SELECT station, joined, status FROM stations"):
        joined[known["station"]] = (str(known["joined"])[:7], known["status"])
    for seen in store.query(
        "SELECT station, MIN(business_day) AS first_day FROM records GROUP BY station"
    ):
        if seen["station"] not in joined:
            joined[seen["station"]] = (str(seen["first_day"])[:7], "")
    # A station heard from but without business or registration: from its first boot.
    zone = ZoneInfo(config.timezone)
    for heard in store.query(
        "SELECT station, MIN(first_seen) AS first FROM boots GROUP BY station"
    ):
        first_month = datetime.datetime.fromtimestamp(heard["first"], zone).isoformat()[:7]
        joined.setdefault(heard["station"], (first_month, ""))
    result = []
    for number in sorted(joined):
        join_month, status = joined[number]
        if status == StationStatus.EXITED or join_month > month:
            continue
        counted = [m for m in months if m >= join_month]
        per_month = [counts.get((number, m), 0) for m in counted]
        if per_month[0] == 0:
            reason = "no_business"
        elif len(counted) == config.exit_months and all(
            count < config.exit_min_monthly for count in per_month
        ):
            reason = "low_activity"
        else:
            reason = ""
        row: Row = {
            "station": number,
            "month": month,
            "joined": join_month,
            "status": status or "unregistered",
        }
        for m in months:
            row[f"count_{m}"] = counts.get((number, m), 0) if m >= join_month else None
        row["flagged"] = bool(reason)
        row["reason"] = reason
        result.append(row)
    return result


def _previous(month: str) -> str:
    first, _ = month_bounds(month)
    return (first - datetime.timedelta(days=1)).isoformat()[:7]
