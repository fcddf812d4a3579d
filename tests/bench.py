"""`make bench`: the terminal's performance figures, printed (never asserted on a time).

Sections: the commit path against its raw parts, whole transactions, then the I/O board link
under injected faults, telemetry bytes per day, back-office ingest against a fleet of 100,000,
the touchscreen app (start, memory, touch feedback), and the long fault soak (issue 16: counts
of every fault injected and every check; the bench exits 1 on any discrepancy); see
docs/benchmarks.md.

Prints, for the commit path of one transaction (the signed tx_close journal record and the
transaction row, in one durable SQLite commit), p50 and p99 latency; in the same run the cost
of the raw parts (one PKCS#11 signature on a SoftHSM2 token, one durable SQLite commit of one
row of the same size) and the ratio of the two, against the target of 1.5x. A second section
times whole simulated customer transactions over loopback HTTP. The last line of the output
is one JSON object with every figure, for CI logs. It prints figures and never fails on a
time (the fault soak is a money check, not a time: it fails loudly on a discrepancy);
docs/benchmarks.md says what is measured and how to read it.

Run with `.venv/bin/python -m tests.bench` (`--help` for the knobs).
"""

import argparse
import dataclasses
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from drivers.token.pkcs11_signer import pkcs11_module
from kiosk.command_line import run_command
from tests.bench_support.commit_path import (
    TARGET_RATIO,
    CommitPathBench,
    CommitPathFigures,
    run_commit_path,
)
from tests.bench_support.end_to_end import EndToEndFigures, run_end_to_end
from tests.bench_support.measure import FileSystem, cpu_count, file_system_of
from tests.bench_support.station import StationToken, make_station_token

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Under the project, not /tmp: /tmp is often a tmpfs, where fsync costs nothing.
DEFAULT_DIRECTORY = PROJECT_ROOT / "build" / "bench"


def machine_facts(token: StationToken) -> dict[str, object]:
    library = pkcs11_module(token.module).lib()
    major, minor = library.library_version
    return {
        "machine": platform.machine(),
        "cpus": cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "pkcs11_library": f"{library.manufacturer_id.strip()} {major}.{minor}"
        f" ({library.library_description.strip()})",
    }


def commit_path_section(
    directory: Path, token: StationToken, *, iterations: int, warmup: int, budget_s: float
) -> CommitPathFigures:
    """Section 1: the commit path and its raw parts, with the same signer, in one loop."""
    directory.mkdir(parents=True, exist_ok=True)
    bench = CommitPathBench(
        directory, token.signer(), station=token.institution_no, terminal=token.terminal_id
    )
    try:
        return run_commit_path(bench, iterations=iterations, warmup=warmup, budget_s=budget_s)
    finally:
        bench.close()


def commit_path_lines(figures: CommitPathFigures, warmup: int) -> list[str]:
    verdict = "met" if figures.target_met else "NOT met"
    lines = [
        f"payloads: signed bytes {figures.signed_payload_bytes}, journal row"
        f" {figures.row_bytes} bytes; {warmup} warm-up rounds, then the three measured in turn"
        + (" (stopped early: time budget spent)" if figures.stopped_by_budget else ""),
        "",
        figures.commit_path.line("commit path (journal + signature)"),
        figures.raw_sign.line("raw part: one PKCS#11 signature"),
        figures.raw_commit.line("raw part: one durable SQLite commit"),
        f"{'raw parts summed:':<42} p50 {figures.raw_sum_p50_ms:7.3f} ms  p99"
        f" {figures.raw_sum_p99_ms:7.3f} ms",
        f"{'ratio commit path / raw parts:':<42} p50 {figures.ratio_p50:7.2f} x   p99"
        f" {figures.ratio_p99:7.2f} x",
        f"target: commit path under {TARGET_RATIO}x its raw parts (at p50): {verdict}"
        f" (at p99: {'met' if figures.ratio_p99 < TARGET_RATIO else 'not met'})",
    ]
    return lines


