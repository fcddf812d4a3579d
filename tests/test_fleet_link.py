"""The running terminal's fleet link: real core, real Mosquitto, commands run on its thread.

A command that waits for a busy terminal is reported as running and never holds up
telemetry; a remote reboot ends the runtime's loop."""

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.errors import KioskError
from kiosk.fleet_link import FleetLink, TerminalThreadInbox, paper_state
from kiosk.runtime import Cadence, Runtime
from kiosk.telemetry import sign_command, topic, unsigned_command
from kiosk.telemetry.config import TelemetryConfig
from tests.fixtures.mosquitto import MosquittoBroker, MqttPeer, MqttPki, connect_peer
from tests.fixtures.terminal import STATION, TERMINAL, TerminalRig


@dataclasses.dataclass
class LinkedTerminal:
    rig: TerminalRig
    fleet: FleetLink
    backoffice: MqttPeer
    key: ec.EllipticCurvePrivateKey
    restarts: list[str]

    def command(self, name: str, args: dict[str, Any] | None = None) -> str:
        command = unsigned_command(
            station=STATION,
            terminal=TERMINAL,
            name=name,
            args=args,
            # By the terminal's clock, which checks it: the rig's is fixed, not today.
            expires=self.rig.clock.now() + timedelta(minutes=5),
        )
        signed = sign_command(command, self.key)
        self.backoffice.publish(topic(STATION, TERMINAL, "cmd"), json.dumps(signed).encode())
        return str(command["id"])

    def result_of(self, command_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
        """Turn the terminal's loop (as `kiosk run` does) until the command's result arrives."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.fleet.inbox.run_pending()
            for message in self.backoffice.messages("/cmd_result"):
                result: dict[str, Any] = json.loads(message.payload)
                if result["id"] == command_id:
                    return result
            time.sleep(0.05)
        raise AssertionError(f"no result for command {command_id}")


@pytest.fixture
def linked(
    terminal_rig: TerminalRig, mosquitto: MosquittoBroker, mqtt_pki: MqttPki, tmp_path: Path
) -> Iterator[LinkedTerminal]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = tmp_path / "backoffice-command.pub.pem"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    cert = mqtt_pki.terminal(TERMINAL, STATION)
    telemetry = TelemetryConfig(
        broker_host=mosquitto.host,
        broker_port=mosquitto.port,
        ca_file=str(cert.ca),
        cert_file=str(cert.cert),
        key_file=str(cert.key),
        backoffice_key_file=str(public),
    ).check()
    config = dataclasses.replace(terminal_rig.config, telemetry=telemetry)
    backoffice = connect_peer(mosquitto, mqtt_pki.backoffice(), f"backoffice-{tmp_path.name}")
    backoffice.subscribe(f"kiosk/v1/{STATION}/{TERMINAL}/#")
    restarts: list[str] = []
    fleet = FleetLink(
        config, terminal_rig.terminal, terminal_rig.clock, request_restart=restarts.append
    )
    fleet.start()
    # Commands sent before the terminal subscribed would reach nobody: wait for its birth.
    backoffice.wait_for("/status")
    wait = time.monotonic() + 20
    while not fleet.client.connected:
        assert time.monotonic() < wait, "the terminal never connected"
        time.sleep(0.05)
    try:
        yield LinkedTerminal(terminal_rig, fleet, backoffice, key, restarts)
    finally:
        fleet.stop()
        backoffice.client.loop_stop()
        backoffice.client.disconnect()


def test_a_closed_day_commanded_by_the_back_office_runs_on_the_terminals_thread(
    linked: LinkedTerminal,
) -> None:
    command_id = linked.command("close_day")
    result = linked.result_of(command_id)
    assert result["ok"] is True, result
    [record] = [r for r in linked.rig.terminal.journal.records() if r["type"] == "day_close"]
    assert result["result"]["seq"] == record["seq"]
    # The signed report goes out through the outbox, exactly as the journal holds it.
    sent = linked.backoffice.wait_for("/outbox")
    assert any(json.loads(m.payload)["record"]["type"] == "day_close" for m in sent)


def test_maintenance_by_command_refuses_payments_until_it_is_left(linked: LinkedTerminal) -> None:
    result = linked.result_of(linked.command("enter_maintenance", {"technician": "TECH-9"}))
    assert result["ok"] is True and linked.rig.terminal.board.technician == "TECH-9"
    with pytest.raises(KioskError, match="maintenance"):
        linked.rig.terminal.start_phone_topup("mobile-topup", "13800138000", 50_00)
    assert linked.result_of(linked.command("leave_maintenance"))["ok"] is True
    assert linked.rig.terminal.board.technician is None


def test_a_reboot_command_asks_the_run_loop_to_restart(linked: LinkedTerminal) -> None:
    result = linked.result_of(linked.command("reboot"))
    assert result["ok"] is True and len(linked.restarts) == 1


def test_a_catalog_command_without_its_files_is_answered_with_the_reason(
    linked: LinkedTerminal,
) -> None:
    result = linked.result_of(linked.command("install_catalog", {}))
    assert result["ok"] is False and "catalog_b64" in result["error"]


def test_health_reports_the_paper_running_out_when_the_loop_refreshes(
    linked: LinkedTerminal,
) -> None:
    linked.rig.sims.printer.paper_out()
    linked.fleet.refresh()
    assert linked.fleet.health_facts().paper == "out"

    def out_reported() -> bool:
        return any(
            json.loads(m.payload).get("paper") == "out"
            for m in linked.backoffice.messages("/health")
        )

    deadline = time.monotonic() + 20
    while not out_reported():
        assert time.monotonic() < deadline, "health with paper out never published"
        time.sleep(0.05)


def test_a_call_handed_to_the_terminal_thread_returns_its_result_or_error() -> None:
    inbox = TerminalThreadInbox()
    results: list[Any] = []

    def ask(function: Callable[[], Any]) -> None:
        try:
            results.append(inbox.call(function, timeout_s=10))
        except Exception as exc:
            results.append(exc)

    threads = [
        threading.Thread(target=ask, args=(lambda: threading.current_thread().name,)),
        threading.Thread(target=ask, args=(lambda: 1 // 0,)),
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(results) < 2 and time.monotonic() < deadline:
        inbox.run_pending()
        time.sleep(0.01)
    assert threading.current_thread().name in results
    assert any(isinstance(r, ZeroDivisionError) for r in results)


def test_a_call_whose_caller_stopped_waiting_still_runs_on_the_terminals_thread() -> None:
    inbox = TerminalThreadInbox()
    ran: list[str] = []
    with pytest.raises(TimeoutError):
        inbox.call(lambda: ran.append("late"), timeout_s=0.1)
    # Never cancelled behind the caller's back: the terminal runs it when it gets there.
    assert inbox.run_pending() == 1 and ran == ["late"]


def test_a_command_waiting_for_a_busy_terminal_never_blocks_telemetry(
    linked: LinkedTerminal,
) -> None:
    linked.fleet.client.commands.wait_s = 0.5
    command_id = linked.command("close_day")  # nobody runs the terminal's inbox: it is busy

    def results() -> list[dict[str, Any]]:
        return [
            json.loads(m.payload)
            for m in linked.backoffice.messages("/cmd_result")
            if json.loads(m.payload)["id"] == command_id
        ]

    deadline = time.monotonic() + 20
    while not results():
        assert time.monotonic() < deadline, "no running result"
        time.sleep(0.05)
    [running] = results()
    assert running["ok"] is True and running["result"]["state"] == "running"
    before = len(linked.backoffice.messages("/heartbeat"))
    linked.fleet.client.send_heartbeat_now()  # the telemetry worker is free meanwhile
    while len(linked.backoffice.messages("/heartbeat")) <= before:
        assert time.monotonic() < deadline, "telemetry was blocked by the command"
        time.sleep(0.05)
    final = linked.result_of(command_id)  # turns the terminal's inbox: the command runs
    assert final["ok"] is True, final
    deadline = time.monotonic() + 20
    while len(results()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert results()[-1]["ok"] is True and results()[-1]["result"].get("state") != "running"


def test_a_remote_reboot_stops_the_runtime_loop(
    linked: LinkedTerminal,
) -> None:
    runtime = Runtime(linked.rig.terminal, started=True, cadence=Cadence(confirm_after_s=0))
    runtime.inbox = linked.fleet.inbox  # the fleet link was built on its own inbox here
    stops: list[str] = []
    runtime.on_stop_requested(stops.append)
    linked.fleet._request_restart = runtime.request_stop  # as the runtime wires it
    command_id = linked.command("reboot")
    thread = threading.Thread(target=runtime.run, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive() and stops and command_id in stops[0]


@pytest.mark.parametrize(
    ("health", "paper"),
    [
        ({"online": True, "paper_out": False, "paper_near_end": False}, "ok"),
        ({"online": True, "paper_out": False, "paper_near_end": True}, "near_end"),
        ({"online": True, "paper_out": True}, "out"),
        ({"online": None, "paper_out": False}, "unknown"),
        ({"online": True}, "unknown"),
        ({"online": False, "paper_out": True}, "out"),  # a real printer stopped for paper
        ({"online": True, "paper_out": False, "paper": "near_end"}, "near_end"),
    ],
)
def test_the_paper_state_is_never_guessed(health: dict[str, object], paper: str) -> None:
    assert paper_state(health) == paper
