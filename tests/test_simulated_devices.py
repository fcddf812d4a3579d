"""The device simulators beyond their Protocols: faults, durability and the bench's controls.

The Protocol promises are in tests/contracts; here is what only the simulators offer: their
fault switches, their state surviving a SIGKILLed process, the card's own rules and the
printer's paper as files.
"""

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import simulators.cash as cash_module
from drivers.cash import ACCEPTED_DENOMINATIONS_FEN
from drivers.ioboard.host import IoBoardNotAnswering
from drivers.printer.capabilities import PAPER_WIDTHS, paper_for_columns, paper_for_width
from drivers.smartcard.prepaid_card import (
    CardCommandRefused,
    CardStatusError,
    SimulatedPrepaidCard,
    error_for_status,
)
from drivers.smartcard.prepaid_mac import credit_mac
from kiosk.devices import (
    CardError,
    CardLoad,
    CardRemoved,
    CashEvent,
    CashKind,
    DeviceError,
    PaperOut,
    PrepaidCard,
    PrinterStatus,
    ReceiptDocument,
    ReceiptLine,
)
from simulators.cash import CashRejected, SimulatedCashAcceptor
from simulators.cash_link_faults import LostPart, plan_next_calls, plan_random_calls
from simulators.ioboard import SimulatedIoBoard
from simulators.printer import SimulatedPrinter, layout_line, receipt_file_stem
from simulators.smartcard import SimulatedCardReader

CARD = "31000012345678"
OTHER_CARD = "31000087654321"
TERMINAL = "K-0001"  # this kiosk's terminal id in the card tests
REPO = Path(__file__).resolve().parent.parent


def run_and_get_killed(script: str) -> None:
    """Run script in a fresh interpreter that SIGKILLs itself at its end, as the crash test does."""
    code = textwrap.dedent(script) + "\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == -signal.SIGKILL, completed.stderr


# ================================================================ cash acceptor


@pytest.fixture
def acceptor(tmp_path: Path) -> Iterator[SimulatedCashAcceptor]:
    acceptor = SimulatedCashAcceptor(tmp_path / "cash.sqlite")
    acceptor.set_accepting(True)
    yield acceptor
    acceptor.close()


@pytest.mark.parametrize(
    ("kind", "value_fen"),
    sorted(
        (kind, value) for kind, values in ACCEPTED_DENOMINATIONS_FEN.items() for value in values
    ),
)
def test_every_renminbi_note_and_coin_of_the_table_is_counted(
    acceptor: SimulatedCashAcceptor, kind: str, value_fen: int
) -> None:
    event = acceptor.insert(kind, value_fen)

    assert (event.kind, event.value_fen) == (kind, value_fen)
    assert acceptor.pending() == [event]


def test_the_accepted_denominations_are_the_published_notes_and_coins() -> None:
    assert ACCEPTED_DENOMINATIONS_FEN["note"] == {100, 500, 1000, 2000, 5000, 10000}
    assert ACCEPTED_DENOMINATIONS_FEN["coin"] == {10, 50, 100}


@pytest.mark.parametrize(
    ("kind", "value_fen"),
    [("note", 200), ("note", 10), ("coin", 500), ("coin", 20), ("note", 0), ("bill", 100)],
)
def test_an_unknown_denomination_is_handed_back_and_not_counted(
    acceptor: SimulatedCashAcceptor, kind: str, value_fen: int
) -> None:
    with pytest.raises(CashRejected, match="handed back"):
        acceptor.insert(kind, value_fen)

    assert acceptor.pending() == []


def test_cash_inserted_while_the_inlets_are_closed_is_handed_back(
    acceptor: SimulatedCashAcceptor,
) -> None:
    acceptor.set_accepting(False)

    with pytest.raises(CashRejected, match="inlets are closed"):
        acceptor.insert("note", 1000)

    assert acceptor.pending() == []


def test_event_ids_are_the_acceptor_id_and_a_counter_that_survives_restarts(
    tmp_path: Path,
) -> None:
    first = SimulatedCashAcceptor(tmp_path / "cash.sqlite")
    first.set_accepting(True)
    one = first.insert("coin", 100)
    first.acknowledge(one.event_id)
    first.close()

    second = SimulatedCashAcceptor(tmp_path / "cash.sqlite")
    two = second.insert("coin", 100)

    assert one.event_id == f"{second.acceptor_id}-1"
    assert two.event_id == f"{second.acceptor_id}-2"
    second.close()


def test_two_boards_never_share_event_ids_even_on_a_fresh_state_file(tmp_path: Path) -> None:
    first = SimulatedCashAcceptor(tmp_path / "a.sqlite")
    second = SimulatedCashAcceptor(tmp_path / "b.sqlite")

    assert first.acceptor_id != second.acceptor_id
    first.close()
    second.close()


def test_a_jammed_inlet_refuses_cash_and_says_so_in_health(
    acceptor: SimulatedCashAcceptor,
) -> None:
    acceptor.jam()

    with pytest.raises(CashRejected, match="jammed"):
        acceptor.insert("note", 5000)
    assert acceptor.health()["jammed"] is True
    assert acceptor.pending() == []

    acceptor.clear_jam()
    acceptor.insert("note", 5000)
    assert acceptor.health()["jammed"] is False


def test_a_jam_is_still_there_for_a_new_simulator_on_the_same_state(
    acceptor: SimulatedCashAcceptor,
) -> None:
    acceptor.jam()

    reopened = SimulatedCashAcceptor(acceptor.state_path)

    assert reopened.health()["jammed"] is True
    reopened.close()


def test_after_a_link_reset_acknowledged_events_come_again_in_order_until_acknowledged(
    acceptor: SimulatedCashAcceptor,
) -> None:
    events = [acceptor.insert("note", value) for value in (100, 500, 1000)]
    for event in events:
        acceptor.acknowledge(event.event_id)
    fresh = acceptor.insert("coin", 50)

    assert acceptor.redeliver_acknowledged(2) == 2

    assert acceptor.pending() == [events[1], events[2], fresh]
    acceptor.acknowledge(events[1].event_id)
    acceptor.acknowledge(events[2].event_id)
    assert acceptor.pending() == [fresh]


