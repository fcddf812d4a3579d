"""Remote commands: only signed, fresh, never-seen commands for this terminal get through."""

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.clock import FixedClock, PlatformTime
from kiosk.errors import KioskError
from kiosk.storage import open_database
from kiosk.telemetry import (
    Command,
    CommandGate,
    CommandHandlers,
    CommandRefused,
    sign_command,
    unsigned_command,
)
from kiosk.telemetry.schemas import PayloadInvalid, validate_payload
from tests.fixtures.mosquitto import STATION, TelemetryStation

NOW = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def gate(telemetry_station: TelemetryStation, clock: FixedClock) -> CommandGate:
    return make_gate(telemetry_station, clock)


def make_gate(station: TelemetryStation, clock: FixedClock) -> CommandGate:
    return CommandGate(
        open_database(station.db_path),
        backoffice_public_pem=station.backoffice_pub.read_bytes(),
        station=STATION,
        terminal=station.terminal,
        clock=clock,
        max_lifetime_s=3600,
    )


def command(rig: TelemetryStation, /, **fields: Any) -> dict[str, Any]:
    unsigned = unsigned_command(
        station=STATION,
        terminal=rig.terminal,
        name="set_heartbeat_interval",
        args={"seconds": 60},
        expires=NOW + timedelta(minutes=10),
    )
    unsigned.update(fields)
    return unsigned


def signed(station: TelemetryStation, **fields: Any) -> bytes:
    return json.dumps(sign_command(command(station, **fields), station.backoffice_key)).encode()


def nonces(station: TelemetryStation) -> list[tuple[str, ...]]:
    rows = station.conn.execute("SELECT * FROM telemetry_nonces ORDER BY nonce").fetchall()
    return [tuple(row) for row in rows]


def test_a_signed_fresh_command_for_this_terminal_is_admitted(
    gate: CommandGate, telemetry_station: TelemetryStation
) -> None:
    body = signed(telemetry_station)
    admitted = gate.admit(body)
    sent = json.loads(body)
    assert (admitted.id, admitted.name, admitted.args) == (sent["id"], sent["name"], sent["args"])
    assert [row[0] for row in nonces(telemetry_station)] == [sent["nonce"]]


def test_a_signed_command_follows_the_published_schema(telemetry_station: TelemetryStation) -> None:
    validate_payload("cmd", signed(telemetry_station))


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unsigned", "lacks sig"),
        ("signed by another key", "does not verify"),
        ("altered after signing", "does not verify"),
        ("signature not base64", "not valid base64"),
        ("expired", "expired"),
        ("expires too far ahead", "further ahead"),
        ("expiry without offset", "UTC offset"),
        ("for another terminal", "not this terminal"),
        ("for another station", "not this terminal"),
        ("unknown name", "name must be one of"),
        ("unknown key", "unknown keys"),
        ("not json", "not UTF-8 JSON"),
        ("not an object", "JSON object"),
        ("bad nonce", "nonce must be"),
        ("nonce ending in a newline", "nonce must be"),
        ("args not an object", "args must be an object"),
        ("no id", "lacks id"),
        ("huge", "more than"),
    ],
)
def test_a_bad_command_is_refused_with_its_reason_and_changes_nothing(
    gate: CommandGate, telemetry_station: TelemetryStation, case: str, reason: str
) -> None:
    station = telemetry_station
    good = sign_command(command(station), station.backoffice_key)
    bodies: dict[str, Any] = {
        "unsigned": {k: v for k, v in good.items() if k != "sig"},
        "signed by another key": sign_command(
            command(station), ec.generate_private_key(ec.SECP256R1())
        ),
        "altered after signing": {**good, "args": {"seconds": 10}},
        "signature not base64": {**good, "sig": "not base64!"},
        "expired": sign_command(
            command(station, expires=(NOW - timedelta(seconds=1)).isoformat()),
            station.backoffice_key,
        ),
        "expires too far ahead": sign_command(
            command(station, expires=(NOW + timedelta(hours=2)).isoformat()),
            station.backoffice_key,
        ),
        "expiry without offset": sign_command(
            command(station, expires="2025-03-01T10:00:00"), station.backoffice_key
        ),
        "for another terminal": sign_command(
            command(station, terminal="T9999"), station.backoffice_key
        ),
        "for another station": sign_command(
            command(station, station="33078299999"), station.backoffice_key
        ),
        "unknown name": sign_command(command(station, name="format_disk"), station.backoffice_key),
        "unknown key": sign_command(command(station, extra=1), station.backoffice_key),
        "not json": b"\xff{",
        "not an object": b"[1, 2]",
        "bad nonce": sign_command(command(station, nonce="XYZ"), station.backoffice_key),
        # "$" matched before a final newline: this one was admitted.
        "nonce ending in a newline": sign_command(
            command(station, nonce="0123456789abcdef\n"), station.backoffice_key
        ),
        "args not an object": sign_command(command(station, args=[1]), station.backoffice_key),
        "no id": {k: v for k, v in good.items() if k != "id"},
        "huge": {**good, "args": {"pad": "x" * 20_000}},
    }
    body = bodies[case]
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(CommandRefused, match=reason) as refused:
        gate.admit(payload)
    # The refusal names the command whenever it could be read, so the back office can match it.
    if case not in ("not json", "not an object", "no id", "huge"):
        assert refused.value.command_id == json.loads(payload)["id"]
    assert nonces(station) == []


