"""The terminal's telemetry against a real Mosquitto with TLS client certificates and the ACL.

The back office is played by a plain MQTT client with the back-office certificate; every
payload it receives is validated against kiosk/telemetry/schema/.
"""

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from kiosk.clock import SystemClock
from kiosk.errors import KioskError
from kiosk.events import EventBus
from kiosk.storage import open_database
from kiosk.telemetry import HealthFacts, Outbox, TelemetryClient, TelemetryConfig, topic
from kiosk.telemetry.commands import Command
from kiosk.telemetry.schemas import validate_payload
from kiosk.telemetry.topics import TOPIC_ROOT as ROOT
from tests.fixtures.mosquitto import (
    STATION,
    MosquittoBroker,
    MqttPeer,
    MqttPki,
    TelemetryStation,
    connect_peer,
    wait_until,
)

TERMINAL = "T0001"


class Facts:
    """The terminal's health facts, changeable by a test."""

    def __init__(self) -> None:
        self.current = HealthFacts(
            devices={"printer": {"state": "ok"}, "token": {"present": True}},
            paper="ok",
            float_balance_fen=500_000,
            cert_days_left=300,
            firmware="io-1.2.0",
        )

    def __call__(self) -> HealthFacts:
        return self.current


def start_client(
    station: TelemetryStation,
    broker: MosquittoBroker,
    pki: MqttPki,
    *,
    events: EventBus | None = None,
    facts: Facts | None = None,
    **config: Any,
) -> TelemetryClient:
    client = TelemetryClient(
        station.config(broker, pki, **config),
        station=STATION,
        terminal=station.terminal,
        database=station.db_path,
        data_dir=station.directory,
        clock=SystemClock(),
        health_facts=facts or Facts(),
        events=events,
        reconnect_max_delay_s=2,
    )
    client.start()
    return client


def received(office: MqttPeer, kind: str) -> list[dict[str, Any]]:
    """Live payloads of one kind from terminal T0001, each validated against its schema.

    Retained messages replayed at subscription are left out: on the session's shared broker
    they are what an earlier test's terminal left behind.
    """
    suffix = topic(STATION, TERMINAL, kind)
    live = [m for m in office.messages() if m.topic == suffix and not m.retain]
    return [validate_payload(kind, m.payload) for m in live]


def wait_received(office: MqttPeer, kind: str, count: int = 1) -> list[dict[str, Any]]:
    return wait_until(
        lambda: (found := received(office, kind)) and len(found) >= count and found,
        30,
        f"{count} {kind} message(s)",
    )


def ack(office: MqttPeer, upto_seq: int) -> None:
    office.publish(
        topic(STATION, TERMINAL, "ack"), json.dumps({"v": 1, "upto_seq": upto_seq}).encode()
    )


def acked_seq(station: TelemetryStation) -> int:
    return Outbox(open_database(station.db_path)).acked_seq()


@pytest.fixture
def office(mosquitto: MosquittoBroker, mqtt_pki: MqttPki) -> Iterator[MqttPeer]:
    peer = connect_peer(mosquitto, mqtt_pki.backoffice(), f"office-{id(mosquitto)}-{TERMINAL}")
    # Retained status/health from an earlier test on the shared broker must not confuse this one.
    peer.subscribe(f"{ROOT}/{STATION}/{TERMINAL}/#")
    yield peer
    peer.close()


