"""The settle phase: after the last kill the terminal starts once more without faults, and
recovery and housekeeping settle every open transaction, hold, voucher registration and
card credit; then the books are gathered for the reconciliation, and every voucher is paid
out once through the terminal and tried again with another key.

It runs in the driver's process (nothing kills it). The terminal's clock starts past every
time a worker trusted and is moved on between rounds, so each retry's backoff (at most 10
minutes by the terminal's clock) passes; every card of the pool comes back to the reader
once a round, as its resident would, so a pending credit is written or found in conflict.
"""

import io
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from kiosk.config import Config
from kiosk.devices import CardError
from kiosk.journal.verify import verify_jsonl
from kiosk.platform import OutcomeUnknown, PlatformRefused
from kiosk.terminal import Terminal
from kiosk.transactions.vouchers import VoucherRefused
from station.composition import build_terminal, simulator_dir
from tests.fixtures.engine_hook import engine_of
from tests.soak.ledger import SoakLedger
from tests.soak.reconcile import Books, CardState, Redemption
from tests.soak.residents import card_pool, settle_loads_elsewhere
from tests.soak.shifted_clock import ShiftedClock

ROUND_STEP = timedelta(minutes=11)  # past the longest backoff (10 minutes)
MAX_ROUNDS = 30
PAYOUT_OPERATOR = "soak-reconciliation"


@dataclass
class Settled:
    books: Books
    rounds: int
    journal_problem: str  # "" when the exported journal verifies


def still_open(terminal: Terminal) -> dict[str, int]:
    store = engine_of(terminal).store
    return {
        "open transactions": len(store.open_transactions()),
        "platform retries (posting, hold, voucher)": len(store.retries()),
        "holds to release": store.open_holds(),
        "pending card credits": len(store.card_credits()),
    }


def settle(
    config: Config,
    *,
    seed: int,
    clock_offset: timedelta,
    platform: Any,
    opening_float_fen: int,
    ledger_path: Path,
) -> Settled:
    clock = ShiftedClock(config.business.timezone, clock_offset)
    terminal, sims = build_terminal(config, clock=clock)
    ledger = SoakLedger(ledger_path)
    try:
        sims.cash.stop_failing_host_calls()
        settle_loads_elsewhere(sims.cards, ledger)
        terminal.start()
        pool = [card_no for card_no, _ in card_pool(terminal, sims.cards, seed)]
        rounds = 0
        while rounds < MAX_ROUNDS:
            rounds += 1
            terminal.tick()
            for card_no in pool:
                sims.cards.remove_card()
                sims.cards.insert_card(card_no)
                try:
                    terminal.card_inserted()
                except CardError:
                    pass  # a pull armed before the last kill struck: next round
                sims.cards.remove_card()
            if not any(still_open(terminal).values()):
                break
            clock.advance(ROUND_STEP)
        left = still_open(terminal)
        events, counted = acceptor_events(simulator_dir(config) / "cash-acceptor.sqlite3")
        records = list(terminal.journal.records())
        redemptions = redeem_twice(terminal, records)
        journal_problem = verify_journal(terminal, config)
        books = Books(
            terminal_id=config.station.terminal_id,
            station=config.station.institution_no,
            opening_float_fen=opening_float_fen,
            records=records,
            dump=platform.dump(),
            cards=[card_state(sims.cards, card_no) for card_no in pool],
            elsewhere=ledger.elsewhere_loads(),
            redemptions=redemptions,
            acceptor_events=events,
            acceptor_counted=counted,
            still_open=left,
        )
    finally:
        ledger.close()
        terminal.close()
    return Settled(books, rounds, journal_problem)


def redeem_twice(terminal: Terminal, records: list[dict[str, Any]]) -> list[Redemption]:
    """Pay every voucher out through the terminal (unless the operator did during the soak),
    then ask the platform again with another redemption key: the first must pay (an unknown
    payout of the soak is settled by asking again with its key), the second be refused."""
    paid_in_soak = {
        str(r["voucher_id"])
        for r in records
        if r["type"] == "voucher_payout" and r["state"] == "paid"
    }
    redemptions = []
    for close in records:
        if close["type"] != "tx_close" or not close.get("voucher_fen"):
            continue
        voucher_id, amount = str(close["voucher_id"]), int(close["voucher_fen"])
        if voucher_id in paid_in_soak:
            paid, problem = True, ""  # the terminal refuses to pay it again itself
        else:
            try:
                payout = engine_of(terminal).vouchers.redeem(
                    voucher_id, amount, operator=PAYOUT_OPERATOR
                )
                paid, problem = payout.paid, "" if payout.paid else "not known yet"
            except VoucherRefused as exc:
                paid, problem = False, str(exc)
        try:
            terminal.platform.redeem_voucher(
                f"R2-{voucher_id}", voucher_id=voucher_id, amount_fen=amount
            )
            second: str | None = None
        except PlatformRefused as exc:
            second = exc.code
        except OutcomeUnknown as exc:
            second = f"unknown: {exc}"
        redemptions.append(
            Redemption(voucher_id, amount, paid, problem, second, voucher_id in paid_in_soak)
        )
    return redemptions


def verify_journal(terminal: Terminal, config: Config) -> str:
    buffer = io.StringIO()
    terminal.export_journal(buffer)
    cert = Path(config.token.cert_file).read_bytes()
    report = verify_jsonl(buffer.getvalue().splitlines(keepends=True), cert)
    return "" if report.ok else f"record {report.first_bad_seq}: {report.problem}"


def card_state(cards: Any, card_no: str) -> CardState:
    card = cards.card(card_no)
    log = tuple((x.counter, x.amount_fen, x.terminal, x.ref) for x in card.load_log)
    return CardState(card_no, card.balance_fen, card.purchase_counter, log)


def acceptor_events(path: Path) -> tuple[list[tuple[str, int, bool]], int]:
    """The notes and coins the simulated acceptor still remembers (it forgets acknowledged
    ones past its history) and how many it ever counted, from its state file (read-only)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as board:
        rows = board.execute("SELECT event_id, value_fen, acknowledged FROM events").fetchall()
        counted = int(board.execute("SELECT next_number - 1 FROM acceptor").fetchone()[0])
    return [(str(event_id), int(value), bool(acked)) for event_id, value, acked in rows], counted
