"""The dashboard's pages of the station operator's day (issue #18): the station registry and
its actions, a station's page (day closes with the float check, deposits, collections,
operator sessions, follow-ups), the monthly commission statement (printable, CSV), the
follow-up queue of bad ratings and complaints, satisfaction per station per month, and the
look-ups (transactions, revenue by business type).

Owns these routes and putting their data into templates; the rules are in
backoffice.stations, backoffice.commission, backoffice.follow_up and backoffice.lookups.
Mixed into backoffice.web.Dashboard, whose request handling (sign-in, roles, CSRF on every
POST, errors as one line) it relies on. Every change is recorded with the proxy's user.
"""

import datetime
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from werkzeug.exceptions import NotFound
from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from backoffice import (
    charts,
    commission,
    display,
    follow_up,
    lookups,
    pay_methods,
    reports,
    stations,
    trends,
)
from backoffice.alerts import ALERT_KINDS
from backoffice.config import BackofficeConfig
from backoffice.errors import BackofficeError
from backoffice.roles import Action, Role, role_for
from backoffice.store import Store
from kiosk.ratings import REASONS

if TYPE_CHECKING:  # the Dashboard this is mixed into
    from backoffice.web import Context


def station_routes() -> list[Rule]:
    """These pages' routes (new Rule objects: a rule belongs to one Map)."""
    return [
        Rule("/stations", endpoint="stations", methods=["GET"]),
        Rule("/stations/new", endpoint="station_register", methods=["POST"]),
        Rule("/station/<station>", endpoint="station", methods=["GET"]),
        Rule("/station/<station>/edit", endpoint="station_edit", methods=["POST"]),
        Rule(
            "/station/<station>/<any(suspend,reactivate,exit):change>",
            endpoint="station_status",
            methods=["POST"],
        ),
        Rule("/station/<station>/commission", endpoint="station_commission", methods=["GET"]),
        Rule("/commission", endpoint="commission", methods=["GET"]),
        Rule("/follow-ups", endpoint="follow_ups", methods=["GET"]),
        Rule(
            "/follow-ups/<station>/<terminal>/<int:seq>/<any(handle,close):step>",
            endpoint="follow_up_step",
            methods=["POST"],
        ),
        Rule("/lookup", endpoint="lookup", methods=["GET"]),
        Rule("/revenue", endpoint="revenue", methods=["GET"]),
    ]


STATION_NAV = (
    ("/stations", "Stations"),
    ("/commission", "Commission statements"),
    ("/follow-ups", "Rating follow-up"),
    ("/lookup", "Look up"),
    ("/revenue", "Revenue by business type"),
)
_STATUS_ACTIONS = {
    "suspend": Action.SUSPEND_STATION,
    "reactivate": Action.REACTIVATE_STATION,
    "exit": Action.EXIT_STATION,
}
REVENUE_COLUMNS = (
    "service",
    "count",
    "amount_fen",
    "fee_fen",
    "reported_count",
    "reported_amount_fen",
    "reported_fee_fen",
    "status",
)
# The revenue page's split by payment method: count and amount per method, then refunds
# (the CSV has every pay_methods column, fees too). Each column id is its own message id.
REVENUE_METHOD_COLUMNS = [
    (column, column)
    for column in pay_methods.columns()
    if column.endswith(("_count", "_amount_fen")) or column == pay_methods.QR_REFUNDED
]


def template_globals() -> dict[str, Any]:
    """What these pages' templates call: money, and which rows to mark."""
    return {
        "yuan": display.yuan,
        "unbalanced": lambda row: row.get("balanced") is False,
        "discrepant": lambda row: bool(row.get("discrepancy_fen")),
        "below_target": lambda row: row.get("meets_target") is False,
        "not_ok": lambda row: row.get("status") != "ok",
        # staff_actions keeps a role's name; its label's message id (backoffice.roles).
        "role_labels": {role.name.lower(): role.label for role in Role},
    }


def _month(text: str, default: str) -> str:
    month = text or default
    try:
        stations.month_bounds(month)
    except ValueError:
        raise BackofficeError(f"{month!r} is not a month: write it as YYYY-MM") from None
    return month


def _day(text: str, default: datetime.date) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text) if text else default
    except ValueError:
        raise BackofficeError(f"{text!r} is not a date: write it as YYYY-MM-DD") from None


