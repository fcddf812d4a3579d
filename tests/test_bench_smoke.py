"""`make bench` works: its parts run with tiny counts and measure what they claim to measure.

No assertion here is about how fast anything is: the benchmark prints figures, and these
tests only prove that it measures the right thing (the engine's record, real signatures,
every transaction counted) and reports it.
"""

import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.catalog.sample_accounts import valid_account
from kiosk.errors import KioskError
from kiosk.journal import export_jsonl, verify_jsonl
from kiosk.terminal import BillQuote
from tests.bench_support.commit_path import CommitPathBench, run_commit_path
from tests.bench_support.end_to_end import run_end_to_end
from tests.bench_support.measure import Latency, file_system_of
from tests.bench_support.station import StationToken
from tests.fixtures.softhsm import SoftHsmToken
from tests.fixtures.terminal import TerminalRig

pytestmark = pytest.mark.softhsm
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def station_token(token: SoftHsmToken) -> StationToken:
    return StationToken(
        conf=token.conf,
        label=token.label,
        key_label=token.key_label,
        user_pin=token.user_pin,
        institution_no=token.institution_no,
        terminal_id=token.terminal_id,
        station_name=token.station_name,
    )


def electricity_bill(rig: TerminalRig) -> BillQuote:
    service = rig.terminal.catalog().service("electricity-bill")
    rng = random.Random(7)
    for _ in range(50):
        try:
            return rig.terminal.quote_bill(service.code, valid_account(service, rng))
        except KioskError:  # an account without a bill due: try another one
            continue
    raise AssertionError("no electricity account with a bill due found")


def test_the_commit_path_and_its_raw_parts_are_measured_in_the_same_rounds(
    softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    bench = CommitPathBench(
        tmp_path,
        softhsm_token.signer(),
        station=softhsm_token.institution_no,
        terminal=softhsm_token.terminal_id,
    )
    try:
        figures = run_commit_path(bench, iterations=5, warmup=1, budget_s=60.0)
        lines = io.StringIO()
        export_jsonl(bench.conn, lines)
    finally:
        bench.close()

    assert figures.commit_path.n == figures.raw_sign.n == figures.raw_commit.n == 5
    assert not figures.stopped_by_budget
    assert figures.ratio_p50 == figures.commit_path.p50_ms / figures.raw_sum_p50_ms
    assert figures.signed_payload_bytes > 400 and figures.row_bytes > figures.signed_payload_bytes
    summary = figures.as_dict()
    assert summary["target_met"] == (figures.ratio_p50 < 1.5)
    # Calibration, warm-up and measured rounds each closed one transaction, signed by the token.
    report = verify_jsonl(
        lines.getvalue().splitlines(keepends=True), softhsm_token.signer().certificate_pem()
    )
    assert report.ok, report.problem
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    closes = [r for r in records if r["type"] == "tx_close"]
    assert len(closes) == 1 + 1 + 5 and all(r["signer"] == "pkcs11" for r in closes)


def test_the_benchmark_writes_exactly_the_tx_close_record_the_engine_writes(
    terminal_rig: TerminalRig, softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    rig = terminal_rig
    q = electricity_bill(rig)
    progress = rig.terminal.pay_bill(q)
    rig.pay_with_largest_notes(progress.tx_id)
    engine_record = rig.terminal.finish(progress.tx_id).record
    assert engine_record is not None and engine_record["outcome"] == "paid"

    bench = CommitPathBench(
        tmp_path / "bench",
        softhsm_token.signer(),
        station=softhsm_token.institution_no,
        terminal=softhsm_token.terminal_id,
    )
    try:
        bench_record = bench.calibrate()
        row = bench.store.get(str(bench_record["tx_id"]))
    finally:
        bench.close()

    assert sorted(bench_record) == sorted(engine_record)
    assert {k: type(v) for k, v in bench_record.items()} == {
        k: type(v) for k, v in engine_record.items()
    }
    assert row.state == "closed" and row.receipt_no == bench_record["receipt_no"]


def test_whole_transactions_are_timed_with_the_engines_own_close_and_printing_inside(
    softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    figures = run_end_to_end(
        tmp_path, station_token(softhsm_token), transactions=3, warmup=1, budget_s=60.0
    )
    assert figures.transaction.n == figures.begin.n == figures.finish.n == 3
    # Every measured transaction's own close commit and receipt were seen inside the engine.
    assert figures.engine_close_commit.n == 3 and figures.receipt_printing.n == 3
    assert figures.http_requests_per_transaction >= 3  # hold, post, release


def test_the_bench_command_prints_the_figures_and_ends_with_one_json_line(
    tmp_path: Path,
) -> None:
    # A process of its own: the command makes its own SoftHSM2 token directory, which must not
    # replace the test session's one in this process.
    command = [sys.executable, "-m", "tests.bench", "--dir", str(tmp_path)]
    command += ["--iterations", "5", "--warmup", "1", "--transactions", "2"]
    command += ["--transaction-warmup", "0", "--ioboard-frames", "300"]
    command += ["--skip", "telemetry", "backoffice", "dashboard", "ui", "soak"]  # own tests
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("commit path (journal + signature):") for line in lines)
    assert any(line.startswith("ratio commit path / raw parts:") for line in lines)
    summary = json.loads(lines[-1])
    [files] = [line for line in lines if line.startswith("files: ")]
    assert f" on {summary['filesystem']['type']} on " in files
    assert summary["commit_path"]["commit_path"]["n"] == 5
    assert summary["end_to_end"]["transaction"]["n"] == 2
    assert summary["ioboard"]["frames"] >= 300 and summary["ioboard"]["lost"] == []
    assert "telemetry" not in summary and "ui" not in summary and "soak" not in summary
    assert summary["filesystem"]["type"] != "unknown"
    assert list(tmp_path.iterdir()) == []  # the run's token and databases are gone


def test_the_file_system_is_the_deepest_mount_above_the_path(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda1 / ext4 rw,relatime 0 0\n"
        "tmpfs /tmp tmpfs rw,nosuid 0 0\n"
        "/dev/vdb1 /srv/kiosk\\040data xfs rw 0 0\n",
        encoding="utf-8",
    )
    assert file_system_of(Path("/tmp/x/y"), mounts).in_memory
    assert file_system_of(Path("/tmpfoo"), mounts).type == "ext4"
    assert file_system_of(Path("/srv/kiosk data/db"), mounts).type == "xfs"


def test_percentiles_are_read_from_the_samples_in_milliseconds() -> None:
    latency = Latency(tuple(range(1_000_000, 101_000_000, 1_000_000)))  # 1..100 ms
    assert latency.n == 100
    assert latency.p50_ms == pytest.approx(50.5)
    assert latency.p99_ms == pytest.approx(99.01)
