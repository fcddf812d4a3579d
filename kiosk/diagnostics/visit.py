"""A technician's maintenance visit (设备维护记录单, seed 002), journaled as a signed record.

Owns the `maintenance_visit` record's fields (the wire the back office reads:
backoffice.maintenance), the cost-bearer vocabulary and the rule for the next quarterly
inspection. Seed 002: the post office helps with a station's terminal faults, the repair
cost is borne by the franchised station (加盟商家) unless agreed otherwise, and the city
office records spare units lent (备机), faults and repairs. The record is appended signed
in one write transaction, so the durable outbox carries it to the back office like any
other signed record. Errors carry an English message id and its values, so kiosk-tool
can say them in Chinese first.

Journal fields (besides the journal's own seq, time, station, terminal, sig):
    visited (YYYY-MM-DD), technician, fault, repair, spare_unit (text or null),
    cost_bearer (CostBearer), next_inspection (YYYY-MM-DD)
"""

import calendar
import datetime
import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kiosk.errors import KioskError
from kiosk.journal import Journal
from kiosk.journal.record_types import RecordType
from kiosk.storage import write_transaction

MAX_TEXT = 200
MAX_SPARE_UNIT = 64
QUARTER_MONTHS = 3


class CostBearer(StrEnum):
    """Who pays for the repair."""

    STATION = "station"  # the franchised station (seed 002's rule)
    POST = "post"  # the postal operator (its own equipment or a goodwill repair)
    WARRANTY = "warranty"  # the vendor, under warranty
    NONE = "none"  # nothing to pay: an inspection, a setting put right


# The English message id of each bearer's label (rollouts.po).
COST_BEARER_LABELS = {
    CostBearer.STATION: "The station",
    CostBearer.POST: "The post office",
    CostBearer.WARRANTY: "Vendor warranty",
    CostBearer.NONE: "No cost",
}


class VisitRefused(KioskError):
    """A maintenance visit's details are not acceptable; message_id says what to change."""

    def __init__(self, message_id: str, **values: Any) -> None:
        super().__init__(message_id.format(**values))
        self.message_id = message_id
        self.values = values


@dataclass(frozen=True)
class MaintenanceVisit:
    visited: datetime.date
    technician: str
    fault: str
    repair: str
    spare_unit: str | None
    cost_bearer: CostBearer
    next_inspection: datetime.date

    def fields(self) -> dict[str, object]:
        return {
            "visited": self.visited.isoformat(),
            "technician": self.technician,
            "fault": self.fault,
            "repair": self.repair,
            "spare_unit": self.spare_unit,
            "cost_bearer": str(self.cost_bearer),
            "next_inspection": self.next_inspection.isoformat(),
        }


def quarter_after(day: datetime.date) -> datetime.date:
    """The same day three months later, or the month's last day (30 Nov for 31 Aug).
    Written here: the standard library adds no months, and dateutil is not worth a
    run-time dependency for four lines."""
    month_index = day.month - 1 + QUARTER_MONTHS
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


def _text(name: str, value: str, limit: int) -> str:
    text = " ".join(value.split())
    if not text:
        raise VisitRefused("{name}: describe it in a few words", name=name)
    if len(text) > limit or not text.isprintable():
        raise VisitRefused("{name}: at most {limit} printable characters", name=name, limit=limit)
    return text


def make_visit(
    *,
    visited: datetime.date,
    technician: str,
    fault: str,
    repair: str,
    spare_unit: str | None,
    cost_bearer: str,
    next_inspection: datetime.date | None = None,
) -> MaintenanceVisit:
    """A checked visit; the next inspection defaults to a quarter after the visit."""
    try:
        bearer = CostBearer(cost_bearer)
    except ValueError:
        raise VisitRefused(
            "cost bearer {value!r}: choose one of {choices}",
            value=cost_bearer,
            choices=", ".join(CostBearer),
        ) from None
    spare = None
    if spare_unit is not None and spare_unit.strip():
        spare = _text("spare unit", spare_unit, MAX_SPARE_UNIT)
    due = next_inspection or quarter_after(visited)
    if not visited < due <= visited + datetime.timedelta(days=366):
        raise VisitRefused(
            "next inspection {due}: a day after the visit and within a year of it",
            due=due.isoformat(),
        )
    return MaintenanceVisit(
        visited=visited,
        technician=_text("technician", technician, MAX_SPARE_UNIT),
        fault=_text("fault", fault, MAX_TEXT),
        repair=_text("repair", repair, MAX_TEXT),
        spare_unit=spare,
        cost_bearer=bearer,
        next_inspection=due,
    )


def journal_visit(conn: sqlite3.Connection, journal: Journal, visit: MaintenanceVisit) -> int:
    """Append the visit as a signed record (the outbox carries it); return its seq."""
    with write_transaction(conn):
        record = journal.append(RecordType.MAINTENANCE_VISIT, visit.fields(), sign=True)
    return int(str(record["seq"]))
