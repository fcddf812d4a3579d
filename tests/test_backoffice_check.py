"""Checking a message without the database gives contract.parse_payload's verdict, faster.

backoffice.ingest_check parses with orjson and validates with the compiled validator, and
leaves every payload it does not accept, and every refusal, to the reference path; these
tests hold the two paths to the same answers.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from backoffice.config import Thresholds
from backoffice.contract import Topic, parse_payload, parse_topic
from backoffice.errors import PayloadRejected
from backoffice.fleet_sim import SimulatedTerminal
from backoffice.ingest_check import _parse_fast, check_message, check_messages

STATION = "31010001"
HEALTH: dict[str, Any] = {
    "v": 1,
    "time": "2025-03-01T09:00:00+08:00",
    "devices": {"printer": {"online": True, "paper": "ok", "error": None}},
    "paper": "ok",
    "float_balance_fen": 200_000,
    "cert_days_left": 300,
    "disk_free_mb": 2048,
    "mem_free_mb": 256,
    "cpu_temp_c": 48.5,
    "uptime_s": 60,
    "outbox_backlog": 0,
    "software": "kiosk-terminal 1.0",
    "firmware": None,
}
HEARTBEAT: dict[str, Any] = {
    "v": 1,
    "time": "2025-03-01T09:00:00+08:00",
    "seq_no": 1,
    "uptime_s": 60,
    "chain": {"seq": 5, "hash": "ab" * 32},
    "turnover_fen": 0,
    "boot_id": "0" * 31 + "1",
}
# JSON values as json.dumps writes them, with what orjson reads otherwise or refuses:
# integers beyond 64 bits, NaN and infinities, lone surrogates, any text.
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.integers(min_value=2**63, max_value=2**80)  # where orjson stops reading integers
    | st.floats()
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


def reference(kind: str, payload: bytes) -> dict[str, Any] | None:
    try:
        return parse_payload(kind, payload)
    except PayloadRejected:
        return None


@settings(max_examples=300, deadline=None)
@given(device=values, number=values)
def test_the_fast_parse_reads_what_the_reference_reads_or_leaves_the_payload_to_it(
    device: Any, number: Any
) -> None:
    health = {**HEALTH, "devices": {"printer": {"state": device}}, "cpu_temp_c": number}
    heartbeat = {**HEARTBEAT, "uptime_s": number, "turnover_fen": number}
    for kind, body in (("health", health), ("heartbeat", heartbeat)):
        payload = json.dumps(body).encode()
        fast = _parse_fast(kind, payload)
        if fast is not None:
            assert fast == reference(kind, payload)
            assert json.dumps(fast) == json.dumps(reference(kind, payload))  # ints stay ints


def test_a_health_report_with_a_number_beyond_64_bits_is_stored_with_every_digit() -> None:
    health = {**HEALTH, "devices": {"printer": {"counter": 2**70 + 1}}}
    intent = check_message(
        f"kiosk/v1/{STATION}/T-01/health", json.dumps(health).encode(), Thresholds()
    )
    assert intent[0] == "health"
    assert json.loads(intent[8])["devices"]["printer"]["counter"] == 2**70 + 1


def test_every_refusal_is_worded_by_the_reference_path(tmp_path: Path) -> None:
    sim = SimulatedTerminal(tmp_path, station=STATION, terminal="T-01", host="127.0.0.1", port=1)
    record = sim.pay(1_000)
    topic = f"kiosk/v1/{STATION}/T-01/outbox"
    for amount, reason in ((2**70, "beyond +-(2**53-1)"), (10.5, "is a float")):
        # orjson reads 2**70 as a float; json, the reference, as the integer it is.
        body = {
            "v": 1,
            "seq": record["seq"],
            "prev_seq": 0,
            "record": {**record, "fee_fen": amount},
        }
        intent = check_message(topic, json.dumps(body).encode(), Thresholds())
        assert intent[0] == "rejected" and reason in intent[2], intent
    for payload, reason in (
        (b"not json", "is not UTF-8 JSON"),
        (json.dumps({**HEARTBEAT, "v": 2}).encode(), "breaks the contract at v"),
        (b'{"v": NaN}', "breaks the contract"),  # json reads NaN; orjson refuses it
    ):
        intent = check_message(f"kiosk/v1/{STATION}/T-01/heartbeat", payload, Thresholds())
        assert intent[0] == "rejected" and reason in intent[2], intent


def test_each_kind_becomes_the_intent_the_store_applies(tmp_path: Path) -> None:
    def check(kind: str, body: dict[str, Any]) -> tuple[Any, ...]:
        topic = f"kiosk/v1/{STATION}/T-01/{kind}"
        return check_message(topic, json.dumps(body).encode(), Thresholds())

    assert check("heartbeat", HEARTBEAT) == (
        "heartbeat",
        STATION,
        "T-01",
        "0" * 31 + "1",
        5,
        "ab" * 32,
        0,
    )
    low = check("health", {**HEALTH, "paper": "out", "float_balance_fen": 10})
    assert low[0] == "health" and low[4:6] == ("out", 10)
    assert ("raise", "paper_out", "paper out") in low[11]
    assert ("clear", "cert_expiring") in low[11]
    event = check("event", {"v": 1, "time": HEALTH["time"], "kind": "tamper", "data": {}})
    assert event[-1] == (("raise", "tamper", "{}"),)
    offline = check("status", {"v": 1, "state": "offline", "reason": "shutdown"})
    assert offline == ("status", STATION, "T-01", False, "shutdown", None, None, None)
    assert check_message(f"kiosk/v1/{STATION}/T-01/ack", b"{}", Thresholds()) == ("skip",)


def heartbeat_messages(number: Any) -> list[tuple[str, bytes]]:
    """Heartbeats valid and not, a topic outside the contract, other kinds."""
    topic = f"kiosk/v1/{STATION}/T-01/heartbeat"
    return [
        (topic, json.dumps(HEARTBEAT).encode()),
        (topic, json.dumps({**HEARTBEAT, "chain": {"seq": 5.0, "hash": "ab" * 32}}).encode()),
        (topic, json.dumps({**HEARTBEAT, "uptime_s": number, "turnover_fen": number}).encode()),
        (topic, json.dumps({**HEARTBEAT, "chain": {"seq": number, "hash": "ab" * 32}}).encode()),
        (topic, b"not json"),
        (topic, b"[1]"),
        (topic, b'{"v": NaN}'),
        (topic, b" " * 70_000),
        (f"kiosk/v1/{STATION}/T 01/heartbeat", json.dumps(HEARTBEAT).encode()),
        (f"kiosk/v1/{STATION}/T-01/health", json.dumps(HEALTH).encode()),
        (f"kiosk/v1/{STATION}/T-01/ack", b"{}"),
    ]


@settings(max_examples=100, deadline=None)
@given(number=values)
def test_checking_messages_together_gives_the_intents_of_checking_each_alone(
    number: Any,
) -> None:
    messages = heartbeat_messages(number)
    expected = [check_message(topic, p, Thresholds()) for topic, p in messages]
    together = check_messages(messages, Thresholds())
    assert together == expected
    assert [type(value) for value in together[0]] == [type(value) for value in expected[0]]
    assert together[1][4] == 5 and type(together[1][4]) is int  # seq 5.0 is the integer 5


def test_a_health_report_is_stored_as_compact_sorted_json_on_either_path() -> None:
    topic = f"kiosk/v1/{STATION}/T-01/health"
    fast = check_message(topic, json.dumps(HEALTH).encode(), Thresholds())
    assert fast[8] == json.dumps(HEALTH, sort_keys=True, separators=(",", ":"))
    # A number beyond 64 bits only json reads: the reference path writes it the same way.
    huge = {**HEALTH, "devices": {"printer": {"counter": 2**70 + 1}}}
    slow = check_message(topic, json.dumps(huge).encode(), Thresholds())
    assert slow[8] == json.dumps(huge, sort_keys=True, separators=(",", ":"))


def test_a_long_digit_run_inside_text_only_takes_the_reference_path() -> None:
    health = {**HEALTH, "software": "build 1234567890123456789012"}
    payload = json.dumps(health).encode()
    assert _parse_fast("health", payload) is None  # 19 digits in a row: the reference decides
    intent = check_message(f"kiosk/v1/{STATION}/T-01/health", payload, Thresholds())
    assert intent[0] == "health" and json.loads(intent[8]) == health
    assert _parse_fast("health", json.dumps(HEALTH).encode()) == HEALTH


@given(
    st.text(st.characters(codec="utf-8", blacklist_characters="/"), max_size=24),
    st.text(st.characters(codec="utf-8", blacklist_characters="/"), max_size=36),
)
@example("31000000\n", "T-01")  # "$" matched before a final newline: both were accepted
@example("31000000", "T-01\n")
@example("\uff13\uff11", "T-01")  # full-width digits are digits, not ASCII ones
def test_a_topic_is_read_exactly_as_the_contract_words_it(station: str, terminal: str) -> None:
    """kiosk/v1/<1-20 ASCII digits>/<1-32 of A-Z a-z 0-9 ->/<kind>, nothing else."""
    topic = f"kiosk/v1/{station}/{terminal}/health"
    valid = bool(re.fullmatch(r"[0-9]{1,20}", station, re.ASCII)) and bool(
        re.fullmatch(r"[A-Za-z0-9-]{1,32}", terminal, re.ASCII)
    )
    if valid:
        assert parse_topic(topic) == Topic(station, terminal, "health")
    else:
        with pytest.raises(PayloadRejected, match="impossible station or terminal"):
            parse_topic(topic)


def test_a_topic_outside_kiosk_v1_or_of_another_depth_is_refused() -> None:
    assert parse_topic("kiosk/v1/31000000/T-01/heartbeat").kind == "heartbeat"
    for topic in (
        "kiosk/v2/31000000/T-01/heartbeat",
        "kiosk/v1x/31000000/T-01/heartbeat",
        "Kiosk/v1/31000000/T-01/heartbeat",
        "kiosk/v1/31000000/T-01",
        "kiosk/v1/31000000/T-01/heartbeat/extra",
        "/kiosk/v1/31000000/T-01/heartbeat",
    ):
        with pytest.raises(PayloadRejected, match="is not kiosk/v1"):
            parse_topic(topic)
