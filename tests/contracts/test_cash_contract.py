"""What kiosk.devices.CashAcceptor promises, checked against every acceptor implementation."""

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.cash import CashRejected
from kiosk.devices import CashKind
from tests.contracts import CASH_RIGS, CashRig

OpenCashRig = Callable[[], CashRig]


@pytest.fixture(params=sorted(CASH_RIGS))
def open_cash_rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenCashRig]:
    """Opens a driver on one device; a second call opens a new driver on the same device."""
    rigs: list[CashRig] = []

    def open_rig() -> CashRig:
        rig = CASH_RIGS[request.param](tmp_path)
        rigs.append(rig)
        return rig

    yield open_rig
    for rig in rigs:
        rig.close()


@pytest.fixture
def rig(open_cash_rig: OpenCashRig) -> CashRig:
    rig = open_cash_rig()
    rig.acceptor.set_accepting(True)
    return rig


def test_counted_cash_waits_in_pending_oldest_first_with_kind_and_value(rig: CashRig) -> None:
    rig.insert("note", 2000)
    rig.insert("coin", 50)
    rig.insert("note", 10000)

    pending = rig.acceptor.pending()

    assert [(e.kind, e.value_fen) for e in pending] == [
        ("note", 2000),
        ("coin", 50),
        ("note", 10000),
    ]


def test_a_new_acceptor_has_nothing_pending(rig: CashRig) -> None:
    assert rig.acceptor.pending() == []


def test_every_counted_event_has_its_own_id(rig: CashRig) -> None:
    for _ in range(5):
        rig.insert("coin", 100)

    ids = [event.event_id for event in rig.acceptor.pending()]

    assert len(set(ids)) == 5


def test_an_acknowledged_event_leaves_pending_and_the_others_stay(rig: CashRig) -> None:
    rig.insert("note", 500)
    rig.insert("note", 1000)
    first, second = rig.acceptor.pending()

    rig.acceptor.acknowledge(first.event_id)

    assert rig.acceptor.pending() == [second]


def test_acknowledging_twice_or_an_unknown_id_changes_nothing(rig: CashRig) -> None:
    rig.insert("note", 500)
    rig.insert("note", 100)
    first, second = rig.acceptor.pending()
    rig.acceptor.acknowledge(first.event_id)

    rig.acceptor.acknowledge(first.event_id)
    rig.acceptor.acknowledge("no-such-event-17")

    assert rig.acceptor.pending() == [second]


def test_counted_cash_is_still_pending_for_a_new_driver_after_a_restart(
    open_cash_rig: OpenCashRig,
) -> None:
    before = open_cash_rig()
    before.acceptor.set_accepting(True)
    before.insert("note", 5000)
    before.insert("coin", 10)
    counted = before.acceptor.pending()

    after = open_cash_rig()

    assert after.acceptor.pending() == counted


def test_an_acknowledgement_holds_for_a_new_driver_after_a_restart(
    open_cash_rig: OpenCashRig,
) -> None:
    before = open_cash_rig()
    before.acceptor.set_accepting(True)
    before.insert("note", 5000)
    before.insert("note", 2000)
    first, second = before.acceptor.pending()
    before.acceptor.acknowledge(first.event_id)

    after = open_cash_rig()

    assert after.acceptor.pending() == [second]


def test_event_ids_are_never_reused_after_acknowledgement_and_restart(
    open_cash_rig: OpenCashRig,
) -> None:
    before = open_cash_rig()
    before.acceptor.set_accepting(True)
    before.insert("coin", 100)
    (old,) = before.acceptor.pending()
    before.acceptor.acknowledge(old.event_id)

    after = open_cash_rig()
    after.insert("coin", 100)
    (new,) = after.acceptor.pending()

    assert new.event_id != old.event_id


def test_health_is_json_and_counts_what_is_pending(rig: CashRig) -> None:
    rig.insert("note", 100)
    rig.insert("note", 100)

    health = rig.acceptor.health()

    json.dumps(health)
    assert health["online"] is True
    assert health["accepting"] is True
    assert health["jammed"] is False
    assert health["pending"] == 2


def test_health_says_when_the_inlets_are_closed(rig: CashRig) -> None:
    rig.acceptor.set_accepting(False)

    assert rig.acceptor.health()["accepting"] is False


# ---------------------------------------------------------------- unrecognised items


def test_an_unrecognised_item_is_an_event_worth_nothing_that_says_what_the_board_saw(
    rig: CashRig,
) -> None:
    rig.insert("note", 1000)
    rig.insert_unrecognised("note")
    rig.insert("coin", 50)

    note, item, coin = rig.acceptor.pending()

    assert (item.kind, item.value_fen) == (CashKind.UNRECOGNISED, 0)
    assert item.detail == "pulses=3 on the note inlet"
    assert (note.kind, note.value_fen, note.detail) == (CashKind.NOTE, 1000, "")
    assert (coin.kind, coin.value_fen) == (CashKind.COIN, 50)
    assert len({note.event_id, item.event_id, coin.event_id}) == 3


