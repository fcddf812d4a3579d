"""Money safety under the faults of a real station (issue 16): every case that paid twice or
lost money on the engine before, each against the platform simulator over HTTP, the simulated
devices and the real journal."""

from datetime import timedelta
from typing import Any

import pytest

from drivers.cash import CashRejected
from kiosk.clock_guard import ClockWrong
from kiosk.transactions.kinds import CardCreditState, TxOutcome
from kiosk.transactions.states import TxState
from kiosk.transactions.store import RetryKind
from tests.fixtures.engine_hook import engine_of
from tests.fixtures.terminal import TerminalRig
from tests.test_card_topup import new_card, top_up
from tests.test_transactions import pay_in_notes, payments, quote


def posted(rig: TerminalRig) -> list[dict[str, Any]]:
    return payments(rig)


def alerts(rig: TerminalRig, kind: str) -> list[dict[str, Any]]:
    return [
        r for r in rig.terminal.journal.records() if r["type"] == "alert" and r["alert"] == kind
    ]


def later(rig: TerminalRig, minutes: float = 15) -> None:
    """Let every retry's backoff pass, then run housekeeping."""
    rig.clock.advance(timedelta(minutes=minutes))
    rig.terminal.tick()


def paid_bill_in_doubt(rig: TerminalRig, status_fault: str) -> tuple[str, int]:
    """A bill whose posting the platform committed but whose answer was lost, with the status
    query then answered by status_fault. Returns the tx id and the amount posted."""
    q = quote(rig, "water-bill")
    progress = rig.terminal.pay_bill(q)
    pay_in_notes(rig, progress.tx_id, q.total_fen)
    rig.platform.set_faults(["post:timeout_after_commit:sleep_ms=800", status_fault])
    outcome = rig.terminal.finish(progress.tx_id)
    assert outcome.outcome == TxOutcome.IN_DOUBT
    return progress.tx_id, engine_of(rig.terminal).store.get(progress.tx_id).pay_fen


@pytest.mark.parametrize(
    "status_fault",
    [
        "status:refuse:code=stale_request:status=400",
        "status:refuse:code=bad_signature:status=401",
        "status:refuse:code=not_registered:status=403",
        "status:refuse:code=key_reused:status=409",
        "status:gateway:status=429",
        "status:gateway:status=403",
    ],
)
def test_a_refused_status_query_never_turns_a_posted_payment_into_a_refund(
    terminal_rig: TerminalRig, status_fault: str
) -> None:
    rig = terminal_rig
    tx_id, amount = paid_bill_in_doubt(rig, status_fault)
    row = engine_of(rig.terminal).store.get(tx_id)
    assert row.tx_state is TxState.POSTING  # in doubt, not voided
    assert [p["amount_fen"] for p in posted(rig)] == [amount]
    assert len(alerts(rig, "tx_in_doubt")) == 1

    rig.terminal.tick()  # the retry is not due yet: nothing is asked
    assert engine_of(rig.terminal).store.get(tx_id).tx_state is TxState.POSTING
    rig.platform.clear_faults()
    later(rig)
    closed = engine_of(rig.terminal).store.get(tx_id)
    assert closed.tx_state is TxState.CLOSED and closed.outcome == "paid"
    [close] = [c for c in rig.closes() if c["tx_id"] == tx_id]
    assert close["amount_fen"] == amount and close.get("awaiting_claim") is True
    assert [p["amount_fen"] for p in posted(rig)] == [amount]  # once