def test_on_connect_the_terminal_is_online_then_heartbeats_its_journal_head_and_reports_health(
    telemetry_station: TelemetryStation,
    mosquitto: MosquittoBroker,
    mqtt_pki: MqttPki,
    office: MqttPeer,
) -> None:
    telemetry_station.close_transactions(2, amount_fen=700)
    client = start_client(telemetry_station, mosquitto, mqtt_pki)
    try:
        (birth,) = wait_received(office, "status")
        assert birth["state"] == "online" and birth["boot_id"] == client.boot_id
        assert birth["firmware"] == "io-1.2.0"
        beat = wait_received(office, "heartbeat")[0]
        seq, digest = telemetry_station.journal.head()
        assert beat["chain"] == {"seq": seq, "hash": digest}
        assert beat["turnover_fen"] == 1400 and beat["seq_no"] == 0
        health = wait_received(office, "health")[0]
        assert health["paper"] == "ok" and health["float_balance_fen"] == 500_000
        assert health["outbox_backlog"] == 2 and health["devices"]["printer"] == {"state": "ok"}
    finally:
        client.stop()


def test_the_birth_and_health_are_retained_for_a_back_office_that_subscribes_later(
    telemetry_station: TelemetryStation,
    mosquitto: MosquittoBroker,
    mqtt_pki: MqttPki,
    office: MqttPeer,
) -> None:
    client = start_client(telemetry_station, mosquitto, mqtt_pki)
    try:
        wait_received(office, "health")
        late = connect_peer(mosquitto, mqtt_pki.backoffice(), "office-late")
        try:
            late.subscribe(f"{ROOT}/+/+/status")
            late.subscribe(f"{ROOT}/+/+/health")
            status = late.wait_for(f"{TERMINAL}/status")[0]
            assert status.retain and json.loads(status.payload)["boot_id"] == client.boot_id
            assert late.wait_for(f"{TERMINAL}/health")[0].retain
        finally:
            late.close()
    finally:
        client.stop()


def test_health_is_published_again_as_soon_as_something_significant_changes(
    telemetry_station: TelemetryStation,
    mosquitto: MosquittoBroker,
    mqtt_pki: MqttPki,
    office: MqttPeer,
) -> None:
    facts = Facts()
    client = start_client(telemetry_station, mosquitto, mqtt_pki, facts=facts)
    try:
        wait_received(office, "health")
        facts.current = replace(facts.current, paper="out")
        client.notify_health_changed()
        latest = wait_until(
            lambda: [h for h in received(office, "health") if h["paper"] == "out"],
            30,
            "health with paper out",
        )
        assert latest[0]["float_balance_fen"] == 500_000
    finally:
        client.stop()


def test_every_signed_close_is_delivered_in_order_until_acknowledged_and_the_ack_is_durable(
    telemetry_station: TelemetryStation,
    mosquitto: MosquittoBroker,
    mqtt_pki: MqttPki,
    office: MqttPeer,
) -> None:
    first = telemetry_station.close_transactions(3)
    bus = EventBus()
    client = start_client(telemetry_station, mosquitto, mqtt_pki, events=bus)
    try:
        outbox = wait_received(office, "outbox", 3)
        assert [m["seq"] for m in outbox] == first
        assert [m["record"]["seq"] for m in outbox] == first
        assert [m["prev_seq"] for m in outbox] == [0, *first[:-1]]
        assert all(m["record"]["type"] == "tx_close" and "sig" in m["record"] for m in outbox)
        ack(office, first[-1])
        wait_until(lambda: acked_seq(telemetry_station) == first[-1], 30, "the ack to be stored")
        # A record journaled while connected goes out at once on the core's event.
        day = telemetry_station.close_day()
        bus.publish("day_closed", business_day="2025-03-01")
        later = wait_received(office, "outbox", 4)[3]
        assert (later["seq"], later["prev_seq"]) == (day, first[-1])
        assert later["record"]["type"] == "day_close"
        assert [e["kind"] for e in wait_received(office, "event")] == ["day_closed"]
    finally:
        client.stop()