def test_the_board_re_sends_only_what_it_remembers(
    acceptor: SimulatedCashAcceptor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cash_module, "ACKNOWLEDGED_HISTORY", 2)
    for _ in range(4):
        acceptor.acknowledge(acceptor.insert("coin", 10).event_id)
    unacknowledged = acceptor.insert("coin", 50)

    assert acceptor.redeliver_acknowledged(10) == 2
    assert len(acceptor.pending()) == 3
    assert acceptor.pending()[-1] == unacknowledged


def test_a_board_that_does_not_answer_fails_every_host_call_with_one_clear_line(
    acceptor: SimulatedCashAcceptor,
) -> None:
    acceptor.go_offline()

    for call in (
        acceptor.pending,
        lambda: acceptor.acknowledge("x-1"),
        lambda: acceptor.set_accepting(False),
    ):
        with pytest.raises(DeviceError, match="^I/O board not answering: ") as caught:
            call()
        assert "\n" not in str(caught.value)


def test_health_of_a_board_that_does_not_answer_is_unknown_never_fine(
    acceptor: SimulatedCashAcceptor,
) -> None:
    acceptor.go_offline()

    health = acceptor.health()

    assert health["online"] is False
    assert health["accepting"] is None and health["jammed"] is None and health["pending"] is None


def test_cash_counted_while_the_link_is_down_is_delivered_when_it_is_back(
    acceptor: SimulatedCashAcceptor,
) -> None:
    acceptor.go_offline()
    counted = acceptor.insert("note", 2000)

    acceptor.go_online()

    assert acceptor.pending() == [counted]


def test_counted_cash_survives_a_killed_process(tmp_path: Path) -> None:
    state = tmp_path / "cash.sqlite"
    run_and_get_killed(
        f"""
        from pathlib import Path
        from simulators.cash import SimulatedCashAcceptor
        acceptor = SimulatedCashAcceptor(Path({str(state)!r}))
        acceptor.set_accepting(True)
        acceptor.acknowledge(acceptor.insert("note", 100).event_id)
        acceptor.insert("note", 5000)
        acceptor.jam()
        """
    )

    acceptor = SimulatedCashAcceptor(state)

    assert [(e.event_id, e.value_fen) for e in acceptor.pending()] == [
        (f"{acceptor.acceptor_id}-2", 5000)
    ]
    assert acceptor.health()["jammed"] is True
    acceptor.close()


def test_a_note_above_the_limit_is_handed_back_saying_what_the_inlets_take(
    acceptor: SimulatedCashAcceptor,
) -> None:
    acceptor.set_accepting(True, largest_fen=2000)

    with pytest.raises(CashRejected, match=r"above the ¥20\.00 the inlets take now"):
        acceptor.insert("note", 5000)

    assert acceptor.pending() == []


@pytest.mark.parametrize(
    ("inlet", "pulses", "error"),
    [("bill", 3, CashRejected), ("unrecognised", 3, CashRejected), ("note", 0, ValueError)],
)
def test_an_unrecognised_item_needs_an_inlet_and_a_pulse_count(
    acceptor: SimulatedCashAcceptor, inlet: str, pulses: int, error: type[Exception]
) -> None:
    with pytest.raises(error):
        acceptor.insert_unrecognised(inlet, pulses)

    assert acceptor.pending() == []


def test_an_unrecognised_item_is_refused_by_a_jammed_inlet(
    acceptor: SimulatedCashAcceptor,
) -> None:
    acceptor.jam()

    with pytest.raises(CashRejected, match="jammed"):
        acceptor.insert_unrecognised("note")


def test_the_limit_and_unrecognised_items_survive_a_killed_process(tmp_path: Path) -> None:
    state = tmp_path / "cash.sqlite"
    run_and_get_killed(
        f"""
        from pathlib import Path
        from simulators.cash import SimulatedCashAcceptor
        acceptor = SimulatedCashAcceptor(Path({str(state)!r}))
        acceptor.set_accepting(True, largest_fen=1000)
        acceptor.insert_unrecognised("note", 7)
        """
    )

    acceptor = SimulatedCashAcceptor(state)

    (item,) = acceptor.pending()
    assert (item.kind, item.value_fen, item.detail) == (
        CashKind.UNRECOGNISED,
        0,
        "pulses=7 on the note inlet",
    )
    assert acceptor.health()["largest_fen"] == 1000
    with pytest.raises(CashRejected):
        acceptor.insert("note", 2000)
    acceptor.close()


def test_a_state_file_from_before_limits_and_unrecognised_items_opens_with_its_cash(
    tmp_path: Path,
) -> None:
    state = tmp_path / "cash.sqlite"
    old = sqlite3.connect(state)
    old.executescript(
        """
        CREATE TABLE acceptor (singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
            acceptor_id TEXT NOT NULL, next_number INTEGER NOT NULL,
            accepting INTEGER NOT NULL, jammed INTEGER NOT NULL, online INTEGER NOT NULL);
        CREATE TABLE events (number INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL, value_fen INTEGER NOT NULL,
            acknowledged INTEGER NOT NULL DEFAULT 0, redeliver INTEGER NOT NULL DEFAULT 0);
        INSERT INTO acceptor VALUES (1, 'cash-0a0b0c0d', 2, 1, 0, 1);
        INSERT INTO events (number, event_id, kind, value_fen)
            VALUES (1, 'cash-0a0b0c0d-1', 'note', 5000);
        """
    )
    old.close()

    acceptor = SimulatedCashAcceptor(state)

    assert acceptor.pending() == [CashEvent("cash-0a0b0c0d-1", CashKind.NOTE, 5000)]
    assert acceptor.health()["largest_fen"] is None
    assert acceptor.insert_unrecognised("coin").event_id == "cash-0a0b0c0d-2"
    acceptor.close()