def test_a_refused_reverse_keeps_the_payment_in_doubt_until_the_platform_proves_it(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    q = quote(rig, "water-bill")
    progress = rig.terminal.pay_bill(q)
    pay_in_notes(rig, progress.tx_id, q.total_fen)
    # The posting never arrives; its status says not found; the reverse that would prove it
    # never posts is refused by a gateway: no proof, so no refund yet.
    rig.platform.set_faults(
        ["post:timeout_before:sleep_ms=800", "reverse:refuse:code=rate_limited:status=429"]
    )
    assert rig.terminal.finish(progress.tx_id).outcome == TxOutcome.IN_DOUBT
    assert engine_of(rig.terminal).store.get(progress.tx_id).tx_state is TxState.POSTING
    rig.platform.clear_faults()
    later(rig)
    row = engine_of(rig.terminal).store.get(progress.tx_id)
    assert row.outcome == "failed" and row.voucher_fen == row.cash_in_fen
    assert posted(rig) == []


def test_a_retry_refused_after_a_lost_answer_is_not_taken_as_a_refusal(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    q = quote(rig, "gas-bill")
    progress = rig.terminal.pay_bill(q)
    pay_in_notes(rig, progress.tx_id, q.total_fen)
    # Attempt 1 commits and loses its answer; attempt 2 meets a gateway refusal.
    rig.platform.set_faults(
        [
            "post:timeout_after_commit:count=1:sleep_ms=800",
            "post:refuse:code=rate_limited:status=429",
            "status:error",
        ]
    )
    assert rig.terminal.finish(progress.tx_id).outcome == TxOutcome.IN_DOUBT
    rig.platform.clear_faults()
    later(rig)
    assert engine_of(rig.terminal).store.get(progress.tx_id).outcome == "paid"
    assert len(posted(rig)) == 1


def test_a_refused_posting_is_fenced_before_its_cash_becomes_a_voucher(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    q = quote(rig, "water-bill")
    progress = rig.terminal.pay_bill(q)
    pay_in_notes(rig, progress.tx_id, q.total_fen)
    rig.platform.set_faults(["post:refuse:code=bill_already_paid:status=409"])
    outcome = rig.terminal.finish(progress.tx_id)
    assert outcome.outcome == "failed" and outcome.voucher_fen == outcome.record["cash_in_fen"]
    assert outcome.record["refusal"] == "bill_already_paid"
    key = engine_of(rig.terminal).store.get(progress.tx_id).post_key
    assert any(f["key"] == key for f in rig.platform.dump()["fenced_keys"]) or any(
        p["key"] == key and p["state"] == "reversed" for p in rig.platform.dump()["payments"]
    )


def test_a_pending_card_credit_is_never_called_written_after_a_load_elsewhere(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    card_no = new_card(rig)
    tx_id = top_up(rig, 50_00)
    rig.sims.cards.pull_during_next_command(after_apply=False)
    assert rig.terminal.finish(tx_id).card_credit == CardCreditState.PENDING
    # At the grid office: 30 yuan, which moves the counter as our credit would have.
    rig.sims.cards.load_elsewhere(card_no, 30_00)
    rig.sims.cards.insert_card(card_no)
    assert rig.terminal.card_inserted() == []
    assert engine_of(rig.terminal).card_credits.state_of(tx_id) is CardCreditState.CONFLICT
    assert [r["tx_id"] for r in rig.records_of("card_credit_conflict")] == [tx_id]
    assert [a["tx_id"] for a in alerts(rig, "card_credit_conflict")] == [tx_id]
    assert "card_credit_written" not in rig.journal_types()
    card = rig.sims.cards.read_prepaid()
    assert card is not None and card.last_credit_fen == 30_00


def test_a_refused_hold_release_keeps_its_row_and_retries_until_released(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    q = quote(rig, "water-bill")
    progress = rig.terminal.pay_bill(q)
    rig.platform.set_faults(["release:refuse:code=not_registered:status=403"])
    rig.terminal.cancel(progress.tx_id)
    store = engine_of(rig.terminal).store
    assert store.open_holds() >= 1
    assert len(alerts(rig, "hold_not_released")) >= 1
    assert rig.platform.dump()["stations"][0]["held_fen"] > 0
    rig.platform.clear_faults()
    later(rig)
    assert store.open_holds() == 0
    assert rig.platform.dump()["stations"][0]["held_fen"] == 0
    assert store.retries(RetryKind.HOLD) == []


def test_a_board_error_while_collecting_never_strands_the_customer_cash(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    q = quote(rig, "gas-bill")
    progress = rig.terminal.pay_bill(q)
    rig.insert(progress.tx_id, 10_00)
    # The link fails for closing the inlets and for the last look at counted cash.
    rig.sims.cash.fail_next_host_calls(2)
    outcome = rig.terminal.cancel(progress.tx_id)
    assert outcome.outcome == "cancelled" and outcome.voucher_fen == 10_00
    assert len(alerts(rig, "inlets_not_closed")) == 1
    # The next resident is served.
    rig.terminal.cancel(rig.terminal.pay_bill(quote(rig, "gas-bill", seed=3)).tx_id)


def test_a_payment_nobody_finishes_is_cancelled_by_housekeeping(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    progress = rig.terminal.pay_bill(quote(rig, "gas-bill"))
    rig.insert(progress.tx_id, 5_00)
    rig.terminal.tick()
    assert engine_of(rig.terminal).store.get(progress.tx_id).tx_state is TxState.COLLECTING
    later(rig, minutes=6)
    row = engine_of(rig.terminal).store.get(progress.tx_id)
    assert row.outcome == "cancelled" and row.voucher_fen == 5_00
    [close] = [c for c in rig.closes() if c["tx_id"] == progress.tx_id]
    assert close["reason"] == "abandoned: nobody finished the payment"
    assert close["awaiting_claim"] is True and close["voucher_id"]


def test_a_voucher_is_paid_out_once_and_its_reprint_carries_no_code(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    progress = rig.terminal.pay_bill(quote(rig, "gas-bill"))
    rig.insert(progress.tx_id, 20_00)
    outcome = rig.terminal.cancel(progress.tx_id)
    assert outcome.record is not None
    voucher_id = str(outcome.record["voucher_id"])
    vouchers = engine_of(rig.terminal).vouchers
    assert vouchers.redeem(voucher_id, 20_00, operator="OP1").paid
    with pytest.raises(Exception, match="voucher_already_redeemed"):
        vouchers.redeem(voucher_id, 20_00, operator="OP2")

    assert outcome.token is not None
    printed, _ = rig.terminal.reprint(outcome.token)
    assert printed
    assert voucher_id not in rig.last_paper().replace("-", "")


def test_a_receipt_is_not_reprinted_by_its_number_alone(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    progress = rig.terminal.pay_bill(quote(rig, "gas-bill"))
    rig.insert(progress.tx_id, 5_00)
    outcome = rig.terminal.cancel(progress.tx_id)
    assert outcome.receipt_no is not None
    with pytest.raises(Exception, match="reprint code"):
        rig.terminal.reprint(outcome.receipt_no.split("-")[-1])


def test_an_in_doubt_payment_gives_the_resident_an_interim_slip_with_a_reference(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    tx_id, _ = paid_bill_in_doubt(rig, "status:error")
    text = rig.last_paper()
    assert tx_id in text
    token = engine_of(rig.terminal).store.token_of(tx_id)
    assert token is not None and token in text


def test_no_payment_starts_while_the_clock_is_earlier_than_the_journal(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    rig.clock.advance(timedelta(hours=-2))
    with pytest.raises(ClockWrong, match="clock is wrong"):
        rig.terminal.pay_bill(quote(rig, "gas-bill"))
    assert rig.terminal.service_state() == "out_of_service"
    assert len(alerts(rig, "clock_wrong")) == 1
    rig.clock.advance(timedelta(hours=2))
    assert rig.terminal.service_state() != "out_of_service"


def test_a_clock_jumped_forward_closes_no_day_that_has_not_happened(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    rig.clock.advance(timedelta(days=10))
    rig.terminal.tick()
    assert "day_close" not in rig.journal_types()
    closed = rig.terminal.close_due_days(confirmed_by="technician")
    assert len(closed) == 10
    assert "days_caught_up" in rig.journal_types()


def test_cash_the_acceptor_cannot_recognise_is_held_in_suspense_and_alerted(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    progress = rig.terminal.pay_bill(quote(rig, "gas-bill"))
    rig.insert(progress.tx_id, 10_00)
    rig.sims.cash.insert_unrecognised("note")
    after = rig.terminal.collect(progress.tx_id)
    assert after.suspense == 1 and after.cash_in_fen == 10_00
    assert not rig.sims.cash.health()["accepting"]
    assert [r["tx_id"] for r in rig.records_of("cash_suspense")] == [progress.tx_id]
    assert len(alerts(rig, "unrecognised_cash")) == 1


def test_the_inlets_take_no_note_larger_than_what_covers_the_rest(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    q = quote(rig, "gas-bill")
    progress = rig.terminal.pay_bill(q)
    while rig.terminal.collect(progress.tx_id).still_due_fen > 100_00:
        rig.insert(progress.tx_id, 100_00)
    due = rig.terminal.collect(progress.tx_id).still_due_fen
    limit = rig.terminal.collect(progress.tx_id).largest_fen
    assert limit is not None and limit >= due
    assert all(note < due for note in (100, 500, 1_000, 2_000, 5_000, 10_000) if note < limit)
    if limit < 100_00:
        with pytest.raises(CashRejected):
            rig.sims.cash.insert("note", 100_00)


def test_a_device_error_opening_the_inlets_refuses_the_payment_and_leaves_nothing_open(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    rig.sims.cash.fail_next_host_calls(1)
    with pytest.raises(Exception, match="cash acceptor"):
        rig.terminal.pay_bill(quote(rig, "gas-bill"))
    assert engine_of(rig.terminal).store.open_transactions() == []


def test_an_answer_with_other_money_than_sent_is_in_doubt_and_alerted(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    q = quote(rig, "water-bill")
    progress = rig.terminal.pay_bill(q)
    pay_in_notes(rig, progress.tx_id, q.total_fen)
    rig.platform.set_faults(["post:alter_amount", "status:alter_amount"])
    assert rig.terminal.finish(progress.tx_id).outcome == TxOutcome.IN_DOUBT
    assert len(alerts(rig, "platform_answer_mismatch")) >= 1
    assert len(alerts(rig, "tx_in_doubt")) == 1
    rig.platform.clear_faults()
    later(rig)
    assert engine_of(rig.terminal).store.get(progress.tx_id).outcome == "paid"
    assert len(posted(rig)) == 1


def test_a_note_counted_while_a_payment_is_cancelled_never_reopens_the_inlets(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    progress = rig.terminal.pay_bill(quote(rig, "gas-bill"))
    rig.insert(progress.tx_id, 1_00)
    # Counted by the acceptor but not yet journaled when the resident presses cancel.
    rig.sims.cash.insert("note", 1_00)
    outcome = rig.terminal.cancel(progress.tx_id)
    assert outcome.voucher_fen == 2_00
    assert not rig.sims.cash.health()["accepting"]


def test_the_inlets_narrow_as_soon_as_cash_is_counted_by_any_drain(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 30_00)
    rig.sims.cash.insert("note", 20_00)
    rig.terminal.drain_cash()  # the runtime's loop, not the screen's collect()
    assert rig.sims.cash.health()["largest_fen"] == 10_00
    with pytest.raises(CashRejected):
        rig.sims.cash.insert("note", 20_00)
    rig.terminal.cancel(progress.tx_id)
