"""Bytes per day on the wire for one terminal at the default intervals, from a real session."""

from pathlib import Path

from kiosk.telemetry import TelemetryConfig
from kiosk.telemetry.bandwidth import (
    PING_EXCHANGE_TLS_BYTES,
    TARGET_BYTES_PER_DAY,
    Traffic,
    WireCosts,
    daily_bytes,
)
from tests.fixtures.mosquitto import MqttPki, measure_telemetry_bandwidth


def test_one_terminal_at_the_default_intervals_stays_under_one_megabyte_a_day(
    tmp_path: Path, mqtt_pki: MqttPki
) -> None:
    day = measure_telemetry_bandwidth(tmp_path)
    print("telemetry bytes per day:", day.as_dict())
    assert day.heartbeat_interval_s == TelemetryConfig().heartbeat_interval_s
    # Real TLS records of real MQTT packets: a heartbeat is a few hundred bytes, not zero.
    assert 150 * (86_400 // 120) < day.tls_bytes["heartbeat"] < 1_000 * (86_400 // 120)
    assert day.tls_bytes["outbox"] > 150 * 500  # a signed record is over 500 bytes
    assert day.total < TARGET_BYTES_PER_DAY


def test_the_extrapolation_counts_pings_only_when_heartbeats_are_rarer_than_the_keepalive() -> None:
    costs = WireCosts(Traffic(5000, 20), Traffic(300, 1), Traffic(500, 2), Traffic(1200, 4))
    quiet = daily_bytes(costs, TelemetryConfig(heartbeat_interval_s=120, keepalive_s=180))
    assert quiet.tls_bytes["keepalive"] == 0
    assert quiet.tls_bytes["heartbeat"] == 720 * 300
    assert quiet.tls_bytes["outbox"] == 150 * 1200 and quiet.tls_bytes["connect"] == 4 * 5000
    chatty = daily_bytes(costs, TelemetryConfig(heartbeat_interval_s=600, keepalive_s=60))
    assert chatty.tls_bytes["keepalive"] == 1440 * PING_EXCHANGE_TLS_BYTES
    segments = 4 * 20 + 720 * 1 + 96 * 2 + 150 * 4
    assert quiet.tcp_ip_bytes == 2 * segments * 52
    assert quiet.total == sum(quiet.tls_bytes.values()) + quiet.tcp_ip_bytes
