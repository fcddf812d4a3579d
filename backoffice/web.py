"""The staff dashboard: server-side rendered HTML over the standard library's HTTP server.

Owns pages and their routes: the fleet, one terminal, alerts (with acknowledgement),
reports (with CSV export) and sending a signed command. Chinese first, English with
?lang=en; every label goes through kiosk.i18n (backoffice.po). Pages are plain HTML with
an inline SVG chart and no script. It never writes telemetry; it reads the store and
records staff actions (acknowledgements, commands). It has no login of its own: deploy it
behind the operator's authenticating reverse proxy (docs/backoffice.md).
"""

import datetime
import html
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

from backoffice import reports
from backoffice.alerts import ALERT_KINDS, acknowledge_alert, open_alerts
from backoffice.config import BackofficeConfig
from backoffice.errors import BackofficeError
from backoffice.store import Row, Store
from kiosk.i18n import LANGUAGES, Translate, translator
from kiosk.journal.record_types import RecordType
from kiosk.money import format_fen
from kiosk.telemetry.commands import COMMAND_NAMES

log = logging.getLogger(__name__)

# (station, terminal, name, args, sent_by) -> the command sent; None when no key is set.
SendCommand = Callable[[str, str, str, dict[str, Any], str], dict[str, Any]]
FLEET_COLUMNS = (
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
_STYLE = """
body{font-family:"Noto Sans CJK SC",sans-serif;margin:1em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}
th a{color:inherit}.online{color:#070}.offline{color:#b00;font-weight:bold}
.mismatch,.alert{background:#fdd}.ok{background:#dfd}nav a{margin-right:1em}
.num{text-align:right}form.inline{display:inline}
"""


class Dashboard:
    """Renders pages from the store; the HTTP handler only routes to it."""

    def __init__(
        self,
        store: Store,
        config: BackofficeConfig,
        send_command: SendCommand | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.config = config
        self.send_command = send_command
        self.clock = clock
        self.zone = ZoneInfo(config.reports.timezone)

    def today(self) -> datetime.date:
        return datetime.datetime.fromtimestamp(self.clock(), self.zone).date()

    # ----------------------------------------------------------------- data

    def fleet(self) -> list[Row]:
        today = self.today().isoformat()
        counts = {
            (row["station"], row["terminal"]): int(row["count"])
            for row in self.store.query(
                "SELECT station, terminal, COUNT(*) AS count FROM records "
                "WHERE type = ? AND outcome = 'paid' AND business_day = ? "
                "GROUP BY station, terminal",
                (RecordType.TX_CLOSE, today),
            )
        }
        alerts: dict[tuple[str, str], list[str]] = {}
        with self.store.transaction() as cursor:
            for alert in open_alerts(cursor):
                alerts.setdefault((alert["station"], alert["terminal"]), []).append(alert["kind"])
            terminals = cursor.execute("SELECT * FROM terminals")
        rows = []
        for row in terminals:
            key = (row["station"], row["terminal"])
            kinds = sorted(alerts.get(key, []))
            rows.append(
                {
                    **row,
                    "today_count": counts.get(key, 0),
                    "alert_count": len(kinds),
                    "alert_kinds": kinds,
                }
            )
        return rows

    # ----------------------------------------------------------------- pages

    def page(self, t: Translate, lang: str, title: str, body: str, refresh: int = 0) -> str:
        other = "en" if lang != "en" else "zh_CN"
        nav = " ".join(
            f'<a href="{href}?lang={lang}">{html.escape(t(label))}</a>'
            for href, label in (
                ("/", "Fleet"),
                ("/alerts", "Alerts"),
                ("/reports/daily", "Daily reconciliation"),
                ("/reports/activity", "Weekly and monthly activity"),
                ("/reports/exit", "Stations flagged for exit"),
                ("/reports/commission", "Monthly commission"),
            )
        )
        meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
        html_lang = "zh-CN" if lang == "zh_CN" else "en"
        return (
            f'<!DOCTYPE html><html lang="{html_lang}"><head><meta charset="utf-8">{meta}'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f'<nav>{nav} <a id="lang" href="?lang={other}">{"English" if other == "en" else "中文"}'
            f"</a></nav><h1>{html.escape(title)}</h1>{body}</body></html>"
        )

    def fleet_page(self, t: Translate, lang: str, params: dict[str, str]) -> str:
        rows = self.fleet()
        now = self.clock()
        text = params.get("q", "").strip()
        state = params.get("state", "")
        if text:
            rows = [r for r in rows if text in r["station"] or text in r["terminal"]]
        if state in ("online", "offline"):
            rows = [r for r in rows if r["state"] == state]
        if params.get("alerts") == "1":
            rows = [r for r in rows if r["alert_count"]]
        sort = params.get("sort", "station")
        sort = sort if sort in FLEET_COLUMNS else "station"
        descending = params.get("order") == "desc"
        rows.sort(key=lambda r: (r[sort] is None, r[sort] if r[sort] is not None else 0))
        if descending:
            rows.reverse()
        headers = {
            "station": "Station number",
            "terminal": "Terminal",
            "state": "State",
            "last_seen": "Last seen",
            "paper": "Paper",
            "float_balance_fen": "Float balance",
            "cert_days_left": "Certificate days left",
            "today_count": "Transactions today",
            "alert_count": "Open alerts",
        }
        head = ""
        for column, label in headers.items():
            order = "asc" if column != sort or descending else "desc"
            query = urllib.parse.urlencode({**params, "sort": column, "order": order, "lang": lang})
            head += f'<th><a href="/?{html.escape(query)}">{html.escape(t(label))}</a></th>'
        body_rows = []
        for r in rows:
            key = f"{r['station']}/{r['terminal']}"
            link = f"/terminal/{key}?lang={lang}"
            alert_text = ", ".join(t(ALERT_KINDS[k]) for k in r["alert_kinds"])
            css = ' class="alert"' if r["alert_count"] else ""
            body_rows.append(
                f'<tr{css} data-terminal="{html.escape(key)}">'
                f"<td>{html.escape(r['station'])}</td>"
                f'<td><a href="{html.escape(link)}">{html.escape(r["terminal"])}</a></td>'
                f'<td class="{html.escape(r["state"])}">{html.escape(t(_state_label(r)))}</td>'
                f"<td>{html.escape(_age(t, now, r['last_seen']))}</td>"
                f"<td>{html.escape(t(_paper_label(r['paper'])))}</td>"
                f'<td class="num">{_fen(r["float_balance_fen"])}</td>'
                f'<td class="num">{_text(r["cert_days_left"])}</td>'
                f'<td class="num">{r["today_count"]}</td>'
                f'<td class="alerts">{r["alert_count"]} {html.escape(alert_text)}</td></tr>'
            )
        online = sum(1 for r in rows if r["state"] == "online")
        summary = t("{online} of {total} terminals online").format(online=online, total=len(rows))
        esc = html.escape
        checked = " checked" if params.get("alerts") == "1" else ""
        filters = (
            f'<form method="get" action="/"><input type="hidden" name="lang" value="{lang}">'
            f'<input name="q" value="{esc(text)}" placeholder="{esc(t("Station or terminal"))}">'
            f'<select name="state"><option value="">{html.escape(t("All"))}</option>'
            + "".join(
                f'<option value="{s}"{" selected" if s == state else ""}>{esc(t(lab))}</option>'
                for s, lab in (("online", "Online"), ("offline", "Offline"))
            )
            + f'</select><label><input type="checkbox" name="alerts" value="1"'
            f"{checked}>{esc(t('Only with open alerts'))}"
            f"</label><button>{html.escape(t('Filter'))}</button></form>"
        )
        table = f'<table id="fleet"><tr>{head}</tr>{"".join(body_rows)}</table>'
        return self.page(
            t,
            lang,
            t("Terminal fleet"),
            f"<p id=summary>{html.escape(summary)}</p>{filters}{table}",
            15,
        )

    def terminal_page(self, t: Translate, lang: str, station: str, terminal: str) -> str | None:
        found = self.store.query(
            "SELECT * FROM terminals WHERE station = ? AND terminal = ?", (station, terminal)
        )
        if not found:
            return None
        row = found[0]
        now = self.clock()
        facts = [
            ("State", t(_state_label(row))),
            ("Last seen", _age(t, now, row["last_seen"])),
            ("Paper", t(_paper_label(row["paper"]))),
            ("Float balance", _fen(row["float_balance_fen"])),
            ("Certificate days left", _text(row["cert_days_left"])),
            ("Journal head", f"{_text(row['chain_seq'])} {_text(row['chain_hash'])[:16]}"),
            ("Acknowledged up to record", _text(row["acked_seq"])),
            ("Software", _text(row["software"])),
            ("Firmware", _text(row["firmware"])),
        ]
        body = (
            "<table>"
            + "".join(
                f"<tr><th>{html.escape(t(label))}</th><td>{html.escape(value)}</td></tr>"
                for label, value in facts
            )
            + "</table>"
        )
        with self.store.transaction() as cursor:
            alerts = open_alerts(cursor, station, terminal)
        body += self.alert_table(t, lang, alerts, t("Open alerts"))
        body += f"<h2>{html.escape(t('Transactions per day'))}</h2>" + self.chart(station, terminal)
        history = self.store.query(
            "SELECT time, paper, float_balance_fen, cert_days_left, outbox_backlog "
            "FROM health_history WHERE station = ? AND terminal = ? "
            "ORDER BY received DESC, id DESC LIMIT 50",
            (station, terminal),
        )
        body += _table(
            t,
            "Health history",
            ("Time", "Paper", "Float balance", "Certificate days left", "Records waiting"),
            [
                (
                    h["time"],
                    t(_paper_label(h["paper"])),
                    _fen(h["float_balance_fen"]),
                    _text(h["cert_days_left"]),
                    _text(h["outbox_backlog"]),
                )
                for h in history
            ],
        )
        events = self.store.query(
            "SELECT time, kind, data FROM events WHERE station = ? AND terminal = ? "
            "ORDER BY received DESC, id DESC LIMIT 50",
            (station, terminal),
        )
        body += _table(
            t,
            "Events",
            ("Time", "Event", "Details"),
            [(e["time"], e["kind"], e["data"]) for e in events],
        )
        closes = self.store.query(
            "SELECT business_day, seq, record FROM records WHERE station = ? AND terminal = ? "
            "AND type = ? ORDER BY business_day DESC LIMIT 31",
            (station, terminal, RecordType.DAY_CLOSE),
        )
        body += _table(
            t,
            "End-of-day reports",
            ("Business day", "Record", "Paid transactions", "Paid amount"),
            [
                (
                    c["business_day"],
                    str(c["seq"]),
                    _text(json.loads(c["record"]).get("paid_count")),
                    _fen(json.loads(c["record"]).get("paid_fen")),
                )
                for c in closes
            ],
        )
        body += self.command_section(t, lang, station, terminal)
        title = f"{t('Terminal')} {station}/{terminal}"
        return self.page(t, lang, title, body)

    def chart(self, station: str, terminal: str, days: int = 30) -> str:
        """Paid transactions per business day over the last `days` days, as inline SVG."""
        last = self.today()
        first = last - datetime.timedelta(days=days - 1)
        counts = {
            row["business_day"]: int(row["count"])
            for row in self.store.query(
                "SELECT business_day, COUNT(*) AS count FROM records WHERE station = ? "
                "AND terminal = ? AND type = ? AND outcome = 'paid' "
                "AND business_day >= ? GROUP BY business_day",
                (station, terminal, RecordType.TX_CLOSE, first.isoformat()),
            )
        }
        peak = max(counts.values(), default=0) or 1
        width, height, bar = days * 14, 120, 10
        parts = []
        for index in range(days):
            day = (first + datetime.timedelta(days=index)).isoformat()
            count = counts.get(day, 0)
            h = round(100 * count / peak)
            parts.append(
                f'<rect x="{index * 14 + 2}" y="{105 - h}" width="{bar}" height="{h}" '
                f'fill="#36c"><title>{day}: {count}</title></rect>'
            )
        return (
            f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img">{"".join(parts)}<line x1="0" y1="105" x2="{width}" y2="105" '
            f'stroke="#444"/><text x="0" y="118" font-size="10">{first.isoformat()}</text>'
            f'<text x="{width - 60}" y="118" font-size="10">{last.isoformat()}</text>'
            f'<text x="0" y="10" font-size="10">{peak}</text></svg>'
        )

    def alert_table(self, t: Translate, lang: str, alerts: Sequence[Row], title: str) -> str:
        rows = []
        for a in alerts:
            when = datetime.datetime.fromtimestamp(a["raised"], self.zone).isoformat(
                timespec="seconds"
            )
            form = (
                f'<form class="inline" method="post" action="/alerts/{a["id"]}/ack?lang={lang}">'
                f'<input name="by" required placeholder="{html.escape(t("Your name"))}">'
                f"<button>{html.escape(t('Acknowledge'))}</button></form>"
            )
            rows.append(
                f'<tr class="alert" data-kind="{a["kind"]}"><td>{html.escape(a["station"])}/'
                f"{html.escape(a['terminal'])}</td><td>{html.escape(t(ALERT_KINDS[a['kind']]))}</td>"
                f"<td>{html.escape(a['detail'])}</td><td>{when}</td><td>{form}</td></tr>"
            )
        head = "".join(
            f"<th>{html.escape(t(h))}</th>"
            for h in ("Terminal", "Alert", "Details", "Raised", "Acknowledge")
        )
        return (
            f"<h2>{html.escape(title)}</h2><table id=alerts><tr>{head}</tr>{''.join(rows)}</table>"
        )

    def command_section(self, t: Translate, lang: str, station: str, terminal: str) -> str:
        sent = self.store.query(
            "SELECT * FROM commands WHERE station = ? AND terminal = ? ORDER BY sent DESC LIMIT 30",
            (station, terminal),
        )
        rows = []
        for c in sent:
            if c["result_ok"] is None:
                outcome = t("Waiting for result")
            elif c["result_ok"]:
                outcome = t("Command done") + " " + (c["result"] or "")
            else:
                outcome = t("Command failed") + " " + (c["error"] or "")
            rows.append((c["name"], c["args"], c["sent_by"], c["expires"], outcome))
        body = _table(t, "Commands", ("Command", "Arguments", "Sent by", "Expires", "Result"), rows)
        if self.send_command is None:
            return (
                body + f"<p>{html.escape(t('Commands are off: no command key is configured.'))}</p>"
            )
        options = "".join(f'<option value="{n}">{n}</option>' for n in COMMAND_NAMES)
        return body + (
            f'<form id="command" method="post" action="/terminal/{station}/{terminal}/command'
            f'?lang={lang}"><select name="name">{options}</select>'
            f'<input name="args" value="{{}}" size="30">'
            f'<input name="by" required placeholder="{html.escape(t("Your name"))}">'
            f"<button>{html.escape(t('Send signed command'))}</button></form>"
        )

    def alerts_page(self, t: Translate, lang: str) -> str:
        with self.store.transaction() as cursor:
            alerts = open_alerts(cursor)
        return self.page(
            t, lang, t("Alerts"), self.alert_table(t, lang, alerts, t("Open alerts")), 15
        )

    def report(self, name: str, params: dict[str, str]) -> tuple[list[Row], str]:
        """Rows of a report and its title's message id; BackofficeError on bad parameters."""
        today = self.today()
        try:
            if name == "daily":
                day = datetime.date.fromisoformat(
                    params.get("day") or (today - datetime.timedelta(days=1)).isoformat()
                )
                return reports.reconciliation(self.store, day), "Daily reconciliation"
            if name == "activity":
                period = params.get("period", "month")
                if period not in ("week", "month"):
                    raise BackofficeError("period must be week or month")
                first = datetime.date.fromisoformat(
                    params.get("from") or (today - datetime.timedelta(days=90)).isoformat()
                )
                last = datetime.date.fromisoformat(params.get("to") or today.isoformat())
                return (
                    reports.activity(self.store, period, first, last),
                    "Weekly and monthly activity",
                )
            month = params.get("month") or today.isoformat()[:7]
            reports.month_bounds(month)
            if name == "exit":
                rows = reports.exit_candidates(self.store, month, self.config.reports)
                return rows, "Stations flagged for exit"
            if name == "commission":
                rows = reports.commission(self.store, month, self.config.reports)
                return rows, "Monthly commission"
        except ValueError as exc:
            raise BackofficeError(f"wrong report parameter: {exc}; dates are YYYY-MM-DD") from None
        raise KeyError(name)

    def report_page(self, t: Translate, lang: str, name: str, params: dict[str, str]) -> str:
        rows, title = self.report(name, params)
        query = urllib.parse.urlencode({**params, "format": "csv"})
        body = f'<p><a id="csv" href="/reports/{name}?{html.escape(query)}">CSV</a></p>'
        if not rows:
            body += f"<p>{html.escape(t('Nothing to report for this period.'))}</p>"
        else:
            columns = list(rows[0].keys())
            head = "".join(f"<th>{html.escape(t(c))}</th>" for c in columns)
            lines = []
            for row in rows:
                status = row.get("status")
                css = (
                    " mismatch"
                    if status in ("mismatch", "no_day_close") or row.get("flagged")
                    else ""
                )
                cells = "".join(
                    f'<td class="num">{_fen(v)}</td>'
                    if c.endswith("_fen")
                    else f"<td>{html.escape(_cell(t, c, v))}</td>"
                    for c, v in row.items()
                )
                lines.append(f'<tr class="row{css}">{cells}</tr>')
            body += f'<table id="report"><tr>{head}</tr>{"".join(lines)}</table>'
        return self.page(t, lang, t(title), body)


def _cell(t: Translate, column: str, value: Any) -> str:
    # Status words are message ids; station numbers and dates are shown as they are.
    return t(_text(value)) if column in ("status", "reason") and value else _text(value)


def _state_label(row: Row) -> str:
    if row["state"] == "online":
        return "Online"
    if row["state"] == "offline":
        return "Offline (shut down)" if row.get("state_reason") == "shutdown" else "Offline"
    return "Unknown"


def _paper_label(paper: str | None) -> str:
    return {"ok": "Paper OK", "near_end": "Paper low", "out": "Paper out"}.get(
        paper or "", "Unknown"
    )


def _age(t: Translate, now: float, then: float | None) -> str:
    if then is None:
        return t("Never")
    seconds = max(0, int(now - then))
    if seconds < 120:
        return t("{n} s ago").format(n=seconds)
    if seconds < 7200:
        return t("{n} min ago").format(n=seconds // 60)
    return t("{n} h ago").format(n=seconds // 3600)


def _fen(value: Any) -> str:
    return "" if not isinstance(value, int) or isinstance(value, bool) else format_fen(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _table(t: Translate, title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(t(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<h2>{html.escape(t(title))}</h2><table><tr>{head}</tr>{body}</table>"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    dashboard: Dashboard


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _params(self) -> tuple[str, dict[str, str]]:
        parsed = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(parsed.query))
        return parsed.path, params

    def _lang(self, params: dict[str, str]) -> tuple[Translate, str]:
        lang = params.pop("lang", "zh_CN")
        lang = lang if lang in LANGUAGES else "zh_CN"
        return translator(lang), lang

    def _send(
        self,
        status: int,
        body: str,
        content_type: str = "text/html; charset=utf-8",
        extra: dict[str, str] | None = None,
    ) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, location: str) -> None:
        self._send(HTTPStatus.SEE_OTHER, "", extra={"Location": location})

    def do_GET(self) -> None:
        path, params = self._params()
        t, lang = self._lang(params)
        dash = self.server.dashboard
        parts = [p for p in path.split("/") if p]
        try:
            if path == "/":
                self._send(200, dash.fleet_page(t, lang, params))
            elif path == "/api/fleet":
                rows = dash.fleet()
                self._send(
                    200, json.dumps(rows, ensure_ascii=False, default=str), "application/json"
                )
            elif path == "/alerts":
                self._send(200, dash.alerts_page(t, lang))
            elif len(parts) == 3 and parts[0] == "terminal":
                page = dash.terminal_page(t, lang, parts[1], parts[2])
                if page is None:
                    self._send(404, dash.page(t, lang, t("No such terminal"), ""))
                else:
                    self._send(200, page)
            elif (
                len(parts) == 2
                and parts[0] == "reports"
                and parts[1] in ("daily", "activity", "exit", "commission")
            ):
                if params.get("format") == "csv":
                    rows, _ = dash.report(parts[1], params)
                    self._send(
                        200,
                        reports.to_csv(rows),
                        "text/csv; charset=utf-8",
                        {"Content-Disposition": f'attachment; filename="{parts[1]}.csv"'},
                    )
                else:
                    self._send(200, dash.report_page(t, lang, parts[1], params))
            elif path == "/healthz":
                self._send(200, "ok", "text/plain")
            else:
                self._send(404, dash.page(t, lang, t("Page not found"), ""))
        except BackofficeError as exc:
            self._send(
                400, dash.page(t, lang, t("Wrong request"), f"<p>{html.escape(str(exc))}</p>")
            )

    def do_POST(self) -> None:
        path, params = self._params()
        t, lang = self._lang(params)
        dash = self.server.dashboard
        length = int(self.headers.get("Content-Length") or 0)
        if length > 65536:
            self._send(413, "too large", "text/plain")
            return
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode("utf-8", "replace")))
        origin = self.headers.get("Origin")
        host = self.headers.get("Host", "")
        if origin and urllib.parse.urlsplit(origin).netloc != host:
            # A page from elsewhere must not act in a staff member's name.
            self._send(403, "cross-site request refused", "text/plain")
            return
        parts = [p for p in path.split("/") if p]
        by = form.get("by", "").strip()[:64]
        try:
            if (
                len(parts) == 3
                and parts[0] == "alerts"
                and parts[2] == "ack"
                and parts[1].isdigit()
            ):
                if not by:
                    raise BackofficeError("say who acknowledges the alert: fill in your name")
                with dash.store.transaction() as cursor:
                    acknowledge_alert(cursor, int(parts[1]), by, dash.clock())
                back = self.headers.get("Referer") or f"/alerts?lang={lang}"
                self._redirect(back)
            elif len(parts) == 4 and parts[0] == "terminal" and parts[3] == "command":
                if dash.send_command is None:
                    raise BackofficeError("commands are off: set commands.key_file in the config")
                if not by:
                    raise BackofficeError("say who sends the command: fill in your name")
                try:
                    args = json.loads(form.get("args") or "{}")
                except ValueError:
                    raise BackofficeError("command arguments must be a JSON object") from None
                if not isinstance(args, dict):
                    raise BackofficeError("command arguments must be a JSON object")
                dash.send_command(parts[1], parts[2], form.get("name", ""), args, by)
                self._redirect(f"/terminal/{parts[1]}/{parts[2]}?lang={lang}")
            else:
                self._send(404, "not found", "text/plain")
        except BackofficeError as exc:
            self._send(
                400, dash.page(t, lang, t("Wrong request"), f"<p>{html.escape(str(exc))}</p>")
            )


class DashboardServer:
    def __init__(self, dashboard: Dashboard, host: str, port: int) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.dashboard = dashboard
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
