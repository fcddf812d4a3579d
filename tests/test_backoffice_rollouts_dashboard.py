"""Rollouts and maintenance visits through the running back office: real Mosquitto, MQTT
ingest, SQLite and the dashboard over real HTTP (staff named by the proxy's header, forms
with CSRF tokens, admin only). Two simulated terminals receive the signed `update` command
of a 50 % stage; the one in the cohort (decided by the terminal's own rule) reports its
update events as TerminalUpdates.poll does: the first version confirms, the next one is
rolled back by the boot guard and the rollout halts itself."""

import datetime
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from backoffice.commands import signature_valid
from backoffice.config import parse_config
from backoffice.service import BackofficeService
from kiosk.diagnostics.visit import make_visit
from kiosk.journal.record_types import RecordType
from kiosk.updates.rollout import cohort_bucket, in_cohort, parse_order
from simulators.fleet import SimulatedTerminal
from tests.fixtures.backoffice import Broker, service_config, wait_for
from tests.fixtures.chromium import STAFF_HEADER

USERS = {"wang": "operator", "zhao": "admin", "li": "viewer"}
STATION = "31010001"


@pytest.fixture
def backoffice_service(
    tmp_path: Path, backoffice_broker: Broker, command_key: tuple[Path, Path]
) -> Iterator[BackofficeService]:
    table = service_config(
        backoffice_broker, f"sqlite:///{tmp_path / 'backoffice.db'}", command_key[0]
    )
    table["auth"] = {"users": USERS, "default_role": ""}
    service = BackofficeService(parse_config(table))
    service.start()
    wait_for(service.ingest.connected.is_set, "the back office to connect to the broker")
    yield service
    service.stop()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the test reads the 303 itself


OPENER = urllib.request.build_opener(_NoRedirect)


