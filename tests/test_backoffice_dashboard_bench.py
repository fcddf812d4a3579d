"""The dashboard's bench runs end to end on a small fleet (its figures are for `make bench`;
nothing here looks at a time)."""

import shutil
from pathlib import Path

import pytest

from tests.bench_support.dashboard import DAYS, TX_PER_DAY, run_dashboard_bench
from tests.fixtures.postgres import PG_BIN


def test_the_dashboard_bench_fills_postgresql_and_measures_every_page_and_report(
    tmp_path: Path,
) -> None:
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.skip("PostgreSQL 15 is not installed (apt-get install postgresql)")
    figures = run_dashboard_bench(tmp_path, sizes=(2, 4))
    assert figures["4"]["tx_close_records"] == 4 * DAYS * TX_PER_DAY
    for key in ("fleet_p95_ms", "terminal_p50_ms", "trends_ms", "report_commission_worst_s"):
        assert figures["4"][key] > 0
    assert set(figures["growth_over_terminal_ratio"]) >= {"fleet_p95_ms", "report_exit_best_s"}