def test_unacknowledged_records_are_sent_again_after_a_restart_and_acknowledged_ones_are_not(
    telemetry_station: TelemetryStation,
    mosquitto: MosquittoBroker,
    mqtt_pki: MqttPki,
    office: MqttPeer,
) -> None:
    seqs = telemetry_station.close_transactions(3)
    client = start_client(telemetry_station, mosquitto, mqtt_pki)
    wait_received(office, "outbox", 3)
    ack(office, seqs[0])
    wait_until(lambda: acked_seq(telemetry_station) == seqs[0], 30, "the first ack")
    client.stop()
    with office.lock:
        office.received.clear()
    again = start_client(telemetry_station, mosquitto, mqtt_pki)
    try:
        resent = wait_received(office, "outbox", 2)
        assert [m["seq"] for m in resent] == seqs[1:]
        assert [m["prev_seq"] for m in resent] == seqs[:2]
        ack(office, seqs[-1])
        wait_until(lambda: acked_seq(telemetry_station) == seqs[-1], 30, "the last ack")
        assert Outbox(open_database(telemetry_station.db_path)).backlog() == 0
    finally:
        again.stop()


def test_a_broker_outage_loses_no_record(
    telemetry_station: TelemetryStation, fresh_mosquitto: MosquittoBroker, mqtt_pki: MqttPki
) -> None:
    broker = fresh_mosquitto
    office = connect_peer(broker, mqtt_pki.backoffice(), "office-outage", session_expiry_s=3600)
    office.subscribe(f"{ROOT}/{STATION}/{TERMINAL}/outbox")
    before = telemetry_station.close_transactions(2)
    # Records published before the back office is back are resent when no ack comes.
    client = start_client(telemetry_station, broker, mqtt_pki, outbox_resend_s=10)
    try:
        wait_received(office, "outbox", 2)
        ack(office, before[-1])
        wait_until(lambda: acked_seq(telemetry_station) == before[-1], 30, "the ack")
        broker.stop()
        wait_until(lambda: not client.connected, 30, "the terminal to notice the outage")
        during = telemetry_station.close_transactions(3)
        client.notify_journal_changed()
        broker.start()
        wait_until(lambda: client.connected, 30, "the terminal to reconnect")
        delivered = wait_until(
            lambda: (
                {m["seq"] for m in received(office, "outbox")} >= set(during)
                and received(office, "outbox")
            ),
            30,
            "the records journaled during the outage",
        )
        seqs = [m["seq"] for m in delivered]
        assert set(seqs) == set(before + during)
        ack(office, during[-1])
        wait_until(lambda: acked_seq(telemetry_station) == during[-1], 30, "the final ack")
    finally:
        client.stop()
        office.close()


RUNNER = """
import json, sys, time
from pathlib import Path
from kiosk.clock import SystemClock
from kiosk.telemetry import HealthFacts, TelemetryClient, TelemetryConfig
spec = json.loads(sys.argv[1])
client = TelemetryClient(
    TelemetryConfig(**spec["config"]), station=spec["station"], terminal=spec["terminal"],
    database=Path(spec["database"]), data_dir=Path(spec["data_dir"]), clock=SystemClock(),
    health_facts=HealthFacts, reconnect_max_delay_s=2,
)
client.start()
print(client.boot_id, flush=True)
time.sleep(300)
"""


