"""The dashboard in a real headless Chromium and over real HTTP, against the running back
office (real Mosquitto, MQTT ingest, SQLite): staff signed in by the proxy's header, forms
with CSRF tokens, commands from typed forms, reports and their CSV."""

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives import serialization

from backoffice.commands import signature_valid
from backoffice.config import parse_config
from backoffice.contract import schema_for
from backoffice.service import BackofficeService
from simulators.fleet import SimulatedTerminal
from tests.fixtures.backoffice import Broker, service_config, wait_for
from tests.fixtures.chromium import STAFF_HEADER

USERS = {"wang": "operator", "zhao": "admin", "li": "viewer"}


@pytest.fixture
def dashboard(
    tmp_path: Path, backoffice_broker: Broker, command_key: tuple[Path, Path]
) -> Iterator[BackofficeService]:
    """The whole back office with three staff members of each role."""
    table = service_config(
        backoffice_broker, f"sqlite:///{tmp_path / 'backoffice.db'}", command_key[0]
    )
    table["auth"] = {"users": USERS, "default_role": ""}
    service = BackofficeService(parse_config(table))
    service.start()
    wait_for(service.ingest.connected.is_set, "the back office to connect to the broker")
    yield service
    service.stop()


def start_fleet(
    make: Callable[..., SimulatedTerminal],
    count: int,
    service: BackofficeService,
    **options: Any,
) -> list[SimulatedTerminal]:
    """Terminals whose station certificates are registered (as staff would with
    kiosk-backoffice cert register), so their records verify instead of being quarantined."""
    fleet = [make(terminal=f"T-{n:02d}", **options) for n in range(1, count + 1)]
    for sim in fleet:
        sim.register_with(service.store)
        sim.start()
        sim.heartbeat()
        sim.health()
    return fleet


def fleet_size(service: BackofficeService) -> int:
    return len(service.store.query("SELECT 1 FROM terminals WHERE health_at IS NOT NULL"))


def reload_until(page: Any, selector: str, what: str) -> Any:
    def appears() -> bool:
        page.reload()
        return page.locator(selector).count() > 0

    return wait_for(appears, what)


def request(
    url: str,
    user: str | None = "wang",
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    sent = dict(headers or {})
    if user is not None:
        sent[STAFF_HEADER] = user
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data=body, headers=sent), timeout=10
        ) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def csrf_token(url: str, user: str) -> str:
    _, _, page = request(url, user)
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no form"
    return found.group(1)


def test_the_fleet_page_lists_the_terminals_and_shows_an_alert_when_paper_runs_out(
    dashboard: BackofficeService,
    make_sim_terminal: Callable[..., SimulatedTerminal],
    staff_page: Callable[[str], Any],
) -> None:
    fleet = start_fleet(make_sim_terminal, 3, dashboard)
    wait_for(lambda: fleet_size(dashboard) == 3, "three terminals in the store")
    page = staff_page("li")
    page.goto(dashboard.url + "/")
    assert page.title() == "终端总览"
    assert page.locator("#staff").inner_text() == "li"
    rows = page.locator("#fleet tr[data-terminal]")
    assert rows.count() == 3
    assert page.locator('tr[data-terminal="31010001/T-02"] td.online').inner_text() == "在线"
    assert page.locator("#count-online b").inner_text() == "3"
    assert page.locator("#attention").count() == 0
    assert "一切正常" in page.locator("p.none.good").first.inner_text()
    fleet[1].paper = "out"
    fleet[1].health()
    reload_until(page, 'tr.alert[data-terminal="31010001/T-02"]', "the paper-out alert row")
    assert "缺纸" in page.locator('#fleet tr[data-terminal="31010001/T-02"] td.alerts').inner_text()
    assert page.locator('#attention tr[data-terminal="31010001/T-02"]').count() == 1
    assert page.locator("#count-paper b").inner_text() == "1"
    page.goto(dashboard.url + "/?lang=en&attention=paper")
    assert page.locator("#fleet tr[data-terminal]").count() == 1
    assert "Receipt paper out" in page.locator("#fleet td.alerts").inner_text()
    page.goto(dashboard.url + "/?lang=en&alerts=1")  # the old link still filters
    assert page.locator("#fleet tr[data-terminal]").count() == 1


