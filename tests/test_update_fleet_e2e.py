"""A staged rollout proven end to end (issue #20, "How it is proven"; docs/updates.md).

Real: the back office (ingest, store, dashboard, signed commands) on the fleet's TLS
Mosquitto with its ACL; a TUF repository written by kiosk.updates.publish and served over
HTTP; two terminals, each with its own identity, slots and data, its core on simulated
devices, the real FleetLink and TelemetryClient, kiosk.updates.link answering the signed
`update` command, and the boot guard and the updater run as `kiosk-tool update start` and
`kiosk-tool update serve` processes (TUF fetch, signature checks, pip into the B slot).
Simulated (tests.fixtures.updates_fleet.py): the restart of the terminal process, and a
broken version, which dies at every start before it is healthy.

The back office creates a rollout of 1.1.0 and sends its 50 % stage; the rollout id is
chosen so that exactly one of the two terminals is in the cohort (the rule is the
terminal's: kiosk.updates.rollout.cohort_bucket). That one fetches, installs into its B
slot, restarts on trial, stays healthy and confirms; the other installs nothing. Then the
broken 1.2.0 goes out the same way: it never confirms, the boot guard rolls it back after
its starts, update_rolled_back reaches the back office and the rollout halts itself; the
/rollouts page shows both rollouts and both terminals' versions."""

import datetime
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backoffice.rollouts import fleet_versions
from backoffice.service import BackofficeService
from kiosk.updates.events import RollbackReason, UpdateEventKind
from kiosk.updates.rollout import cohort_bucket
from tests.fixtures.backoffice import wait_for
from tests.fixtures.chromium import STAFF_HEADER
from tests.fixtures.mosquitto import STATION, MosquittoBroker, MqttPki
from tests.fixtures.updates import BundleMaker, ReleaseKeys, UpdateServer
from tests.fixtures.updates_fleet import FleetTerminal

BROKEN_MAX_STARTS = 2


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the test reads the 303 itself


OPENER = urllib.request.build_opener(_NoRedirect)