def test_the_schema_refuses_what_the_gate_refuses_for_its_shape(
    telemetry_station: TelemetryStation,
) -> None:
    # The published schema and the terminal agree on the shape (station binding included).
    good = sign_command(command(telemetry_station), telemetry_station.backoffice_key)
    for bad in (
        {k: v for k, v in good.items() if k != "terminal"},
        {**good, "nonce": "XYZ"},
        {**good, "name": "format_disk"},
        {**good, "extra": 1},
    ):
        with pytest.raises(PayloadInvalid):
            validate_payload("cmd", bad)


def test_a_replayed_command_is_refused(
    gate: CommandGate, telemetry_station: TelemetryStation
) -> None:
    body = signed(telemetry_station)
    gate.admit(body)
    with pytest.raises(CommandRefused, match="replay"):
        gate.admit(body)


def test_a_replay_is_refused_after_a_restart_too(
    telemetry_station: TelemetryStation, clock: FixedClock
) -> None:
    body = signed(telemetry_station)
    make_gate(telemetry_station, clock).admit(body)
    with pytest.raises(CommandRefused, match="replay"):
        make_gate(telemetry_station, clock).admit(body)


def test_expired_nonces_are_forgotten_and_their_commands_stay_refused_as_expired(
    gate: CommandGate, telemetry_station: TelemetryStation, clock: FixedClock
) -> None:
    old = signed(telemetry_station)
    gate.admit(old)
    clock.advance(timedelta(minutes=11))
    gate.admit(signed(telemetry_station, expires=(clock.now() + timedelta(minutes=5)).isoformat()))
    assert len(nonces(telemetry_station)) == 1
    with pytest.raises(CommandRefused, match="expired"):
        gate.admit(old)


def test_the_gate_wants_a_p256_public_key(telemetry_station: TelemetryStation) -> None:
    with pytest.raises(KioskError, match="backoffice_key_file"):
        CommandGate(
            telemetry_station.conn,
            backoffice_public_pem=b"not a key",
            station=STATION,
            terminal="T0001",
            clock=FixedClock(NOW),
        )


@pytest.fixture
def handlers() -> Iterator[CommandHandlers]:
    yield CommandHandlers()


def sample(name: str) -> Command:
    return Command("c1", name, {"seconds": 30}, NOW, "00" * 8)


def test_an_admitted_command_runs_its_registered_handler(handlers: CommandHandlers) -> None:
    seen: list[Command] = []
    handlers.register("reboot", lambda c: seen.append(c) or {"in_s": 5})
    assert handlers.dispatch(sample("reboot")) == {"in_s": 5}
    assert [c.name for c in seen] == ["reboot"]


def test_a_command_without_a_handler_is_refused(handlers: CommandHandlers) -> None:
    with pytest.raises(CommandRefused, match="not supported"):
        handlers.dispatch(sample("install_catalog"))


def test_only_contract_commands_can_be_registered_and_only_once(
    handlers: CommandHandlers,
) -> None:
    with pytest.raises(ValueError, match="not a command"):
        handlers.register("format_disk", lambda c: None)
    handlers.register("reboot", lambda c: None)
    with pytest.raises(ValueError, match="already registered"):
        handlers.register("reboot", lambda c: None)
    assert handlers.registered() == ("reboot",)


def test_a_signature_is_over_the_canonical_json_without_sig(
    telemetry_station: TelemetryStation,
) -> None:
    from cryptography.hazmat.primitives import hashes

    from kiosk.journal import canonical_json

    cmd = sign_command(command(telemetry_station), telemetry_station.backoffice_key)
    body = canonical_json({k: v for k, v in cmd.items() if k != "sig"})
    telemetry_station.backoffice_key.public_key().verify(
        base64.b64decode(cmd["sig"]), body, ec.ECDSA(hashes.SHA256())
    )


def test_a_replay_is_refused_whatever_offsets_the_terminal_and_the_command_use(
    telemetry_station: TelemetryStation,
) -> None:
    # The terminal's clock runs in +08:00 and the command says its expiry in UTC.
    shanghai = FixedClock(NOW.astimezone(ZoneInfo("Asia/Shanghai")))
    gate = make_gate(telemetry_station, shanghai)
    body = signed(telemetry_station)
    gate.admit(body)
    with pytest.raises(CommandRefused, match="replay"):
        gate.admit(body)


def test_a_terminal_clock_running_ahead_judges_expiry_by_the_platforms_clock(
    telemetry_station: TelemetryStation,
) -> None:
    # The terminal's clock is 30 minutes ahead; the back office signed a command valid for
    # 10 minutes by the right time. Judged by the terminal's own clock it would be expired.
    ahead = FixedClock(NOW + timedelta(minutes=30))
    body = signed(telemetry_station)
    with pytest.raises(CommandRefused, match="expired"):
        make_gate(telemetry_station, ahead).admit(body)
    corrected = PlatformTime(ahead, lambda: timedelta(minutes=-30))
    gate = CommandGate(
        open_database(telemetry_station.db_path),
        backoffice_public_pem=telemetry_station.backoffice_pub.read_bytes(),
        station=STATION,
        terminal=telemetry_station.terminal,
        clock=corrected,
        max_lifetime_s=3600,
    )
    assert gate.admit(body).name == "set_heartbeat_interval"
    assert PlatformTime(ahead, lambda: None).now() == ahead.now()  # no reading: as it is
