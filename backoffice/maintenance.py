"""Technicians' maintenance visits as the back office keeps and shows them.

Owns the `maintenance_visits` table (migration block "bo20"): one row per signed
`maintenance_visit` record stored by ingest (fields: kiosk.diagnostics.visit), and the
per-station view of the last visit and the next quarterly inspection due, overdue marked.
The record itself stays in `records` as evidence; this table is its readable index.
"""

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backoffice.store import Cursor, Store

VISIT_COLUMNS = (
    "station",
    "terminal",
    "seq",
    "visited",
    "technician",
    "fault",
    "repair",
    "spare_unit",
    "cost_bearer",
    "next_inspection",
    "received",
)


def visit_row(
    station: str, terminal: str, seq: int, record: Mapping[str, Any], now: float
) -> tuple[Any, ...]:
    """A maintenance_visits row of a stored record (missing fields kept as empty text: the
    record was signed by the terminal, so it is stored as it came)."""

    def text(key: str) -> str:
        value = record.get(key)
        return "" if value is None else str(value)

    return (
        station,
        terminal,
        seq,
        text("visited") or text("time")[:10],
        text("technician"),
        text("fault"),
        text("repair"),
        record.get("spare_unit") if isinstance(record.get("spare_unit"), str) else None,
        text("cost_bearer"),
        text("next_inspection"),
        now,
    )


def write_visits(cursor: Cursor, rows: Sequence[tuple[Any, ...]]) -> None:
    if rows:
        cursor.insert_rows("maintenance_visits", VISIT_COLUMNS, rows, "ON CONFLICT DO NOTHING")


@dataclass(frozen=True)
class StationVisit:
    station: str
    terminal: str  # of the last visit
    visited: str
    technician: str
    fault: str
    repair: str
    spare_unit: str | None
    cost_bearer: str
    next_inspection: str
    overdue: bool


def last_visits(store: Store, today: datetime.date) -> list[StationVisit]:
    """Per station, its last visit and the next inspection it set; overdue ones first."""
    rows = store.query(
        "SELECT v.* FROM maintenance_visits v WHERE NOT EXISTS (SELECT 1 FROM maintenance_visits "
        "w WHERE w.station = v.station AND (w.visited > v.visited OR (w.visited = v.visited "
        "AND (w.terminal > v.terminal OR (w.terminal = v.terminal AND w.seq > v.seq)))))"
    )
    visits = [
        StationVisit(
            row["station"],
            row["terminal"],
            row["visited"],
            row["technician"],
            row["fault"],
            row["repair"],
            row["spare_unit"],
            row["cost_bearer"],
            row["next_inspection"],
            row["next_inspection"] < today.isoformat(),
        )
        for row in rows
    ]
    return sorted(visits, key=lambda v: (not v.overdue, v.next_inspection, v.station))


def visits_of(store: Store, station: str, limit: int = 20) -> list[dict[str, Any]]:
    """A station's visits, newest first."""
    rows = store.query(
        "SELECT * FROM maintenance_visits WHERE station = ? ORDER BY visited DESC, seq DESC "
        "LIMIT ?",
        (station, limit),
    )
    return [dict(row) for row in rows]