# ---------------------------------------------------------------- link errors (soak faults)
# Both simulators that offer a CashAcceptor take the same fault calls: the SQLite cash
# simulator and the in-process I/O board (the real host driver and firmware, in one process).

LinkFaultySimulator = SimulatedCashAcceptor | SimulatedIoBoard


@pytest.fixture(params=["cash-simulator", "ioboard-in-process"])
def faulty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LinkFaultySimulator]:
    simulator: LinkFaultySimulator
    if request.param == "cash-simulator":
        simulator = SimulatedCashAcceptor(tmp_path / "cash.sqlite")
    else:
        simulator = SimulatedIoBoard(tmp_path / "board")
    simulator.set_accepting(True)
    yield simulator
    simulator.close()


def test_the_next_host_calls_fail_while_inserted_cash_is_still_counted(
    faulty: LinkFaultySimulator,
) -> None:
    faulty.fail_next_host_calls(3)

    faulty.insert("note", 500)
    for call in (faulty.pending, lambda: faulty.set_accepting(True), faulty.pending):
        with pytest.raises(DeviceError) as caught:
            call()
        assert "\n" not in str(caught.value) and "cash stays buffered" in str(caught.value)
    faulty.insert_unrecognised("note")
    faulty.insert("coin", 100)

    assert [(e.kind, e.value_fen) for e in faulty.pending()] == [
        (CashKind.NOTE, 500),
        (CashKind.UNRECOGNISED, 0),
        (CashKind.COIN, 100),
    ]


def test_a_lost_request_to_close_the_inlets_leaves_them_open(faulty: LinkFaultySimulator) -> None:
    faulty.fail_next_host_calls(1, lose="request")

    with pytest.raises(DeviceError):
        faulty.set_accepting(False)

    faulty.insert("note", 100)
    assert [e.value_fen for e in faulty.pending()] == [100]


def test_a_lost_answer_to_close_the_inlets_means_they_did_close(
    faulty: LinkFaultySimulator,
) -> None:
    faulty.fail_next_host_calls(1, lose="answer")

    with pytest.raises(DeviceError):
        faulty.set_accepting(False)

    with pytest.raises(CashRejected):
        faulty.insert("note", 100)
    assert faulty.health()["accepting"] is False


def test_a_lost_answer_to_an_acknowledgement_means_the_board_forgot_the_event(
    faulty: LinkFaultySimulator,
) -> None:
    faulty.insert("note", 100)
    faulty.insert("coin", 50)
    first, second = faulty.pending()
    faulty.fail_next_host_calls(1, lose="answer")

    with pytest.raises(DeviceError):
        faulty.acknowledge(first.event_id)

    assert faulty.pending() == [second]


def test_a_lost_request_to_acknowledge_keeps_the_event_pending(
    faulty: LinkFaultySimulator,
) -> None:
    faulty.insert("note", 100)
    (event,) = faulty.pending()
    faulty.fail_next_host_calls(1, lose="request")

    with pytest.raises(DeviceError):
        faulty.acknowledge(event.event_id)

    assert faulty.pending() == [event]


def _failure_pattern(simulator: LinkFaultySimulator, calls: int) -> list[bool]:
    failed = []
    for _ in range(calls):
        try:
            simulator.pending()
            failed.append(False)
        except DeviceError:
            failed.append(True)
    return failed


def test_random_link_errors_follow_their_seed_and_lose_no_cash(
    faulty: LinkFaultySimulator,
) -> None:
    faulty.fail_host_calls_randomly(0.5, seed=7)
    pattern = _failure_pattern(faulty, 30)
    faulty.fail_host_calls_randomly(0.5, seed=7)
    inserted = []
    for value in (100, 500, 1000):
        faulty.insert("note", value)
        inserted.append(value)

    assert _failure_pattern(faulty, 30) == pattern
    assert 5 < sum(pattern) < 25
    faulty.stop_failing_host_calls()
    assert [e.value_fen for e in faulty.pending()] == inserted


def test_another_seed_gives_other_link_errors(faulty: LinkFaultySimulator) -> None:
    faulty.fail_host_calls_randomly(0.5, seed=7)
    first = _failure_pattern(faulty, 30)
    faulty.fail_host_calls_randomly(0.5, seed=8)

    assert _failure_pattern(faulty, 30) != first


@pytest.mark.parametrize(
    "arm",
    [
        lambda sim: sim.fail_next_host_calls(-1),
        lambda sim: sim.fail_next_host_calls(1, lose="everything"),
        lambda sim: sim.fail_host_calls_randomly(1.5, seed=1),
        lambda sim: sim.fail_host_calls_randomly(0.5, seed="x"),
    ],
)
def test_a_bad_link_fault_is_refused_with_a_clear_error(
    faulty: LinkFaultySimulator, arm: Callable[[LinkFaultySimulator], None]
) -> None:
    with pytest.raises(ValueError):
        arm(faulty)

    assert faulty.pending() == []


def test_either_loses_requests_and_answers_both_and_a_count_runs_out() -> None:
    plan = plan_next_calls(40, "either")

    lost = [plan.next_call() for _ in range(40)]

    assert set(lost) == {LostPart.REQUEST, LostPart.ANSWER}
    assert plan.next_call() is None and plan.remaining == 0


def test_a_probability_of_one_fails_every_call_and_zero_none() -> None:
    always = plan_random_calls(1.0, seed=3, lose="answer")
    never = plan_random_calls(0.0, seed=3)

    assert [always.next_call() for _ in range(20)] == [LostPart.ANSWER] * 20
    assert [never.next_call() for _ in range(20)] == [None] * 20


