"""What kiosk.devices.CashAcceptor promises, checked against every acceptor implementation."""

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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