def request(url: str, user: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    sent = urllib.request.Request(url, data=body, headers={STAFF_HEADER: user})
    try:
        with OPENER.open(sent, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def csrf(url: str, user: str) -> str:
    _, page = request(url, user)
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no form"
    return found.group(1)


def rollout_id(prefix: str, inside: str, outside: str) -> str:
    """A rollout id whose 50 % cohort holds `inside` and not `outside` (the terminal's rule)."""
    for n in range(200):
        rollout = f"{prefix}-{n}"
        if cohort_bucket(rollout, STATION, inside) < 50 <= cohort_bucket(rollout, STATION, outside):
            return rollout
    raise AssertionError("no such rollout id in 200 tries")


def start_rollout(office: BackofficeService, rollout: str, version: str, **form: str) -> None:
    """An admin creates the rollout on /rollouts and sends its first stage (50 %)."""
    url = office.url
    token = csrf(url + "/rollouts", "zhao")
    local = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=8)))
    fields = {
        "csrf": token,
        "rollout": rollout,
        "version": version,
        "target": f"kiosk-{version}.bundle",
        "stages": "50,100",
        "not_before": (local - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "not_after": (local + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        "threshold": "20",
        "min_sample": "1",
        **form,
    }
    status, page = request(url + "/rollouts", "zhao", fields)
    assert status == 303, page[-2000:]
    status, page = request(url + f"/rollouts/{rollout}/stage", "zhao", {"csrf": token})
    assert status == 303, page[-2000:]


def answers(office: BackofficeService, rollout: str) -> dict[str, str]:
    """terminal -> the state its cmd_result gave for this rollout's update command."""
    rows = office.store.query(
        "SELECT terminal, args, result FROM commands "
        "WHERE name = 'update' AND result_at IS NOT NULL"
    )
    found = {}
    for row in rows:
        if json.loads(row["args"])["rollout"] == rollout and row["result"]:
            found[str(row["terminal"])] = str(json.loads(row["result"]).get("state"))
    return found


def rollout_row(office: BackofficeService, rollout: str) -> dict[str, Any]:
    [row] = office.store.query("SELECT * FROM rollouts WHERE id = ?", (rollout,))
    return dict(row)


def fate(office: BackofficeService, rollout: str, terminal: str) -> dict[str, Any]:
    rows = office.store.query(
        "SELECT * FROM rollout_terminals WHERE rollout = ? AND terminal = ?", (rollout, terminal)
    )
    return dict(rows[0]) if rows else {}


def versions(office: BackofficeService) -> dict[str, str]:
    return {
        name.split("/")[1]: row.version
        for row in fleet_versions(office.store)
        for name in row.terminals
    }


@pytest.fixture
def fleet(
    tmp_path: Path,
    fleet_backoffice: BackofficeService,
    fresh_mosquitto: MosquittoBroker,
    mqtt_pki: MqttPki,
    command_key: tuple[Path, Path],
    update_server: UpdateServer,
    release_keys: ReleaseKeys,
    make_bundle: BundleMaker,
    platform_sim: Any,
) -> Iterator[list[FleetTerminal]]:
    first = make_bundle("1.0.0")
    terminals = [
        FleetTerminal(
            tmp_path / "fleet",
            name,
            broker=fresh_mosquitto,
            pki=mqtt_pki,
            platform_url=platform_sim.url,
            command_public_key=command_key[1],
            server=update_server,
            release_keys=release_keys,
            first_bundle=first,
        )
        for name in ("TUPD1", "TUPD2")
    ]
    for terminal in terminals:
        terminal.register_with(fleet_backoffice)
    try:
        yield terminals
    finally:
        for terminal in terminals:
            terminal.stop()


def test_a_staged_rollout_installs_in_its_cohort_and_halts_when_the_next_version_rolls_back(
    fleet_backoffice: BackofficeService,
    fleet: list[FleetTerminal],
    update_server: UpdateServer,
    make_bundle: BundleMaker,
) -> None:
    office = fleet_backoffice
    one, two = fleet
    for terminal in fleet:
        assert terminal.boot()["action"] == "normal" and terminal.running == "1.0.0"
    wait_for(
        lambda: versions(office) == {"TUPD1": "1.0.0", "TUPD2": "1.0.0"},
        "both terminals' software in the back office",
    )

    # ---- version 1.1.0 to a 50 % cohort that holds exactly one terminal
    update_server.publish("kiosk-1.1.0.bundle", make_bundle("1.1.0").read_bytes())
    first = rollout_id("r-1.1.0", one.terminal, two.terminal)
    start_rollout(office, first, "1.1.0")
    wait_for(lambda: len(answers(office, first)) == 2, "both terminals to answer the order")
    assert answers(office, first) == {"TUPD1": "accepted", "TUPD2": "not_in_cohort"}
    assert two.order() is None and not list((two.spool_dir / "requests").glob("*.json"))

    # The updater (root) fetches with TUF and installs into the B slot, on trial.
    done = one.serve_updates()
    assert "1.1.0 installed" in done[-1], done
    status = one.store.status()
    assert status.active is not None and status.active.name == "b"
    assert status.active.version == "1.1.0" and status.trial is not None
    one.loop()  # reports the events and asks for the restart, between two payments
    assert one.restarts == ["update 1.1.0 installed"]
    wait_for(lambda: fate(office, first, "TUPD1").get("installed"), "the install counted")

    # The restart: the boot guard counts the trial start; 1.1.0 is healthy and confirms.
    one.stop()
    decision = one.boot()
    assert decision["action"] == "trial" and one.running == "1.1.0"
    one.serve_updates()  # kiosk-updater.path: the confirm request
    assert one.store.status().trial is None
    one.loop()
    wait_for(lambda: fate(office, first, "TUPD1").get("confirmed"), "the confirmation counted")
    wait_for(
        lambda: versions(office) == {"TUPD1": "1.1.0", "TUPD2": "1.0.0"},
        "the new version reported",
    )
    assert rollout_row(office, first)["state"] == "running"
    assert fate(office, first, "TUPD2") == {}  # nothing installed, nothing counted
    assert two.store.status().active.version == "1.0.0"  # type: ignore[union-attr]

    # ---- the broken 1.2.0: it dies at every start, so it never confirms
    update_server.publish("kiosk-1.2.0.bundle", make_bundle("1.2.0").read_bytes())
    one.crashes_at_start.add("1.2.0")
    second = rollout_id("r-1.2.0", one.terminal, two.terminal)
    start_rollout(office, second, "1.2.0", max_starts=str(BROKEN_MAX_STARTS))
    wait_for(lambda: len(answers(office, second)) == 2, "both terminals to answer the order")
    assert answers(office, second) == {"TUPD1": "accepted", "TUPD2": "not_in_cohort"}
    assert "1.2.0 installed" in one.serve_updates()[-1]
    assert one.store.status().active.name == "a"  # type: ignore[union-attr]
    one.loop()
    assert one.restarts[-1] == "update 1.2.0 installed"
    one.stop()
    for start in range(1, BROKEN_MAX_STARTS + 1):
        decision = one.boot()
        assert (decision["action"], decision["starts"]) == ("trial", start)
        assert one.running is None, "the broken version never comes up"
    assert rollout_row(office, second)["state"] == "running"

    # The start after its last: the boot guard switches back to 1.1.0, which reports it.
    decision = one.boot()
    assert decision["action"] == "rolled_back" and decision["rolled_back_from"] == "1.2.0"
    assert one.running == "1.1.0" and one.store.status().active.name == "b"  # type: ignore[union-attr]
    rolled = [e for e in one.store.status().events if e["type"] == UpdateEventKind.ROLLED_BACK]
    assert rolled[-1]["reason"] == RollbackReason.NOT_CONFIRMED
    one.loop()
    wait_for(lambda: rollout_row(office, second)["state"] == "halted", "the rollout to halt")
    assert fate(office, second, "TUPD1")["rollback_reason"] == RollbackReason.NOT_CONFIRMED
    # One restart per installed version, none for the one rolled back.
    assert one.restarts == ["update 1.1.0 installed", "update 1.2.0 installed"]
    token = csrf(office.url + "/rollouts", "zhao")
    refused, _ = request(office.url + f"/rollouts/{second}/stage", "zhao", {"csrf": token})
    assert refused == 400  # a halted rollout sends no further stage
    alerts = office.store.query(
        "SELECT terminal, detail FROM alerts WHERE kind = 'rollout_halted' AND cleared IS NULL"
    )
    assert [(a["terminal"], second in a["detail"]) for a in alerts] == [("TUPD1", True)]

    # ---- what staff see: both rollouts, and each terminal's version
    assert versions(office) == {"TUPD1": "1.1.0", "TUPD2": "1.0.0"}
    code, page = request(office.url + "/rollouts?lang=en", "li")
    assert code == 200
    assert f'data-rollout="{first}" data-state="running"' in page
    assert f'data-rollout="{second}" data-state="halted"' in page
    assert "1 of 1 terminals that installed 1.2.0 rolled it back" in page
    table = page[page.index('id="versions"') : page.index('id="rollouts"')]
    for version, name in (("1.1.0", "TUPD1"), ("1.0.0", "TUPD2")):
        row = re.search(rf'<tr data-version="{re.escape(version)}">(.*?)</tr>', table, re.S)
        assert row and f"{STATION}/{name}" in row.group(1), table
    assert 'data-version="1.2.0"' not in table
    assert f"{STATION}/TUPD1: rolled back (not_confirmed)" in page