def end_to_end_lines(figures: EndToEndFigures) -> list[str]:
    return [
        "one phone top-up paid with one note: begin -> cash -> finish -> close -> print,"
        " against the platform simulator in its own process over loopback HTTP"
        " (these figures include HTTP, the simulator's own durable writes and the simulated"
        " devices' state files)"
        + (" (stopped early: time budget spent)" if figures.stopped_by_budget else ""),
        "",
        figures.transaction.line("whole transaction (includes HTTP)"),
        figures.begin.line("  begin (float hold over HTTP)"),
        figures.cash.line("  cash (one note journaled)"),
        figures.finish.line("  finish (post, close, release, print)"),
        figures.engine_close_commit.line("  of which the engine's tx_close commit"),
        figures.receipt_printing.line("  of which printing the receipt"),
        f"  HTTP requests per transaction: {figures.http_requests_per_transaction:.1f}",
    ]


def run(args: argparse.Namespace) -> int:
    base: Path = args.dir.resolve()
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base, prefix="run-") as name:
        run_dir = Path(name)
        token = make_station_token(run_dir / "token")
        file_system: FileSystem = file_system_of(run_dir)
        facts = machine_facts(token)
        print("Kiosk benchmark: the commit path of one transaction against its raw parts")
        print(
            f"machine: {facts['machine']}, {facts['cpus']} CPU(s), Python {facts['python']},"
            f" SQLite {facts['sqlite']}, {facts['pkcs11_library']}"
        )
        print(f"files: {run_dir} on {file_system.describe()}")
        if file_system.in_memory:
            print(
                "warning: this file system is in memory, so fsync costs nothing and the commit"
                " figures understate a real disk: run with --dir on a disk-backed directory"
            )
        sys.stdout.flush()
        commit = commit_path_section(
            run_dir / "commit-path",
            token,
            iterations=args.iterations,
            warmup=args.warmup,
            budget_s=args.budget_s,
        )
        print()
        print("\n".join(commit_path_lines(commit, args.warmup)))
        sys.stdout.flush()
        end_to_end: EndToEndFigures | None = None
        if args.transactions > 0:
            end_to_end = run_end_to_end(
                run_dir / "end-to-end",
                token,
                transactions=args.transactions,
                warmup=args.transaction_warmup,
                budget_s=args.end_to_end_budget_s,
            )
            print()
            print("\n".join(end_to_end_lines(end_to_end)))
        summary: dict[str, object] = {
            "benchmark": "kiosk",
            "machine": facts,
            "filesystem": file_system.as_dict(),
            "commit_path": commit.as_dict(),
            "end_to_end": None if end_to_end is None else end_to_end.as_dict(),
        }
        for name, section in SECTIONS.items():
            if name in args.skip:
                continue
            print()
            print(f"== {name}")
            sys.stdout.flush()
            summary[name] = section(run_dir / name, args)
            sys.stdout.flush()
        print()
        print(json.dumps(summary, sort_keys=True, ensure_ascii=False))
    failed = [name for name in MUST_PASS if section_failed(summary.get(name))]
    for name in failed:
        print(f"bench: FAILED: the {name} section found discrepancies (see above)", file=sys.stderr)
    return 1 if failed else 0


def ioboard_section(directory: Path, args: argparse.Namespace) -> dict[str, object]:
    """The I/O board link under injected faults: goodput, retransmissions, cash reconciled."""
    from tests.bench_support.ioboard_link import run_link_bench

    result = run_link_bench(args.ioboard_frames)
    return {
        **dataclasses.asdict(result),
        "goodput_requests_per_s": round(result.goodput_requests_per_s, 1),
        "retransmission_rate": round(result.retransmission_rate, 4),
    }


def telemetry_section(directory: Path, args: argparse.Namespace) -> dict[str, object]:
    """Bytes per day on the wire for one terminal at the default intervals (target < 1 MB)."""
    from tests.fixtures.mosquitto import measure_telemetry_bandwidth

    day = measure_telemetry_bandwidth(directory)
    verdict = "met" if day.total < 1_000_000 else "NOT met"
    print(f"telemetry: {day.total:,} bytes a day on the wire; target under 1,000,000: {verdict}")
    for part, size in sorted(day.tls_bytes.items()):
        print(f"  {part:<20} {size:>10,} bytes (TLS records)")
    print(f"  {'TCP/IP headers':<20} {day.tcp_ip_bytes:>10,} bytes (estimated)")
    return day.as_dict()