def test_armed_link_errors_are_still_armed_for_a_new_cash_simulator(tmp_path: Path) -> None:
    state = tmp_path / "cash.sqlite"
    run_and_get_killed(
        f"""
        from pathlib import Path
        from simulators.cash import SimulatedCashAcceptor
        acceptor = SimulatedCashAcceptor(Path({str(state)!r}))
        acceptor.set_accepting(True)
        acceptor.fail_next_host_calls(2)
        try:
            acceptor.pending()
        except Exception:
            pass
        acceptor.insert("note", 2000)
        """
    )

    acceptor = SimulatedCashAcceptor(state)

    with pytest.raises(DeviceError, match="link error"):
        acceptor.pending()
    assert [e.value_fen for e in acceptor.pending()] == [2000]
    acceptor.close()


def test_the_in_process_board_reconnects_after_a_link_error(tmp_path: Path) -> None:
    board = SimulatedIoBoard(tmp_path / "board")
    try:
        board.set_accepting(True)
        reconnects = board.stats["reconnects"]
        board.fail_next_host_calls(1)

        with pytest.raises(IoBoardNotAnswering, match="request was lost"):
            board.pending()

        assert board.pending() == []
        assert board.stats["reconnects"] == reconnects + 1
    finally:
        board.close()


# ================================================================ prepaid card (card logic)


def blank_card(**changes: object) -> SimulatedPrepaidCard:
    card = SimulatedPrepaidCard(CARD, "electricity", "4400123456", balance_fen=1000)
    return dataclasses.replace(card, **changes)  # type: ignore[arg-type]


def ref(counter: int) -> str:
    """The transaction reference of this kiosk's credit to counter in these tests."""
    return f"{TERMINAL}-{counter:016x}-p"


def mac_for(
    card_no: str, counter: int, amount: int, terminal: str = TERMINAL, to: str = ""
) -> bytes:
    return credit_mac(card_no, counter, amount, terminal, to or ref(counter))


def apply(card: SimulatedPrepaidCard, amount: int, counter: int) -> SimulatedPrepaidCard:
    """card after this kiosk's genuine credit of amount to counter."""
    return card.apply_credit(
        amount, counter, mac_for(CARD, counter, amount), TERMINAL, ref(counter)
    )


def test_a_credit_moves_the_counter_adds_to_the_balance_and_records_the_amount() -> None:
    card = blank_card()

    credited = apply(card, 5000, 1)

    assert (credited.purchase_counter, credited.balance_fen, credited.last_credit_fen) == (
        1,
        6000,
        5000,
    )
    assert card.purchase_counter == 0  # the card before the credit is a value, unchanged


def test_a_credit_appends_its_load_to_the_log_with_the_terminal_and_reference() -> None:
    card = apply(apply(blank_card(), 5000, 1), 3000, 2)

    assert card.load_log == (
        CardLoad(2, 3000, TERMINAL, ref(2)),
        CardLoad(1, 5000, TERMINAL, ref(1)),
    )
    assert card.as_read().last_load == CardLoad(2, 3000, TERMINAL, ref(2))
    assert blank_card().as_read().last_load is None


def test_the_load_log_keeps_the_newest_ten_loads() -> None:
    card = blank_card()
    for counter in range(1, 13):
        card = apply(card, 100 * counter, counter)

    assert [load.counter for load in card.load_log] == list(range(12, 2, -1))
    assert card.purchase_counter == 12


def test_a_card_round_trips_through_its_state_file_form_log_included() -> None:
    card = apply(apply(blank_card(), 5000, 1), 3000, 2)

    assert SimulatedPrepaidCard.from_state(card.to_state()) == card
    old_state = {k: v for k, v in blank_card().to_state().items() if k != "load_log"}
    assert SimulatedPrepaidCard.from_state(old_state).load_log == ()  # a state file from before


@pytest.mark.parametrize(
    ("card", "amount_fen", "new_counter", "mac", "terminal", "to", "status_word"),
    [
        (blank_card(), 5000, 1, mac_for(CARD, 1, 4999), TERMINAL, ref(1), "6988"),
        (blank_card(), 5000, 1, b"", TERMINAL, ref(1), "6988"),
        (blank_card(), 5000, 1, mac_for(OTHER_CARD, 1, 5000), TERMINAL, ref(1), "6988"),
        (blank_card(), 5000, 1, mac_for(CARD, 1, 5000), "K-0002", ref(1), "6988"),
        (blank_card(), 5000, 1, mac_for(CARD, 1, 5000), TERMINAL, ref(2), "6988"),
        (blank_card(purchase_counter=3), 5000, 3, mac_for(CARD, 3, 5000), TERMINAL, ref(3), "6985"),
        (blank_card(purchase_counter=3), 5000, 5, mac_for(CARD, 5, 5000), TERMINAL, ref(5), "6985"),
        (blank_card(blocked=True), 5000, 1, mac_for(CARD, 1, 5000), TERMINAL, ref(1), "6983"),
        (blank_card(), 0, 1, mac_for(CARD, 1, 0), TERMINAL, ref(1), "6A80"),
        (blank_card(), 2**31, 1, mac_for(CARD, 1, 2**31), TERMINAL, ref(1), "6A80"),
        (blank_card(), 5000, 1, mac_for(CARD, 1, 5000, "T" * 33), "T" * 33, ref(1), "6A80"),
        (blank_card(), 5000, 1, mac_for(CARD, 1, 5000, to="R" * 65), TERMINAL, "R" * 65, "6A80"),
        (blank_card(), 5000, 1, mac_for(CARD, 1, 5000, ""), "", ref(1), "6A80"),
        (blank_card(), 5000, 1, mac_for(CARD, 1, 5000, to="a b"), TERMINAL, "a b", "6A80"),
    ],
    ids=[
        "wrong-mac",
        "no-mac",
        "mac-of-another-card",
        "mac-for-another-terminal",
        "mac-for-another-reference",
        "replayed-counter",
        "skipped-counter",
        "blocked",
        "zero-amount",
        "balance-overflow",
        "terminal-id-of-33-bytes",
        "reference-of-65-bytes",
        "empty-terminal-id",
        "reference-with-a-space",
    ],
)
def test_the_card_refuses_a_credit_with_the_status_word_a_real_card_sends(
    card: SimulatedPrepaidCard,
    amount_fen: int,
    new_counter: int,
    mac: bytes,
    terminal: str,
    to: str,
    status_word: str,
) -> None:
    with pytest.raises(CardCommandRefused) as refused:
        card.apply_credit(amount_fen, new_counter, mac, terminal, to)

    assert refused.value.status_word == status_word
    assert status_word in str(refused.value)