def run_terminal_process(
    station: TelemetryStation, config: TelemetryConfig
) -> tuple[subprocess.Popen[str], str]:
    spec = {
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "station": STATION,
        "terminal": station.terminal,
        "database": str(station.db_path),
        "data_dir": str(station.directory),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", RUNNER, json.dumps(spec)],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    boot_id = process.stdout.readline().strip()
    return process, boot_id


def test_a_killed_terminal_is_reported_offline_by_its_last_will_then_online_again(
    telemetry_station: TelemetryStation,
    mosquitto: MosquittoBroker,
    mqtt_pki: MqttPki,
    office: MqttPeer,
) -> None:
    config = telemetry_station.config(mosquitto, mqtt_pki)
    process, first_boot = run_terminal_process(telemetry_station, config)
    try:
        wait_until(
            lambda: [s for s in received(office, "status") if s["state"] == "online"],
            30,
            "the birth",
        )
        process.kill()  # kill -9: no DISCONNECT, no shutdown status
        process.wait(20)
        will = wait_until(
            lambda: [s for s in received(office, "status") if s["state"] == "offline"],
            30,
            "the last will",
        )[0]
        assert will == {"v": 1, "state": "offline", "reason": "lost", "boot_id": first_boot}
        process, second_boot = run_terminal_process(telemetry_station, config)
        births = wait_until(
            lambda: (
                (b := [s for s in received(office, "status") if s["state"] == "online"])
                and len(b) == 2
                and b
            ),
            30,
            "the second birth",
        )
        assert [b["boot_id"] for b in births] == [first_boot, second_boot]
        assert first_boot != second_boot
    finally:
        process.kill()
        process.wait(20)


def test_a_clean_stop_leaves_a_retained_offline_status_saying_shutdown(
    telemetry_station: TelemetryStation,
    mosquitto: MosquittoBroker,
    mqtt_pki: MqttPki,
    office: MqttPeer,
) -> None:
    client = start_client(telemetry_station, mosquitto, mqtt_pki)
    wait_received(office, "status")
    client.stop()
    statuses = wait_received(office, "status", 2)
    assert statuses[-1]["state"] == "offline" and statuses[-1]["reason"] == "shutdown"
    assert not [s for s in statuses if s.get("reason") == "lost"]


def test_a_signed_command_runs_and_is_answered_while_a_replay_is_refused_and_reported(
    telemetry_station: TelemetryStation,
    mosquitto: MosquittoBroker,
    mqtt_pki: MqttPki,
    office: MqttPeer,
) -> None:
    client = start_client(telemetry_station, mosquitto, mqtt_pki)
    cmd_topic = topic(STATION, TERMINAL, "cmd")
    try:
        wait_received(office, "status")
        body = telemetry_station.sign("set_heartbeat_interval", {"seconds": 30})
        office.publish(cmd_topic, body)
        (result,) = wait_received(office, "cmd_result")
        assert result["id"] == json.loads(body)["id"]
        assert result["ok"] and result["result"] == {"heartbeat_interval_s": 30}
        assert client.heartbeat_interval_s == 30
        office.publish(cmd_topic, body)
        replay = wait_received(office, "cmd_result", 2)[1]
        assert not replay["ok"] and "replay" in replay["error"], received(office, "cmd_result")
        (event,) = wait_received(office, "event")
        assert event["kind"] == "command_refused" and event["data"]["id"] == result["id"]
        assert client.heartbeat_interval_s == 30
    finally:
        client.stop()


def test_unsigned_unknown_and_failing_commands_are_answered_with_a_reason(
    telemetry_station: TelemetryStation,
    mosquitto: MosquittoBroker,
    mqtt_pki: MqttPki,
    office: MqttPeer,
) -> None:
    client = start_client(telemetry_station, mosquitto, mqtt_pki)

    def close_day(command: Command) -> dict[str, Any]:
        raise KioskError("the day cannot close while a transaction is open: try again later")

    client.handlers.register("close_day", close_day)
    cmd_topic = topic(STATION, TERMINAL, "cmd")
    try:
        wait_received(office, "status")
        unsigned = json.loads(telemetry_station.sign("reboot"))
        del unsigned["sig"]
        office.publish(cmd_topic, json.dumps(unsigned).encode())
        office.publish(cmd_topic, telemetry_station.sign("reboot"))
        office.publish(cmd_topic, telemetry_station.sign("close_day"))
        office.publish(cmd_topic, telemetry_station.sign("set_heartbeat_interval", {"seconds": 1}))
        office.publish(cmd_topic, b"\x00garbage")
        results = wait_received(office, "cmd_result", 5)
        errors = [r["error"] for r in results]
        assert not any(r["ok"] for r in results)
        assert "lacks sig" in errors[0]
        assert "not supported" in errors[1]
        assert errors[2] == "the day cannot close while a transaction is open: try again later"
        assert "outside 10-3600" in errors[3] and client.heartbeat_interval_s == 10
        assert results[4]["id"] is None
    finally:
        client.stop()


def test_a_hostile_acknowledgement_is_ignored_and_the_link_carries_on(
    telemetry_station: TelemetryStation,
    mosquitto: MosquittoBroker,
    mqtt_pki: MqttPki,
    office: MqttPeer,
) -> None:
    seqs = telemetry_station.close_transactions(2)
    client = start_client(telemetry_station, mosquitto, mqtt_pki)
    ack_topic = topic(STATION, TERMINAL, "ack")
    try:
        wait_received(office, "outbox", 2)
        for junk in (b"garbage", b'{"v":1}', b'{"v":1,"upto_seq":"9"}', b'{"v":1,"upto_seq":-4}'):
            office.publish(ack_topic, junk)
        ack(office, seqs[0])
        wait_until(lambda: acked_seq(telemetry_station) == seqs[0], 30, "the good ack")
        assert client.connected
    finally:
        client.stop()


def test_core_events_are_forwarded_but_transaction_closes_are_not(
    telemetry_station: TelemetryStation,
    mosquitto: MosquittoBroker,
    mqtt_pki: MqttPki,
    office: MqttPeer,
) -> None:
    bus = EventBus()
    client = start_client(telemetry_station, mosquitto, mqtt_pki, events=bus)
    try:
        wait_received(office, "status")
        bus.publish("tx_closed", tx_id="tx-1", outcome="paid")
        bus.publish("low_float", reason="payment refused", wanted_fen=20_000)
        bus.publish("signer_outage", seq=7)
        events = wait_received(office, "event", 2)
        assert [(e["kind"], e["data"]) for e in events] == [
            ("low_float", {"reason": "payment refused", "wanted_fen": 20_000}),
            ("signer_outage", {"seq": 7}),
        ]
    finally:
        client.stop()


def test_the_same_link_works_over_mqtt_3_1_1(
    telemetry_station: TelemetryStation,
    mosquitto: MosquittoBroker,
    mqtt_pki: MqttPki,
    office: MqttPeer,
) -> None:
    seqs = telemetry_station.close_transactions(2)
    client = start_client(telemetry_station, mosquitto, mqtt_pki, mqtt_version="3.1.1")
    try:
        assert wait_received(office, "status")[0]["state"] == "online"
        assert [m["seq"] for m in wait_received(office, "outbox", 2)] == seqs
        ack(office, seqs[-1])
        wait_until(lambda: acked_seq(telemetry_station) == seqs[-1], 30, "the ack over 3.1.1")
    finally:
        client.stop()


def test_the_terminal_identity_is_bound_to_its_certificate(
    telemetry_station: TelemetryStation, mosquitto: MosquittoBroker, mqtt_pki: MqttPki
) -> None:
    # Terminal T0001's software with terminal T0002's certificate publishes nothing usable:
    # the broker's ACL keys on the certificate, not on what the software claims.
    office = connect_peer(mosquitto, mqtt_pki.backoffice(), "office-identity")
    office.subscribe(f"{ROOT}/#")
    wrong = mqtt_pki.terminal("T0002")
    client = start_client(
        telemetry_station,
        mosquitto,
        mqtt_pki,
        cert_file=str(wrong.cert),
        key_file=str(wrong.key),
    )
    try:
        wait_until(lambda: client.connected, 30, "the connection")
        sentinel = connect_peer(mosquitto, mqtt_pki.terminal("T0002"), "sentinel-T0002")
        sentinel.publish(f"{ROOT}/{STATION}/T0002/heartbeat", b"sentinel")
        office.wait_for("T0002/heartbeat")
        sentinel.close()
        assert [m for m in office.messages() if f"/{TERMINAL}/" in m.topic and not m.retain] == []
    finally:
        client.stop()
        office.close()
