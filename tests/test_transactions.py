"""The resident's journeys through the real core: simulated devices, the platform simulator
over HTTP, a real SQLite journal signed by the demo signer."""

import random
from datetime import timedelta
from typing import Any

import pytest

from kiosk.catalog.sample_accounts import valid_account
from kiosk.terminal import BillQuote
from kiosk.transactions.engine import NotEnoughCash, PaymentRefused
from tests.fixtures.terminal import TerminalRig


def quote(rig: TerminalRig, service: str, seed: int = 1) -> BillQuote:
    svc = rig.terminal.catalog().service(service)
    rng = random.Random(seed)
    for _ in range(50):
        try:
            return rig.terminal.quote_bill(service, valid_account(svc, rng))
        except Exception:  # an account without a bill due: try another one
            continue
    raise AssertionError("no account with a bill due found")


def pay_in_notes(rig: TerminalRig, tx_id: str, total_fen: int) -> int:
    """Insert 10-yuan notes, then 10-fen coins, up to at least the total; return cash in."""
    inserted = 0
    while total_fen - inserted >= 10_00:
        rig.insert(tx_id, 10_00)
        inserted += 10_00
    while inserted < total_fen:
        rig.insert(tx_id, 10)
        inserted += 10
    return inserted


def payments(rig: TerminalRig) -> list[dict[str, Any]]:
    return [p for p in rig.platform.dump()["payments"] if p["state"] == "posted"]


