"""The fleet as staff read it: counts by state, the stations that need action first, and
one page of the list, filtered and sorted.

Owns what "needs action" means (offline, tamper, paper, low float, certificate: in that
order of urgency), the fleet's summary and the list's filter, sort and paging rules. It
reads the store once per page (terminal rows, uncleared alerts, today's paid
transactions) and decides in memory, which at 10,000 terminals is milliseconds.
"""

import datetime
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from backoffice.config import Thresholds
from backoffice.store import Row, Store, key_chunks
from kiosk.journal.record_types import RecordType


class Attention(StrEnum):
    """Why a terminal needs someone, most urgent first."""

    OFFLINE = "offline"
    TAMPER = "tamper"
    PAPER = "paper"
    LOW_FLOAT = "low_float"
    CERTIFICATE = "certificate"

    @property
    def label(self) -> str:
        return _ATTENTION_LABELS[self]


_ATTENTION_LABELS = {
    Attention.OFFLINE: "Offline",
    Attention.TAMPER: "Tamper",
    Attention.PAPER: "Paper",
    Attention.LOW_FLOAT: "Low float",
    Attention.CERTIFICATE: "Certificate",
}
ATTENTION_ORDER = tuple(Attention)
# The uncleared alert kinds that put a terminal on the "needs action" list, and why.
_ALERT_ATTENTION = {
    "offline": Attention.OFFLINE,
    "tamper": Attention.TAMPER,
    "clone": Attention.TAMPER,
    "rollback": Attention.TAMPER,
    "paper_out": Attention.PAPER,
    "paper_low": Attention.PAPER,
    "low_float": Attention.LOW_FLOAT,
    "cert_expiring": Attention.CERTIFICATE,
}
STATES = ("online", "offline", "unknown")
SORTS = (
    "attention",
    "station",
    "terminal",
    "state",
    "last_seen",
    "paper",
    "float_balance_fen",
    "cert_days_left",
    "today_count",
    "alert_count",
)


@dataclass(frozen=True)
class FleetQuery:
    text: str = ""
    state: str = ""
    attention: str = ""  # an Attention value, "any" (needs any action) or "" (everyone)
    sort: str = "attention"
    descending: bool = False
    page: int = 1

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> "FleetQuery":
        """Unknown values fall back to the default: a hand-edited URL still shows a page."""
        state = params.get("state", "")
        attention = params.get("attention", "")
        if params.get("alerts") == "1":  # the old "only with open alerts" link
            attention = attention or "alerts"
        sort = params.get("sort", "attention")
        page = params.get("page", "1")
        return cls(
            text=params.get("q", "").strip()[:64],
            state=state if state in STATES else "",
            attention=attention
            if attention in {a.value for a in Attention} | {"any", "alerts"}
            else "",
            sort=sort if sort in SORTS else "attention",
            descending=params.get("order") == "desc",
            page=int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1,
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """This query as URL parameters, with some changed (for links)."""
        values = {
            "q": self.text,
            "state": self.state,
            "attention": self.attention,
            "sort": self.sort,
            "order": "desc" if self.descending else "asc",
            "page": str(self.page),
        }
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v and not (k == "page" and v == "1")}


@dataclass
class FleetPage:
    rows: list[Row]
    matching: int
    page: int
    pages: int
    total: int
    by_state: dict[str, int]
    by_attention: dict[Attention, int]
    needing_action: list[Row] = field(default_factory=list)


def attention_of(row: Mapping[str, Any], kinds: Sequence[str], limits: Thresholds) -> list[str]:
    """Why this terminal needs action, most urgent first (values of Attention)."""
    found = {_ALERT_ATTENTION[k] for k in kinds if k in _ALERT_ATTENTION}
    if row["state"] == "offline":
        found.add(Attention.OFFLINE)
    if row.get("paper") in ("out", "near_end"):
        found.add(Attention.PAPER)
    balance = row.get("float_balance_fen")
    if isinstance(balance, int) and balance < limits.low_float_fen:
        found.add(Attention.LOW_FLOAT)
    days = row.get("cert_days_left")
    if isinstance(days, int) and days < limits.cert_days:
        found.add(Attention.CERTIFICATE)
    return [a.value for a in ATTENTION_ORDER if a in found]


