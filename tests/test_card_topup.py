"""Prepaid IC-card top-up: the credit is written once, even when the card is pulled."""

import random

import pytest

from kiosk.catalog.sample_accounts import valid_account
from kiosk.transactions.engine import PaymentRefused
from tests.fixtures.terminal import TerminalRig


def new_card(rig: TerminalRig, service: str = "power-card", seed: int = 7) -> str:
    svc = rig.terminal.catalog().service(service)
    card_no = valid_account(svc, random.Random(seed))
    rig.sims.cards.create_card(card_no, svc.utility, "M000001")
    rig.sims.cards.insert_card(card_no)
    return card_no


def top_up(rig: TerminalRig, amount_fen: int, service: str = "power-card") -> str:
    progress = rig.terminal.start_card_topup(service, amount_fen)
    rig.insert(progress.tx_id, *[50_00] * (amount_fen // 50_00))
    return progress.tx_id


def paid_with_credit_pending(rig: TerminalRig) -> tuple[str, str]:
    """A ¥50 top-up of a new card pulled before it took the credit: paid, credit pending.

    Returns the card's number (the card is out of the reader) and the transaction's id."""
    card_no = new_card(rig)
    tx_id = top_up(rig, 50_00)
    rig.sims.cards.pull_during_next_command(after_apply=False)
    assert rig.terminal.finish(tx_id).card_credit == "pending"
    return card_no, tx_id


def test_a_card_top_up_writes_the_credit_and_closes_paid(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    card_no = new_card(rig)
    outcome = rig.terminal.finish(top_up(rig, 100_00))
    assert outcome.outcome == "paid" and outcome.card_credit == "written"
    card = rig.sims.cards.read_prepaid()
    assert card is not None and card.card_no == card_no
    assert card.purchase_counter == 1 and card.last_credit_fen == 100_00


def test_the_wrong_utility_card_is_refused_before_any_cash(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    new_card(rig, "gas-card")
    with pytest.raises(PaymentRefused, match="gas card"):
        rig.terminal.start_card_topup("power-card", 100_00)
    assert not rig.sims.cash.health()["accepting"]


@pytest.mark.parametrize("after_apply", [False, True])
def test_a_card_pulled_during_the_credit_is_completed_once_when_it_comes_back(
    terminal_rig: TerminalRig, after_apply: bool
) -> None:
    rig = terminal_rig
    card_no = new_card(rig)
    tx_id = top_up(rig, 50_00)
    rig.sims.cards.pull_during_next_command(after_apply=after_apply)
    outcome = rig.terminal.finish(tx_id)
    assert outcome.outcome == "paid" and outcome.card_credit == "pending"
    assert outcome.record is not None and outcome.record["card_credit"] == "pending"

    rig.sims.cards.insert_card(card_no)
    assert rig.terminal.card_inserted() == [tx_id]
    assert rig.terminal.card_inserted() == []  # never twice
    card = rig.sims.cards.read_prepaid()
    assert card is not None and card.purchase_counter == 1
    [written] = [r for r in rig.terminal.journal.records() if r["type"] == "card_credit_written"]
    assert written["found_applied"] is after_apply


def test_a_pending_credit_survives_a_restart_and_is_written_when_the_card_returns(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    card_no, _ = paid_with_credit_pending(rig)
    rig.crash_and_restart()
    rig.sims.cards.insert_card(card_no)
    # A new top-up of the same card first completes the old credit, then starts.
    progress = rig.terminal.start_card_topup("power-card", 50_00)
    card = rig.sims.cards.read_prepaid()
    assert card is not None and card.purchase_counter == 1
    rig.insert(progress.tx_id, 50_00)
    assert rig.terminal.finish(progress.tx_id).card_credit == "written"
    card = rig.sims.cards.read_prepaid()
    assert card is not None and card.purchase_counter == 2


def test_reading_the_card_back_first_finishes_a_credit_still_owed_to_it(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    card_no, _ = paid_with_credit_pending(rig)
    rig.sims.cards.insert_card(card_no)
    card = rig.terminal.read_card()  # what the screen shows is the card after its credit
    assert card is not None and card.purchase_counter == 1 and card.last_credit_fen == 50_00


@pytest.mark.parametrize("after_apply", [False, True])
def test_a_card_pulled_again_while_its_pending_credit_is_written_keeps_it_pending(
    terminal_rig: TerminalRig, after_apply: bool
) -> None:
    rig = terminal_rig
    card_no, tx_id = paid_with_credit_pending(rig)
    rig.sims.cards.insert_card(card_no)
    rig.sims.cards.pull_during_next_command(after_apply=after_apply)
    assert rig.terminal.card_inserted() == []  # no error: the card simply left again
    rig.sims.cards.insert_card(card_no)
    assert rig.terminal.card_inserted() == [tx_id]
    card = rig.sims.cards.read_prepaid()
    assert card is not None and card.purchase_counter == 1 and card.last_credit_fen == 50_00