def test_the_longest_terminal_id_and_reference_the_card_holds_are_accepted() -> None:
    terminal, to = "T" * 32, "R" * 64

    card = blank_card().apply_credit(5000, 1, mac_for(CARD, 1, 5000, terminal, to), terminal, to)

    assert card.last_load == CardLoad(1, 5000, terminal, to)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=10_000_000), st.integers(-1, 3)),
        max_size=12,
    )
)
def test_whatever_credits_are_tried_each_counter_value_is_paid_exactly_once(
    attempts: list[tuple[int, int]],
) -> None:
    card = blank_card(balance_fen=0)
    accepted: list[int] = []
    for amount, counter_offset in attempts:
        new_counter = card.purchase_counter + counter_offset
        try:
            card = apply(card, amount, new_counter)
        except CardCommandRefused:
            continue
        accepted.append(amount)

    assert card.purchase_counter == len(accepted)
    assert card.balance_fen == sum(accepted)
    assert card.last_credit_fen == (accepted[-1] if accepted else 0)
    assert [load.amount_fen for load in reversed(card.load_log)] == accepted[-10:]


@pytest.mark.parametrize(
    "changes",
    [
        {"card_no": "31-0001"},
        {"utility": "heating"},
        {"meter_no": "M 12"},
        {"meter_no": ""},
        {"balance_fen": -1},
    ],
)
def test_a_card_with_impossible_data_cannot_be_made(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        blank_card(**changes)


def test_status_words_of_class_69_and_6a_are_refusals_and_others_failures() -> None:
    refusal = error_for_status("6a82", "the read")
    failure = error_for_status("6581", "the read")

    assert isinstance(refusal, CardCommandRefused) and refusal.status_word == "6A82"
    assert isinstance(failure, CardStatusError) and failure.status_word == "6581"
    with pytest.raises(ValueError):
        error_for_status("9000", "the read")


# ================================================================ card reader


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[SimulatedCardReader]:
    reader = SimulatedCardReader(tmp_path / "cards.sqlite")
    reader.create_card(CARD, "electricity", "4400123456", balance_fen=1200)
    reader.create_card(OTHER_CARD, "gas", "5500654321")
    yield reader
    reader.close()


def credit(reader: SimulatedCardReader, amount_fen: int, new_counter: int) -> PrepaidCard:
    return reader.credit_prepaid(
        CARD,
        amount_fen,
        new_counter,
        mac_for(CARD, new_counter, amount_fen),
        terminal=TERMINAL,
        ref=ref(new_counter),
    )


def test_a_created_card_reads_as_a_fresh_card_and_keeps_its_balance(
    reader: SimulatedCardReader,
) -> None:
    reader.insert_card(CARD)

    card = reader.read_prepaid()

    assert card is not None and (card.purchase_counter, card.last_credit_fen) == (0, 0)
    assert reader.card(CARD).balance_fen == 1200


def test_the_bench_cannot_create_a_card_twice_or_insert_an_unknown_or_second_card(
    reader: SimulatedCardReader,
) -> None:
    with pytest.raises(ValueError, match="exists already"):
        reader.create_card(CARD, "gas", "1")
    with pytest.raises(ValueError, match="create it first"):
        reader.insert_card("999")
    reader.insert_card(CARD)
    with pytest.raises(ValueError, match="remove it first"):
        reader.insert_card(OTHER_CARD)


def test_the_bench_can_ask_which_cards_exist_and_reinsert_the_card_already_in(
    reader: SimulatedCardReader,
) -> None:
    reader.insert_card(CARD)
    reader.insert_card(CARD)

    assert reader.has_card(CARD) and not reader.has_card("999")
    assert reader.health()["card_present"] is True


def test_a_credit_adds_to_the_balance_on_the_card(reader: SimulatedCardReader) -> None:
    reader.insert_card(CARD)

    credit(reader, 5000, 1)

    assert reader.card(CARD).balance_fen == 6200


def test_a_repeated_credit_is_refused_with_status_6985_and_the_balance_unchanged(
    reader: SimulatedCardReader,
) -> None:
    reader.insert_card(CARD)
    credit(reader, 5000, 1)

    with pytest.raises(CardCommandRefused) as refused:
        credit(reader, 5000, 1)

    assert refused.value.status_word == "6985"
    assert reader.card(CARD).balance_fen == 6200


def test_a_blocked_card_is_read_but_refuses_credits(reader: SimulatedCardReader) -> None:
    reader.block_card(CARD)
    reader.insert_card(CARD)

    assert reader.read_prepaid() is not None
    with pytest.raises(CardCommandRefused) as refused:
        credit(reader, 5000, 1)
    assert refused.value.status_word == "6983"


def test_a_credit_retried_after_a_pull_after_apply_is_never_applied_twice(
    reader: SimulatedCardReader,
) -> None:
    reader.insert_card(CARD)
    reader.pull_during_next_command(after_apply=True)
    with pytest.raises(CardRemoved):
        credit(reader, 5000, 1)
    assert reader.health()["card_present"] is False

    reader.insert_card(CARD)
    with pytest.raises(CardCommandRefused):
        credit(reader, 5000, 1)

    assert reader.card(CARD).balance_fen == 6200
    assert reader.card(CARD).purchase_counter == 1


def test_a_credit_retried_after_a_pull_before_apply_is_applied_once(
    reader: SimulatedCardReader,
) -> None:
    reader.insert_card(CARD)
    reader.pull_during_next_command(after_apply=False)
    with pytest.raises(CardRemoved):
        credit(reader, 5000, 1)
    assert reader.card(CARD).balance_fen == 1200

    reader.insert_card(CARD)
    credit(reader, 5000, 1)

    assert reader.card(CARD).balance_fen == 6200


def test_a_refused_credit_pulled_after_the_card_answered_changes_nothing(
    reader: SimulatedCardReader,
) -> None:
    reader.insert_card(CARD)
    reader.pull_during_next_command(after_apply=True)

    with pytest.raises(CardRemoved):
        reader.credit_prepaid(CARD, 5000, 1, mac_for(CARD, 1, 1), terminal=TERMINAL, ref=ref(1))

    assert reader.card(CARD).purchase_counter == 0


def test_a_card_pulled_while_being_read_is_reported_removed(
    reader: SimulatedCardReader,
) -> None:
    reader.insert_card(CARD)
    reader.pull_during_next_read()

    with pytest.raises(CardRemoved, match="pulled out"):
        reader.read_prepaid()

    assert reader.read_prepaid() is None


def test_a_pull_armed_for_a_credit_lets_the_reads_before_it_through(
    reader: SimulatedCardReader,
) -> None:
    reader.insert_card(CARD)
    reader.pull_during_next_command(after_apply=True)

    assert reader.read_prepaid() is not None
    with pytest.raises(CardRemoved):
        credit(reader, 5000, 1)
    assert reader.card(CARD).purchase_counter == 1


def test_an_armed_pull_waits_for_a_command_that_reaches_a_card(
    reader: SimulatedCardReader,
) -> None:
    reader.pull_during_next_command(after_apply=False)
    with pytest.raises(CardRemoved, match="no card"):
        credit(reader, 5000, 1)  # no card: nothing to pull

    reader.insert_card(CARD)

    with pytest.raises(CardRemoved, match="pulled out"):
        credit(reader, 5000, 1)
    assert reader.card(CARD).purchase_counter == 0


def test_an_error_status_word_answers_the_next_command_only_and_changes_nothing(
    reader: SimulatedCardReader,
) -> None:
    reader.insert_card(CARD)
    reader.answer_error("6581")

    with pytest.raises(CardStatusError) as failed:
        credit(reader, 5000, 1)
    assert failed.value.status_word == "6581"
    assert reader.card(CARD).purchase_counter == 0

    credit(reader, 5000, 1)
    assert reader.card(CARD).purchase_counter == 1


def test_an_error_status_word_of_the_refusal_class_raises_card_refused(
    reader: SimulatedCardReader,
) -> None:
    reader.insert_card(CARD)
    reader.answer_error("6982")

    with pytest.raises(CardCommandRefused) as refused:
        reader.read_prepaid()

    assert refused.value.status_word == "6982"


@pytest.mark.parametrize("status_word", ["9000", "65", "zzzz", "65811"])
def test_the_bench_cannot_arm_a_status_word_that_is_not_an_error(
    reader: SimulatedCardReader, status_word: str
) -> None:
    with pytest.raises(ValueError):
        reader.answer_error(status_word)


def test_an_unplugged_reader_fails_every_command_and_cannot_say_if_a_card_is_in(
    reader: SimulatedCardReader,
) -> None:
    reader.insert_card(CARD)
    reader.unplug()

    with pytest.raises(CardError, match="^card reader not connected: "):
        reader.read_prepaid()
    with pytest.raises(CardError, match="^card reader not connected: "):
        credit(reader, 5000, 1)
    assert reader.health() == {
        "device": "card reader (simulated)",
        "connected": False,
        "card_present": None,
    }

    reader.replug()
    assert reader.read_prepaid() is not None


def test_a_card_without_the_prepaid_application_is_refused_with_6a82(
    reader: SimulatedCardReader,
) -> None:
    reader.insert_foreign_card()

    with pytest.raises(CardCommandRefused) as refused:
        reader.read_prepaid()
    assert refused.value.status_word == "6A82"
    with pytest.raises(CardRemoved):
        credit(reader, 5000, 1)
    assert reader.health()["card_present"] is True


def test_the_slot_an_armed_fault_and_the_cards_survive_a_killed_process(tmp_path: Path) -> None:
    state = tmp_path / "cards.sqlite"
    run_and_get_killed(
        f"""
        from pathlib import Path
        from drivers.smartcard.prepaid_mac import credit_mac
        from simulators.smartcard import SimulatedCardReader
        reader = SimulatedCardReader(Path({str(state)!r}))
        reader.create_card({CARD!r}, "gas", "77")
        reader.insert_card({CARD!r})
        reader.credit_prepaid(
            {CARD!r}, 3000, 1, credit_mac({CARD!r}, 1, 3000, "K-1", "R-1"),
            terminal="K-1", ref="R-1",
        )
        reader.pull_during_next_command(after_apply=True)
        """
    )

    reader = SimulatedCardReader(state)

    assert reader.card(CARD).balance_fen == 3000
    assert reader.card(CARD).last_load == CardLoad(1, 3000, "K-1", "R-1")
    with pytest.raises(CardRemoved):
        credit(reader, 1000, 2)
    assert reader.card(CARD).balance_fen == 4000
    assert [load.counter for load in reader.card(CARD).load_log] == [2, 1]
    reader.close()


def test_a_credit_returns_the_card_with_the_load_it_recorded(
    reader: SimulatedCardReader,
) -> None:
    reader.insert_card(CARD)

    card = credit(reader, 5000, 1)

    assert card.last_load == CardLoad(1, 5000, TERMINAL, ref(1))
    assert reader.read_prepaid() == card


def test_a_credit_authorised_for_another_terminal_or_reference_is_refused_with_6988(
    reader: SimulatedCardReader,
) -> None:
    reader.insert_card(CARD)
    mac = mac_for(CARD, 1, 5000)

    for terminal, to in (("K-0002", ref(1)), (TERMINAL, ref(9))):
        with pytest.raises(CardCommandRefused) as refused:
            reader.credit_prepaid(CARD, 5000, 1, mac, terminal=terminal, ref=to)
        assert refused.value.status_word == "6988"

    card = reader.read_prepaid()
    assert card is not None and (card.purchase_counter, card.last_load) == (0, None)


def test_a_card_pulled_before_the_write_and_topped_up_elsewhere_names_the_other_terminal(
    reader: SimulatedCardReader,
) -> None:
    reader.insert_card(CARD)
    reader.pull_during_next_command(after_apply=False)
    with pytest.raises(CardRemoved):
        credit(reader, 5000, 1)  # this kiosk's ¥50, never written

    elsewhere = reader.load_elsewhere(CARD, 3000, ref="GRID-01-20240501-0007")
    reader.insert_card(CARD)

    card = reader.read_prepaid()
    assert card == elsewhere
    assert card is not None and card.purchase_counter == 1  # the counter this kiosk expected
    assert card.last_load == CardLoad(1, 3000, "GRID-01", "GRID-01-20240501-0007")
    assert reader.card(CARD).balance_fen == 1200 + 3000
    with pytest.raises(CardCommandRefused) as refused:
        credit(reader, 5000, 1)  # the kiosk's credit for counter 1 can no longer be written
    assert refused.value.status_word == "6985"


def test_a_load_elsewhere_gets_a_fresh_reference_and_obeys_the_card(
    reader: SimulatedCardReader,
) -> None:
    first = reader.load_elsewhere(CARD, 1000)
    second = reader.load_elsewhere(CARD, 1000, terminal="GAS-OFFICE-7")

    assert first.last_load is not None and second.last_load is not None
    assert first.last_load.terminal == "GRID-01" and first.last_load.ref.startswith("GRID-01-")
    assert second.last_load.terminal == "GAS-OFFICE-7"
    assert first.last_load.ref != second.last_load.ref
    reader.block_card(CARD)
    with pytest.raises(CardCommandRefused, match="6983"):
        reader.load_elsewhere(CARD, 1000)
    with pytest.raises(ValueError, match="create it first"):
        reader.load_elsewhere("999", 1000)


def test_a_card_in_this_reader_cannot_be_loaded_elsewhere(reader: SimulatedCardReader) -> None:
    reader.insert_card(CARD)

    with pytest.raises(ValueError, match="remove it"):
        reader.load_elsewhere(CARD, 1000)

    assert reader.card(CARD).purchase_counter == 0


# ================================================================ printer


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[SimulatedPrinter]:
    printer = SimulatedPrinter(tmp_path / "paper")
    yield printer
    printer.close()


def simple_receipt(job_id: str = "R-0001/1") -> ReceiptDocument:
    return ReceiptDocument(
        job_id=job_id,
        lines=(
            ReceiptLine("Station 17", align="center"),
            ReceiptLine("缴费凭条", double=True, align="right"),
            ReceiptLine("Total ¥12.30"),
            ReceiptLine("Thank you"),
        ),
        qr_payload="K1:R-0001:MEUC",
        cut="full",
    )


def test_a_receipt_file_holds_the_laid_out_lines_then_the_qr_then_the_cut(
    printer: SimulatedPrinter,
) -> None:
    printer.print_receipt(simple_receipt())

    (path,) = printer.receipt_files("R-0001/1")
    assert path.name == "R-0001%2F1.txt"
    assert path.read_text(encoding="utf-8").splitlines() == [
        "           Station 17",
        " " * 16 + "缴费凭条",  # 4 CJK characters at double size: 16 columns
        "Total ¥12.30",
        "Thank you",
        "[QR] K1:R-0001:MEUC",
        "[CUT full]",
    ]


def test_printing_the_same_job_again_writes_a_second_file_marked_duplicate(
    printer: SimulatedPrinter,
) -> None:
    printer.print_receipt(simple_receipt())
    printer.print_receipt(simple_receipt("R-0002/1"))
    assert printer.duplicate_files() == []

    printer.print_receipt(simple_receipt())

    first, second = printer.printed_receipts("R-0001/1")
    assert not first.startswith("DUPLICATE")
    assert second.splitlines()[0] == "DUPLICATE print 2 of job R-0001/1"
    assert second.splitlines()[1:] == first.splitlines()
    assert [path.name for path in printer.duplicate_files()] == ["R-0001%2F1.2.txt"]
    assert printer.health()["jobs_printed"] == 2


def test_a_job_id_that_looks_like_a_duplicate_name_is_its_own_job(
    printer: SimulatedPrinter,
) -> None:
    for job_id in ("R.2", "R", "../R~1/2", "收据/1"):
        printer.print_receipt(simple_receipt(job_id))

    assert printer.printed_job_ids() == {"R.2", "R", "../R~1/2", "收据/1"}
    assert printer.duplicate_files() == []
    assert all(path.parent == printer.out_dir for path in printer.out_dir.iterdir())


def test_paper_running_out_mid_job_leaves_a_truncated_print_and_raises_paper_out(
    printer: SimulatedPrinter,
) -> None:
    printer.paper_out_mid_job()

    with pytest.raises(PaperOut, match="part-way"):
        printer.print_receipt(simple_receipt())

    (printed,) = printer.printed_receipts("R-0001/1")
    assert printed.splitlines() == [
        "           Station 17",
        " " * 16 + "缴费凭条",
        "TRUNCATED: the paper ran out during job R-0001/1",
    ]
    assert printer.status().paper_out is True


def test_a_job_retried_after_it_was_truncated_is_marked_duplicate(
    printer: SimulatedPrinter,
) -> None:
    printer.paper_out_mid_job()
    with pytest.raises(PaperOut):
        printer.print_receipt(simple_receipt())
    printer.restore()

    printer.print_receipt(simple_receipt())

    assert printer.printed_receipts("R-0001/1")[1].startswith("DUPLICATE")


def test_the_mid_job_fault_strikes_once(printer: SimulatedPrinter) -> None:
    printer.paper_out_mid_job()
    with pytest.raises(PaperOut):
        printer.print_receipt(simple_receipt())
    printer.restore()

    printer.print_receipt(simple_receipt("R-0002/1"))

    assert printer.printed_receipts("R-0002/1")[0].endswith("[CUT full]\n")


def test_a_printer_that_does_not_answer_reports_nothing_as_known(
    printer: SimulatedPrinter,
) -> None:
    printer.offline()

    assert printer.status() == PrinterStatus(online=None)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("paper_out", "^receipt printer is out of paper: load a 58 mm thermal roll"),
        ("cover_open", "^receipt printer cover is open: close it"),
        ("offline", "^receipt printer not answering: check its power"),
    ],
)
def test_each_printer_fault_raises_one_line_a_person_can_act_on(
    printer: SimulatedPrinter, fault: str, message: str
) -> None:
    getattr(printer, fault)()

    with pytest.raises(DeviceError, match=message) as caught:
        printer.print_receipt(simple_receipt())

    assert "\n" not in str(caught.value)
    assert "reprinted" in str(caught.value)


