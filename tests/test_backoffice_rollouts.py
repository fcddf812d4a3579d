"""Staged rollouts in the back office on a real SQLite store, fed through the real ingestor:
stages sent as signed `update` commands the terminal's own rules accept, each terminal's
update events counted once, the halt when too many roll back, and the alert it raises.
Maintenance visits journaled by a terminal's real journal arrive through the outbox."""

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from backoffice.commands import sign_command, signature_valid
from backoffice.config import Thresholds
from backoffice.ingest import Ingestor, release_quarantine
from backoffice.maintenance import last_visits
from backoffice.rollouts import (
    Counts,
    RolloutPlan,
    RolloutRefused,
    RolloutState,
    create_rollout,
    fleet_versions,
    halt_rollout,
    parse_stages,
    plan_problem,
    rollout_views,
    send_next_stage,
    should_halt,
)
from backoffice.store import Store
from kiosk.diagnostics.visit import journal_visit, make_visit
from kiosk.updates.rollout import in_cohort, parse_order
from simulators.fleet import SimulatedTerminal

STATION = "31010001"
NOW = datetime.datetime(2026, 5, 1, 2, 0, tzinfo=datetime.UTC)
Message = tuple[str, bytes]


def topic(terminal: str, kind: str) -> str:
    return f"kiosk/v1/{STATION}/{terminal}/{kind}"


def event(terminal: str, kind: str, **data: Any) -> Message:
    body = {"v": 1, "time": "2026-05-01T10:00:00+08:00", "kind": kind, "data": data}
    return topic(terminal, "event"), json.dumps(body).encode()


def status(terminal: str, software: str) -> Message:
    body = {
        "v": 1,
        "time": "2026-05-01T10:00:00+08:00",
        "state": "online",
        "software": software,
        "firmware": None,
        "boot_id": f"{abs(hash(terminal)):032x}"[:32],
    }
    return topic(terminal, "status"), json.dumps(body).encode()


def plan(**over: Any) -> RolloutPlan:
    values: dict[str, Any] = {
        "rollout": "r-1.1.0",
        "version": "1.1.0",
        "target": "kiosk-1.1.0.bundle",
        "stages": (50, 100),
        "not_before": NOW - datetime.timedelta(hours=1),
        "not_after": NOW + datetime.timedelta(days=2),
    }
    values.update(over)
    return RolloutPlan(**values)


