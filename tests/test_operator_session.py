"""The station operator's card and PIN at the kiosk: login, refused PINs, the idle timeout,
and every action journaled with who did it.

The terminal core on its simulated card reader (simulators/smartcard.py, the same
3-try rule as the card on PC/SC: tests/test_operator_card_pcsc.py).
"""

from datetime import timedelta

import pytest

from kiosk.devices import CardError, OperatorCardBlocked, OperatorPinWrong
from kiosk.operator import Role
from kiosk.operator.session import NotLoggedIn
from tests.fixtures.terminal import TerminalRig

OPERATOR_CARD = "8700000001"
PIN = "135790"


def operator_card_in(rig: TerminalRig, operator_id: str = "OP-0007") -> None:
    cards = rig.sims.cards
    cards.create_operator_card(OPERATOR_CARD, operator_id, PIN)
    cards.remove_card()
    cards.insert_operator_card(OPERATOR_CARD)


def sessions(rig: TerminalRig) -> list[tuple[str, str | None]]:
    return [(r["action"], r.get("by")) for r in rig.records_of("operator_session")]


def test_the_operator_card_and_its_pin_open_a_session_whose_actions_name_the_operator(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    operator_card_in(rig)
    actor = rig.terminal.operator.login(PIN)
    assert (actor.id, actor.role) == ("OP-0007", Role.OPERATOR)
    assert rig.terminal.operator.operator == actor
    rig.terminal.operator.record_deposit(50_000, "PS-1001")
    [deposit] = rig.records_of("float_deposit")
    assert (deposit["by"], deposit["role"]) == ("OP-0007", "operator")
    result = rig.terminal.operator.close_day(print_sheet=False)
    assert result.record["closed_by"] == "operator:OP-0007"
    rig.terminal.operator.logout()
    assert sessions(rig) == [("login", "OP-0007"), ("logout", "OP-0007")]
    assert all("sig" in r for r in rig.records_of("operator_session"))
    with pytest.raises(NotLoggedIn):
        rig.terminal.operator.float_overview()


def test_a_wrong_pin_is_journaled_and_three_block_the_card(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    operator_card_in(rig)
    tries = []
    for pin in ("000000", "111111"):
        with pytest.raises(OperatorPinWrong) as wrong:
            rig.terminal.operator.login(pin)
        tries.append(wrong.value.tries_left)
    with pytest.raises(OperatorCardBlocked):
        rig.terminal.operator.login("222222")
    with pytest.raises(OperatorCardBlocked):
        rig.terminal.operator.login(PIN)  # blocked for good: the right PIN no longer opens
    assert tries == [2, 1]
    refused = rig.records_of("operator_session")
    assert [(r["action"], r["reason"], r["tries_left"]) for r in refused] == [
        ("refused", "OperatorPinWrong", 2),
        ("refused", "OperatorPinWrong", 1),
        ("refused", "OperatorCardBlocked", None),
        ("refused", "OperatorCardBlocked", None),
    ]
    assert rig.terminal.operator.operator is None
    assert rig.sims.cards.operator_card(OPERATOR_CARD).blocked


def test_a_technician_card_does_not_open_an_operator_session(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    cards = rig.sims.cards
    cards.create_technician_card("8600000001", "TECH-007", PIN)
    cards.remove_card()
    cards.insert_technician_card("8600000001")
    with pytest.raises(CardError, match="no operator card"):
        rig.terminal.operator.login(PIN)
    assert sessions(rig) == [("refused", None)]


def test_a_session_left_alone_ends_by_itself_and_an_action_keeps_it_alive(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    operator_card_in(rig)
    rig.terminal.operator.login(PIN)
    timeout = timedelta(seconds=rig.config.operator.session_timeout_s)
    rig.clock.advance(timeout - timedelta(seconds=1))
    rig.terminal.operator.float_overview()  # an action: the session lives on
    rig.clock.advance(timeout - timedelta(seconds=1))
    assert rig.terminal.operator.operator is not None
    rig.clock.advance(timedelta(seconds=2))
    with pytest.raises(NotLoggedIn):
        rig.terminal.operator.float_overview()
    assert sessions(rig) == [("login", "OP-0007"), ("expired", "OP-0007")]
