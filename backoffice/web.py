"""The staff dashboard: a WSGI application (Werkzeug) rendering Jinja2 templates.

Owns the routes, who may use each (backoffice.staff, backoffice.roles), the forms' checks
(same-site origin and a CSRF token), and putting each page's data into its template
(backoffice/templates, autoescaped). Chinese first, English with ?lang=en; every word goes
through kiosk.i18n (backoffice.po). Pages carry no script. It never writes telemetry: it
reads the store and records staff actions (acknowledgements, commands, revocations) with
the identity the sign-in proxy gave. Werkzeug rather than the standard library's server:
routing, form and multipart parsing, and a WSGI application that any WSGI server
(gunicorn, waitress) can run in production (docs/backoffice.md).
"""

import datetime
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from backoffice import charts, commission, display, reports, trends
from backoffice.alerts import ALERT_KINDS, acknowledge_alert
from backoffice.commands import COMMAND_FORMS, COMMAND_LABELS, FieldKind, args_from_form
from backoffice.config import BackofficeConfig
from backoffice.errors import BackofficeError
from backoffice.fleet_view import (
    ATTENTION_ORDER,
    FleetQuery,
    add_today_counts,
    fleet_page,
    load_fleet,
)
from backoffice.maintenance import last_visits
from backoffice.roles import Action, Role, role_for
from backoffice.rollouts import (
    DEFAULT_MIN_SAMPLE,
    DEFAULT_STAGES,
    DEFAULT_THRESHOLD_PERCENT,
    RolloutPlan,
    RolloutRefused,
    create_rollout,
    fleet_versions,
    halt_rollout,
    parse_stages,
    rollout_views,
    send_next_stage,
)
from backoffice.staff import (
    CsrfTokens,
    Identities,
    NotAllowed,
    NotSignedIn,
    Staff,
    recent_actions,
    record_action,
)
from backoffice.station_pages import STATION_NAV, StationPages, station_routes
from backoffice.station_pages import template_globals as station_template_globals
from backoffice.stations import exit_report
from backoffice.store import Row, Store
from kiosk.diagnostics.visit import COST_BEARER_LABELS
from kiosk.i18n import LANGUAGES, Translate, translator
from kiosk.journal.record_types import RecordType

log = logging.getLogger(__name__)

# (station, terminal, name, args, staff) -> the command sent; None when no key is set.
SendCommand = Callable[[str, str, str, dict[str, Any], Staff], dict[str, Any]]
# (station, terminal, staff) -> serial numbers revoked; None when revocation is not set up.
RevokeTerminal = Callable[[str, str, Staff], list[str]]

TEMPLATES = Path(__file__).parent / "templates"
STYLESHEET = Path(__file__).parent / "static" / "dashboard.css"
REPORTS = {
    "daily": "Daily reconciliation",
    "activity": "Weekly and monthly activity",
    "exit": "Stations flagged for exit",
    "commission": "Commission statements",
}
NAV = (
    ("/", "Fleet"),
    ("/overview", "Trends"),
    ("/alerts", "Alerts"),
    ("/reports/daily", "Daily reconciliation"),
    ("/reports/activity", "Weekly and monthly activity"),
    ("/reports/exit", "Stations flagged for exit"),
    *STATION_NAV,
    ("/staff", "Staff actions"),
    ("/rollouts", "Software rollouts"),
    ("/maintenance", "Maintenance visits"),
)
FLEET_HEADERS = (
    ("station", "Station number"),
    ("terminal", "Terminal"),
    ("state", "State"),
    ("last_seen", "Last seen"),
    ("paper", "Paper"),
    ("float_balance_fen", "Float balance"),
    ("cert_days_left", "Certificate days left"),
    ("today_count", "Transactions today"),
    ("alert_count", "Open alerts"),
)
# No script, no frames, forms only to this site, styles and images from here.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HISTORY_S = 7 * 86400


