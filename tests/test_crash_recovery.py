"""Hundreds of `kill -9` at random instants during the soak's worker, each followed by a restart.

Real components throughout: the terminal and the platform simulator are separate processes
(the platform injects lost answers and failed status queries), the token is SoftHSM2, the
cash acceptor and cards are the simulators' durable state. After the run the books must
balance exactly.
"""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from kiosk.config import load_config
from tests.fixtures.platform import PlatformSimProcess

KILLS = int(os.environ.get("KIOSK_CRASH_KILLS", "200"))
# The float the station buys at the outlet before the test (the credit line is zero).
DEPOSITED_FEN = 1_000_000_00


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed: {result.stderr}")
    return result


def journal(config: Path, out: Path) -> list[dict[str, Any]]:
    run_cli("firmware_tools.cli", "journal", "export", "--config", str(config), "--out", str(out))
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


class SoftHsmTokenFile:
    """Undoes what a kill -9 does to SoftHSM2 and could never do to a real USBKey.

    SoftHSM2 runs inside the killed process and rewrites its token.object in place (truncate,
    then write) on every login; a kill in that instant leaves it empty and the token gone.
    A real token keeps its state in its own firmware, out of reach of the terminal's death,
    so the test puts back the copy taken before the first kill when the file is torn.
    """

    def __init__(self, token_dir: Path) -> None:
        (self.path,) = token_dir.glob("tokens/*/token.object")
        self.intact = self.path.read_bytes()
        self.repairs = 0

    def repair_after_kill(self) -> None:
        if self.path.stat().st_size != len(self.intact):
            self.path.write_bytes(self.intact)
            self.repairs += 1