def test_a_bill_paid_in_cash_is_posted_once_closed_signed_and_printed(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    q = quote(rig, "gas-bill")
    progress = rig.terminal.pay_bill(q)
    assert progress.still_due_fen == q.total_fen
    with pytest.raises(NotEnoughCash):
        rig.terminal.finish(progress.tx_id)
    cash_in = pay_in_notes(rig, progress.tx_id, q.total_fen)
    outcome = rig.terminal.finish(progress.tx_id)

    assert outcome.outcome == "paid" and outcome.printed
    record = outcome.record
    assert record is not None and "sig" in record
    assert record["amount_fen"] == q.bill.amount_due_fen
    assert record["cash_in_fen"] == cash_in
    assert record["voucher_fen"] == cash_in - q.total_fen  # gas credits no overpayment
    assert record["turnover_fen"] == q.total_fen
    [posted] = payments(rig)
    assert (
        posted["amount_fen"] == q.bill.amount_due_fen
        and posted["reference"] == record["platform_ref"]
    )
    types = rig.journal_types()
    assert types.count("cash_in") == len([t for t in types if t == "cash_in"]) > 0
    assert types[-1] == "tx_close" or "float_restored" in types or "low_float" in types
    assert not rig.sims.cash.health()["accepting"]
    receipts = list((rig.config.data_path / "receipts").glob("*.txt"))
    assert len(receipts) == 1 and "KR2:" in receipts[0].read_text(encoding="utf-8")


def test_an_overpayment_is_credited_to_an_account_whose_biller_allows_it(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    q = quote(rig, "water-bill")
    progress = rig.terminal.pay_bill(q)
    cash_in = rig.pay_with_largest_notes(progress.tx_id)
    outcome = rig.terminal.finish(progress.tx_id)
    surplus = cash_in - q.total_fen
    assert 0 < surplus < 100_00
    assert outcome.outcome == "paid"
    assert outcome.credited_fen == surplus and outcome.voucher_fen == 0
    [posted] = payments(rig)
    assert posted["amount_fen"] == q.bill.amount_due_fen + surplus


def test_a_customer_cancelling_after_inserting_cash_gets_a_voucher_and_the_hold_is_released(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    q = quote(rig, "telecom-bill")
    progress = rig.terminal.pay_bill(q)
    rig.insert(progress.tx_id, 5_00, 1_00)
    outcome = rig.terminal.cancel(progress.tx_id)
    assert outcome.outcome == "cancelled" and outcome.voucher_fen == 6_00 and outcome.printed
    assert payments(rig) == []
    assert rig.terminal.platform.float_state().held_fen == 0
    with pytest.raises(PaymentRefused):
        rig.terminal.cancel(progress.tx_id)


def test_a_payment_the_float_cannot_cover_is_refused_before_any_cash_is_taken(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    balance = rig.terminal.platform.float_state().available_fen
    phone = rig.terminal.catalog().service("mobile-topup")
    # Spend the float down with top-ups until less than one top-up remains.
    amount = max(phone.presets_fen)
    while rig.terminal.platform.float_state().available_fen >= amount:
        progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", amount)
        rig.insert(progress.tx_id, *[100_00] * (amount // 100_00))
        assert rig.terminal.finish(progress.tx_id).outcome == "paid"
    assert rig.terminal.platform.float_state().available_fen < amount <= balance
    with pytest.raises(PaymentRefused, match="float"):
        rig.terminal.start_phone_topup("mobile-topup", "13800138000", amount)
    assert not rig.sims.cash.health()["accepting"]
    assert rig.closes()[-1]["outcome"] == "refused" and rig.closes()[-1]["cash_in_fen"] == 0
    assert rig.terminal.platform.float_state().balance_fen >= 0
    assert "low_float" in rig.journal_types()


def test_a_posting_whose_answer_was_lost_is_settled_by_a_status_query(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    q = quote(rig, "catv-bill")
    progress = rig.terminal.pay_bill(q)
    pay_in_notes(rig, progress.tx_id, q.total_fen)
    rig.platform.set_faults(["post:timeout_after_commit:count=5"])
    outcome = rig.terminal.finish(progress.tx_id)
    rig.platform.clear_faults()
    assert outcome.outcome == "paid"
    assert len(payments(rig)) == 1
    assert outcome.record is not None and outcome.record["fee_fen"] == 100


def test_a_refused_posting_ends_in_a_voucher_for_all_the_cash(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    q = quote(rig, "gas-bill", seed=2)
    progress = rig.terminal.pay_bill(q)
    cash_in = pay_in_notes(rig, progress.tx_id, q.total_fen)
    rig.platform.set_faults(["post:error:count=1", "status:error:count=1"])
    outcome = rig.terminal.finish(progress.tx_id)
    rig.platform.clear_faults()
    if outcome.outcome == "in_doubt":  # the status query failed too: settled by housekeeping
        rig.clock.advance(timedelta(minutes=1))
        rig.terminal.tick()
        outcome_record = rig.closes()[-1]
    else:
        outcome_record = outcome.record
    assert outcome_record is not None
    assert outcome_record["outcome"] == "failed"
    assert outcome_record["voucher_fen"] == cash_in
    assert payments(rig) == []
    assert rig.terminal.platform.float_state().held_fen == 0


def test_no_payment_starts_while_the_signer_fails_and_the_outage_is_closed_by_a_signed_record(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 10_00)
    rig.insert(progress.tx_id, 10_00)
    rig.signer.failing = True
    # The platform requests are signed too, so nothing can be posted: the transaction under
    # way closes with a voucher and a record marked "signature device failed".
    outcome = rig.terminal.finish(progress.tx_id)
    assert outcome.outcome == "failed" and outcome.voucher_fen == 10_00
    assert outcome.record is not None and outcome.record.get("sig_failed") is True
    assert "sig" not in outcome.record
    with pytest.raises(PaymentRefused, match="signature device"):
        rig.terminal.start_phone_topup("mobile-topup", "13800138000", 10_00)
    assert not rig.sims.cash.health()["accepting"]
    rig.signer.failing = False
    rig.terminal.start_phone_topup("mobile-topup", "13800138000", 10_00)
    recovered = rig.terminal.journal.last_of_type("signature_recovered")
    assert recovered is not None and "sig" in recovered
    assert recovered["first_seq"] <= outcome.record["seq"] <= recovered["last_seq"]
    assert payments(rig) == []


def test_a_cash_event_delivered_again_is_counted_once(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 20_00)
    rig.insert(progress.tx_id, 10_00)
    rig.sims.cash.redeliver_acknowledged(1)
    progress = rig.terminal.collect(progress.tx_id)
    assert progress.cash_in_fen == 10_00


def test_a_restart_while_collecting_turns_the_cash_into_a_voucher(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 50_00)
    rig.insert(progress.tx_id, 20_00)
    rig.sims.cash.insert("note", 10_00)  # counted by the board, not yet seen by the core
    outcomes = rig.crash_and_restart()
    assert [o.outcome for o in outcomes] == ["cancelled"]
    assert outcomes[0].voucher_fen == 30_00
    assert rig.terminal.platform.float_state().held_fen == 0


def test_a_restart_after_the_platform_committed_closes_the_payment_as_paid(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 30_00)
    rig.insert(progress.tx_id, 20_00, 10_00)
    # The platform commits but its answer never arrives, and then the terminal dies.
    rig.platform.set_faults(["post:timeout_after_commit", "status:error"])
    outcome = rig.terminal.finish(progress.tx_id)
    assert outcome.outcome == "in_doubt"
    rig.platform.clear_faults()
    outcomes = rig.crash_and_restart()
    assert [o.outcome for o in outcomes] == ["paid"]
    assert len(payments(rig)) == 1


def test_cash_counted_outside_a_payment_becomes_a_refund_voucher(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    rig.sims.cash.set_accepting(True)
    rig.sims.cash.insert("coin", 1_00)
    outcomes = rig.crash_and_restart()
    refund = rig.closes()[-1]
    assert refund["outcome"] == "refund" and refund["voucher_fen"] == 1_00
    assert outcomes == []


def test_a_receipt_is_reprinted_from_the_journal_marked_as_a_copy(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 10_00)
    rig.insert(progress.tx_id, 10_00)
    outcome = rig.terminal.finish(progress.tx_id)
    assert outcome.receipt_no is not None
    assert outcome.token is not None
    printed, problem = rig.terminal.reprint(outcome.token)
    assert printed and problem is None
    texts = sorted(
        p.read_text(encoding="utf-8") for p in (rig.config.data_path / "receipts").glob("*.txt")
    )
    assert len(texts) == 2 and sum("副本" in t for t in texts) == 1


def test_a_receipt_that_could_not_print_stays_reprintable(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 10_00)
    rig.insert(progress.tx_id, 10_00)
    rig.sims.printer.paper_out()
    outcome = rig.terminal.finish(progress.tx_id)
    assert outcome.outcome == "paid" and not outcome.printed
    assert outcome.print_problem and "paper" in outcome.print_problem.lower()
    rig.sims.printer.restore()
    assert outcome.token is not None
    assert rig.terminal.reprint(outcome.token) == (True, None)


def test_the_outage_record_is_written_by_housekeeping_once_the_token_is_back(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 10_00)
    rig.insert(progress.tx_id, 10_00)
    rig.signer.failing = True
    rig.terminal.finish(progress.tx_id)
    rig.terminal.tick()
    assert rig.terminal.journal.last_of_type("signature_recovered") is None
    rig.signer.failing = False
    rig.terminal.tick()  # no customer needed: the running terminal closes the outage itself
    assert rig.terminal.journal.last_of_type("signature_recovered") is not None
    assert rig.terminal.journal.signing_available()
