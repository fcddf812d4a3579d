"""The commit path of one transaction, and its raw parts, measured side by side.

The commit path is the write transaction TransactionEngine._close() runs: in one
BEGIN IMMEDIATE ... COMMIT, read the open business day, append the signed tx_close record
(canonical JSON, hash chain, turnover, receipt number, one PKCS#11 signature) and move the
transaction row to CLOSED. It runs the engine's own write_close() with the real Journal and
TxStore on a real SQLite file opened by kiosk.storage.open_database (WAL, synchronous=FULL),
without the engine's side effects after the commit (releasing the float hold over HTTP,
printing), which are not part of the commit path; tests/bench.py also times the engine's
write inside whole transactions.

The raw parts are one signature by the same signer over a payload of the same size, and one
durable commit of one row of the same size into another database in the same directory.
All three are measured in one loop, interleaved and in rotating order, so that they share the
machine's state at every moment of the run.
"""

import functools
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time as time_of_day
from pathlib import Path

from kiosk.clock import Clock, SystemClock, iso
from kiosk.journal import Journal, canonical_json
from kiosk.journal.canonical import signed_bytes
from kiosk.settlement.calendar import BusinessCalendar
from kiosk.signing import Signer
from kiosk.storage import open_database, write_transaction
from kiosk.transactions.engine import write_close
from kiosk.transactions.states import TxState
from kiosk.transactions.store import TxRow, TxStore
from tests.bench_support.measure import Latency

TARGET_RATIO = 1.5
DAY_CUTOFF = time_of_day(23, 30)  # the configuration's default business.day_cutoff


@dataclass(frozen=True)
class CommitPathFigures:
    commit_path: Latency
    raw_sign: Latency
    raw_commit: Latency
    signed_payload_bytes: int
    row_bytes: int
    stopped_by_budget: bool

    @property
    def raw_sum_p50_ms(self) -> float:
        return self.raw_sign.p50_ms + self.raw_commit.p50_ms

    @property
    def raw_sum_p99_ms(self) -> float:
        return self.raw_sign.p99_ms + self.raw_commit.p99_ms

    @property
    def ratio_p50(self) -> float:
        return self.commit_path.p50_ms / self.raw_sum_p50_ms

    @property
    def ratio_p99(self) -> float:
        return self.commit_path.p99_ms / self.raw_sum_p99_ms

    @property
    def target_met(self) -> bool:
        """The issue's target, judged on the typical (p50) transaction."""
        return self.ratio_p50 < TARGET_RATIO

    def as_dict(self) -> dict[str, object]:
        return {
            "commit_path": self.commit_path.as_dict(),
            "raw_sign": self.raw_sign.as_dict(),
            "raw_commit": self.raw_commit.as_dict(),
            "raw_sum_p50_ms": round(self.raw_sum_p50_ms, 4),
            "raw_sum_p99_ms": round(self.raw_sum_p99_ms, 4),
            "ratio_p50": round(self.ratio_p50, 3),
            "ratio_p99": round(self.ratio_p99, 3),
            "target_ratio": TARGET_RATIO,
            "target_met": self.target_met,
            "target_met_p99": self.ratio_p99 < TARGET_RATIO,
            "signed_payload_bytes": self.signed_payload_bytes,
            "row_bytes": self.row_bytes,
            "stopped_by_budget": self.stopped_by_budget,
        }


def posted_bill_row(tx_id: str, now: str) -> TxRow:
    """An electricity bill the platform accepted, as the engine's _to_posted() leaves it.

    ¥123.45 due, paid with ¥130.00 whose surplus is credited to the account.
    """
    return TxRow(
        tx_id=tx_id,
        kind="bill",
        service="electricity-bill",
        biller="electricity",
        account="6612345678",
        bill_id=f"B{uuid.uuid4().hex[:12]}",
        state=str(TxState.POSTED),
        due_fen=12345,
        fee_fen=0,
        allows_overpay=1,  # the overpayment is credited to the electricity account
        hold_id=f"{tx_id}-h",
        hold_fen=12345 + 9999,
        cash_in_fen=13000,
        pay_fen=13000,
        credited_fen=655,
        voucher_fen=0,
        post_key=f"{tx_id}-p",
        platform_ref=f"PLT{uuid.uuid4().hex[:20].upper()}",
        card_no=None,
        card_counter=None,
        outcome=None,
        receipt_no=None,
        business_day=None,
        printed=0,
        print_problem=None,
        created=now,
        updated=now,
    )


