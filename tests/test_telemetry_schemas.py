"""The MQTT contract's JSON Schemas, the payloads the terminal builds, topics and config."""

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from kiosk.errors import ConfigError
from kiosk.telemetry import TelemetryConfig, payloads, terminal_identity, topic
from kiosk.telemetry.outbox import Outbox
from kiosk.telemetry.payloads import HealthFacts, HostFacts
from kiosk.telemetry.schemas import SCHEMA_DIR, SCHEMA_NAMES, PayloadInvalid, validate_payload
from kiosk.telemetry.topics import TERMINAL_PUBLISHES, parse_topic
from tests.fixtures.mosquitto import TelemetryStation

NOW = datetime(2025, 3, 1, 9, 30, 7, tzinfo=ZoneInfo("Asia/Shanghai"))
BOOT = "0123456789abcdef0123456789abcdef"
HASH = "ab" * 32


def test_there_is_one_valid_draft_2020_12_schema_per_topic() -> None:
    files = sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json"))
    assert files == sorted(f"{name}.schema.json" for name in SCHEMA_NAMES)
    for path in SCHEMA_DIR.glob("*.schema.json"):
        schema = json.loads(path.read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)


def facts() -> HealthFacts:
    return HealthFacts(
        devices={"printer": {"state": "ok", "paper": "near_end"}, "ioboard": {"door": "closed"}},
        paper="near_end",
        float_balance_fen=123_400,
        cert_days_left=29,
        firmware="io-1.2.0",
    )


def built_payloads(station: TelemetryStation) -> dict[str, list[dict[str, Any]]]:
    (seq,) = station.close_transactions(1)
    day = station.close_day()
    records = Outbox(station.conn).pending(0, 10)
    host = HostFacts(disk_free_mb=1000, mem_free_mb=200, cpu_temp_c=48.5)
    return {
        "status": [
            payloads.birth(NOW, software="0.1.0", firmware=None, boot_id=BOOT),
            payloads.last_will(BOOT),
            payloads.shutdown(NOW, BOOT),
        ],
        "heartbeat": [
            payloads.heartbeat(
                NOW, seq_no=0, uptime_s=5, chain=(seq, HASH), turnover_fen=100, boot_id=BOOT
            )
        ],
        "health": [
            payloads.health(NOW, facts(), host, uptime_s=9, outbox_backlog=2, software="0.1.0"),
            payloads.health(
                NOW,
                HealthFacts(),
                payloads.host_facts(station.directory),
                uptime_s=0,
                outbox_backlog=0,
                software="0.1.0",
            ),
        ],
        "event": [payloads.event(NOW, "low_float", {"balance_fen": 100})],
        "outbox": [json.loads(payloads.outbox_message(*record)) for record in records]
        + [{"v": 1, "seq": day, "prev_seq": seq, "record": json.loads(records[-1].text)}],
        "cmd_result": [
            payloads.command_result(NOW, "c1", ok=True, result={"x": 1}),
            payloads.command_result(NOW, None, ok=False, error="command is not UTF-8 JSON"),
        ],
    }


def test_every_payload_the_terminal_builds_follows_its_schema(
    telemetry_station: TelemetryStation,
) -> None:
    for name, examples in built_payloads(telemetry_station).items():
        for example in examples:
            validate_payload(name, example)


def test_the_outbox_payload_embeds_the_journal_record_verbatim(
    telemetry_station: TelemetryStation,
) -> None:
    telemetry_station.close_transactions(1)
    ((seq, prev_seq, text),) = Outbox(telemetry_station.conn).pending(0, 10)
    message = payloads.outbox_message(seq, prev_seq, text)
    assert message.endswith(b',"record":' + text.encode() + b"}")
    assert json.loads(message)["record"]["seq"] == seq
    assert json.loads(message)["prev_seq"] == prev_seq == 0


def test_the_host_facts_come_from_this_machine(tmp_path: Path) -> None:
    host = payloads.host_facts(tmp_path)
    assert host.disk_free_mb is not None and host.disk_free_mb > 0
    assert host.mem_free_mb is not None and host.mem_free_mb > 0


