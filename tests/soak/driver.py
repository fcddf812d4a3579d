"""The fault soak from start to verdict: faults, kills, settle, reconciliation.

run_soak() starts the platform simulator in its own process, writes a simulated terminal's
configuration, then runs the worker (tests/soak/worker.py) again and again: before each
start it draws a segment (tests/soak/plan.py) and arms it (the platform's faults and clock,
the cash board's link errors), and it kills the worker with SIGKILL after the segment's
time unless the worker finished all residents. After the last life the settle phase and
the reconciliation run (settle.py, reconcile.py). It returns what was injected, what was
checked and every discrepancy; callers print it (soak_report_lines) and fail on any.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from kiosk.config import Config, load_config
from simulators.cash import SimulatedCashAcceptor
from simulators.cash_link_faults import plan_random_calls
from station.composition import simulator_dir
from tests.fixtures.platform import PlatformSimProcess
from tests.soak.ledger import SoakLedger
from tests.soak.plan import Intensity, Segment, SkewPlan, segment
from tests.soak.reconcile import Reconciliation, reconcile
from tests.soak.settle import settle
from tests.soak.worker import ledger_path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
OPENING_FLOAT_FEN = 1_000_000_00
# The worker's platform client gives up on an answer after this; lost answers wait longer.
CLIENT_TIMEOUT_S = 0.3
CLIENT_RETRIES = 2
SETTLE_MARGIN = timedelta(minutes=1)


@dataclass
class SoakSettings:
    residents: int = 80
    seed: int = 1
    intensity: Intensity = field(default_factory=Intensity)
    max_lives: int = 400  # a soak that needs more lives than this has stopped progressing


@dataclass
class SoakResult:
    settings: SoakSettings
    lives: int = 0
    kills: int = 0
    seconds: float = 0.0
    settle_rounds: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    tallies: dict[str, int] = field(default_factory=dict)
    reconciliation: Reconciliation = field(default_factory=Reconciliation)
    failures: list[str] = field(default_factory=list)  # the soak itself went wrong

    @property
    def ok(self) -> bool:
        return not self.failures and self.reconciliation.ok

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "residents": self.settings.residents,
            "seed": self.settings.seed,
            "lives": self.lives,
            "kills": self.kills,
            "seconds": round(self.seconds, 1),
            "settle_rounds": self.settle_rounds,
            "faults_injected": dict(sorted(self.injected.items())),
            "residents_tallies": dict(sorted(self.tallies.items())),
            "checks": dict(sorted(self.reconciliation.checks.items())),
            "facts": dict(sorted(self.reconciliation.facts.items())),
            "discrepancies": self.reconciliation.discrepancies,
            "failures": self.failures,
        }


@contextmanager
def child_stderr_to(path: Path) -> Iterator[None]:
    """Processes started inside write their stderr to path: the platform simulator prints a
    traceback for every answer a killed worker can no longer receive."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with path.open("ab") as log:
            os.dup2(log.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def write_config(directory: Path, platform_url: str) -> Path:
    config = directory / "kiosk.toml"
    done = subprocess.run(
        [
            sys.executable, "-m", "firmware_tools.cli", "config", "init", "--sim",
            "--token", "software", "--data", str(directory / "data"),
            "--platform", platform_url, "--out", str(config),
        ],
        capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"config init failed: {done.stderr.strip()}")
    text = config.read_text(encoding="utf-8")
    text = text.replace("timeout_s = 5.0", f"timeout_s = {CLIENT_TIMEOUT_S}")
    text = text.replace("retries = 3", f"retries = {CLIENT_RETRIES}")
    config.write_text(text, encoding="utf-8")
    return config


def link_errors(cash_state: Path) -> int:
    """How many host calls the armed link fault failed: its plan replayed from the state
    file's seed and number of draws (each decision is random.Random(f"{seed}:{k}"))."""
    cash = SimulatedCashAcceptor(cash_state)
    try:
        row = cash._conn.execute(  # the simulator's own state file; no public reader exists
            "SELECT probability, seed, draws, lose FROM link_faults"
        ).fetchone()
    finally:
        cash.close()
    if row is None or row["probability"] <= 0:
        return 0
    plan = plan_random_calls(row["probability"], row["seed"], row["lose"])
    return sum(plan.next_call() is not None for _ in range(row["draws"]))


def arm(life: Segment, platform: PlatformSimProcess, cash_state: Path) -> int:
    """Arm a segment's faults; returns the link errors the previous segment's plan caused."""
    platform.set_clock_offset(-life.clock_error_s)
    platform.set_faults(list(life.platform_faults), seed=life.fault_seed)
    platform.control("POST", "/sim/provider", {"behaviours": list(life.provider)})
    failed = link_errors(cash_state) if cash_state.exists() else 0
    cash = SimulatedCashAcceptor(cash_state)
    try:
        cash.fail_host_calls_randomly(life.link_error_p, life.link_seed)
    finally:
        cash.close()
    return failed


def run_soak(directory: Path, settings: SoakSettings) -> SoakResult:
    directory.mkdir(parents=True, exist_ok=True)
    result = SoakResult(settings)
    started = time.monotonic()
    with child_stderr_to(directory / "platform.log"):
        platform = PlatformSimProcess(
            directory / "platform.sqlite3",
            "--opening-float",
            str(OPENING_FLOAT_FEN),
            "--seed",
            str(settings.seed),
        )
    try:
        config_path = write_config(directory, platform.url)
        config = load_config(config_path)
        skew = run_lives(directory, config_path, config, platform, settings, result)
        platform.clear_faults()
        platform.control("DELETE", "/sim/provider")
        # A terminal clock behind the platform's is made by moving the platform's clock
        # ahead: what the provider had in hand then (a refund processing for a second) is
        # due by that later time. Let its time run to the latest it was given, so that work
        # finishes as it would have, before its clock is set right for the settle phase.
        platform.set_clock_offset(skew.platform_ahead_s)
        platform.dump()  # carries out what is due by then
        platform.set_clock_offset(0)
        result.injected.update(platform_faults_fired(platform))
        result.injected["link errors (cash board)"] += link_errors(cash_state_of(config))
        ledger = SoakLedger(ledger_path(config.data_path))
        result.tallies = ledger.tallies()
        ledger.close()
        for name, n in result.tallies.items():
            if name.startswith("fault:"):
                result.injected[name.removeprefix("fault:")] += n
        if not result.failures:
            settled = settle(
                config,
                seed=settings.seed,
                clock_offset=timedelta(seconds=skew.base_s) + SETTLE_MARGIN,
                platform=platform,
                opening_float_fen=OPENING_FLOAT_FEN,
                ledger_path=ledger_path(config.data_path),
            )
            result.settle_rounds = settled.rounds
            result.reconciliation = reconcile(settled.books)
            result.reconciliation.check(
                "journal verifies", not settled.journal_problem, settled.journal_problem
            )
    finally:
        platform.stop()
        result.seconds = time.monotonic() - started
    return result


def cash_state_of(config: Config) -> Path:
    return simulator_dir(config) / "cash-acceptor.sqlite3"


def platform_faults_fired(platform: PlatformSimProcess) -> Counter[str]:
    fired = platform.control("GET", "/sim/faults")["fired"]
    return Counter({f"platform {label}": int(n) for label, n in fired.items()})


def run_lives(
    directory: Path,
    config_path: Path,
    config: Config,
    platform: PlatformSimProcess,
    settings: SoakSettings,
    result: SoakResult,
) -> SkewPlan:
    """Start, run and kill the worker until every resident was served."""
    skew = SkewPlan()
    cash_state = cash_state_of(config)
    log_path = directory / "worker.log"
    intensity = settings.intensity
    while result.lives < settings.max_lives:
        life = segment(settings.seed, result.lives, skew, intensity)
        result.injected["link errors (cash board)"] += arm(life, platform, cash_state)
        result.injected[f"restarts with the clock {life.band}"] += 1
        command = [
            sys.executable, "-m", "tests.soak.worker", "--config", str(config_path),
            "--residents", str(settings.residents), "--seed", str(settings.seed),
            "--clock-offset-s", str(life.clock_offset_s),
            "--card-pull-p", str(intensity.card_pull_p),
            "--elsewhere-p", str(intensity.elsewhere_p),
            "--payout-p", str(intensity.payout_p),
            "--qr-p", str(intensity.qr_p),
        ]  # fmt: skip
        result.lives += 1
        with log_path.open("ab") as log:
            log.write(f"--- life {life.number}: {json.dumps(life.__dict__)}\n".encode())
            log.flush()
            worker = subprocess.Popen(command, stdout=log, stderr=log, cwd=PROJECT_ROOT)
            try:
                code = worker.wait(timeout=life.run_s)
            except subprocess.TimeoutExpired:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                result.kills += 1
                result.injected["kill -9"] += 1
                continue
        if code != 0:
            tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
            result.failures.append(f"the worker failed (exit {code}): {' | '.join(tail)}")
        return skew
    result.failures.append(
        f"the residents were not all served in {settings.max_lives} lives: see {log_path}"
    )
    return skew


def soak_report_lines(result: SoakResult) -> list[str]:
    """What a person reads: counts of every fault injected and every check, then verdict."""
    lines = [
        f"fault soak: {result.settings.residents} residents, seed {result.settings.seed}, "
        f"{result.lives} lives ({result.kills} killed with SIGKILL), "
        f"settled in {result.settle_rounds} round(s), {result.seconds:.0f} s",
        "faults injected:",
    ]
    lines += [f"  {name:<48} {n:>6}" for name, n in sorted(result.injected.items())]
    lines.append("what the residents met:")
    lines += [f"  {name:<48} {n:>6}" for name, n in sorted(result.tallies.items())]
    lines.append("what the books show:")
    lines += [f"  {name:<48} {n:>6}" for name, n in sorted(result.reconciliation.facts.items())]
    lines.append("checks (items checked):")
    lines += [f"  {name:<48} {n:>6}" for name, n in sorted(result.reconciliation.checks.items())]
    for failure in result.failures:
        lines.append(f"SOAK FAILED: {failure}")
    for problem in result.reconciliation.discrepancies:
        lines.append(f"DISCREPANCY: {problem}")
    if result.ok:
        lines.append("fault soak: the books balance: no discrepancy")
    else:
        lines.append(
            f"fault soak: FAILED with {len(result.reconciliation.discrepancies)} "
            f"discrepancies and {len(result.failures)} failures (seed {result.settings.seed})"
        )
    return lines