class CommitPathBench:
    """A terminal database with a started journal, and a second database for raw commits."""

    def __init__(
        self,
        directory: Path,
        signer: Signer,
        *,
        station: str,
        terminal: str,
        clock: Clock | None = None,
    ) -> None:
        self.signer = signer
        self.clock = clock or SystemClock()
        self.terminal = terminal
        self.conn = open_database(directory / "terminal.sqlite3")
        self.journal = Journal(
            self.conn, signer, station=station, terminal=terminal, clock=self.clock
        )
        self.journal.open()
        self.store = TxStore(self.conn)
        self.calendar = BusinessCalendar(self.conn, self.journal, DAY_CUTOFF)
        self.raw_conn = open_database(directory / "raw-commit.sqlite3")
        self.raw_conn.execute(
            "CREATE TABLE IF NOT EXISTS raw_commit (id INTEGER PRIMARY KEY, record TEXT NOT NULL)"
        )
        # What the raw parts sign and store: taken from a real tx_close record (calibrate()).
        self.sign_payload = b""
        self.row_text = ""

    def close(self) -> None:
        self.conn.close()
        self.raw_conn.close()

    # -- the commit path ----------------------------------------------------------------------

    def prepare_posted_transaction(self) -> TxRow:
        """An electricity bill the platform accepted, as _to_posted() leaves it before _close()."""
        row = posted_bill_row(f"{self.terminal}-{uuid.uuid4().hex[:16]}", iso(self.clock.now()))
        with write_transaction(self.conn):
            self.store.insert(row)
            self.journal.append(
                "tx_state",
                {"tx_id": row.tx_id, "state": "posted", "platform_ref": row.platform_ref},
            )
        return row

    def close_transaction(self, row: TxRow) -> dict[str, object]:
        """The write transaction of TransactionEngine._close() for a paid transaction.

        The engine's own write_close(); only the outcome is fixed to "paid" (the common case,
        and the largest record).
        """
        _, record = write_close(
            self.conn,
            self.journal,
            self.store,
            row,
            "paid",
            now=self.clock.now(),
            calendar=self.calendar,
        )
        return record

    # -- the raw parts ------------------------------------------------------------------------

    def calibrate(self) -> dict[str, object]:
        """Close one transaction and size the raw parts after its record."""
        record = self.close_transaction(self.prepare_posted_transaction())
        if "sig" not in record:
            raise RuntimeError("the token did not sign the tx_close record: check SoftHSM2")
        self.sign_payload = signed_bytes(record)
        self.row_text = canonical_json(record).decode("utf-8")
        self.settle_raw_wal()
        return record

    def settle_raw_wal(self) -> None:
        """Commit raw rows until the raw database's WAL has filled once and started over.

        While a WAL file is still growing, every commit extends it, and fsync then also
        commits the file system's metadata: the younger database's commits would look slower
        than they are in service, and the ratio better. The terminal database gets there
        within the warm-up rounds (it writes several pages per round); the raw one, one page
        per commit, would take most of a run.
        """
        wal = Path(f"{self.raw_conn.execute('PRAGMA database_list').fetchone()[2]}-wal")
        limit = int(self.raw_conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        page = int(self.raw_conn.execute("PRAGMA page_size").fetchone()[0])
        full = limit * (page + 24)  # a WAL frame is a page and its 24-byte header
        for _ in range(20 * limit):
            self.raw_commit()
            if wal.stat().st_size >= full:
                break
        for _ in range(limit // 10):  # past the checkpoint: the WAL now starts over
            self.raw_commit()

    def raw_signature(self) -> bytes:
        return self.signer.sign(self.sign_payload)

    def raw_commit(self) -> None:
        conn: sqlite3.Connection = self.raw_conn
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO raw_commit (record) VALUES (?)", (self.row_text,))
        conn.execute("COMMIT")


def _timed(operation: Callable[[], object]) -> int:
    start = time.perf_counter_ns()
    operation()
    return time.perf_counter_ns() - start


def run_commit_path(
    bench: CommitPathBench, *, iterations: int, warmup: int, budget_s: float
) -> CommitPathFigures:
    """Measure the commit path and its raw parts, interleaved, for up to iterations rounds.

    Stops early (and says so) once budget_s is spent, after at least a few rounds.
    """
    bench.calibrate()
    samples: dict[str, list[int]] = {"commit_path": [], "raw_sign": [], "raw_commit": []}
    deadline = time.monotonic() + budget_s
    stopped_by_budget = False
    for round_no in range(warmup + iterations):
        row = bench.prepare_posted_transaction()  # not timed: the commit before _close()
        operations: list[tuple[str, Callable[[], object]]] = [
            ("commit_path", functools.partial(bench.close_transaction, row)),
            ("raw_sign", bench.raw_signature),
            ("raw_commit", bench.raw_commit),
        ]
        # Rotating the order keeps any effect of "what ran just before" off a single part.
        shift = round_no % len(operations)
        for name, operation in operations[shift:] + operations[:shift]:
            elapsed = _timed(operation)
            if round_no >= warmup:
                samples[name].append(elapsed)
        measured = round_no + 1 - warmup
        if measured >= 5 and time.monotonic() > deadline:
            stopped_by_budget = measured < iterations
            break
    return CommitPathFigures(
        commit_path=Latency(tuple(samples["commit_path"])),
        raw_sign=Latency(tuple(samples["raw_sign"])),
        raw_commit=Latency(tuple(samples["raw_commit"])),
        signed_payload_bytes=len(bench.sign_payload),
        row_bytes=len(bench.row_text.encode("utf-8")),
        stopped_by_budget=stopped_by_budget,
    )