def load_fleet(
    store: Store, today: datetime.date, limits: Thresholds, *, counts: bool = True
) -> list[Row]:
    """Every terminal with its open alerts and why it needs action; with `counts`, today's
    paid transactions too (else 0 until add_today_counts fills in the rows shown)."""
    with store.transaction() as cursor:
        terminals = cursor.execute(
            "SELECT station, terminal, state, state_reason, last_seen, paper, "
            "float_balance_fen, cert_days_left, outbox_backlog, software FROM terminals"
        )
        uncleared = cursor.execute(
            "SELECT station, terminal, kind, acked FROM alerts WHERE cleared IS NULL"
        )
    kinds: dict[tuple[str, str], list[str]] = {}
    unacked: Counter[tuple[str, str]] = Counter()
    for alert in uncleared:
        key = (alert["station"], alert["terminal"])
        kinds.setdefault(key, []).append(alert["kind"])
        if alert["acked"] is None:
            unacked[key] += 1
    rows = []
    for row in terminals:
        key = (row["station"], row["terminal"])
        found = sorted(kinds.get(key, []))
        rows.append(
            {
                **row,
                "today_count": 0,
                "alert_kinds": found,
                "alert_count": unacked[key],
                "attention": attention_of(row, found, limits),
            }
        )
    if counts:
        add_today_counts(store, rows, today)
    return rows


def add_today_counts(store: Store, rows: Sequence[Row], today: datetime.date) -> None:
    """Set each row's today_count: the paid tx_close records of the business day.

    Only the day's records are read, through records_by_day (station, business_day, type),
    one index seek per station of the rows: a station IN list lets both engines seek, where
    a join with a key table let PostgreSQL scan every record of the month. The fleet page
    counts only the rows it shows (a page, and the "needs action" list), unless it is sorted
    by this count: the records of the whole fleet's day are the page's largest read.
    """
    stations = sorted({row["station"] for row in rows})
    counts: dict[tuple[str, str], int] = {}
    with store.transaction() as cursor:
        for chunk in key_chunks(stations):
            marks = ", ".join("?" * len(chunk))
            for found in cursor.execute(
                "SELECT station, terminal, COUNT(*) AS count FROM records "
                f"WHERE station IN ({marks}) AND business_day = ? AND type = ? "
                "AND outcome = 'paid' GROUP BY station, terminal",
                [*chunk, today.isoformat(), RecordType.TX_CLOSE],
            ):
                counts[(found["station"], found["terminal"])] = int(found["count"])
    for row in rows:
        row["today_count"] = counts.get((row["station"], row["terminal"]), 0)


def _urgency(row: Row) -> tuple[Any, ...]:
    ranks = [ATTENTION_ORDER.index(Attention(a)) for a in row["attention"]]
    return (min(ranks) if ranks else len(ATTENTION_ORDER), -len(ranks))


def _by_attention(row: Row) -> tuple[Any, ...]:
    return (*_urgency(row), row["station"], row["terminal"])


def sort_rows(rows: list[Row], column: str, descending: bool) -> list[Row]:
    """Sorted by the column, then station and terminal; missing values last either way."""
    if column == "attention":
        return sorted(rows, key=_by_attention, reverse=descending)
    present = [r for r in rows if r[column] is not None]
    missing = [r for r in rows if r[column] is None]
    present.sort(key=lambda r: (r[column], r["station"], r["terminal"]), reverse=descending)
    missing.sort(key=lambda r: (r["station"], r["terminal"]))
    return present + missing


def fleet_page(rows: list[Row], query: FleetQuery, page_size: int) -> FleetPage:
    by_state = Counter(row["state"] if row["state"] in STATES else "unknown" for row in rows)
    by_attention: Counter[Attention] = Counter(
        Attention(a) for row in rows for a in row["attention"]
    )
    needing = sorted((r for r in rows if r["attention"]), key=_by_attention)
    chosen = rows
    if query.text:
        text = query.text.lower()
        chosen = [
            r for r in chosen if text in r["station"].lower() or text in r["terminal"].lower()
        ]
    if query.state:
        chosen = [r for r in chosen if r["state"] == query.state]
    if query.attention == "any":
        chosen = [r for r in chosen if r["attention"]]
    elif query.attention == "alerts":
        chosen = [r for r in chosen if r["alert_count"]]
    elif query.attention:
        chosen = [r for r in chosen if query.attention in r["attention"]]
    chosen = sort_rows(chosen, query.sort, query.descending)
    pages = max(1, -(-len(chosen) // page_size))
    page = min(query.page, pages)
    start = (page - 1) * page_size
    return FleetPage(
        rows=chosen[start : start + page_size],
        matching=len(chosen),
        page=page,
        pages=pages,
        total=len(rows),
        by_state={state: by_state.get(state, 0) for state in STATES},
        by_attention={a: by_attention.get(a, 0) for a in ATTENTION_ORDER},
        needing_action=needing[:10],
    )