def test_an_80_mm_printer_lays_out_48_columns(tmp_path: Path) -> None:
    printer = SimulatedPrinter(tmp_path / "paper", columns=48)

    printer.print_receipt(simple_receipt())

    first_line = printer.printed_receipts("R-0001/1")[0].splitlines()[0]
    assert first_line == " " * 19 + "Station 17"
    assert printer.health()["paper_width_mm"] == 80
    printer.close()


def test_a_printer_refuses_a_paper_width_no_roll_has(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="32 \\(58 mm\\), 48 \\(80 mm\\)"):
        SimulatedPrinter(tmp_path / "paper", columns=40)


def test_the_paper_table_gives_columns_and_dots_for_both_rolls() -> None:
    assert [(p.width_mm, p.columns, p.dots) for p in PAPER_WIDTHS] == [(58, 32, 384), (80, 48, 576)]
    assert paper_for_width(80) == paper_for_columns(48)


def test_a_long_line_wraps_at_the_last_column_counting_cjk_as_two() -> None:
    rows = layout_line(ReceiptLine("地址" * 9 + "A"), columns=32)

    assert rows == ["地址" * 8, "地址A"]


def test_a_centered_double_size_line_is_padded_for_its_doubled_width() -> None:
    assert layout_line(ReceiptLine("AB", double=True, align="center"), 32) == [" " * 14 + "AB"]


