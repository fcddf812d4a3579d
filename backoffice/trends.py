"""The time series the dashboard draws, and the fleet samples it records to draw them.

Owns the rows of `fleet_samples` (migration 3 of backoffice.migrations: the count of
terminals per state, taken every dashboard.sample_every_s by FleetSampler: the terminals
table only holds the present) and
the queries behind each chart: the fleet online over time, paid transactions and turnover
per business day, the float of the stations lowest on float, alerts raised per day, and one
terminal's health history. Each returns plain numbers for backoffice.charts.
"""

import datetime
import logging
import threading
from collections.abc import Callable
from zoneinfo import ZoneInfo

from backoffice.charts import Series
from backoffice.store import Store
from kiosk.journal.record_types import RecordType

log = logging.getLogger(__name__)

PAPER_LEVEL = {"out": 0, "near_end": 1, "ok": 2}


def take_sample(store: Store, now: float) -> None:
    with store.transaction() as cursor:
        states = {
            row["state"]: int(row["count"])
            for row in cursor.execute(
                "SELECT state, COUNT(*) AS count FROM terminals GROUP BY state"
            )
        }
        [alerts] = cursor.execute(
            "SELECT COUNT(*) AS count FROM alerts WHERE cleared IS NULL AND acked IS NULL"
        )
        cursor.execute(
            "INSERT INTO fleet_samples (at, online, offline, unknown, open_alerts) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                now,
                states.get("online", 0),
                states.get("offline", 0),
                sum(v for k, v in states.items() if k not in ("online", "offline")),
                int(alerts["count"]),
            ),
        )


class FleetSampler:
    """Takes a sample at start and every `every_s` seconds after, on a thread of its own."""

    def __init__(self, store: Store, every_s: float, clock: Callable[[], float]) -> None:
        self.store, self.every_s, self.clock = store, every_s, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                take_sample(self.store, self.clock())
            except Exception:
                log.exception("the fleet sample failed; trying again at the next one")
            self._stop.wait(self.every_s)


def fleet_online(store: Store, since: float) -> list[Series]:
    rows = store.query(
        "SELECT at, online, offline, unknown FROM fleet_samples WHERE at >= ? ORDER BY at",
        (since,),
    )
    return [
        Series(name, [(r["at"], r[column]) for r in rows])
        for name, column in (("Online", "online"), ("Offline", "offline"))
    ]


def days_between(first: datetime.date, last: datetime.date) -> list[datetime.date]:
    return [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]


def paid_per_day(
    store: Store,
    first: datetime.date,
    last: datetime.date,
    *,
    station: str | None = None,
    terminal: str | None = None,
) -> list[tuple[datetime.date, int, int]]:
    """(business day, paid transactions, turnover in fen: amounts + fees) for every day."""
    sql = (
        "SELECT business_day, COUNT(*) AS count, COALESCE(SUM(amount_fen + fee_fen), 0) AS fen "
        "FROM records WHERE type = ? AND outcome = 'paid' AND business_day >= ? "
        "AND business_day <= ?"
    )
    params: list[object] = [RecordType.TX_CLOSE, first.isoformat(), last.isoformat()]
    if station is not None:
        sql += " AND station = ?"
        params.append(station)
    if terminal is not None:
        sql += " AND terminal = ?"
        params.append(terminal)
    found = {
        row["business_day"]: (int(row["count"]), int(row["fen"]))
        for row in store.query(sql + " GROUP BY business_day", params)
    }
    return [(day, *found.get(day.isoformat(), (0, 0))) for day in days_between(first, last)]


def _hourly(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The last value of each hour: a week of five-minute reports as 168 points."""
    last: dict[int, tuple[float, float]] = {}
    for at, value in points:
        last[int(at // 3600)] = (at, value)
    return [last[hour] for hour in sorted(last)]


def lowest_float_stations(store: Store, since: float, count: int = 5) -> list[Series]:
    """The float over time of the `count` stations lowest on float now, hour by hour."""
    lowest = store.query(
        "SELECT station, MIN(float_balance_fen) AS fen FROM terminals "
        "WHERE float_balance_fen IS NOT NULL GROUP BY station ORDER BY fen, station LIMIT ?",
        (count,),
    )
    series = []
    for row in lowest:
        points = store.query(
            "SELECT received, float_balance_fen FROM health_history WHERE station = ? "
            "AND received >= ? AND float_balance_fen IS NOT NULL ORDER BY received",
            (row["station"], since),
        )
        series.append(
            Series(
                row["station"],
                _hourly([(p["received"], p["float_balance_fen"]) for p in points]),
            )
        )
    return series


def station_float(store: Store, station: str, since: float) -> list[Series]:
    """The float each terminal of a station reported over time, hour by hour."""
    rows = store.query(
        "SELECT terminal, received, float_balance_fen FROM health_history WHERE station = ? "
        "AND received >= ? AND float_balance_fen IS NOT NULL ORDER BY terminal, received",
        (station, since),
    )
    points: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        points.setdefault(row["terminal"], []).append((row["received"], row["float_balance_fen"]))
    return [Series(terminal, _hourly(found)) for terminal, found in sorted(points.items())]


def alerts_per_day(
    store: Store, first: datetime.date, last: datetime.date, zone: ZoneInfo
) -> list[tuple[datetime.date, int]]:
    start = datetime.datetime.combine(first, datetime.time(), zone).timestamp()
    end = datetime.datetime.combine(
        last + datetime.timedelta(days=1), datetime.time(), zone
    ).timestamp()
    counts: dict[datetime.date, int] = {}
    for row in store.query(
        "SELECT raised FROM alerts WHERE raised >= ? AND raised < ?", (start, end)
    ):
        day = datetime.datetime.fromtimestamp(row["raised"], zone).date()
        counts[day] = counts.get(day, 0) + 1
    return [(day, counts.get(day, 0)) for day in days_between(first, last)]


def terminal_health(
    store: Store, station: str, terminal: str, since: float
) -> dict[str, list[tuple[float, float]]]:
    """Paper (2 ok, 1 low, 0 out), float (fen), certificate days and backlog over time."""
    rows = store.query(
        "SELECT received, paper, float_balance_fen, cert_days_left, outbox_backlog "
        "FROM health_history WHERE station = ? AND terminal = ? AND received >= ? "
        "ORDER BY received",
        (station, terminal, since),
    )
    series: dict[str, list[tuple[float, float]]] = {
        "paper": [],
        "float": [],
        "cert_days": [],
        "backlog": [],
    }
    for row in rows:
        at = row["received"]
        if row["paper"] in PAPER_LEVEL:
            series["paper"].append((at, PAPER_LEVEL[row["paper"]]))
        if row["float_balance_fen"] is not None:
            series["float"].append((at, row["float_balance_fen"]))
        if row["cert_days_left"] is not None:
            series["cert_days"].append((at, row["cert_days_left"]))
        if row["outbox_backlog"] is not None:
            series["backlog"].append((at, row["outbox_backlog"]))
    return {name: _hourly(points) for name, points in series.items()}