def test_an_unrecognised_coin_names_the_coin_inlet(rig: CashRig) -> None:
    rig.insert_unrecognised("coin")

    (item,) = rig.acceptor.pending()

    assert item.kind is CashKind.UNRECOGNISED
    assert item.detail == "pulses=3 on the coin inlet"


def test_an_unrecognised_item_waits_for_its_acknowledgement_across_a_restart(
    open_cash_rig: OpenCashRig,
) -> None:
    before = open_cash_rig()
    before.acceptor.set_accepting(True)
    before.insert_unrecognised("note")
    before.insert("note", 500)
    item, note = before.acceptor.pending()

    after = open_cash_rig()
    assert after.acceptor.pending() == [item, note]
    after.acceptor.acknowledge(item.event_id)

    assert after.acceptor.pending() == [note]
    assert after.acceptor.health()["pending"] == 1


def test_an_unrecognised_item_is_not_taken_while_the_inlets_are_closed(rig: CashRig) -> None:
    rig.acceptor.set_accepting(False)

    with pytest.raises(CashRejected):
        rig.insert_unrecognised("note")

    assert rig.acceptor.pending() == []


# ---------------------------------------------------------------- denomination limit


def test_a_note_above_the_limit_is_handed_back_and_not_counted(rig: CashRig) -> None:
    rig.acceptor.set_accepting(True, largest_fen=2000)

    with pytest.raises(CashRejected):
        rig.insert("note", 5000)
    rig.insert("note", 2000)
    rig.insert("coin", 100)

    assert [(e.kind, e.value_fen) for e in rig.acceptor.pending()] == [
        (CashKind.NOTE, 2000),
        (CashKind.COIN, 100),
    ]


def test_the_limit_applies_to_coins_as_well_as_notes(rig: CashRig) -> None:
    rig.acceptor.set_accepting(True, largest_fen=50)

    for kind, value in (("coin", 100), ("note", 100)):
        with pytest.raises(CashRejected):
            rig.insert(kind, value)
    rig.insert("coin", 50)

    assert [e.value_fen for e in rig.acceptor.pending()] == [50]


def test_a_limit_between_denominations_lets_in_those_below_it(rig: CashRig) -> None:
    rig.acceptor.set_accepting(True, largest_fen=3000)

    with pytest.raises(CashRejected):
        rig.insert("note", 5000)
    rig.insert("note", 2000)

    assert [e.value_fen for e in rig.acceptor.pending()] == [2000]


def test_each_setting_replaces_the_limit_before_it(rig: CashRig) -> None:
    rig.acceptor.set_accepting(True, largest_fen=1000)
    rig.acceptor.set_accepting(True)

    rig.insert("note", 10000)

    assert [e.value_fen for e in rig.acceptor.pending()] == [10000]
    assert rig.acceptor.health()["largest_fen"] is None


def test_health_reports_the_limit(rig: CashRig) -> None:
    rig.acceptor.set_accepting(True, largest_fen=2000)

    health = rig.acceptor.health()

    assert health["accepting"] is True and health["largest_fen"] == 2000


def test_a_limit_below_every_denomination_takes_nothing(rig: CashRig) -> None:
    rig.acceptor.set_accepting(True, largest_fen=5)

    with pytest.raises(CashRejected):
        rig.insert("coin", 10)

    assert rig.acceptor.pending() == []
    assert rig.acceptor.health()["accepting"] is False


def test_closed_inlets_take_nothing_whatever_the_limit(rig: CashRig) -> None:
    rig.acceptor.set_accepting(False, largest_fen=10000)

    with pytest.raises(CashRejected):
        rig.insert("note", 100)

    assert rig.acceptor.health()["accepting"] is False


@pytest.mark.parametrize("bad", [-1, True, 12.5, "2000"])
def test_a_limit_that_is_not_whole_fen_is_refused(rig: CashRig, bad: object) -> None:
    with pytest.raises(ValueError, match="largest_fen"):
        rig.acceptor.set_accepting(True, largest_fen=bad)  # type: ignore[arg-type]


def test_the_limit_survives_a_new_driver_on_the_same_acceptor(
    open_cash_rig: OpenCashRig,
) -> None:
    before = open_cash_rig()
    before.acceptor.set_accepting(True, largest_fen=1000)

    after = open_cash_rig()

    with pytest.raises(CashRejected):
        after.insert("note", 5000)
    after.insert("note", 1000)
    assert [e.value_fen for e in after.acceptor.pending()] == [1000]
    assert after.acceptor.health()["largest_fen"] == 1000


def test_after_its_own_restart_the_acceptor_is_closed_and_keeps_what_it_counted(
    rig: CashRig,
) -> None:
    rig.acceptor.set_accepting(True, largest_fen=1000)
    rig.insert("note", 500)
    rig.insert_unrecognised("coin")
    counted = rig.acceptor.pending()

    rig.restart_board()

    with pytest.raises(CashRejected):
        rig.insert("note", 100)
    assert rig.acceptor.pending() == counted
    health = rig.acceptor.health()
    assert health["accepting"] is False and health["largest_fen"] is None
    rig.acceptor.set_accepting(True)
    rig.insert("note", 10000)
    assert [e.value_fen for e in rig.acceptor.pending()][-1] == 10000
