"""What kiosk.devices.CardReader promises, checked against every reader implementation.

The credits are authorised with the simulated issuer's MAC (drivers.smartcard.prepaid_mac),
which every test card of every implementation verifies.
"""

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.smartcard.prepaid_mac import credit_mac
from kiosk.devices import CardRefused, CardRemoved
from tests.contracts import CARD_RIGS, CardRig

OpenCardRig = Callable[[], CardRig]
CARD = "31000012345678"
OTHER_CARD = "31000087654321"


@pytest.fixture(params=sorted(CARD_RIGS))
def open_card_rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenCardRig]:
    """Opens a driver on one reader; a second call opens a new driver on the same reader."""
    rigs: list[CardRig] = []

    def open_rig() -> CardRig:
        rig = CARD_RIGS[request.param](tmp_path)
        rigs.append(rig)
        return rig

    yield open_rig
    for rig in rigs:
        rig.close()


@pytest.fixture
def rig(open_card_rig: OpenCardRig) -> CardRig:
    rig = open_card_rig()
    rig.issue_card(CARD, "electricity", "4400123456")
    rig.issue_card(OTHER_CARD, "gas", "5500654321")
    return rig


def credit(rig: CardRig, amount_fen: int, new_counter: int, card_no: str = CARD) -> object:
    return rig.reader.credit_prepaid(
        card_no, amount_fen, new_counter, credit_mac(card_no, new_counter, amount_fen)
    )


def test_an_empty_reader_reads_no_card(rig: CardRig) -> None:
    assert rig.reader.read_prepaid() is None


def test_an_inserted_card_reads_with_its_number_utility_meter_and_counter(rig: CardRig) -> None:
    rig.insert_card(CARD)

    card = rig.reader.read_prepaid()

    assert card is not None
    assert (card.card_no, card.utility, card.meter_no) == (CARD, "electricity", "4400123456")
    assert (card.purchase_counter, card.last_credit_fen) == (0, 0)


def test_a_credit_with_the_next_counter_is_applied_and_returned(rig: CardRig) -> None:
    rig.insert_card(CARD)

    card = credit(rig, 5000, 1)

    assert (card.card_no, card.purchase_counter, card.last_credit_fen) == (CARD, 1, 5000)
    assert rig.reader.read_prepaid() == card


def test_the_same_credit_can_never_be_applied_twice(rig: CardRig) -> None:
    rig.insert_card(CARD)
    credit(rig, 5000, 1)

    with pytest.raises(CardRefused):
        credit(rig, 5000, 1)

    card = rig.reader.read_prepaid()
    assert card is not None and card.purchase_counter == 1


def test_a_credit_that_skips_a_counter_is_refused(rig: CardRig) -> None:
    rig.insert_card(CARD)

    with pytest.raises(CardRefused):
        credit(rig, 5000, 2)

    card = rig.reader.read_prepaid()
    assert card is not None and card.purchase_counter == 0


def test_a_credit_with_a_wrong_mac_is_refused_and_changes_nothing(rig: CardRig) -> None:
    rig.insert_card(CARD)
    mac_for_less = credit_mac(CARD, 1, 100)

    with pytest.raises(CardRefused):
        rig.reader.credit_prepaid(CARD, 99900, 1, mac_for_less)

    card = rig.reader.read_prepaid()
    assert card is not None and (card.purchase_counter, card.last_credit_fen) == (0, 0)


def test_a_credit_without_a_card_raises_card_removed(rig: CardRig) -> None:
    with pytest.raises(CardRemoved):
        credit(rig, 5000, 1)


def test_a_credit_for_another_card_than_the_one_inserted_raises_card_removed(
    rig: CardRig,
) -> None:
    rig.insert_card(OTHER_CARD)

    with pytest.raises(CardRemoved):
        credit(rig, 5000, 1, card_no=CARD)

    card = rig.reader.read_prepaid()
    assert card is not None and card.purchase_counter == 0


def test_a_removed_card_is_no_longer_read(rig: CardRig) -> None:
    rig.insert_card(CARD)
    rig.remove_card()

    assert rig.reader.read_prepaid() is None


def test_a_card_pulled_before_it_applied_the_credit_is_unchanged_when_it_comes_back(
    rig: CardRig,
) -> None:
    rig.insert_card(CARD)
    rig.pull_during_next_command(after_apply=False)

    with pytest.raises(CardRemoved):
        credit(rig, 5000, 1)
    rig.insert_card(CARD)

    card = rig.reader.read_prepaid()
    assert card is not None and card.purchase_counter == 0


def test_a_card_pulled_after_it_applied_the_credit_shows_the_credit_when_it_comes_back(
    rig: CardRig,
) -> None:
    rig.insert_card(CARD)
    rig.pull_during_next_command(after_apply=True)

    with pytest.raises(CardRemoved):
        credit(rig, 5000, 1)
    rig.insert_card(CARD)

    card = rig.reader.read_prepaid()
    assert card is not None and (card.purchase_counter, card.last_credit_fen) == (1, 5000)
    with pytest.raises(CardRefused):
        credit(rig, 5000, 1)  # the retry of the same credit after the pull


def test_the_card_keeps_its_counter_for_a_new_driver_after_a_restart(
    open_card_rig: OpenCardRig, rig: CardRig
) -> None:
    rig.insert_card(CARD)
    credit(rig, 5000, 1)

    after = open_card_rig()

    card = after.reader.read_prepaid()
    assert card is not None and (card.purchase_counter, card.last_credit_fen) == (1, 5000)


def test_health_is_json_and_says_whether_a_card_is_present(rig: CardRig) -> None:
    assert rig.reader.health()["card_present"] is False
    rig.insert_card(CARD)

    health = rig.reader.health()

    json.dumps(health)
    assert health["connected"] is True
    assert health["card_present"] is True