@pytest.mark.slow
@pytest.mark.softhsm
def test_kill_9_at_random_instants_loses_and_doubles_nothing(tmp_path: Path) -> None:
    platform = PlatformSimProcess(
        tmp_path / "platform.sqlite3",
        "--fault",
        "post:timeout_after_commit:p=0.03",
        "--fault",
        "authorize:timeout_after_commit:p=0.03",
        "--fault",
        "status:error:p=0.2",
        "--seed",
        "11",
    )
    try:
        config = tmp_path / "kiosk.toml"
        data = tmp_path / "data"
        run_cli(
            "firmware_tools.cli",
            "config",
            "init",
            "--sim",
            "--token",
            "softhsm",
            "--data",
            str(data),
            "--platform",
            platform.url,
            "--out",
            str(config),
        )
        # Short platform timeouts keep in-doubt postings (and so kills during them) frequent.
        text = config.read_text(encoding="utf-8").replace("timeout_s = 5.0", "timeout_s = 0.3")
        config.write_text(text, encoding="utf-8")
        platform.fund(load_config(config).station.institution_no, DEPOSITED_FEN)

        rng = random.Random(20261123)
        # The fault soak's worker (tests/soak) without loads elsewhere: this test's card
        # check counts only this terminal's credits. Without residents paying by phone: a
        # QR journey (several platform round trips) outlasts most of these short lives, so a
        # resident would replay it forever; the fault soak kills QR journeys (its lives last
        # up to 4 s) and tests/test_qr_payments.py kills at each QR state.
        worker = ["tests.soak.worker", "--config", str(config), "--seed", "5"]
        worker += ["--card-pull-p", "0.15", "--elsewhere-p", "0", "--qr-p", "0"]
        soak = [sys.executable, "-m", *worker, "--residents", "1000000"]
        token_file = SoftHsmTokenFile(data / "token")
        # One life left alone first, for one resident: how long a start and a payment take on
        # this machine now. Lives last up to that and one second more (1.6 s at least), so
        # kills land in start-up and recovery as well as mid-payment, and a loaded machine
        # (slower to start) still does business between kills.
        started = time.monotonic()
        run_cli(*worker, "--residents", "1")
        longest_life = max(1.6, time.monotonic() - started + 1.0)
        for _ in range(KILLS):
            process = subprocess.Popen(soak, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(rng.uniform(0.2, longest_life))
            if process.poll() is not None:
                raise AssertionError(f"soak stopped by itself: {process.stderr.read()!r}")
            process.send_signal(signal.SIGKILL)
            process.wait()
            token_file.repair_after_kill()
        # The last start only recovers, with the platform answering again.
        platform.clear_faults()
        run_cli("station.cli", "run", "--config", str(config), "--once")
        records = journal(config, tmp_path / "journal.jsonl")
        cert = tmp_path / "cert.pem"
        run_cli("firmware_tools.cli", "token", "cert", "--config", str(config), "--out", str(cert))
        verified = run_cli(
            "firmware_tools.cli",
            "journal",
            "verify",
            str(tmp_path / "journal.jsonl"),
            "--cert",
            str(cert),
            check=False,
        )
        ledger = platform.dump()
    finally:
        platform.stop()

    # The journal verifies.
    assert verified.returncode == 0, verified.stdout + verified.stderr

    closes = [r for r in records if r["type"] == "tx_close"]
    outcomes = Counter(r["outcome"] for r in closes)
    assert outcomes["paid"] > KILLS // 10, outcomes  # real business happened between kills
    assert len({r["tx_id"] for r in closes}) == len(closes), "a transaction closed twice"

    # Every payment the platform accepted appears exactly once as paid, and nothing else does.
    posted = {p["key"].removesuffix("-p"): p for p in ledger["payments"] if p["state"] == "posted"}
    paid = {r["tx_id"]: r for r in closes if r["outcome"] == "paid"}
    assert paid.keys() == posted.keys()
    for tx_id, record in paid.items():
        assert record["platform_ref"] == posted[tx_id]["reference"]
        assert record["amount_fen"] == posted[tx_id]["amount_fen"]
        assert record["fee_fen"] == posted[tx_id]["fee_fen"]

    # Cash inserted equals payments plus vouchers plus what is still open.
    cash_events = [r for r in records if r["type"] == "cash_in"]
    assert len({r["event_id"] for r in cash_events}) == len(cash_events), "cash counted twice"
    cash_in = sum(r["value_fen"] for r in cash_events)
    cash_closes = [r for r in closes if r.get("payment_method") != "qr"]
    settled = sum(r["amount_fen"] + r["fee_fen"] + r["voucher_fen"] for r in cash_closes)
    closed_tx = {r["tx_id"] for r in closes}
    open_cash = sum(r["value_fen"] for r in cash_events if r["tx_id"] not in closed_tx)
    assert cash_in == settled + open_cash
    for record in closes:
        assert record["cash_in_fen"] == sum(
            e["value_fen"] for e in cash_events if e["tx_id"] == record["tx_id"]
        )

    # Every note and coin the acceptor counted is in the journal: numbered 1..N, none pending.
    with sqlite3.connect(data / "simulators" / "cash-acceptor.sqlite3") as board:
        counted = board.execute("SELECT next_number - 1 FROM acceptor").fetchone()[0]
        unacknowledged = board.execute("SELECT count(*) FROM events WHERE acknowledged = 0")
        assert unacknowledged.fetchone()[0] == 0
        for event_id, value in board.execute("SELECT event_id, value_fen FROM events"):
            [journaled] = [e for e in cash_events if e["event_id"] == event_id]
            assert journaled["value_fen"] == value
    assert counted == len(cash_events)

    # Paid by phone: no cash, no voucher; what the order took is paid or went back to it.
    for record in closes:
        if record.get("payment_method") == "qr":
            assert record["cash_in_fen"] == record["voucher_fen"] == 0
            if record["outcome"] == "paid":
                assert record["paid_in_fen"] == record["amount_fen"] + record["fee_fen"]
            else:
                assert record["refunded_fen"] == record["paid_in_fen"]

    # The float never went negative: the platform's balance is the deposit minus what it debited
    # (a posting funded by a paid order, paid by phone, never touched the float).
    [station] = ledger["stations"]
    debited = sum(p["amount_fen"] + p["fee_fen"] for p in posted.values() if not p.get("order_key"))
    assert station["balance_fen"] == DEPOSITED_FEN - debited >= 0
    assert station["held_fen"] == 0

    # No card was credited twice: each card applied exactly its authorised credits in order.
    with sqlite3.connect(data / "simulators" / "cards.sqlite3") as cards:
        for card_no, counter, balance in cards.execute(
            "SELECT card_no, purchase_counter, balance_fen FROM cards"
        ):
            credits = sorted(
                (p["card_counter"], p["amount_fen"])
                for p in posted.values()
                if p["kind"] == "card_credit" and p["account"] == card_no
            )
            applied = [c for c in credits if c[0] < counter]
            assert [c[0] for c in applied] == list(range(counter)), card_no
            assert balance == sum(amount for _, amount in applied), card_no