def request(url: str, user: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    sent = urllib.request.Request(url, data=body, headers={STAFF_HEADER: user})
    try:
        with OPENER.open(sent, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def csrf(url: str, user: str) -> str:
    _, page = request(url, user)
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no form"
    return found.group(1)


def one_in_cohort(prefix: str, terminals: list[str]) -> str:
    """A rollout id under which exactly one of the terminals is in a 50 % cohort."""
    for n in range(100):
        rollout = f"{prefix}-{n}"
        inside = [t for t in terminals if cohort_bucket(rollout, STATION, t) < 50]
        if len(inside) == 1:
            return rollout
    raise AssertionError("no such rollout id in 100 tries")


def rollout_form(token: str, rollout: str, version: str, now: datetime.datetime) -> dict[str, str]:
    local = now.astimezone(datetime.timezone(datetime.timedelta(hours=8)))
    return {
        "csrf": token,
        "rollout": rollout,
        "version": version,
        "target": f"kiosk-{version}.bundle",
        "stages": "50,100",
        "not_before": (local - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "not_after": (local + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        "threshold": "20",
        "min_sample": "1",
    }


def state_of(service: BackofficeService, rollout: str) -> str:
    rows = service.store.query("SELECT state FROM rollouts WHERE id = ?", (rollout,))
    return str(rows[0]["state"]) if rows else ""


def test_a_staged_rollout_reaches_the_cohort_and_halts_when_its_version_rolls_back(
    backoffice_service: BackofficeService,
    make_sim_terminal: Callable[..., SimulatedTerminal],
    command_key: tuple[Path, Path],
) -> None:
    office = backoffice_service
    public = serialization.load_pem_public_key(command_key[1].read_bytes())
    fleet = [make_sim_terminal(terminal=f"T-0{n}", command_public_key=public) for n in (1, 2)]
    for sim in fleet:
        sim.start()
        sim.heartbeat()
        sim.health()
    wait_for(
        lambda: len(office.store.query("SELECT 1 FROM terminals WHERE software IS NOT NULL")) == 2,
        "two terminals reporting their software",
    )
    url = office.url
    names = [sim.terminal for sim in fleet]
    first = one_in_cohort("r-1.1.0", names)
    now = datetime.datetime.now(datetime.UTC)

    # Only an admin creates or sends; a form without its token is refused.
    token = csrf(url + "/rollouts", "zhao")
    status, page = request(url + "/rollouts", "wang", rollout_form(token, first, "1.1.0", now))
    assert status == 403 and state_of(office, first) == ""
    status, _ = request(
        url + "/rollouts", "zhao", {**rollout_form(token, first, "1.1.0", now), "csrf": "x"}
    )
    assert status != 303 and state_of(office, first) == ""
    status, _ = request(url + "/rollouts", "zhao", rollout_form(token, first, "1.1.0", now))
    assert status == 303 and state_of(office, first) == "created"
    # A viewer has no form on the page; with a valid token of its own the role still refuses.
    dashboard = office.dashboard
    viewer_token = dashboard.csrf.token(dashboard.identities.identify("127.0.0.1", "li"))
    status, _ = request(url + f"/rollouts/{first}/stage", "li", {"csrf": viewer_token})
    assert status == 403
    status, _ = request(url + f"/rollouts/{first}/stage", "zhao", {"csrf": token})
    assert status == 303 and state_of(office, first) == "running"

    # Each terminal gets the signed order; the terminal's own rule picks the cohort.
    def orders(sim: SimulatedTerminal, rollout: str) -> list[dict[str, Any]]:
        return [
            c for c in sim.commands_seen
            if c.get("name") == "update" and c["args"]["rollout"] == rollout
        ]  # fmt: skip

    wait_for(lambda: all(orders(sim, first) for sim in fleet), "the stage at both terminals")
    inside = []
    for sim in fleet:
        [command] = orders(sim, first)
        assert signature_valid(public, command)  # type: ignore[arg-type]
        order = parse_order(command["args"])
        assert order.cohort_percent == 50
        if in_cohort(order, sim.station, sim.terminal):
            inside.append(sim)
    [updated] = inside
    # What TerminalUpdates.poll publishes once the updater installed and the start confirmed.
    updated.event("update_progress", rollout=first, version="1.1.0", state="installed")
    updated.event("update_installed", version="1.1.0", slot="b", previous_version="1.0.0")
    updated.event("update_confirmed", version="1.1.0", starts=1)
    wait_for(
        lambda: office.store.query(
            "SELECT confirmed FROM rollout_terminals WHERE rollout = ? AND confirmed IS NOT NULL",
            (first,),
        ),
        "the confirmation counted",
    )
    assert state_of(office, first) == "running"

    # The next version is broken: the boot guard rolls it back and the rollout halts.
    second = one_in_cohort("r-1.2.0", [updated.terminal])
    token = csrf(url + "/rollouts", "zhao")
    assert request(url + "/rollouts", "zhao", rollout_form(token, second, "1.2.0", now))[0] == 303
    assert request(url + f"/rollouts/{second}/stage", "zhao", {"csrf": token})[0] == 303
    wait_for(lambda: orders(updated, second), "the broken version's order")
    updated.event("update_installed", version="1.2.0", slot="a", previous_version="1.1.0")
    updated.event(
        "update_rolled_back", from_version="1.2.0", to_version="1.1.0", starts=3,
        reason="not_confirmed",
    )  # fmt: skip
    wait_for(lambda: state_of(office, second) == "halted", "the rollout to halt itself")
    status, _ = request(url + f"/rollouts/{second}/stage", "zhao", {"csrf": token})
    assert status == 400  # no further stage
    alerts = office.store.query(
        "SELECT terminal, detail FROM alerts WHERE kind = 'rollout_halted' AND cleared IS NULL"
    )
    assert [(a["terminal"], second in a["detail"]) for a in alerts] == [(updated.terminal, True)]
    assert office.notifier is not None
    office.notifier.run_once()  # the notifier notes the alert for staff (no URL: skipped)
    notices = office.store.query(
        "SELECT n.state FROM alert_notices n JOIN alerts a ON a.id = n.alert_id "
        "WHERE a.kind = 'rollout_halted'"
    )
    assert len(notices) == 1

    # The dashboard shows both rollouts' states and the fleet's versions.
    status, page = request(url + "/rollouts", "li")
    assert status == 200
    assert f'data-rollout="{second}" data-state="halted"' in page
    assert f'data-rollout="{first}" data-state="running"' in page
    assert "已停止" in page and "1 of 1 terminals that installed 1.2.0 rolled it back" in page
    assert 'id="versions"' in page and "发送下一批" not in page  # a viewer sees no buttons
    admin = request(url + "/rollouts?lang=en", "zhao")[1]
    assert "Send the next stage: 100 %" in admin  # the first rollout's next stage
    assert admin.count("Send the next stage") == 1  # none for the halted one


def test_the_maintenance_page_shows_each_stations_last_visit_overdue_first(
    backoffice_service: BackofficeService, make_sim_terminal: Callable[..., SimulatedTerminal]
) -> None:
    office = backoffice_service
    old = make_sim_terminal(terminal="T-01")
    other = make_sim_terminal(terminal="T-01", station="31010002")
    today = old.today()
    for sim, visited in ((old, today - datetime.timedelta(days=120)), (other, today)):
        sim.start()
        visit = make_visit(
            visited=visited,
            technician="李工",
            fault="读卡器无响应",
            repair="更换 USB 线",
            spare_unit="BJ-1" if sim is old else None,
            cost_bearer="station",
        )
        # Journaled signed and carried by the outbox like any record (as journal_visit does
        # on a terminal: tests/test_kiosk_tool_language.py).
        sim.journal_record(RecordType.MAINTENANCE_VISIT, visit.fields())
    wait_for(
        lambda: len(office.store.query("SELECT 1 FROM maintenance_visits")) == 2,
        "both visits stored",
    )
    status, page = request(office.url + "/maintenance", "li")
    assert status == 200
    rows = re.findall(r'<tr data-station="(\d+)"( class="alert overdue")?>', page)
    assert rows == [("31010001", ' class="alert overdue"'), ("31010002", "")]
    assert "已逾期" in page and "服务站（加盟商家）" in page and "BJ-1" in page
