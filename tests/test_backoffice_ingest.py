"""The back office ingests a real Mosquitto stream: records exactly once, acks, liveness, alerts."""

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from backoffice.config import BrokerConfig, Thresholds, parse_config
from backoffice.messages import Intent, OutboxRecord
from backoffice.service import BackofficeService
from backoffice.store import Store
from backoffice.worker import MqttIngest
from kiosk.journal import verify_jsonl
from simulators.fleet import SimulatedTerminal
from tests.fixtures.backoffice import DEADLINE_S, Broker, service_config, wait_for


def open_kinds(service: BackofficeService, terminal: str = "T-01") -> set[str]:
    rows = service.store.query(
        "SELECT kind FROM alerts WHERE terminal = ? AND acked IS NULL AND cleared IS NULL",
        (terminal,),
    )
    return {row["kind"] for row in rows}


def stored_seqs(service: BackofficeService) -> list[int]:
    return [r["seq"] for r in service.store.query("SELECT seq FROM records ORDER BY seq")]


def test_signed_records_are_stored_once_acknowledged_and_dropped_from_the_outbox(
    backoffice_service: BackofficeService, make_sim_terminal: Callable[..., SimulatedTerminal]
) -> None:
    sim = make_sim_terminal()
    sim.start()
    first = sim.pay(12_345, 100)
    second = sim.pay(500, 0)
    wait_for(lambda: sim.backlog() == 0, "the back office to acknowledge both records")
    assert sim.acked_seq == second["seq"]
    sim.resend_outbox()
    sim._publish_record(int(str(first["seq"])), first)  # a duplicate delivery
    sim.heartbeat()
    wait_for(lambda: service_heartbeat_seen(backoffice_service), "the heartbeat after the resend")
    assert stored_seqs(backoffice_service) == [first["seq"], second["seq"]]
    assert backoffice_service.ingest.ingestor.stats.duplicates >= 1
    stored = backoffice_service.store.query("SELECT record FROM records ORDER BY seq")
    assert json.loads(stored[0]["record"]) == first  # the signed record, byte for byte in content


def test_a_record_received_as_the_back_office_stops_is_stored_and_acknowledged_first(
    tmp_path: Path, backoffice_broker: Broker, make_sim_terminal: Callable[..., SimulatedTerminal]
) -> None:
    # The stop reaches the worker while the batch holding the record is still to be stored:
    # it stores it, acknowledges it, and only then disconnects.
    broker = BrokerConfig(host=backoffice_broker.host, port=backoffice_broker.port)
    store = Store(f"sqlite:///{tmp_path / 'bo.db'}")
    ingest = MqttIngest(store, broker, Thresholds())
    apply_batch = ingest.ingestor.apply_batch
    stopper: list[threading.Thread] = []

    def stopped_first(intents: Sequence[Intent]) -> None:
        if any(isinstance(intent, OutboxRecord) for intent in intents):
            stopper.append(threading.Thread(target=ingest.stop))
            stopper[0].start()
            time.sleep(0.3)
        apply_batch(intents)

    ingest.ingestor.apply_batch = stopped_first  # type: ignore[method-assign]
    ingest.start()
    try:
        wait_for(ingest.connected.is_set, "the back office to subscribe")
        sim = make_sim_terminal()
        sim.register_with(store)
        sim.start()
        record = sim.pay(12_345, 100)
        wait_for(lambda: stopper and not stopper[0].is_alive(), "the stop to end")
        assert ingest.ingestor.stats.records_stored == 1
    finally:
        ingest.stop()
        store.close()
    wait_for(lambda: sim.acked_seq == record["seq"], "the ack sent before the disconnect")
    assert sim.backlog() == 0


def service_heartbeat_seen(service: BackofficeService) -> bool:
    rows = service.store.query("SELECT chain_seq FROM terminals")
    return bool(rows) and rows[0]["chain_seq"] is not None


def test_a_stored_record_still_verifies_against_the_station_certificate(
    backoffice_service: BackofficeService, make_sim_terminal: Callable[..., SimulatedTerminal]
) -> None:
    sim = make_sim_terminal()
    sim.start()
    sim.pay(2_000, 100)
    wait_for(lambda: sim.backlog() == 0, "the record to be acknowledged")
    journal = [
        json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        for r in sim.journal.records()
    ]
    stored = backoffice_service.store.query("SELECT record FROM records")[0]["record"]
    assert stored in journal
    report = verify_jsonl([line + "\n" for line in journal], sim.signer.certificate_pem())
    assert report.ok


