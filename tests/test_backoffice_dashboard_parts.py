"""The dashboard's pure parts: fleet summary, paging and sorting; times in the operator's
zone; charts; command forms; the sign-in rules; and its pages through the WSGI application
itself (werkzeug's test client: the same application the server runs, without a socket)."""

import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from werkzeug.test import Client

from backoffice import charts, display
from backoffice.commands import COMMAND_FORMS, COMMAND_LABELS, args_from_form
from backoffice.config import Thresholds, parse_config
from backoffice.errors import CommandRefused
from backoffice.fleet_view import FleetQuery, attention_of, fleet_page, load_fleet
from backoffice.roles import Action, Role, role_for
from backoffice.staff import CsrfTokens, Identities, NotAllowed, NotSignedIn, Staff
from backoffice.store import Store
from backoffice.web import Dashboard
from kiosk.errors import ConfigError
from kiosk.i18n import translator
from kiosk.telemetry.commands import COMMAND_NAMES
from kiosk.updates.rollout import parse_order

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 2026-12-07 17:46:33 in Shanghai.
NOW = datetime.datetime(2026, 12, 7, 9, 46, 33, tzinfo=datetime.UTC).timestamp()


def terminal_row(n: int, **changes: Any) -> dict[str, Any]:
    return {
        "station": f"3101{n // 3:04d}",
        "terminal": f"T-{n % 3:02d}",
        "state": "online",
        "state_reason": None,
        "last_seen": NOW - 30,
        "paper": "ok",
        "float_balance_fen": 500_000,
        "cert_days_left": 700,
        "outbox_backlog": 0,
        "software": "1.0",
        **changes,
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = Store(f"sqlite:///{tmp_path / 'bo.db'}")
    yield made
    made.close()


def insert_terminals(store: Store, rows: list[dict[str, Any]]) -> None:
    with store.transaction() as cursor:
        for row in rows:
            columns = [c for c in row if c != "software"]
            cursor.execute(
                f"INSERT INTO terminals ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})",
                [row[c] for c in columns],
            )


# ------------------------------------------------------------------ fleet view


def test_attention_names_every_reason_most_urgent_first() -> None:
    limits = Thresholds()
    row = terminal_row(1, state="offline", paper="near_end", float_balance_fen=100)
    assert attention_of(row, ["tamper"], limits) == ["offline", "tamper", "paper", "low_float"]
    assert attention_of(terminal_row(2, cert_days_left=3), [], limits) == ["certificate"]
    assert attention_of(terminal_row(3), ["outbox_backlog"], limits) == []


def test_the_fleet_is_summarised_then_filtered_sorted_and_paged(store: Store) -> None:
    rows = [terminal_row(n) for n in range(120)]
    rows[5] = terminal_row(5, state="offline")
    rows[7] = terminal_row(7, paper="out", float_balance_fen=1_000)
    rows[9] = terminal_row(9, cert_days_left=None, last_seen=None, state="unknown")
    insert_terminals(store, rows)
    fleet = load_fleet(store, datetime.date(2026, 12, 7), Thresholds())
    page = fleet_page(fleet, FleetQuery(), 50)
    assert (page.total, page.matching, page.pages, len(page.rows)) == (120, 120, 3, 50)
    assert page.by_state == {"online": 118, "offline": 1, "unknown": 1}
    assert [r["terminal"] for r in page.needing_action] == ["T-02", "T-01"]
    assert page.rows[0]["attention"] == ["offline"]  # the most urgent first by default
    last = fleet_page(fleet, FleetQuery(page=9), 50)
    assert (last.page, len(last.rows)) == (3, 20)
    by_days = fleet_page(fleet, FleetQuery(sort="cert_days_left", descending=True), 200).rows
    assert by_days[-1]["cert_days_left"] is None  # missing values last in either direction
    assert by_days[0]["cert_days_left"] == 700
    found = fleet_page(fleet, FleetQuery(text="31010002", sort="terminal"), 50)
    assert [r["terminal"] for r in found.rows] == ["T-00", "T-01", "T-02"]
    paper = fleet_page(fleet, FleetQuery(attention="paper"), 50)
    assert [(r["station"], r["terminal"]) for r in paper.rows] == [("31010002", "T-01")]
    assert FleetQuery.from_params({"sort": "drop table", "page": "-1", "state": "x"}) == (
        FleetQuery()
    )


# ------------------------------------------------------------------ display


def test_times_are_the_operators_local_time_in_a_form_people_read() -> None:
    t = translator("zh_CN")
    assert display.local_time(NOW, SHANGHAI) == "2026-12-07 17:46"
    assert display.local_time("2026-12-07T09:46:33+00:00", SHANGHAI) == "2026-12-07 17:46"
    assert display.local_time(None, SHANGHAI) == ""
    assert display.ago(t, NOW, NOW - 180) == "3 分钟前"
    assert display.ago(translator("en"), NOW, NOW - 180) == "3 min ago"
    assert display.ago(t, NOW, NOW - 5 * 86400) == "5 天前"
    assert display.ago(t, NOW, None) == "从未"
    assert display.yuan(123_456_789) == "¥1,234,567.89"
    assert display.yuan(-5) == "-¥0.05"
    assert display.yuan(None) == ""


# ------------------------------------------------------------------ charts


def test_nice_ticks_cover_the_values_in_round_steps() -> None:
    assert charts.nice_ticks(0, 97) == [0, 50, 100]
    assert charts.nice_ticks(0, 170) == [0, 50, 100, 150, 200]
    assert charts.nice_ticks(0, 3) == [0, 1, 2, 3]
    assert charts.nice_ticks(0, 0) == [0, 0.5, 1]


def test_a_chart_without_points_says_so_and_labels_are_escaped() -> None:
    empty = charts.line_chart("c", [charts.Series("a", [])], label="L", empty="无", zone=SHANGHAI)
    assert "<svg" not in empty and '<p class="none">无</p>' in empty
    drawn = charts.bar_chart("b", [("<x>", 3), ("y", 5)], label="<script>", empty="")
    assert "<script>" not in drawn and "&lt;script&gt;" in drawn
    assert drawn.count('class="chart-bar"') == 2
    line = charts.line_chart(
        "l",
        [charts.Series("on", [(NOW - 3600, 3), (NOW, 5)]), charts.Series("off", [(NOW, 1)])],
        label="L",
        empty="",
        zone=SHANGHAI,
    )
    assert line.count("<polyline") == 2 and "chart-key-1" in line
    assert "on 2026-12-07 17:46: 5" in line  # hover text in the operator's zone


# ------------------------------------------------------------------ command forms


def test_command_arguments_come_from_typed_fields() -> None:
    assert args_from_form("set_heartbeat_interval", {"seconds": "120"}, {}) == {"seconds": 120}
    assert args_from_form("close_day", {"business_day": "2026-12-06"}, {}) == {
        "business_day": "2026-12-06"
    }
    assert args_from_form("close_day", {}, {}) == {}
    assert args_from_form("install_catalog", {}, {"catalog_b64": b"ab", "sig_b64": b"c"}) == {
        "catalog_b64": "YWI=",
        "sig_b64": "Yw==",
    }
    order = {
        "rollout": "r-2026-12-1.4.0",
        "version": "1.4.0",
        "target": "kiosk-1.4.0.bundle",
        "cohort_percent": "10",
        "not_before": "2026-12-08T01:00",
        "not_after": "2026-12-08T05:00",
    }
    # Staff type local times; the terminal gets them with the dashboard zone's offset.
    assert args_from_form("update", order, {}, ZoneInfo("Asia/Shanghai")) == {
        **order,
        "cohort_percent": 10,
        "not_before": "2026-12-08T01:00:00+08:00",
        "not_after": "2026-12-08T05:00:00+08:00",
    }
    parse_order(args_from_form("update", order, {}))  # what the terminal accepts
    for name, form, problem in (
        ("update", {**order, "not_after": "2026-12-08 05:00:00+08"}, "YYYY-MM-DDTHH:MM"),
        ("update", {**order, "cohort_percent": "0"}, "from 1 to 100"),
        ("set_heartbeat_interval", {"seconds": "9"}, "from 10 to 3600"),
        ("set_heartbeat_interval", {"seconds": "1e3"}, "from 10 to 3600"),
        ("set_heartbeat_interval", {}, "fill it in"),
        ("close_day", {"business_day": "06/12/2026"}, "YYYY-MM-DD"),
        ("enter_maintenance", {"technician": "x" * 65}, "at most 64"),
        ("install_catalog", {}, "choose the file"),
        ("format_disk", {}, "unknown command"),
    ):
        with pytest.raises(CommandRefused, match=problem):
            args_from_form(name, form, {})


def test_every_command_of_the_contract_has_a_form_and_an_update_needs_an_admin() -> None:
    assert set(COMMAND_FORMS) == set(COMMAND_NAMES) == set(COMMAND_LABELS)
    assert role_for(Action.SEND_COMMAND, "update") is Role.ADMIN


# ------------------------------------------------------------------ sign-in


def test_the_proxys_user_is_believed_only_from_the_proxy_and_gets_its_role() -> None:
    config = parse_config(
        {
            "store": "sqlite:////tmp/unused.db",
            "auth": {
                "trusted_proxies": ["10.0.0.0/24"],
                "users": {"zhao": "admin"},
                "default_role": "",
            },
        }
    ).auth
    identities = Identities(config)
    assert identities.identify("10.0.0.7", "zhao") == Staff("zhao", Role.ADMIN)
    with pytest.raises(NotSignedIn) as refused:
        identities.identify("10.0.1.7", "zhao")
    assert refused.value.status == 403
    with pytest.raises(NotSignedIn) as missing:
        identities.identify("10.0.0.7", "")
    assert missing.value.status == 401
    with pytest.raises(NotSignedIn, match="no role"):
        identities.identify("10.0.0.7", "stranger")


def test_a_form_token_is_bound_to_its_user_and_ages() -> None:
    config = parse_config({"store": "sqlite:////tmp/unused.db"}).auth
    tokens = CsrfTokens(config)
    wang = Staff("wang", Role.OPERATOR)
    tokens.check(wang, tokens.token(wang))
    with pytest.raises(NotAllowed, match="another user"):
        tokens.check(Staff("li", Role.OPERATOR), tokens.token(wang))
    with pytest.raises(NotAllowed, match="missing or wrong"):
        tokens.check(wang, tokens.token(wang)[:-2])
    with pytest.raises(NotAllowed, match="missing or wrong"):
        CsrfTokens(config).check(wang, tokens.token(wang))  # another secret


def test_bad_sign_in_settings_fail_at_start_with_the_key() -> None:
    for auth, problem in (
        ({"users": {"a": "root"}}, "auth.users.a"),
        ({"trusted_proxies": ["proxy.example"]}, "not an address or network"),
        ({"trusted_proxies": "127.0.0.1"}, "list of texts"),
        ({"default_role": "boss"}, "auth.default_role"),
    ):
        with pytest.raises(ConfigError, match=re.escape(problem)):
            parse_config({"store": "sqlite:////tmp/unused.db", "auth": auth})
    with pytest.raises(ConfigError, match="dashboard.timezone"):
        parse_config({"store": "sqlite:////tmp/x.db", "dashboard": {"timezone": "Mars/Base"}})


# ------------------------------------------------------------------ pages


def test_pages_show_local_times_say_none_and_escape_what_terminals_send(store: Store) -> None:
    insert_terminals(
        store, [terminal_row(0, last_seen=NOW - 180, float_balance_fen=None, paper=None)]
    )
    with store.transaction() as cursor:
        cursor.execute(
            "INSERT INTO events (station, terminal, received, time, kind, data) "
            "VALUES ('31010000', 'T-00', ?, '2026-12-07T09:46:33+00:00', 'note', ?)",
            (NOW, '{"text": "<img src=x onerror=alert(1)>"}'),
        )
    config = parse_config({"store": "sqlite:////tmp/unused.db"})
    client = Client(Dashboard(store, config, None, clock=lambda: NOW))

    def page(path: str) -> str:
        answer = client.get(
            path, headers={"X-Forwarded-User": "li"}, environ_base={"REMOTE_ADDR": "127.0.0.1"}
        )
        assert answer.status_code == 200, answer.text
        assert "script-src" not in answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
        return answer.text

    terminal = page("/terminal/31010000/T-00")
    assert "2026-12-07 17:46:33" in terminal and "3 分钟前" in terminal
    assert "2026-12-07T09:46:33" not in terminal
    assert "<img src=x" not in terminal and "&lt;img src=x" in terminal
    assert '<p class="none">无</p>' in terminal  # no health history, no end-of-day reports
    fleet = page("/")
    assert "—" in fleet  # no float reported
    alerts = page("/alerts?lang=en")
    assert '<p class="none">None</p>' in alerts
    staff = page("/staff")
    assert '<p class="none">无</p>' in staff


def test_time_axes_are_labelled_on_round_local_times() -> None:
    week = charts.line_chart(
        "w",
        [charts.Series("a", [(NOW - 7 * 86400, 1), (NOW, 2)])],
        label="",
        empty="",
        zone=SHANGHAI,
    )
    labels = re.findall(r'text-anchor="middle">([^<]+)<', week)
    assert labels == ["12-02", "12-04", "12-06"]
    day = charts.line_chart(
        "d",
        [charts.Series("a", [(NOW - 86400, 1), (NOW, 2)])],
        label="",
        empty="",
        zone=SHANGHAI,
    )
    assert re.findall(r'text-anchor="middle">([^<]+)<', day)[:2] == ["18:00", "00:00"]


def test_todays_paid_transactions_show_whether_or_not_the_list_is_sorted_by_them(
    store: Store,
) -> None:
    insert_terminals(store, [terminal_row(n) for n in range(3)])
    with store.transaction() as cursor:
        for seq, (day, outcome) in enumerate(
            [("2026-12-07", "paid")] * 3 + [("2026-12-06", "paid"), ("2026-12-07", "reversed")],
            start=1,
        ):
            cursor.execute(
                "INSERT INTO records (station, terminal, seq, type, time, business_day, "
                "outcome, record, record_hash, received, prev_seq) VALUES "
                "('31010000', 'T-01', ?, 'tx_close', ?, ?, ?, '{}', 'h', ?, ?)",
                (seq, f"{day}T10:00:00+08:00", day, outcome, NOW, seq - 1),
            )
    config = parse_config({"store": "sqlite:////tmp/unused.db"})
    client = Client(Dashboard(store, config, None, clock=lambda: NOW))
    for query in ("", "?sort=today_count&order=desc"):
        text = client.get(
            "/" + query,
            headers={"X-Forwarded-User": "li"},
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        ).text
        row = text[text.index('data-terminal="31010000/T-01"') :]
        cells = re.findall(r'<td class="num">(\d+)</td>', row[: row.index("</tr>")])
        assert cells[-1] == "3", query
