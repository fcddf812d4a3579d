"""`make bench`'s back-office figures: the bench drains the whole stream it describes and
reports every figure (tiny counts here). No assertion is about speed."""

from pathlib import Path

from backoffice.bench import _PrivateBroker, _publish_all, run_backoffice_bench


def test_the_ingest_bench_drains_the_whole_stream_and_reports_each_figure(tmp_path: Path) -> None:
    figures = run_backoffice_bench(terminals=8, rounds=5, pairs=1, directory=tmp_path)

    # 8 heartbeats a period, and a health report and a record each in the first period.
    assert figures["backoffice_messages"] == 8 * 5 + 8 * 2
    assert figures["backoffice_acks_sent"] >= 8  # every terminal's record acknowledged
    [ratio] = figures["backoffice_ingest_ratios_of_each_pair"]
    rates = figures["backoffice_ingest_msg_s"] / figures["backoffice_raw_drain_msg_s"]
    assert ratio == figures["backoffice_ingest_ratio"] == round(rates, 3)
    cpu = figures["backoffice_ingest_cpu_us_per_msg"]
    for part in (
        "broker",
        "receiving process",
        "back office: worker thread",
        "back office: checkpoint thread",
        "all processes",
        "wall time",
    ):
        assert cpu[part] >= 0, part
    assert {"broker", "mosquitto_sub"} <= figures["backoffice_raw_cpu_us_per_msg"].keys()
    assert 0 < figures["backoffice_death_to_offline_alert_s"] < 60
    assert list(tmp_path.iterdir()) == []  # its broker, databases and sessions are gone


def test_the_bench_publishes_more_messages_than_mqtt_has_packet_ids(tmp_path: Path) -> None:
    # 10,000 terminals make a stream of 140,000; with every QoS 1 message outstanding at
    # once, paho refused the 65,536th (ValueError: ERR_QUEUE_SIZE).
    broker = _PrivateBroker(tmp_path)
    try:
        _publish_all(broker.port, [("kiosk/v1/31000000/T-01/health", b"{}", 1)] * 70_000)
    finally:
        broker.stop()