def test_a_printer_running_out_of_paper_raises_an_alert_that_clears_when_refilled(
    backoffice_service: BackofficeService, make_sim_terminal: Callable[..., SimulatedTerminal]
) -> None:
    sim = make_sim_terminal()
    sim.start()
    sim.paper = "out"
    sim.health()
    wait_for(lambda: "paper_out" in open_kinds(backoffice_service), "the paper-out alert")
    sim.paper = "ok"
    sim.health()
    wait_for(lambda: "paper_out" not in open_kinds(backoffice_service), "the alert to clear")


def test_health_thresholds_raise_float_certificate_backlog_and_device_alerts(
    backoffice_service: BackofficeService, make_sim_terminal: Callable[..., SimulatedTerminal]
) -> None:
    sim = make_sim_terminal()
    sim.start()
    sim.float_balance_fen = 10_000
    sim.cert_days_left = 12
    sim.device_error = "cutter jammed"
    sim.health()
    expected = {"low_float", "cert_expiring", "device_fault"}
    wait_for(lambda: expected <= open_kinds(backoffice_service), "the three alerts")
    sim.event("tamper", switch="door")
    wait_for(lambda: "tamper" in open_kinds(backoffice_service), "the tamper alert")


def test_a_killed_terminal_is_offline_by_its_last_will_and_online_again_after_reboot(
    backoffice_service: BackofficeService, make_sim_terminal: Callable[..., SimulatedTerminal]
) -> None:
    sim = make_sim_terminal()
    sim.start()
    sim.heartbeat()
    wait_for(lambda: service_heartbeat_seen(backoffice_service), "the first heartbeat")
    sim.die()
    wait_for(lambda: "offline" in open_kinds(backoffice_service), "the last will", timeout=30)
    state = backoffice_service.store.query("SELECT state, state_reason FROM terminals")[0]
    assert (state["state"], state["state_reason"]) == ("offline", "lost")
    sim.reboot()
    sim.heartbeat()
    wait_for(lambda: "offline" not in open_kinds(backoffice_service), "the birth after reboot")


def test_a_silent_terminal_goes_offline_after_the_configured_heartbeat_age(
    tmp_path: Path, backoffice_broker: Broker, make_sim_terminal: Callable[..., SimulatedTerminal]
) -> None:
    table = service_config(
        backoffice_broker, f"sqlite:///{tmp_path / 'bo.db'}", None, offline_after_s=1.0
    )
    service = BackofficeService(parse_config(table))
    service.start()
    try:
        # A heartbeat is QoS 0: one sent before the back office subscribed reaches nobody.
        wait_for(service.ingest.connected.is_set, "the back office to subscribe")
        sim = make_sim_terminal()
        sim.start()
        sim.heartbeat()
        wait_for(lambda: service_heartbeat_seen(service), "the heartbeat")
        wait_for(lambda: "offline" in open_kinds(service), "the silence alert")
        assert service.store.query("SELECT state_reason FROM terminals")[0]["state_reason"] == (
            "silent"
        )
    finally:
        service.stop()


def test_a_journal_going_backwards_raises_rollback_and_two_boots_interleaving_raise_clone(
    backoffice_service: BackofficeService, make_sim_terminal: Callable[..., SimulatedTerminal]
) -> None:
    original = make_sim_terminal()
    original.start()
    for _ in range(3):
        original.pay(1_000)
    original.heartbeat()
    wait_for(lambda: original.backlog() == 0, "the records")
    # The same identity on a second machine: restored from an old image (journal at record 1).
    copy = make_sim_terminal(signer=original.signer)
    copy.start()
    copy.heartbeat()
    wait_for(lambda: "rollback" in open_kinds(backoffice_service), "the rollback alert")
    original.heartbeat()
    wait_for(lambda: "clone" in open_kinds(backoffice_service), "the clone alert")