@pytest.mark.parametrize(
    "document",
    [
        ReceiptDocument("R-1/1", (ReceiptLine("Total\x1b@"),)),
        ReceiptDocument("R-1/1", (ReceiptLine("Total", align="justify"),)),
        ReceiptDocument("R-1/1", (), cut="none"),
        ReceiptDocument("R-1/1", (), qr_payload="line\nbreak"),
        ReceiptDocument("R-1/1", (), qr_payload="x" * 1500),
        ReceiptDocument("", ()),
    ],
    ids=["control-character", "alignment", "cut", "qr-control-character", "qr-too-long", "no-id"],
)
def test_a_malformed_receipt_is_refused_and_nothing_is_printed(
    printer: SimulatedPrinter, document: ReceiptDocument
) -> None:
    with pytest.raises(ValueError):
        printer.print_receipt(document)

    assert list(printer.out_dir.glob("*.txt")) == []


def test_a_qr_payload_too_long_for_58_mm_fits_on_80_mm(tmp_path: Path) -> None:
    printer = SimulatedPrinter(tmp_path / "paper", columns=48)

    printer.print_receipt(ReceiptDocument("R-1/1", (), qr_payload="x" * 1500))

    assert len(printer.receipt_files("R-1/1")) == 1
    printer.close()


def test_health_names_the_paper_state_and_counts_jobs(printer: SimulatedPrinter) -> None:
    printer.print_receipt(simple_receipt())
    printer.paper_near_end()

    health = printer.health()

    assert (health["paper"], health["jobs_printed"], health["online"]) == ("near_end", 1, True)