def backoffice_section(directory: Path, args: argparse.Namespace) -> dict[str, object]:
    """One ingest worker draining a stream shaped like 100,000 terminals, durably into
    PostgreSQL (fsync on), against the fleet's message rate (target: at least 5 times)."""
    from tests.bench_support.backoffice_fleet import run_backoffice_bench
    from tests.fixtures.postgres import PostgresServer

    directory.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(durable=True)
    try:
        server.start()
        figures = run_backoffice_bench(store_url=server.create_database(), directory=directory)
    finally:
        server.remove()
    ratio = figures["backoffice_worker_to_fleet_ratio"]
    verdict = "met" if ratio >= 5 else "NOT met"
    print(f"backoffice: one worker ingests {ratio} times the fleet's rate; target 5: {verdict}")
    for key, value in sorted(figures.items()):
        print(f"  {key}: {value}")
    return figures


def dashboard_section(directory: Path, args: argparse.Namespace) -> dict[str, object]:
    """The dashboard's fleet page and reports on PostgreSQL, 100 to 1,000 terminals x 31 days."""
    from tests.bench_support.dashboard import run_dashboard_bench

    return run_dashboard_bench(directory)


def ui_section(directory: Path, args: argparse.Namespace) -> dict[str, object]:
    """The touchscreen app under Xvfb: cold start, memory over 100 journeys, touch feedback."""
    # Its own process: Kivy's window and GL context must not live in this one.
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench_support.ui"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    print(done.stdout.rstrip())
    if done.returncode != 0:
        print(f"ui bench failed: {done.stderr.strip().splitlines()[-1:]}")
    return {"exit_code": done.returncode, "lines": done.stdout.splitlines()}


def section_failed(section: object) -> bool:
    return isinstance(section, dict) and section.get("ok") is False


def soak_section(directory: Path, args: argparse.Namespace) -> dict[str, object]:
    """The long fault soak (issue 16): residents, every fault, kill -9, settle, reconcile.
    Prints the counts of each fault injected and each check; any discrepancy fails the bench."""
    from tests.soak.driver import SoakSettings, run_soak, soak_report_lines

    result = run_soak(directory, SoakSettings(residents=args.soak_residents, seed=args.soak_seed))
    print("\n".join(soak_report_lines(result)))
    return result.as_dict()


SECTIONS = {
    "ioboard": ioboard_section,
    "telemetry": telemetry_section,
    "backoffice": backoffice_section,
    "dashboard": dashboard_section,
    "ui": ui_section,
    "soak": soak_section,
}
# Sections whose result says ok: False fail the bench (a soak discrepancy is a money bug).
MUST_PASS = ("soak",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench",
        description="Time one transaction's commit path (journal + signature) against its raw"
        " parts on a SoftHSM2 token and a real SQLite file; print figures and one JSON line.",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(os.environ.get("KIOSK_BENCH_DIR", DEFAULT_DIRECTORY)),
        help="where the throw-away token and databases go; must be on the disk to measure"
        " (default: build/bench under the project, or $KIOSK_BENCH_DIR)",
    )
    parser.add_argument("--iterations", type=int, default=2000, help="measured rounds")
    parser.add_argument("--warmup", type=int, default=200, help="rounds run before measuring")
    parser.add_argument(
        "--budget-s", type=float, default=30.0, help="stop the commit-path rounds after this"
    )
    parser.add_argument(
        "--transactions",
        type=int,
        default=100,
        help="whole customer transactions to time (0 skips that section)",
    )
    parser.add_argument("--transaction-warmup", type=int, default=10)
    parser.add_argument(
        "--end-to-end-budget-s",
        type=float,
        default=15.0,
        help="stop the whole-transaction section after this",
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=sorted(SECTIONS),
        help="sections to leave out (the commit path always runs)",
    )
    parser.add_argument(
        "--ioboard-frames", type=int, default=100_000, help="frames of the I/O board link run"
    )
    parser.add_argument(
        "--soak-residents", type=int, default=500, help="residents of the long fault soak"
    )
    parser.add_argument("--soak-seed", type=int, default=1, help="seed of the long fault soak")
    parser.set_defaults(handler=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
