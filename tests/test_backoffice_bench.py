"""`make bench`'s back-office figures: the bench drains the whole stream it describes and
reports every figure (a tiny stream here, on SQLite). No assertion is about speed."""

from pathlib import Path

import pytest

from tests.bench_support.backoffice_fleet import fleet_rates, run_backoffice_bench


def test_the_ingest_bench_drains_the_whole_stream_and_reports_each_figure(tmp_path: Path) -> None:
    figures = run_backoffice_bench(messages=400, fleet=1_000, signers=3, directory=tmp_path)
    assert figures["backoffice_messages"] == 400
    # About one message in six is a signed record, each verified, none refused.
    assert 40 < figures["backoffice_records_verified"] < 100
    assert figures["backoffice_records_quarantined"] == figures["backoffice_rejected"] == 0
    rate = figures["backoffice_worker_msg_s"]
    ratio = rate / figures["backoffice_fleet_msg_s"]
    assert figures["backoffice_worker_to_fleet_ratio"] == pytest.approx(ratio, rel=0.01)
    assert figures["backoffice_paho_noop_drain_msg_s"] > 0
    assert list(tmp_path.iterdir()) == []  # its broker, database and keys are gone


def test_the_fleet_sends_at_the_terminals_default_intervals() -> None:
    rates = fleet_rates(100_000)
    assert round(rates["heartbeat"], 1) == 833.3  # every 120 s
    assert round(rates["health"], 1) == 111.1  # every 900 s
    assert round(rates["outbox"], 1) == 173.6  # 150 transactions a day