class StationPages:
    """Pages mixed into the Dashboard (backoffice.web)."""

    store: Store
    config: BackofficeConfig
    clock: Callable[[], float]
    zone: ZoneInfo
    render: Callable[..., Response]
    redirect: Callable[[str], Response]
    today: Callable[[], datetime.date]

    # ----------------------------------------------------------------- registry

    def page_stations(self, ctx: "Context") -> Response:
        status = ctx.request.args.get("status", "")
        status = status if status in {s.value for s in stations.StationStatus} else ""
        return self.render(
            ctx,
            "stations.html",
            ctx.t("Stations"),
            stations=stations.registry(self.store, status),
            unregistered=stations.unregistered(self.store),
            status_filter=status,
            statuses=[s.value for s in stations.StationStatus],
            may_register=ctx.staff.may(role_for(Action.REGISTER_STATION)),
            entry=None,
            today=self.today().isoformat(),
        )

    def page_station_register(self, ctx: "Context") -> Response:
        ctx.staff.require(role_for(Action.REGISTER_STATION), "registering a station")
        details = stations.StationDetails.from_form(ctx.request.form)
        with self.store.transaction() as cursor:
            stations.save_station(cursor, details, ctx.staff, ctx.now, new=True)
        return self.redirect(ctx.link(f"/station/{details.station}"))

    def page_station_edit(self, ctx: "Context", station: str) -> Response:
        ctx.staff.require(role_for(Action.EDIT_STATION), "changing a station's details")
        details = stations.StationDetails.from_form({**ctx.request.form, "station": station})
        with self.store.transaction() as cursor:
            stations.save_station(cursor, details, ctx.staff, ctx.now, new=False)
        return self.redirect(ctx.link(f"/station/{station}"))

    def page_station_status(self, ctx: "Context", station: str, change: str) -> Response:
        action = _STATUS_ACTIONS[change]
        ctx.staff.require(role_for(action), f"to {change} a station")
        with self.store.transaction() as cursor:
            stations.change_status(
                cursor, station, action, ctx.request.form.get("reason", ""), ctx.staff, ctx.now
            )
        return self.redirect(ctx.link(f"/station/{station}"))

    def page_station(self, ctx: "Context", station: str) -> Response:
        entry = stations.station(self.store, station)
        terminals = self.store.query(
            "SELECT * FROM terminals WHERE station = ? ORDER BY terminal", (station,)
        )
        if entry is None and not terminals:
            raise NotFound()
        alerts = self.store.query(
            "SELECT * FROM alerts WHERE station = ? AND cleared IS NULL "
            "ORDER BY raised DESC, id DESC",
            (station,),
        )
        first, last = follow_up.months_back(self.today(), 6)
        month_ago = ctx.now - 31 * 86400
        float_chart = charts.line_chart(
            "chart-float",
            trends.station_float(self.store, station, month_ago),
            label=ctx.t("Float balance"),
            empty=ctx.t("No float reported in the last 31 days."),
            zone=self.zone,
            y_format=lambda fen: f"¥{int(round(fen)) // 100:,}",
            start=month_ago,
            end=ctx.now,
        )
        return self.render(
            ctx,
            "station.html",
            f"{ctx.t('Station')} {station}",
            station=station,
            entry=entry,
            terminals=terminals,
            alerts=alerts,
            alert_kinds=ALERT_KINDS,
            low_float_fen=self.config.thresholds.low_float_fen,
            float_chart=float_chart,
            closes=lookups.day_closes(self.store, station)[:31],
            deposits=lookups.deposits(self.store, station)[:50],
            collections=lookups.cash_collections(self.store, station)[:50],
            sessions=lookups.operator_sessions(self.store, station)[:30],
            payouts=lookups.voucher_payouts(self.store, station)[:30],
            follow_ups=follow_up.queue(self.store, station=station)[-30:],
            satisfaction=[
                r
                for r in follow_up.satisfaction(self.store, first, last)
                if r["station"] == station
            ],
            may_edit=ctx.staff.may(role_for(Action.EDIT_STATION)),
            today=self.today().isoformat(),
            last_month=stations.last_completed_month(self.today()),
        )

    # ----------------------------------------------------------------- commission

    def _statements(self, month: str, station: str = "") -> list[commission.StationStatement]:
        catalog = commission.load_commission_catalog(self.config.commission)
        numbers = [station] if station else commission.stations_of_month(self.store, month)
        return [commission.statement(self.store, catalog, self.config, n, month) for n in numbers]

    def _csv(self, body: bytes, name: str) -> Response:
        return Response(
            body,
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )

    def page_commission(self, ctx: "Context") -> Response:
        month = _month(ctx.request.args.get("month", ""), self._last_month())
        statements = self._statements(month)
        if ctx.request.args.get("format") == "csv":
            return self._csv(commission.to_csv(statements), f"commission-{month}")
        return self.render(
            ctx,
            "commission.html",
            ctx.t("Commission statements"),
            month=month,
            rows=[commission.summary_row(s) for s in statements],
            csv_link=ctx.link("/commission", month=month, format="csv"),
        )

    def page_station_commission(self, ctx: "Context", station: str) -> Response:
        month = _month(ctx.request.args.get("month", ""), self._last_month())
        [statement] = self._statements(month, station)
        if ctx.request.args.get("format") == "csv":
            return self._csv(commission.to_csv([statement]), f"commission-{station}-{month}")
        return self.render(
            ctx,
            "commission_statement.html",
            ctx.t("Commission statement"),
            s=statement,
            rate_text=commission.rate_text,
            csv_link=ctx.link(f"/station/{station}/commission", month=month, format="csv"),
        )

    def _last_month(self) -> str:
        return stations.last_completed_month(self.today())

    # ----------------------------------------------------------------- ratings

    def page_follow_ups(self, ctx: "Context") -> Response:
        state = ctx.request.args.get("state", "")
        state = state if state in {s.value for s in follow_up.FollowUpState} else ""
        first, last = follow_up.months_back(self.today(), 6)
        return self.render(
            ctx,
            "follow_ups.html",
            ctx.t("Rating follow-up"),
            rows=follow_up.queue(self.store, state=state)[-500:],
            state=state,
            states=list(follow_up.STATE_LABELS.items()),
            satisfaction=follow_up.satisfaction(self.store, first, last),
            target=follow_up.SATISFACTION_TARGET_PERCENT,
            may_handle=ctx.staff.may(role_for(Action.HANDLE_FOLLOW_UP)),
            reason_labels=REASONS,
        )

    def page_follow_up_step(
        self, ctx: "Context", station: str, terminal: str, seq: int, step: str
    ) -> Response:
        action = Action.HANDLE_FOLLOW_UP if step == "handle" else Action.CLOSE_FOLLOW_UP
        ctx.staff.require(role_for(action), "following up a rating")
        with self.store.transaction() as cursor:
            if step == "handle":
                follow_up.handle(cursor, station, terminal, seq, ctx.staff, ctx.now)
            else:
                note = ctx.request.form.get("note", "")
                follow_up.close(cursor, station, terminal, seq, note, ctx.staff, ctx.now)
        return self.redirect(ctx.link("/follow-ups"))

    # ----------------------------------------------------------------- look-ups

    def page_lookup(self, ctx: "Context") -> Response:
        args = ctx.request.args
        receipt = args.get("receipt", "").strip()
        account = args.get("account", "").strip()
        start_text, end_text = args.get("from", "").strip(), args.get("to", "").strip()
        station = args.get("station", "").strip()
        rows = None
        if receipt or account or start_text or end_text:
            start = end = None
            if start_text or end_text:
                start, end = self._moment(start_text), self._moment(end_text)
            rows = lookups.transactions(
                self.store,
                receipt_no=receipt,
                account=account,
                start=start,
                end=end,
                station=station,
            )
        return self.render(
            ctx,
            "lookup.html",
            ctx.t("Look up"),
            rows=rows,
            params={"receipt": receipt, "account": account, "from": start_text, "to": end_text}
            | {"station": station},
            limit=lookups.LIMIT,
        )

    def _moment(self, text: str) -> datetime.datetime:
        """A local date-time typed in the dashboard's zone (datetime-local input)."""
        try:
            return datetime.datetime.fromisoformat(text).replace(tzinfo=self.zone)
        except ValueError:
            raise BackofficeError(
                "the time range is two local times like 2026-12-07T08:00 (from and to)"
            ) from None

    def page_revenue(self, ctx: "Context") -> Response:
        args = ctx.request.args
        period = args.get("period", "day")
        today = self.today()
        last = _day(args.get("to", ""), today)
        first = _day(args.get("from", ""), last - datetime.timedelta(days=30))
        station = args.get("station", "").strip()
        by_method = args.get("by") == "method"
        rows = lookups.revenue(self.store, period, first, last, station, by_method=by_method)
        if args.get("format") == "csv":
            return self._csv(("\ufeff" + reports.to_csv(rows)).encode("utf-8"), f"revenue-{period}")
        query = urllib.parse.urlencode(
            {"period": period, "from": first.isoformat(), "to": last.isoformat()}
            | ({"station": station} if station else {})
            | ({"by": "method"} if by_method else {})
            | {"format": "csv"}
        )
        return self.render(
            ctx,
            "revenue.html",
            ctx.t("Revenue by business type"),
            rows=rows,
            period=period,
            columns=("station", period, *REVENUE_COLUMNS),
            method_columns=REVENUE_METHOD_COLUMNS if by_method else [],
            by_method=by_method,
            params={"from": first.isoformat(), "to": last.isoformat(), "station": station},
            csv_link=f"/revenue?{query}",
        )
