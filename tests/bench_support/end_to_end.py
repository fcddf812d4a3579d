"""Whole simulated customer transactions through the real terminal core, timed by phase.

Owns running the terminal (station.composition.build_terminal on simulated devices, signing
with the SoftHSM2 station token) against the platform simulator in its own process over
loopback HTTP, and timing each transaction: begin (float hold over HTTP), cash (one note,
journaled), finish (posting over HTTP, the signed close, releasing the hold over HTTP, the
receipt printed, the float refreshed over HTTP).

It also times two parts inside those real transactions: the engine's own tx_close write
transaction (by wrapping the write_transaction the engine module calls) and the printing of
the receipt (by wrapping print_receipt on the one engine object). The wrappers only read a
clock (and the journal's head) around the real call; they change nothing the engine does, and
they are removed again when the run ends.
"""

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import kiosk.transactions.engine as engine_module
from kiosk.config import parse_config
from kiosk.transactions.engine import TransactionEngine
from station.composition import build_terminal
from tests.bench_support.measure import Latency
from tests.bench_support.station import StationToken
from tests.fixtures.engine_hook import engine_of
from tests.fixtures.platform import PlatformSimProcess

# The largest float the simulator allows, so that no run ever runs out of float.
DEPOSITED_FEN = 100_000_000
TOPUP_FEN = 50_00
PHONE = "13800138000"
# The name under which the engine module calls kiosk.storage.write_transaction.
_ENGINE_WRITE_TRANSACTION = "write_transaction"


@dataclass(frozen=True)
class EndToEndFigures:
    transaction: Latency
    begin: Latency
    cash: Latency
    finish: Latency
    engine_close_commit: Latency  # the engine's own tx_close write transaction, in situ
    receipt_printing: Latency  # the engine's print_receipt (layout, QR code, printer), in situ
    http_requests_per_transaction: float
    stopped_by_budget: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "transaction": self.transaction.as_dict(),
            "begin": self.begin.as_dict(),
            "cash": self.cash.as_dict(),
            "finish": self.finish.as_dict(),
            "engine_close_commit": self.engine_close_commit.as_dict(),
            "receipt_printing": self.receipt_printing.as_dict(),
            "http_requests_per_transaction": round(self.http_requests_per_transaction, 2),
            "stopped_by_budget": self.stopped_by_budget,
        }


def _journal_head(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()
    return int(row[0])


@contextmanager
def engine_close_commits_timed(samples: list[int]) -> Iterator[None]:
    """While active, the duration of every engine write transaction that appends a tx_close."""
    real: Callable[[sqlite3.Connection], AbstractContextManager[sqlite3.Connection]]
    real = getattr(engine_module, _ENGINE_WRITE_TRANSACTION)

    def timed(conn: sqlite3.Connection) -> AbstractContextManager[sqlite3.Connection]:
        if conn.in_transaction:
            return real(conn)  # nested: part of an outer transaction already being timed
        return _timed_outer(conn)

    @contextmanager
    def _timed_outer(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        head = _journal_head(conn)
        start = time.perf_counter_ns()
        with real(conn) as inner:
            yield inner
        elapsed = time.perf_counter_ns() - start
        appended = conn.execute(
            "SELECT 1 FROM journal WHERE seq > ? AND type = 'tx_close' LIMIT 1", (head,)
        ).fetchone()
        if appended is not None:
            samples.append(elapsed)

    setattr(engine_module, _ENGINE_WRITE_TRANSACTION, timed)
    try:
        yield
    finally:
        setattr(engine_module, _ENGINE_WRITE_TRANSACTION, real)


@contextmanager
def receipt_printing_timed(engine: TransactionEngine, samples: list[int]) -> Iterator[None]:
    """While active, the duration of every print_receipt call of this engine's receipt desk."""
    desk = engine.receipts
    real = desk.print_receipt

    def timed(tx_id: str, copy_no: int) -> tuple[bool, str | None]:
        start = time.perf_counter_ns()
        try:
            return real(tx_id, copy_no)
        finally:
            samples.append(time.perf_counter_ns() - start)

    desk.print_receipt = timed  # type: ignore[method-assign]
    try:
        yield
    finally:
        del desk.print_receipt  # the class's method again


def run_end_to_end(
    directory: Path, token: StationToken, *, transactions: int, warmup: int, budget_s: float
) -> EndToEndFigures:
    """Run warmup + transactions phone top-ups paid in cash; stop early once budget_s is spent."""
    directory.mkdir(parents=True, exist_ok=True)
    platform = PlatformSimProcess(directory / "platform.sqlite3")
    try:
        # The credit line is zero: the station buys its float at the outlet first.
        platform.fund(token.institution_no, DEPOSITED_FEN)
        config = parse_config(
            {
                "data_dir": str(directory / "terminal"),
                "station": {
                    "institution_no": token.institution_no,
                    "name": token.station_name,
                    "terminal_id": token.terminal_id,
                },
                "platform": {"url": platform.url},
                "token": token.token_table(),
            },
            source="<benchmark>",
        )
        terminal, sims = build_terminal(config, signer=token.signer())
        try:
            terminal.start()
            phases: dict[str, list[int]] = {
                "transaction": [],
                "begin": [],
                "cash": [],
                "finish": [],
            }
            close_commits: list[int] = []
            printing: list[int] = []
            requests_before = 0
            deadline = time.monotonic() + budget_s
            stopped_by_budget = False
            with (
                engine_close_commits_timed(close_commits),
                receipt_printing_timed(engine_of(terminal), printing),
            ):
                for number in range(warmup + transactions):
                    if number == warmup:
                        close_commits.clear()
                        printing.clear()
                        requests_before = sum(platform.requests_seen().values())
                    t0 = time.perf_counter_ns()
                    progress = terminal.start_phone_topup("mobile-topup", PHONE, TOPUP_FEN)
                    t1 = time.perf_counter_ns()
                    while progress.still_due_fen:
                        sims.cash.insert("note", TOPUP_FEN)
                        progress = terminal.collect(progress.tx_id)
                    t2 = time.perf_counter_ns()
                    outcome = terminal.finish(progress.tx_id)
                    t3 = time.perf_counter_ns()
                    if outcome.outcome != "paid" or not outcome.printed:
                        raise RuntimeError(
                            f"benchmark transaction {outcome.tx_id} ended {outcome.outcome}"
                            f" (printed: {outcome.printed}): the figures would be meaningless"
                        )
                    if number < warmup:
                        continue
                    for name, elapsed in (
                        ("transaction", t3 - t0),
                        ("begin", t1 - t0),
                        ("cash", t2 - t1),
                        ("finish", t3 - t2),
                    ):
                        phases[name].append(elapsed)
                    measured = number + 1 - warmup
                    if measured >= 5 and time.monotonic() > deadline:
                        stopped_by_budget = measured < transactions
                        break
            measured = len(phases["transaction"])
            requests = sum(platform.requests_seen().values()) - requests_before
        finally:
            terminal.close()
    finally:
        platform.stop()
    return EndToEndFigures(
        transaction=Latency(tuple(phases["transaction"])),
        begin=Latency(tuple(phases["begin"])),
        cash=Latency(tuple(phases["cash"])),
        finish=Latency(tuple(phases["finish"])),
        engine_close_commit=Latency(tuple(close_commits)),
        receipt_printing=Latency(tuple(printing)),
        http_requests_per_transaction=requests / measured if measured else 0.0,
        stopped_by_budget=stopped_by_budget,
    )