def test_file_names_are_the_job_id_with_the_slash_escaped() -> None:
    assert receipt_file_stem("R20250301-0007/2") == "R20250301-0007%2F2"


def test_printed_paper_and_the_printer_state_survive_a_killed_process(tmp_path: Path) -> None:
    out_dir = tmp_path / "paper"
    run_and_get_killed(
        f"""
        from pathlib import Path
        from simulators.printer import SimulatedPrinter
        from kiosk.devices import ReceiptDocument, ReceiptLine
        printer = SimulatedPrinter(Path({str(out_dir)!r}))
        printer.print_receipt(ReceiptDocument("R-9/1", (ReceiptLine("paid"),)))
        printer.paper_near_end()
        (Path({str(out_dir)!r}) / ".R-8%2F1.txt.tmp").write_text("half written")
        """
    )

    printer = SimulatedPrinter(out_dir)

    assert printer.printed_job_ids() == {"R-9/1"}
    assert printer.status().paper_near_end is True
    assert not any(out_dir.glob(".*.tmp"))  # an interrupted write left no receipt behind
    printer.print_receipt(ReceiptDocument("R-9/1", (ReceiptLine("paid"),)))
    assert len(printer.duplicate_files()) == 1
    printer.close()


def test_two_simulators_on_one_state_see_the_same_printer(printer: SimulatedPrinter) -> None:
    other = SimulatedPrinter(printer.out_dir)

    other.cover_open()

    assert printer.status().cover_open is True
    other.close()


def test_the_simulators_write_nothing_outside_their_state_paths(tmp_path: Path) -> None:
    before = set(os.listdir(tmp_path))

    SimulatedCashAcceptor(tmp_path / "c" / "cash.sqlite").close()
    SimulatedCardReader(tmp_path / "r" / "cards.sqlite").close()
    SimulatedPrinter(tmp_path / "p").close()

    assert set(os.listdir(tmp_path)) - before == {"c", "r", "p"}