class Office:
    """A back-office store, its ingestor and a recording sender of signed commands."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = Store(f"sqlite:///{tmp_path / 'bo.db'}")
        self.ingestor = Ingestor(self.store, Thresholds(), lambda *_: None, clock=self.clock)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.sent: list[dict[str, Any]] = []
        self.now = NOW.timestamp()

    def clock(self) -> float:
        return self.now

    def send(self, station: str, terminal: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        command = sign_command(
            self.key,
            name,
            args,
            station=station,
            terminal=terminal,
            now=datetime.datetime.fromtimestamp(self.now, datetime.UTC),
            ttl_s=600,
        )
        self.sent.append(command)
        return command

    def feed(self, *messages: Message) -> None:
        self.ingestor.handle_batch(messages)

    def state(self, rollout: str = "r-1.1.0") -> tuple[str, str | None]:
        row = self.store.query("SELECT state, state_reason FROM rollouts WHERE id = ?", (rollout,))
        return row[0]["state"], row[0]["state_reason"]

    def open_alerts(self, kind: str) -> list[dict[str, Any]]:
        return self.store.query(
            "SELECT station, terminal, detail FROM alerts WHERE kind = ? AND cleared IS NULL",
            (kind,),
        )


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    office = Office(tmp_path)
    yield office
    office.store.close()


@pytest.mark.parametrize(
    ("installed", "rolled_back", "threshold", "min_sample", "halts"),
    [
        (5, 1, 20.0, 2, False),  # exactly the threshold: not past it
        (5, 2, 20.0, 2, True),
        (1, 1, 20.0, 2, False),  # one terminal is not a sample
        (2, 1, 20.0, 2, True),
        (0, 0, 20.0, 1, False),
        (10, 3, 50.0, 2, False),
    ],
)
def test_the_halt_rule(
    installed: int, rolled_back: int, threshold: float, min_sample: int, halts: bool
) -> None:
    assert should_halt(Counts(installed, 0, rolled_back), threshold, min_sample) is halts


@pytest.mark.parametrize(
    ("over", "problem"),
    [
        ({"rollout": "r 1"}, "rollout:"),
        ({"target": "../x"}, "target:"),
        ({"version": "one"}, "version:"),
        ({"stages": (50, 10)}, "larger than the one before"),
        ({"stages": (0, 100)}, "from 1 to 100"),
        ({"not_after": NOW - datetime.timedelta(days=1)}, "later than not before"),
        ({"threshold_percent": 100.0}, "threshold"),
        ({"min_sample": 0}, "minimum sample"),
    ],
)
def test_a_bad_plan_is_refused_with_what_to_change(over: dict[str, Any], problem: str) -> None:
    found = plan_problem(plan(**over))
    assert found is not None and problem in found
    assert plan_problem(plan()) is None


def test_stages_are_read_from_the_form() -> None:
    assert parse_stages(" 1, 10;50 ,100") == (1, 10, 50, 100)
    with pytest.raises(RolloutRefused, match="percents separated by commas"):
        parse_stages("ten")


def test_a_stage_reaches_every_terminal_signed_and_the_terminal_accepts_its_order(
    office: Office,
) -> None:
    office.feed(status("T-01", "1.0.0"), status("T-02", "1.0.0"))
    create_rollout(office.store, plan(), "zhao", office.now)
    with pytest.raises(RolloutRefused, match="already carries 1.1.0"):
        create_rollout(office.store, plan(rollout="r-again"), "zhao", office.now)
    percent, count = send_next_stage(office.store, office.send, "r-1.1.0", "zhao", office.now)
    assert (percent, count) == (50, 2)
    assert {(c["terminal"], c["name"]) for c in office.sent} == {
        ("T-01", "update"),
        ("T-02", "update"),
    }
    for command in office.sent:
        assert signature_valid(office.key.public_key(), command)
        order = parse_order(command["args"])  # the terminal's own check
        assert order.cohort_percent == 50 and order.version == "1.1.0"
        assert order.not_before >= NOW  # the window opens no earlier than the stage
        in_cohort(order, STATION, command["terminal"])  # decidable on the terminal
    assert office.state() == (RolloutState.RUNNING, None)
    send_next_stage(office.store, office.send, "r-1.1.0", "zhao", office.now)
    assert office.state()[0] == RolloutState.COMPLETE
    with pytest.raises(RolloutRefused, match="sent every stage"):
        send_next_stage(office.store, office.send, "r-1.1.0", "zhao", office.now)


def test_rollbacks_past_the_threshold_halt_the_rollout_and_alert_staff(office: Office) -> None:
    office.feed(status("T-01", "1.0.0"), status("T-02", "1.0.0"))
    create_rollout(office.store, plan(stages=(50, 75, 100)), "zhao", office.now)
    send_next_stage(office.store, office.send, "r-1.1.0", "zhao", office.now)
    installed = {"version": "1.1.0", "slot": "b", "previous_version": "1.0.0"}
    office.feed(
        event("T-01", "update_progress", rollout="r-1.1.0", version="1.1.0", state="installed"),
        event("T-01", "update_installed", **installed),
        event("T-01", "update_installed", **installed),  # delivered twice: counted once
        event("T-01", "update_confirmed", version="1.1.0", starts=1),
        status("T-01", "1.1.0"),
    )
    assert office.state()[0] == RolloutState.RUNNING
    rolled_back = {"from_version": "1.1.0", "to_version": "1.0.0", "starts": 3}
    office.feed(
        event("T-02", "update_installed", **installed),
        event("T-02", "update_rolled_back", **rolled_back, reason="technician"),
    )
    # A technician's rollback is a choice, not a failed start: it does not count.
    assert office.state()[0] == RolloutState.RUNNING
    office.store.query("DELETE FROM rollout_terminals WHERE terminal = 'T-02'")
    office.feed(
        event("T-02", "update_installed", **installed),
        event("T-02", "update_rolled_back", **rolled_back, reason="not_confirmed"),
    )
    state, reason = office.state()
    assert state == RolloutState.HALTED
    assert reason is not None and "1 of 2" in reason and "1.1.0" in reason
    alerts = office.open_alerts("rollout_halted")
    assert [(a["terminal"], "r-1.1.0" in a["detail"]) for a in alerts] == [("T-02", True)]
    before = len(office.sent)
    with pytest.raises(RolloutRefused, match="halted"):
        send_next_stage(office.store, office.send, "r-1.1.0", "zhao", office.now)
    assert len(office.sent) == before  # nothing more went out
    [view] = rollout_views(office.store)
    assert (view.counts.installed, view.counts.confirmed, view.counts.rolled_back) == (2, 1, 1)
    assert view.next_percent is None
    # Events after the halt change nothing and raise nothing new.
    office.feed(event("T-02", "update_rolled_back", **rolled_back, reason="not_confirmed"))
    assert len(office.open_alerts("rollout_halted")) == 1


def test_events_of_other_versions_and_of_no_rollout_are_not_counted(office: Office) -> None:
    office.feed(status("T-01", "1.0.0"))
    create_rollout(office.store, plan(min_sample=1), "zhao", office.now)
    # Not started yet (created): its version's events are not watched.
    office.feed(event("T-01", "update_rolled_back", from_version="1.1.0", reason="not_confirmed"))
    assert office.state()[0] == RolloutState.CREATED
    send_next_stage(office.store, office.send, "r-1.1.0", "zhao", office.now)
    office.feed(
        event("T-01", "update_installed", version="1.2.0"),
        event("T-01", "update_rolled_back", from_version="1.2.0", reason="not_confirmed"),
        event("T-01", "update_progress", rollout="r-other", state="failed"),
    )
    assert office.state()[0] == RolloutState.RUNNING
    assert rollout_views(office.store)[0].terminals == []


def test_an_admin_halts_by_hand_once(office: Office) -> None:
    create_rollout(office.store, plan(), "zhao", office.now)
    assert halt_rollout(office.store, "r-1.1.0", "halted by zhao", office.now)
    assert not halt_rollout(office.store, "r-1.1.0", "halted by zhao", office.now)
    assert office.state() == (RolloutState.HALTED, "halted by zhao")
    with pytest.raises(RolloutRefused, match="no rollout"):
        halt_rollout(office.store, "r-none", "x", office.now)


def test_a_closed_window_sends_nothing(office: Office) -> None:
    office.feed(status("T-01", "1.0.0"))
    create_rollout(office.store, plan(), "zhao", office.now)
    office.now += 3 * 86400
    with pytest.raises(RolloutRefused, match="window has closed"):
        send_next_stage(office.store, office.send, "r-1.1.0", "zhao", office.now)
    assert office.sent == []


def test_the_fleet_versions_come_from_what_terminals_report(office: Office) -> None:
    office.feed(status("T-01", "1.0.0"), status("T-02", "1.1.0"), status("T-03", "1.1.0"))
    create_rollout(office.store, plan(), "zhao", office.now)
    send_next_stage(office.store, office.send, "r-1.1.0", "zhao", office.now)
    office.feed(
        event("T-02", "update_installed", version="1.1.0"),
        event("T-03", "update_installed", version="1.1.0"),
        event("T-03", "update_confirmed", version="1.1.0"),
    )
    versions = {v.version: (v.terminals, v.on_trial) for v in fleet_versions(office.store)}
    assert versions == {
        "1.1.0": ((f"{STATION}/T-02", f"{STATION}/T-03"), 1),
        "1.0.0": ((f"{STATION}/T-01",), 0),
    }
    assert [v.version for v in fleet_versions(office.store)] == ["1.1.0", "1.0.0"]


def test_maintenance_visits_arrive_through_the_outbox_and_show_overdue_first(
    office: Office, tmp_path: Path
) -> None:
    def sim(terminal: str) -> SimulatedTerminal:
        return SimulatedTerminal(
            tmp_path / terminal, station=STATION, terminal=terminal, host="127.0.0.1", port=1
        )

    one, two = sim("T-01"), sim("T-02")
    one.register_with(office.store)
    visit = make_visit(
        visited=datetime.date(2026, 1, 10),
        technician="李工",
        fault="打印机卡纸",
        repair="更换打印头",
        spare_unit="BJ-007",
        cost_bearer="station",
    )
    assert visit.next_inspection == datetime.date(2026, 4, 10)
    seq = journal_visit(one.conn, one.journal, visit)
    record = one.journal.last_of_type("maintenance_visit")
    assert record is not None and record["seq"] == seq and "sig" in record
    later = make_visit(
        visited=datetime.date(2026, 4, 20),
        technician="王工",
        fault="none",
        repair="quarterly inspection",
        spare_unit=None,
        cost_bearer="none",
    )
    journal_visit(two.conn, two.journal, later)
    office.feed(
        (topic("T-01", "outbox"), one.outbox_envelope(seq, 0, record)),
        (topic("T-01", "outbox"), one.outbox_envelope(seq, 0, record)),  # a duplicate
    )
    last = two.journal.last_of_type("maintenance_visit")
    assert last is not None
    office.feed((topic("T-02", "outbox"), two.outbox_envelope(int(str(last["seq"])), 0, last)))
    # T-02's certificate is not registered: its record is quarantined, its visit not shown.
    [only] = last_visits(office.store, datetime.date(2026, 5, 1))
    assert only.terminal == "T-01"
    two.register_with(office.store)
    assert release_quarantine(office.store, office.now) == [(STATION, "T-02", last["seq"])]
    visits = last_visits(office.store, datetime.date(2026, 5, 1))
    # One station (both terminals are 31010001): its last visit is T-02's on 20 April.
    assert [(v.station, v.terminal, v.visited, v.next_inspection, v.overdue) for v in visits] == [
        (STATION, "T-02", "2026-04-20", "2026-07-20", False)
    ]
    # T-01's visit alone, as of a day after its inspection was due: overdue.
    office.store.query("DELETE FROM maintenance_visits WHERE terminal = 'T-02'")
    [overdue] = last_visits(office.store, datetime.date(2026, 4, 11))
    assert (overdue.terminal, overdue.overdue, overdue.spare_unit) == ("T-01", True, "BJ-007")