def test_an_operator_acknowledges_an_alert_in_the_browser_under_the_proxys_name(
    dashboard: BackofficeService,
    make_sim_terminal: Callable[..., SimulatedTerminal],
    staff_page: Callable[[str], Any],
) -> None:
    [sim] = start_fleet(make_sim_terminal, 1, dashboard)
    sim.event("tamper", switch="door")
    viewer = staff_page("li")
    viewer.goto(dashboard.url + "/alerts?lang=en")
    reload_until(viewer, 'tr[data-kind="tamper"]', "the tamper alert")
    assert viewer.locator('tr[data-kind="tamper"] button').count() == 0  # viewers only look
    page = staff_page("wang")
    page.goto(dashboard.url + "/alerts?lang=en")
    with page.expect_navigation():
        page.click('tr[data-kind="tamper"] button')
    assert page.locator('tr[data-kind="tamper"]').count() == 0
    assert page.locator("p.none").inner_text() == "None"
    acked = dashboard.store.query("SELECT acked_by FROM alerts WHERE kind = 'tamper'")
    assert acked == [{"acked_by": "wang"}]
    [action] = dashboard.store.query("SELECT staff, role, action, terminal FROM staff_actions")
    assert action == {
        "staff": "wang",
        "role": "operator",
        "action": "acknowledge_alert",
        "terminal": "T-01",
    }


def test_a_signed_command_from_its_typed_form_reaches_the_terminal_and_shows_its_result(
    dashboard: BackofficeService,
    make_sim_terminal: Callable[..., SimulatedTerminal],
    command_key: tuple[Path, Path],
    staff_page: Callable[[str], Any],
) -> None:
    public = serialization.load_pem_public_key(command_key[1].read_bytes())
    [sim] = start_fleet(make_sim_terminal, 1, dashboard, command_public_key=public)
    wait_for(lambda: fleet_size(dashboard) == 1, "the terminal")
    page = staff_page("wang")
    page.goto(dashboard.url + "/terminal/31010001/T-01?lang=en")
    assert page.locator("#command-reboot button").count() == 0  # an admin's command
    form = page.locator("#command-set_heartbeat_interval")
    assert form.locator('input[name="seconds"]').get_attribute("type") == "number"
    form.locator('input[name="seconds"]').fill("120")
    # The form posts and is redirected back: a reload before that navigation has ended
    # failed now and then ("Not attached to an active page").
    with page.expect_navigation():
        form.locator("button").click()
    wait_for(lambda: sim.commands_seen, "the command at the terminal")
    [command] = sim.commands_seen
    jsonschema.validate(command, schema_for("cmd"))
    assert signature_valid(public, command)  # type: ignore[arg-type]
    assert (command["name"], command["args"], command["terminal"]) == (
        "set_heartbeat_interval",
        {"seconds": 120},
        "T-01",
    )
    reload_until(page, "text=Command done", "the command's result on the page")
    assert page.locator("#commands td").nth(2).inner_text() == "wang"
    [action] = dashboard.store.query("SELECT staff, action, detail FROM staff_actions")
    assert (action["staff"], action["action"]) == ("wang", "send_command")
    assert json.loads(action["detail"])["command"] == command["id"]


def test_roles_are_enforced_and_every_form_needs_its_token(
    dashboard: BackofficeService, make_sim_terminal: Callable[..., SimulatedTerminal]
) -> None:
    [sim] = start_fleet(make_sim_terminal, 1, dashboard)
    sim.event("tamper", switch="door")
    wait_for(lambda: dashboard.store.query("SELECT id FROM alerts"), "the tamper alert")
    [alert] = dashboard.store.query("SELECT id FROM alerts")
    ack = f"{dashboard.url}/alerts/{alert['id']}/ack"
    terminal = f"{dashboard.url}/terminal/31010001/T-01"
    # No user from the proxy, or one without a role: not signed in.
    assert request(dashboard.url + "/", user=None)[0] == 401
    status, _, body = request(dashboard.url + "/", user="mallory")
    assert status == 403 and "[auth.users]" in body
    # A viewer reads but cannot act, even with a valid token of their own.
    assert request(dashboard.url + "/", user="li")[0] == 200
    token = csrf_token(f"{terminal}?lang=en", "li")
    status, _, body = request(ack, "li", {"csrf": token})
    assert status == 403 and "needs the operator role" in body
    # An operator's form without its token, or with another user's, is refused.
    assert request(ack, "wang", {})[0] == 403
    assert request(ack, "wang", {"csrf": token})[0] == 403
    # An operator may not restart a terminal; an admin may (commands are signed and sent).
    command = f"{terminal}/command/reboot"
    status, _, body = request(command, "wang", {"csrf": csrf_token(terminal, "wang")})
    assert status == 403 and "admin" in body
    assert request(command, "zhao", {"csrf": csrf_token(terminal, "zhao")})[0] == 200
    assert [c["sent_by"] for c in dashboard.store.query("SELECT sent_by FROM commands")] == ["zhao"]
    # A form from another site is refused whatever it carries.
    status, _, _ = request(
        ack,
        "wang",
        {"csrf": csrf_token(terminal, "wang")},
        headers={"Origin": "http://evil.example"},
    )
    assert status == 403
    assert request(ack, "wang", {"csrf": csrf_token(terminal, "wang")})[0] == 200
    assert [r["action"] for r in dashboard.store.query("SELECT action FROM staff_actions")] == [
        "send_command",
        "acknowledge_alert",
    ]


