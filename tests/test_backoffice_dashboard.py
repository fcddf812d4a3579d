"""The dashboard in a real headless Chromium, and its pages and CSV over real HTTP."""

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
from cryptography.hazmat.primitives import serialization

from backoffice.commands import signature_valid
from backoffice.contract import schema_for
from backoffice.fleet_sim import SimulatedTerminal
from backoffice.service import BackofficeService
from tests.fixtures.backoffice import wait_for


def start_fleet(
    make: Callable[..., SimulatedTerminal], count: int, **options: Any
) -> list[SimulatedTerminal]:
    fleet = [make(terminal=f"T-{n:02d}", **options) for n in range(1, count + 1)]
    for sim in fleet:
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


def test_the_fleet_page_lists_the_terminals_and_shows_an_alert_when_paper_runs_out(
    backoffice_service: BackofficeService,
    make_sim_terminal: Callable[..., SimulatedTerminal],
    chromium_page: Any,
) -> None:
    fleet = start_fleet(make_sim_terminal, 3)
    wait_for(lambda: fleet_size(backoffice_service) == 3, "three terminals in the store")
    page = chromium_page
    page.goto(backoffice_service.url + "/")
    assert page.title() == "终端总览"
    rows = page.locator("#fleet tr[data-terminal]")
    assert rows.count() == 3
    assert page.locator('tr[data-terminal="31010001/T-02"] td.online').inner_text() == "在线"
    assert page.locator("tr.alert").count() == 0
    fleet[1].paper = "out"
    fleet[1].health()
    reload_until(page, 'tr.alert[data-terminal="31010001/T-02"]', "the paper-out alert row")
    assert "缺纸" in page.locator('tr[data-terminal="31010001/T-02"] td.alerts').inner_text()
    page.goto(backoffice_service.url + "/?lang=en&alerts=1")
    assert page.locator("#fleet tr[data-terminal]").count() == 1
    assert "Receipt paper out" in page.locator("td.alerts").inner_text()


def test_staff_acknowledge_an_alert_in_the_browser(
    backoffice_service: BackofficeService,
    make_sim_terminal: Callable[..., SimulatedTerminal],
    chromium_page: Any,
) -> None:
    [sim] = start_fleet(make_sim_terminal, 1)
    sim.event("tamper", switch="door")
    page = chromium_page
    page.goto(backoffice_service.url + "/alerts?lang=en")
    reload_until(page, 'tr[data-kind="tamper"]', "the tamper alert")
    page.fill('tr[data-kind="tamper"] input[name="by"]', "Wang Fang")
    page.click('tr[data-kind="tamper"] button')
    page.wait_for_load_state()
    assert page.locator('tr[data-kind="tamper"]').count() == 0
    acked = backoffice_service.store.query("SELECT acked_by FROM alerts WHERE kind = 'tamper'")
    assert acked == [{"acked_by": "Wang Fang"}]


def test_a_signed_command_sent_from_the_terminal_page_shows_its_result(
    backoffice_service: BackofficeService,
    make_sim_terminal: Callable[..., SimulatedTerminal],
    command_key: tuple[Path, Path],
    chromium_page: Any,
) -> None:
    public = serialization.load_pem_public_key(command_key[1].read_bytes())
    [sim] = start_fleet(make_sim_terminal, 1, command_public_key=public)
    wait_for(lambda: fleet_size(backoffice_service) == 1, "the terminal")
    page = chromium_page
    page.goto(backoffice_service.url + "/terminal/31010001/T-01?lang=en")
    page.select_option('#command select[name="name"]', "set_heartbeat_interval")
    page.fill('#command input[name="args"]', '{"seconds": 120}')
    page.fill('#command input[name="by"]', "Li Lei")
    # The form posts and is redirected back: a reload before that navigation has ended
    # failed now and then ("Not attached to an active page").
    with page.expect_navigation():
        page.click("#command button")
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


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_reports_render_and_export_csv_and_bad_dates_are_one_clear_error(
    backoffice_service: BackofficeService, make_sim_terminal: Callable[..., SimulatedTerminal]
) -> None:
    [sim] = start_fleet(make_sim_terminal, 1)
    today = time.strftime("%Y-%m-%d")
    sim.pay(5_000, 100)
    wait_for(lambda: sim.backlog() == 0, "the record")
    status, kind, body = get(backoffice_service.url + f"/reports/daily?day={today}&format=csv")
    assert (status, kind) == (200, "text/csv; charset=utf-8")
    assert body.splitlines()[1].endswith("0,1,5100,no_day_close") or "no_day_close" in body
    status, _, body = get(backoffice_service.url + f"/reports/daily?day={today}")
    assert status == 200 and 'class="row mismatch"' in body
    status, _, body = get(backoffice_service.url + "/reports/daily?day=yesterday")
    assert status == 400 and "dates are YYYY-MM-DD" in body
    status, _, body = get(backoffice_service.url + "/api/fleet")
    assert json.loads(body)[0]["today_count"] in (0, 1)  # business day is the station's zone
    status, _, body = get(backoffice_service.url + "/terminal/31010001/T-01")
    assert status == 200 and "<svg" in body
    assert get(backoffice_service.url + "/terminal/1/none")[0] == 404


def test_a_cross_site_form_cannot_acknowledge_alerts(
    backoffice_service: BackofficeService,
) -> None:
    request = urllib.request.Request(
        backoffice_service.url + "/alerts/1/ack",
        data=b"by=mallory",
        headers={"Origin": "http://evil.example"},
        method="POST",
    )
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("the request was accepted")
    except urllib.error.HTTPError as exc:
        assert exc.code == 403