@pytest.mark.parametrize(
    ("name", "payload", "where"),
    [
        ("heartbeat", {"turnover_fen": 1.5}, "turnover_fen"),
        ("heartbeat", {"chain": {"seq": 1, "hash": "xyz"}}, "chain/hash"),
        ("health", {"paper": "low"}, "paper"),
        ("health", {"float_balance_fen": 12.5}, "float_balance_fen"),
        ("status", {"boot_id": "not hex"}, "(top level)"),
        ("status", {"time": "2025-03-01 09:30:07"}, "(top level)"),
        ("event", {"kind": "Tamper!"}, "kind"),
        ("cmd_result", {"ok": True, "error": "but failed"}, "error"),
        ("heartbeat", {"extra": 1}, "(top level)"),
        ("outbox", {"prev_seq": -1}, "prev_seq"),
        ("outbox", {"prev_seq": "3"}, "prev_seq"),
    ],
)
def test_the_schemas_refuse_what_the_contract_forbids(
    telemetry_station: TelemetryStation, name: str, payload: dict[str, Any], where: str
) -> None:
    good = built_payloads(telemetry_station)[name][0]
    with pytest.raises(PayloadInvalid, match=f"at {re.escape(where)}"):
        validate_payload(name, {**good, **payload})


def test_an_outbox_message_carries_an_outbox_type_signed_or_marked_as_unsigned(
    telemetry_station: TelemetryStation,
) -> None:
    # Whether an unsigned record is legitimate is kiosk.journal.record_types'
    # may_travel_unsigned, which the back office applies (tests/test_backoffice_signatures.py).
    good = built_payloads(telemetry_station)["outbox"][0]
    for record in (
        {**good["record"], "type": "tx_open"},
        {k: v for k, v in good["record"].items() if k != "cert_sha256"},
        {**good["record"], "sig_failed": True},
    ):
        with pytest.raises(PayloadInvalid):
            validate_payload("outbox", {**good, "record": record})


def test_an_outbox_message_without_prev_seq_breaks_the_contract(
    telemetry_station: TelemetryStation,
) -> None:
    good = built_payloads(telemetry_station)["outbox"][0]
    with pytest.raises(PayloadInvalid, match="[\"']prev_seq[\"'] is a required property"):
        validate_payload("outbox", {k: v for k, v in good.items() if k != "prev_seq"})


def test_acks_are_whole_non_negative_seqs() -> None:
    validate_payload("ack", b'{"v":1,"upto_seq":0}')
    for bad in (b'{"v":1,"upto_seq":-1}', b'{"v":1,"upto_seq":"5"}', b'{"v":2,"upto_seq":5}', b"{"):
        with pytest.raises(PayloadInvalid):
            validate_payload("ack", bad)


def test_topics_are_rooted_at_the_terminals_identity() -> None:
    assert topic("33078200001", "T0001", "heartbeat") == "kiosk/v1/33078200001/T0001/heartbeat"
    assert terminal_identity("33078200001", "T0001") == "33078200001/T0001"


@pytest.mark.parametrize(("station", "terminal"), [("33/1", "T1"), ("3307", "T+1"), ("3307", "#")])
def test_an_identity_that_could_escape_its_topic_is_refused(station: str, terminal: str) -> None:
    with pytest.raises(ValueError):
        terminal_identity(station, terminal)


@given(
    station=st.from_regex(r"[0-9]{1,12}", fullmatch=True),
    terminal=st.from_regex(r"[A-Za-z0-9-]{1,32}", fullmatch=True),
    kind=st.sampled_from(TERMINAL_PUBLISHES + ("ack", "cmd")),
)
def test_a_topic_parses_back_to_what_made_it(station: str, terminal: str, kind: str) -> None:
    assert parse_topic(topic(station, terminal, kind)) == (station, terminal, kind)


@pytest.mark.parametrize(
    "name", ["kiosk/v1/3307/T1", "kiosk/v2/3307/T1/status", "kiosk/v1/3307/T1/reboot", "x"]
)
def test_other_topics_are_not_parsed_as_contract_topics(name: str) -> None:
    assert parse_topic(name) is None


def test_the_default_telemetry_configuration_is_valid_and_off() -> None:
    config = TelemetryConfig().check()
    assert not config.enabled
    assert (config.heartbeat_interval_s, config.health_interval_s) == (120, 900)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"heartbeat_interval_s": 5}, "telemetry.heartbeat_interval_s"),
        ({"broker_port": 0}, "telemetry.broker_port"),
        ({"keepalive_s": 5000}, "telemetry.keepalive_s"),
        ({"broker_host": "mqtt.example"}, "telemetry.ca_file"),
    ],
)
def test_a_wrong_telemetry_key_is_named(override: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        TelemetryConfig(**override).check()


def test_a_telemetry_file_that_does_not_exist_is_named(tmp_path: Path) -> None:
    present = tmp_path / "present.pem"
    present.write_text("x")
    with pytest.raises(ConfigError, match="backoffice_key_file.*does not exist"):
        TelemetryConfig(
            broker_host="mqtt.example",
            ca_file=str(present),
            cert_file=str(present),
            key_file=str(present),
            backoffice_key_file=str(tmp_path / "missing.pem"),
        ).check()