def test_a_typed_command_field_out_of_range_is_one_clear_error_and_sends_nothing(
    dashboard: BackofficeService, make_sim_terminal: Callable[..., SimulatedTerminal]
) -> None:
    start_fleet(make_sim_terminal, 1, dashboard)
    wait_for(lambda: fleet_size(dashboard) == 1, "the terminal")
    terminal = f"{dashboard.url}/terminal/31010001/T-01"
    status, _, body = request(
        f"{terminal}/command/set_heartbeat_interval",
        "wang",
        {"csrf": csrf_token(terminal, "wang"), "seconds": "5"},
    )
    assert status == 400 and "not a whole number from 10 to 3600" in body
    assert dashboard.store.query("SELECT id FROM commands") == []


def test_requests_from_an_address_that_is_not_the_proxy_are_refused(
    tmp_path: Path, backoffice_broker: Broker
) -> None:
    table = service_config(backoffice_broker, f"sqlite:///{tmp_path / 'bo.db'}", None)
    table["auth"] = {"trusted_proxies": ["10.1.2.3"]}
    service = BackofficeService(parse_config(table))
    service.start()
    try:
        status, _, body = request(service.url + "/", user="wang")
        assert status == 403 and "sign-in proxy" in body
        assert request(service.url + "/healthz", user=None)[0] == 200
    finally:
        service.stop()


def test_reports_render_and_export_csv_and_bad_dates_are_one_clear_error(
    dashboard: BackofficeService, make_sim_terminal: Callable[..., SimulatedTerminal]
) -> None:
    [sim] = start_fleet(make_sim_terminal, 1, dashboard)
    today = sim.today().isoformat()  # the station's business day, not the machine's
    sim.pay(5_000, 100)
    wait_for(lambda: sim.backlog() == 0, "the record")
    status, kind, body = request(dashboard.url + f"/reports/daily?day={today}&format=csv")
    assert (status, kind) == (200, "text/csv; charset=utf-8")
    assert "no_day_close" in body and "5100" in body
    status, _, body = request(dashboard.url + f"/reports/daily?day={today}")
    assert status == 200 and 'class="row mismatch"' in body and "¥51.00" in body
    status, _, body = request(dashboard.url + "/reports/daily?day=yesterday")
    assert status == 400 and "dates are YYYY-MM-DD" in body
    status, _, body = request(dashboard.url + "/reports/commission?month=2020-01")
    assert status == 200 and '<p class="none">该期间没有数据。</p>' in body
    status, _, body = request(dashboard.url + "/api/fleet")
    assert json.loads(body)[0]["today_count"] in (0, 1)  # business day is the station's zone
    status, _, body = request(dashboard.url + "/terminal/31010001/T-01")
    assert status == 200 and "<svg" in body
    assert request(dashboard.url + "/terminal/1/none")[0] == 404


def test_the_trends_page_draws_its_charts_in_the_browser(
    dashboard: BackofficeService,
    make_sim_terminal: Callable[..., SimulatedTerminal],
    staff_page: Callable[[str], Any],
) -> None:
    [sim] = start_fleet(make_sim_terminal, 1, dashboard)
    sim.pay(5_000, 100)
    sim.event("tamper", switch="door")
    wait_for(lambda: sim.backlog() == 0, "the record")
    wait_for(lambda: dashboard.store.query("SELECT 1 FROM fleet_samples"), "a fleet sample")
    page = staff_page("li")
    page.goto(dashboard.url + "/overview?lang=en")
    for chart in ("#chart-online", "#chart-transactions", "#chart-turnover", "#chart-alerts"):
        assert page.locator(f"{chart} svg").count() == 1, chart
        assert page.locator(f"{chart} svg").bounding_box()["height"] > 50  # type: ignore[index]
    assert page.locator("#chart-transactions rect.chart-bar").count() == 31
    # Nothing in the browser ran a script: the page forbids them.
    assert page.evaluate("document.scripts.length") == 0
