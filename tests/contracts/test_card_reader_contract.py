"""What kiosk.devices.CardReader promises, checked against every reader implementation.

The credits are authorised with the simulated issuer's MAC (drivers.smartcard.prepaid_mac),
which every test card of every implementation verifies; the MAC binds each credit to this
terminal and a transaction reference, and the card's load log records both.
"""

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.smartcard.prepaid_mac import credit_mac
from kiosk.devices import CardLoad, CardRefused, CardRemoved, PrepaidCard
from tests.contracts import CARD_RIGS, CardRig

OpenCardRig = Callable[[], CardRig]
CARD = "31000012345678"
OTHER_CARD = "31000087654321"
TERMINAL = "K-31000001-01"


def ref(new_counter: int) -> str:
    """This terminal's transaction reference for the credit to new_counter (a post key)."""
    return f"{TERMINAL}-{new_counter:016x}-p"


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


def credit(
    rig: CardRig,
    amount_fen: int,
    new_counter: int,
    card_no: str = CARD,
    *,
    terminal: str = TERMINAL,
    to: str = "",
) -> PrepaidCard:
    to = to or ref(new_counter)
    mac = credit_mac(card_no, new_counter, amount_fen, terminal, to)
    return rig.reader.credit_prepaid(
        card_no, amount_fen, new_counter, mac, terminal=terminal, ref=to
    )


def test_an_empty_reader_reads_no_card(rig: CardRig) -> None:
    assert rig.reader.read_prepaid() is None


def test_an_inserted_card_reads_with_its_number_utility_meter_and_counter(rig: CardRig) -> None:
    rig.insert_card(CARD)

    card = rig.reader.read_prepaid()

    assert card is not None
    assert (card.card_no, card.utility, card.meter_no) == (CARD, "electricity", "4400123456")
    assert (card.purchase_counter, card.last_credit_fen, card.last_load) == (0, 0, None)


def test_a_credit_with_the_next_counter_is_applied_and_returned(rig: CardRig) -> None:
    rig.insert_card(CARD)

    card = credit(rig, 5000, 1)

    assert (card.card_no, card.purchase_counter, card.last_credit_fen) == (CARD, 1, 5000)
    assert card.last_load == CardLoad(1, 5000, TERMINAL, ref(1))
    assert rig.reader.read_prepaid() == card


def test_the_last_load_is_the_newest_credit_with_its_own_terminal_and_reference(
    rig: CardRig,
) -> None:
    rig.insert_card(CARD)
    credit(rig, 5000, 1)
    credit(rig, 2000, 2, terminal="K-31000001-02", to="K-31000001-02-second-p")

    card = rig.reader.read_prepaid()

    assert card is not None
    assert card.last_load == CardLoad(2, 2000, "K-31000001-02", "K-31000001-02-second-p")


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
    mac_for_less = credit_mac(CARD, 1, 100, TERMINAL, ref(1))

    with pytest.raises(CardRefused):
        rig.reader.credit_prepaid(CARD, 99900, 1, mac_for_less, terminal=TERMINAL, ref=ref(1))

    card = rig.reader.read_prepaid()
    assert card is not None and (card.purchase_counter, card.last_credit_fen) == (0, 0)


@pytest.mark.parametrize(
    ("terminal", "to"),
    [("K-31000001-02", ref(1)), (TERMINAL, ref(2))],
    ids=["another-terminal", "another-reference"],
)
def test_a_credit_sent_for_another_terminal_or_reference_than_its_mac_is_refused(
    rig: CardRig, terminal: str, to: str
) -> None:
    rig.insert_card(CARD)
    mac = credit_mac(CARD, 1, 5000, TERMINAL, ref(1))

    with pytest.raises(CardRefused):
        rig.reader.credit_prepaid(CARD, 5000, 1, mac, terminal=terminal, ref=to)

    card = rig.reader.read_prepaid()
    assert card is not None and (card.purchase_counter, card.last_load) == (0, None)


@pytest.mark.parametrize(
    ("terminal", "to"),
    [("T" * 33, ref(1)), (TERMINAL, "R" * 65), ("", ref(1)), (TERMINAL, "终端")],
    ids=["terminal-id-too-long", "reference-too-long", "no-terminal-id", "not-ascii"],
)
def test_a_terminal_id_or_reference_the_card_cannot_record_is_refused(
    rig: CardRig, terminal: str, to: str
) -> None:
    rig.insert_card(CARD)
    try:
        mac = credit_mac(CARD, 1, 5000, terminal, to)
    except ValueError:  # not ASCII: no issuer can MAC it, the card must still refuse
        mac = bytes(8)

    with pytest.raises(CardRefused):
        rig.reader.credit_prepaid(CARD, 5000, 1, mac, terminal=terminal, ref=to)

    card = rig.reader.read_prepaid()
    assert card is not None and card.purchase_counter == 0


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
    assert card.last_load == CardLoad(1, 5000, TERMINAL, ref(1))  # the proof it was ours
    with pytest.raises(CardRefused):
        credit(rig, 5000, 1)  # the retry of the same credit after the pull


def test_a_card_pulled_before_the_write_and_topped_up_elsewhere_shows_the_other_load(
    rig: CardRig,
) -> None:
    """Issue #16: the counter alone matches our pending credit; the last load does not."""
    rig.insert_card(CARD)
    rig.pull_during_next_command(after_apply=False)
    with pytest.raises(CardRemoved):
        credit(rig, 5000, 1)

    rig.load_elsewhere(CARD, 3000, "GRID-01", "GRID-01-0000815")
    rig.insert_card(CARD)

    card = rig.reader.read_prepaid()
    assert card is not None and (card.purchase_counter, card.last_credit_fen) == (1, 3000)
    assert card.last_load == CardLoad(1, 3000, "GRID-01", "GRID-01-0000815")
    with pytest.raises(CardRefused):
        credit(rig, 5000, 1)  # our credit for counter 1 can never be written now


def test_the_card_keeps_its_counter_for_a_new_driver_after_a_restart(
    open_card_rig: OpenCardRig, rig: CardRig
) -> None:
    rig.insert_card(CARD)
    credit(rig, 5000, 1)

    after = open_card_rig()

    card = after.reader.read_prepaid()
    assert card is not None and (card.purchase_counter, card.last_credit_fen) == (1, 5000)
    assert card.last_load == CardLoad(1, 5000, TERMINAL, ref(1))


def test_health_is_json_and_says_whether_a_card_is_present(rig: CardRig) -> None:
    assert rig.reader.health()["card_present"] is False
    rig.insert_card(CARD)

    health = rig.reader.health()

    json.dumps(health)
    assert health["connected"] is True
    assert health["card_present"] is True