@dataclass
class Context:
    """One request's reader: language, identity, form token and the clock of this page."""

    request: Request
    t: Translate
    lang: str
    staff: Staff
    csrf: str
    now: float

    def link(self, path: str, **params: Any) -> str:
        query = {k: str(v) for k, v in params.items() if v not in (None, "")}
        if self.lang != "zh_CN":
            query["lang"] = self.lang
        return path + ("?" + urllib.parse.urlencode(query) if query else "")


class Dashboard(StationPages):
    """The WSGI application: pages from the store, actions recorded with who took them."""

    def __init__(
        self,
        store: Store,
        config: BackofficeConfig,
        send_command: SendCommand | None,
        clock: Callable[[], float] = time.time,
        revoke: RevokeTerminal | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.send_command = send_command
        self.revoke = revoke
        self.clock = clock
        self.zone = ZoneInfo(config.dashboard.timezone)
        # Business days are the stations' (reports.timezone), times the reader's.
        self.report_zone = ZoneInfo(config.reports.timezone)
        self.identities = Identities(config.auth)
        self.csrf = CsrfTokens(config.auth)
        self.templates = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(
            local_time=lambda value, seconds=False: display.local_time(
                value, self.zone, seconds=seconds
            ),
            yuan=display.yuan,
        )
        self.templates.globals.update(station_template_globals())
        self.stylesheet = STYLESHEET.read_bytes()
        self.routes = Map(
            [
                Rule("/", endpoint="fleet", methods=["GET"]),
                Rule("/overview", endpoint="overview", methods=["GET"]),
                Rule("/alerts", endpoint="alerts", methods=["GET"]),
                Rule("/alerts/<int:alert_id>/ack", endpoint="acknowledge", methods=["POST"]),
                Rule("/terminal/<station>/<terminal>", endpoint="terminal", methods=["GET"]),
                Rule(
                    "/terminal/<station>/<terminal>/command/<name>",
                    endpoint="command",
                    methods=["POST"],
                ),
                Rule("/terminal/<station>/<terminal>/revoke", endpoint="revoke", methods=["POST"]),
                Rule("/reports/<any(daily,activity,exit,commission):name>", endpoint="report"),
                Rule("/staff", endpoint="staff", methods=["GET"]),
                Rule("/api/fleet", endpoint="api_fleet", methods=["GET"]),
                Rule("/rollouts", endpoint="rollouts", methods=["GET"]),
                Rule("/rollouts", endpoint="rollout_create", methods=["POST"]),
                Rule("/rollouts/<rollout>/stage", endpoint="rollout_stage", methods=["POST"]),
                Rule("/rollouts/<rollout>/halt", endpoint="rollout_halt", methods=["POST"]),
                Rule("/maintenance", endpoint="maintenance", methods=["GET"]),
                *station_routes(),
            ],
            strict_slashes=False,
        )

    def today(self) -> datetime.date:
        return datetime.datetime.fromtimestamp(self.clock(), self.report_zone).date()

    # ----------------------------------------------------------------- WSGI

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = _Request(environ)
        response = self.respond(request)
        return response(environ, start_response)

    def respond(self, request: Request) -> Response:
        if request.path == "/healthz":
            return Response("ok", mimetype="text/plain")
        if request.path == "/static/dashboard.css":
            return Response(self.stylesheet, mimetype="text/css", headers=_CACHE_STATIC)
        lang = request.args.get("lang", "zh_CN")
        lang = lang if lang in LANGUAGES else "zh_CN"
        t = translator(lang)
        try:
            staff = self.identities.identify(
                request.remote_addr or "", request.headers.get(self.config.auth.user_header)
            )
        except NotSignedIn as exc:
            return self._plain_error(t, lang, exc.status, str(exc))
        ctx = Context(request, t, lang, staff, self.csrf.token(staff), self.clock())
        try:
            endpoint, values = self.routes.bind_to_environ(request.environ).match()
            if request.method == "POST":
                self._check_form(ctx)
            response: Response = getattr(self, f"page_{endpoint}")(ctx, **values)
        except NotAllowed as exc:
            response = self._error(ctx, 403, t("Not allowed"), str(exc))
        except BackofficeError as exc:
            response = self._error(ctx, 400, t("Wrong request"), str(exc))
        except MethodNotAllowed:
            response = self._error(ctx, 405, t("Wrong request"), "")
        except NotFound:
            response = self._error(ctx, 404, t("Page not found"), "")
        except HTTPException as exc:
            response = self._error(ctx, exc.code or 400, t("Wrong request"), "")
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def _check_form(self, ctx: Context) -> None:
        origin = ctx.request.headers.get("Origin")
        if origin and urllib.parse.urlsplit(origin).netloc != ctx.request.host:
            # A page from elsewhere must not act in a staff member's name.
            raise NotAllowed("a form from another site was refused")
        self.csrf.check(ctx.staff, ctx.request.form.get("csrf", ""))

    # ----------------------------------------------------------------- rendering

    def render(
        self, ctx: Context, template: str, title: str, status: int = 200, **values: Any
    ) -> Response:
        other = "en" if ctx.lang == "zh_CN" else "zh_CN"
        args = {k: v for k, v in ctx.request.args.items() if k != "lang"}
        if other != "zh_CN":
            args["lang"] = other
        switch = ctx.request.path + ("?" + urllib.parse.urlencode(args) if args else "")
        page = self.templates.get_template(template).render(
            ctx=ctx,
            t=ctx.t,
            title=title,
            nav=NAV,
            html_lang="zh-CN" if ctx.lang == "zh_CN" else "en",
            other_language="English" if other == "en" else "中文",
            switch_language=switch,
            zone=self.config.dashboard.timezone,
            refresh=values.pop("refresh", 0),
            ago=lambda then: display.ago(ctx.t, ctx.now, then),
            Role=Role,
            **values,
        )
        return Response(page, status=status, mimetype="text/html")

    def _error(self, ctx: Context, status: int, title: str, message: str) -> Response:
        return self.render(ctx, "error.html", title, status=status, message=message)

    def _plain_error(self, t: Translate, lang: str, status: int, message: str) -> Response:
        page = self.templates.get_template("signed_out.html").render(
            t=t, html_lang="zh-CN" if lang == "zh_CN" else "en", message=message
        )
        return Response(page, status=status, mimetype="text/html")

    def redirect(self, location: str) -> Response:
        return Response("", status=303, headers={"Location": location})

    # ----------------------------------------------------------------- pages

    def fleet(self) -> list[Row]:
        return load_fleet(self.store, self.today(), self.config.thresholds)

    def page_fleet(self, ctx: Context) -> Response:
        query = FleetQuery.from_params(ctx.request.args)
        today = self.today()
        counted = query.sort == "today_count"
        rows = load_fleet(self.store, today, self.config.thresholds, counts=counted)
        page = fleet_page(rows, query, self.config.dashboard.page_size)
        if not counted:
            add_today_counts(self.store, [*page.rows, *page.needing_action], today)
        online = trends.fleet_online(self.store, ctx.now - 2 * 86400)
        chart = charts.line_chart(
            "chart-online",
            [charts.Series(ctx.t(s.name), s.points) for s in online],
            label=ctx.t("Terminals online, last 48 hours"),
            empty=ctx.t("No samples yet: the first is taken when the back office starts."),
            zone=self.zone,
            start=ctx.now - 2 * 86400,
            end=ctx.now,
        )
        return self.render(
            ctx,
            "fleet.html",
            ctx.t("Terminal fleet"),
            refresh=self.config.dashboard.refresh_s,
            page=page,
            query=query,
            headers=FLEET_HEADERS,
            attention_order=ATTENTION_ORDER,
            attention_labels={a.value: a.label for a in ATTENTION_ORDER},
            alert_kinds=ALERT_KINDS,
            chart=chart,
        )

    def page_overview(self, ctx: Context) -> Response:
        t = ctx.t
        last = self.today()
        first = last - datetime.timedelta(days=30)
        per_day = trends.paid_per_day(self.store, first, last)
        alerts = trends.alerts_per_day(self.store, first, last, self.zone)
        week = ctx.now - HISTORY_S
        figures = [
            charts.line_chart(
                "chart-online",
                [charts.Series(t(s.name), s.points) for s in trends.fleet_online(self.store, week)],
                label=t("Terminals online, last 7 days"),
                empty=t("No samples yet: the first is taken when the back office starts."),
                zone=self.zone,
                start=week,
                end=ctx.now,
            ),
            charts.bar_chart(
                "chart-transactions",
                [(day.strftime("%m-%d"), count) for day, count, _ in per_day],
                label=t("Paid transactions per day"),
                empty=t("No paid transactions in these 31 days."),
            ),
            charts.bar_chart(
                "chart-turnover",
                [(day.strftime("%m-%d"), fen) for day, _, fen in per_day],
                label=t("Turnover per day"),
                empty=t("No paid transactions in these 31 days."),
                y_format=_yuan_tick,
            ),
            charts.line_chart(
                "chart-float",
                trends.lowest_float_stations(self.store, week),
                label=t("Float of the five stations lowest on float, last 7 days"),
                empty=t("No float reported in the last 7 days."),
                zone=self.zone,
                y_format=_yuan_tick,
                start=week,
                end=ctx.now,
            ),
            charts.bar_chart(
                "chart-alerts",
                [(day.strftime("%m-%d"), count) for day, count in alerts],
                label=t("Alerts raised per day"),
                empty=t("No alerts in these 31 days."),
            ),
        ]
        return self.render(ctx, "overview.html", t("Trends"), figures=figures)

    def page_terminal(self, ctx: Context, station: str, terminal: str) -> Response:
        t = ctx.t
        found = self.store.query(
            "SELECT * FROM terminals WHERE station = ? AND terminal = ?", (station, terminal)
        )
        if not found:
            raise NotFound()
        row = found[0]
        with self.store.transaction() as cursor:
            alerts = cursor.execute(
                "SELECT * FROM alerts WHERE station = ? AND terminal = ? AND cleared IS NULL "
                "ORDER BY raised DESC, id DESC",
                (station, terminal),
            )
        health = trends.terminal_health(self.store, station, terminal, ctx.now - HISTORY_S)
        week = ctx.now - HISTORY_S
        # (id, health figure, its name, the chart's label, how its axis reads)
        health_figures = (
            ("chart-paper", "paper", "Paper", "Paper (2 OK, 1 low, 0 out)", charts.plain),
            ("chart-float", "float", "Float balance", "Float balance", _yuan_tick),
            (
                "chart-cert",
                "cert_days",
                "Certificate days left",
                "Certificate days left",
                charts.plain,
            ),
            (
                "chart-backlog",
                "backlog",
                "Records waiting",
                "Records waiting to upload",
                charts.plain,
            ),
        )
        health_charts = [
            charts.line_chart(
                chart_id,
                [charts.Series(t(name), health[figure])],
                label=t(label),
                empty=t("No health reports in the last 7 days."),
                zone=self.zone,
                y_format=y_format,
                start=week,
                end=ctx.now,
                width=480,
            )
            for chart_id, figure, name, label, y_format in health_figures
        ]
        last = self.today()
        per_day = trends.paid_per_day(
            self.store,
            last - datetime.timedelta(days=29),
            last,
            station=station,
            terminal=terminal,
        )
        activity = charts.bar_chart(
            "chart",
            [(day.strftime("%m-%d"), count) for day, count, _ in per_day],
            label=t("Paid transactions per day, last 30 days"),
            empty=t("No paid transactions in the last 30 days."),
        )
        history = self.store.query(
            "SELECT received, time, paper, float_balance_fen, cert_days_left, outbox_backlog "
            "FROM health_history WHERE station = ? AND terminal = ? "
            "ORDER BY received DESC, id DESC LIMIT 20",
            (station, terminal),
        )
        events = self.store.query(
            "SELECT received, time, kind, data FROM events WHERE station = ? AND terminal = ? "
            "ORDER BY received DESC, id DESC LIMIT 20",
            (station, terminal),
        )
        closes = [
            {**c, "report": json.loads(c["record"])}
            for c in self.store.query(
                "SELECT business_day, seq, record FROM records WHERE station = ? AND "
                "terminal = ? AND type = ? ORDER BY business_day DESC LIMIT 31",
                (station, terminal, RecordType.DAY_CLOSE),
            )
        ]
        commands = self.store.query(
            "SELECT * FROM commands WHERE station = ? AND terminal = ? ORDER BY sent DESC LIMIT 30",
            (station, terminal),
        )
        forms = [
            {
                "name": name,
                "label": COMMAND_LABELS[name],
                "fields": fields,
                "allowed": ctx.staff.may(role_for(Action.SEND_COMMAND, name)),
                "multipart": any(f.kind is FieldKind.FILE for f in fields),
            }
            for name, fields in COMMAND_FORMS.items()
        ]
        return self.render(
            ctx,
            "terminal.html",
            f"{t('Terminal')} {station}/{terminal}",
            row=row,
            station=station,
            terminal=terminal,
            alerts=alerts,
            alert_kinds=ALERT_KINDS,
            health_charts=health_charts,
            activity=activity,
            history=history,
            events=events,
            closes=closes,
            commands=commands,
            forms=forms,
            commands_on=self.send_command is not None,
            revoke_on=self.revoke is not None,
            may_revoke=ctx.staff.may(role_for(Action.REVOKE_TERMINAL)),
            actions=recent_actions(self.store, station=station, terminal=terminal, limit=20),
        )

    def page_alerts(self, ctx: Context) -> Response:
        args = ctx.request.args
        kind = args.get("kind", "")
        kind = kind if kind in ALERT_KINDS else ""
        text = args.get("q", "").strip()[:64]
        sql = "SELECT * FROM alerts WHERE acked IS NULL AND cleared IS NULL"
        params: list[Any] = []
        if kind:
            sql += " AND kind = ?"
            params.append(kind)
        rows = self.store.query(sql + " ORDER BY raised DESC, id DESC", params)
        if text:
            rows = [r for r in rows if text in r["station"] or text in r["terminal"]]
        sort = args.get("sort", "raised")
        sort = sort if sort in ("raised", "station", "kind") else "raised"
        descending = args.get("order", "desc" if sort == "raised" else "asc") == "desc"
        rows.sort(key=lambda r: (r[sort], r["station"], r["terminal"]), reverse=descending)
        paged = _page(rows, args.get("page", "1"), self.config.dashboard.page_size)
        return self.render(
            ctx,
            "alerts.html",
            ctx.t("Alerts"),
            refresh=self.config.dashboard.refresh_s,
            alerts=paged,
            alert_kinds=ALERT_KINDS,
            kind=kind,
            text=text,
            sort=sort,
            descending=descending,
            may_acknowledge=ctx.staff.may(role_for(Action.ACKNOWLEDGE_ALERT)),
        )

    def page_acknowledge(self, ctx: Context, alert_id: int) -> Response:
        ctx.staff.require(role_for(Action.ACKNOWLEDGE_ALERT), "acknowledging an alert")
        with self.store.transaction() as cursor:
            found = cursor.execute(
                "SELECT station, terminal, kind FROM alerts WHERE id = ?", (alert_id,)
            )
            if not found:
                raise NotFound()
            if acknowledge_alert(cursor, alert_id, ctx.staff.name, ctx.now):
                record_action(
                    cursor,
                    ctx.staff,
                    Action.ACKNOWLEDGE_ALERT,
                    ctx.now,
                    station=found[0]["station"],
                    terminal=found[0]["terminal"],
                    detail={"alert": alert_id, "kind": found[0]["kind"]},
                )
        back = ctx.request.form.get("back", "")
        return self.redirect(back if _local_path(back) else ctx.link("/alerts"))

    def page_command(self, ctx: Context, station: str, terminal: str, name: str) -> Response:
        if name not in COMMAND_FORMS:
            raise NotFound()
        ctx.staff.require(role_for(Action.SEND_COMMAND, name), f"the command {name}")
        if self.send_command is None:
            raise BackofficeError("commands are off: set commands.key_file in the config")
        if not self.store.query(
            "SELECT 1 FROM terminals WHERE station = ? AND terminal = ?", (station, terminal)
        ):
            raise NotFound()
        files = {key: upload.read() for key, upload in ctx.request.files.items()}
        args = args_from_form(name, ctx.request.form, files, self.zone)
        if name == "record_deposit":  # the terminal journals who recorded it
            args["by"] = f"office:{ctx.staff.name}"
        self.send_command(station, terminal, name, args, ctx.staff)
        return self.redirect(ctx.link(f"/terminal/{station}/{terminal}"))

    def page_revoke(self, ctx: Context, station: str, terminal: str) -> Response:
        ctx.staff.require(role_for(Action.REVOKE_TERMINAL), "revoking a terminal")
        if self.revoke is None:
            raise BackofficeError("revocation is off: set [revocation] in the config")
        if ctx.request.form.get("confirm") != f"{station}/{terminal}":
            raise BackofficeError(f"type {station}/{terminal} in the box to confirm the revocation")
        self.revoke(station, terminal, ctx.staff)
        return self.redirect(ctx.link(f"/terminal/{station}/{terminal}"))

    def page_staff(self, ctx: Context) -> Response:
        rows = recent_actions(self.store, limit=500)
        paged = _page(rows, ctx.request.args.get("page", "1"), self.config.dashboard.page_size)
        return self.render(ctx, "staff.html", ctx.t("Staff actions"), actions=paged)

    # ----------------------------------------------------------------- rollouts

    def page_rollouts(self, ctx: Context) -> Response:
        window_start = datetime.datetime.fromtimestamp(ctx.now, self.zone)
        return self.render(
            ctx,
            "rollouts.html",
            ctx.t("Software rollouts"),
            rollouts=rollout_views(self.store),
            versions=fleet_versions(self.store),
            may_manage=ctx.staff.may(role_for(Action.MANAGE_ROLLOUT)),
            commands_on=self.send_command is not None,
            defaults={
                "stages": ",".join(str(s) for s in DEFAULT_STAGES),
                "threshold": f"{DEFAULT_THRESHOLD_PERCENT:g}",
                "min_sample": str(DEFAULT_MIN_SAMPLE),
                "not_before": window_start.strftime("%Y-%m-%dT%H:%M"),
                "not_after": (window_start + datetime.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M"),
            },
        )

    def _form_time(self, name: str, text: str) -> datetime.datetime:
        try:
            moment = datetime.datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M")
        except ValueError:
            raise RolloutRefused(
                f"{name}: {text!r} is not a date and time YYYY-MM-DDTHH:MM"
            ) from None
        return moment.replace(tzinfo=self.zone)

    def _form_number(self, name: str, text: str, default: float) -> float:
        text = text.strip()
        if not text:
            return default
        try:
            return float(text)
        except ValueError:
            raise RolloutRefused(f"{name}: {text!r} is not a number") from None

    def page_rollout_create(self, ctx: Context) -> Response:
        ctx.staff.require(role_for(Action.MANAGE_ROLLOUT), "creating a rollout")
        form = ctx.request.form
        max_starts = form.get("max_starts", "").strip()
        if max_starts and not max_starts.isdigit():
            raise RolloutRefused(f"max_starts: {max_starts!r} is not a whole number")
        min_sample = self._form_number("min_sample", form.get("min_sample", ""), DEFAULT_MIN_SAMPLE)
        plan = RolloutPlan(
            rollout=form.get("rollout", "").strip(),
            version=form.get("version", "").strip(),
            target=form.get("target", "").strip(),
            stages=parse_stages(form.get("stages", "")),
            not_before=self._form_time("not_before", form.get("not_before", "")),
            not_after=self._form_time("not_after", form.get("not_after", "")),
            threshold_percent=self._form_number(
                "threshold", form.get("threshold", ""), DEFAULT_THRESHOLD_PERCENT
            ),
            min_sample=int(min_sample),
            max_starts=int(max_starts) if max_starts else None,
        )
        create_rollout(self.store, plan, ctx.staff.name, ctx.now)
        with self.store.transaction() as cursor:
            record_action(
                cursor,
                ctx.staff,
                Action.MANAGE_ROLLOUT,
                ctx.now,
                detail={"rollout": plan.rollout, "created": plan.version},
            )
        return self.redirect(ctx.link("/rollouts"))

    def page_rollout_stage(self, ctx: Context, rollout: str) -> Response:
        ctx.staff.require(role_for(Action.MANAGE_ROLLOUT), "sending a rollout's stage")
        send = self.send_command
        if send is None:
            raise BackofficeError("commands are off: set commands.key_file in the config")
        percent, count = send_next_stage(
            self.store,
            lambda station, terminal, name, args: send(station, terminal, name, args, ctx.staff),
            rollout,
            ctx.staff.name,
            ctx.now,
        )
        with self.store.transaction() as cursor:
            record_action(
                cursor,
                ctx.staff,
                Action.MANAGE_ROLLOUT,
                ctx.now,
                detail={"rollout": rollout, "stage_percent": percent, "terminals": count},
            )
        return self.redirect(ctx.link("/rollouts"))

    def page_rollout_halt(self, ctx: Context, rollout: str) -> Response:
        ctx.staff.require(role_for(Action.MANAGE_ROLLOUT), "halting a rollout")
        if halt_rollout(self.store, rollout, f"halted by {ctx.staff.name}", ctx.now):
            with self.store.transaction() as cursor:
                record_action(
                    cursor,
                    ctx.staff,
                    Action.MANAGE_ROLLOUT,
                    ctx.now,
                    detail={"rollout": rollout, "halted": True},
                )
        return self.redirect(ctx.link("/rollouts"))

    def page_maintenance(self, ctx: Context) -> Response:
        return self.render(
            ctx,
            "maintenance.html",
            ctx.t("Maintenance visits"),
            visits=last_visits(self.store, self.today()),
            cost_labels=COST_BEARER_LABELS,
        )

    def page_api_fleet(self, ctx: Context) -> Response:
        body = json.dumps(self.fleet(), ensure_ascii=False, default=str)
        return Response(body, mimetype="application/json")

    # ----------------------------------------------------------------- reports

    def report(self, name: str, params: Mapping[str, str]) -> tuple[list[Row], str]:
        """Rows of a report and its title's message id; BackofficeError on bad parameters."""
        today = self.today()
        try:
            if name == "daily":
                day = datetime.date.fromisoformat(
                    params.get("day") or (today - datetime.timedelta(days=1)).isoformat()
                )
                return reports.reconciliation(self.store, day), REPORTS[name]
            if name == "activity":
                period = params.get("period", "month")
                if period not in ("week", "month"):
                    raise BackofficeError("period must be week or month")
                first = datetime.date.fromisoformat(
                    params.get("from") or (today - datetime.timedelta(days=90)).isoformat()
                )
                last = datetime.date.fromisoformat(params.get("to") or today.isoformat())
                return reports.activity(self.store, period, first, last), REPORTS[name]
            if name == "exit":
                rows = exit_report(self.store, params.get("month"), self.config.reports, today)
                return rows, REPORTS[name]
            if name == "commission":
                month = params.get("month") or self._last_month()
                reports.month_bounds(month)
                rows = [commission.summary_row(s) for s in self._statements(month)]
                return rows, REPORTS[name]
        except ValueError as exc:
            raise BackofficeError(
                f"wrong report parameter: {exc}; dates are YYYY-MM-DD, months YYYY-MM"
            ) from None
        raise NotFound()

    def page_report(self, ctx: Context, name: str) -> Response:
        args = ctx.request.args
        rows, title = self.report(name, args)
        if args.get("format") == "csv":
            return Response(
                reports.to_csv(rows),
                mimetype="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
            )
        text = args.get("q", "").strip()[:64]
        if text:
            rows = [r for r in rows if text in str(r.get("station", ""))]
        columns = list(rows[0].keys()) if rows else []
        sort = args.get("sort", "")
        if sort in columns:
            descending = args.get("order") == "desc"
            present = [r for r in rows if r[sort] is not None]
            rows = sorted(present, key=lambda r: r[sort], reverse=descending) + [
                r for r in rows if r[sort] is None
            ]
        else:
            sort, descending = "", False
        paged = _page(rows, args.get("page", "1"), self.config.dashboard.page_size)
        csv_query = urllib.parse.urlencode(
            {k: v for k, v in args.items() if k not in ("lang", "page", "sort", "order", "q")}
            | {"format": "csv"}
        )
        return self.render(
            ctx,
            "report.html",
            ctx.t(title),
            name=name,
            rows=paged,
            columns=columns,
            sort=sort,
            descending=descending,
            text=text,
            csv_link=f"/reports/{name}?{csv_query}",
            params={k: v for k, v in args.items() if k in ("day", "period", "from", "to", "month")},
            cell=lambda column, value: _cell(ctx.t, column, value),
            flagged=_flagged,
        )


class _Request(Request):
    # A command's form with a catalog file is the largest thing staff send.
    max_content_length = 256 * 1024
    max_form_memory_size = 64 * 1024


@dataclass
class Paged:
    rows: list[Row]
    page: int
    pages: int
    matching: int


def _page(rows: list[Row], page_text: str, size: int) -> Paged:
    pages = max(1, -(-len(rows) // size))
    page = int(page_text) if page_text.isdigit() and int(page_text) > 0 else 1
    page = min(page, pages)
    return Paged(rows[(page - 1) * size : page * size], page, pages, len(rows))


def _local_path(path: str) -> bool:
    """A redirect target on this site only (a path, never //host or a scheme)."""
    return path.startswith("/") and not path.startswith("//") and "\\" not in path


def _yuan_tick(value: float) -> str:
    whole = int(round(value)) // 100
    return f"¥{whole:,}"


def _flagged(row: Mapping[str, Any]) -> bool:
    return (
        row.get("status") in ("mismatch", "no_day_close")
        or row.get("methods_status") == "mismatch"
        or bool(row.get("flagged"))
    )


def _cell(t: Translate, column: str, value: Any) -> Markup | str:
    if column.endswith("_fen"):
        return display.yuan(value)
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return t("Yes") if value else t("No")
    # Status words are message ids; station numbers and dates are shown as they are.
    return t(str(value)) if column in ("status", "reason", "methods_status") else str(value)


_CACHE_STATIC = {"Cache-Control": "public, max-age=3600"}


class DashboardServer:
    """The dashboard on a threaded Werkzeug server (one thread per request)."""

    def __init__(self, dashboard: Dashboard, host: str, port: int) -> None:
        self._server = make_server(host, port, dashboard, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="dashboard", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