def test_records_published_while_the_back_office_is_down_arrive_once_after_restart(
    tmp_path: Path, backoffice_broker: Broker, make_sim_terminal: Callable[..., SimulatedTerminal]
) -> None:
    url = f"sqlite:///{tmp_path / 'bo.db'}"
    table = service_config(backoffice_broker, url, None)
    service = BackofficeService(parse_config(table))
    service.start()
    wait_for(service.ingest.connected.is_set, "the first connection")
    service.stop()  # the persistent session keeps the subscription in the broker
    sim = make_sim_terminal()
    sim.start()
    records = [sim.pay(100 * n) for n in range(1, 6)]
    time.sleep(0.2)
    assert sim.backlog() == 5
    service = BackofficeService(parse_config(table))
    sim.register_with(service.store)
    service.start()
    try:
        wait_for(lambda: sim.backlog() == 0, "the queued records to be stored and acknowledged")
        sim.resend_outbox()
        assert stored_seqs(service) == [r["seq"] for r in records]
    finally:
        service.stop()


def test_hostile_payloads_are_rejected_logged_and_change_nothing(
    backoffice_service: BackofficeService,
    backoffice_broker: Broker,
    make_sim_terminal: Callable[..., SimulatedTerminal],
) -> None:
    sim = make_sim_terminal()
    other = make_sim_terminal(terminal="T-02")
    forged = other.pay(9_999)
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="hostile")
    client.connect(backoffice_broker.host, backoffice_broker.port)
    client.loop_start()
    topic = "kiosk/v1/31010001/T-01/"
    for kind, payload in [
        ("outbox", b"not json"),
        ("outbox", other.outbox_payload(int(str(forged["seq"])), forged)),
        ("health", json.dumps({"v": 1, "time": "x", "paper": "melted"}).encode()),
        ("heartbeat", json.dumps({"v": 2}).encode()),
    ]:
        client.publish(topic + kind, payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    wait_for(lambda: backoffice_service.ingest.ingestor.stats.rejected >= 4, "four rejections")
    assert backoffice_service.store.query("SELECT COUNT(*) AS n FROM records")[0]["n"] == 0
    reasons = [r["reason"] for r in backoffice_service.store.query("SELECT reason FROM rejected")]
    assert any("not the topic's 31010001/T-01" in reason for reason in reasons)
    assert sim.backlog() == 0


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_two_workers_on_a_shared_subscription_acknowledge_only_a_contiguous_run(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    backoffice_broker: Broker,
    make_sim_terminal: Callable[..., SimulatedTerminal],
    engine: str,
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'bo.db'}"
        if engine == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    broker = BrokerConfig(
        host=backoffice_broker.host, port=backoffice_broker.port, shared_group="ingest"
    )
    stores = [Store(url), Store(url)]
    sim = make_sim_terminal()
    sim.register_with(stores[0])
    workers = [
        MqttIngest(store, replace(broker, client_id=f"bo-worker-{n}"), Thresholds())
        for n, store in enumerate(stores)
    ]
    assert all(w.subscriptions()[0].startswith("$share/ingest/kiosk/v1/+/+/") for w in workers)
    records = [sim.pay(100 * n) for n in range(1, 9)]
    held_seq = int(str(records[1]["seq"]))
    release = threading.Event()
    for worker in workers:  # whichever worker receives the second record sits on it
        worker.ingestor.apply_batch = holding(worker.ingestor.apply_batch, held_seq, release)
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            wait_for(worker.connected.is_set, "both workers to subscribe")
        sim.start()  # publishes the eight records on connect
        wait_for(
            lambda: stores[0].query("SELECT 1 FROM records WHERE seq > ?", (held_seq,)),
            "the free worker to store a record after the held one",
        )
        acked = stores[0].query("SELECT acked_seq FROM terminals")[0]["acked_seq"]
        assert acked < held_seq and sim.acked_seq < held_seq
        release.set()
        wait_for(lambda: sim.backlog() == 0, "every record to be acknowledged")
        assert sim.acked_seq == records[-1]["seq"]
        stored = [r["seq"] for r in stores[0].query("SELECT seq FROM records ORDER BY seq")]
        assert stored == [r["seq"] for r in records]
    finally:
        release.set()
        for worker in workers:
            worker.stop()
        for store in stores:
            store.close()


def holding(
    apply_batch: Callable[[Sequence[Intent]], None], seq: int, release: threading.Event
) -> Callable[[Sequence[Intent]], None]:
    """A worker slow to commit: a batch holding outbox record seq waits for release."""

    def apply(intents: Sequence[Intent]) -> None:
        if any(isinstance(i, OutboxRecord) and i.seq == seq for i in intents):
            release.wait(DEADLINE_S)
        apply_batch(intents)

    return apply
