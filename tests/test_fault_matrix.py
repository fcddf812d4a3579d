"""The fault matrix: each device fault against a whole terminal on real drivers and stacks.

Every test injects one fault into the station of tests/fixtures/real_station.py (the ESC/POS
printer on a pty, pcscd with vpcd cards, the I/O board firmware on a pty, a SoftHSM2 token,
the platform simulator), asserts how the terminal core reacts (refuse, pause, resume,
reprint), and ends with RealStation.assert_nothing_lost(): no cash event, journal record or
receipt lost, nothing posted twice, the journal verified with the token's certificate.
docs/fault-matrix.md is the table of these rows.
"""

import pytest

from kiosk.availability import (
    CASH_OFFLINE,
    PRINTER_COVER_OPEN,
    PRINTER_OFFLINE,
    PRINTER_PAPER_OUT,
    READER_MISSING,
    service_availability,
    snapshot_of,
)
from kiosk.board_supervisor import MaintenanceRequired
from kiosk.devices import CardError, DeviceError, TechnicianPinWrong
from kiosk.signing import WrongPin
from kiosk.transactions.engine import NotEnoughCash, PaymentRefused
from kiosk.transactions.outcomes import Outcome
from simulators.ioboard_board import CashHandedBack
from station.composition import build_terminal
from tests.fixtures.engine_hook import engine_of
from tests.fixtures.real_station import (
    TECHNICIAN_CARD,
    TECHNICIAN_ID,
    TECHNICIAN_PIN,
    RealStation,
    wait_for,
)

pytestmark = pytest.mark.softhsm


def unavailable_because(station: RealStation, code: str) -> tuple[str, ...]:
    """Why the core's availability rules refuse service `code` now (empty: offered)."""
    services = service_availability(station.terminal.catalog(), snapshot_of(station.terminal))
    return services[code].reasons


def printer_unavailable(station: RealStation, code: str) -> bool:
    """The core's availability rules refuse service `code` because of the printer."""
    printer_reasons = {PRINTER_PAPER_OUT, PRINTER_COVER_OPEN, PRINTER_OFFLINE}
    return bool(printer_reasons & set(unavailable_because(station, code)))


def lamp(station: RealStation) -> str:
    status = station.terminal.board_status()
    assert status is not None and status.link_up
    return status.lamp


def paid_phone_topup(station: RealStation, amount_fen: int = 10_00) -> str:
    """A top-up paid in 10-yuan notes and closed; returns its receipt number."""
    progress = station.phone_topup(amount_fen)
    station.pay_in(progress.tx_id, *[10_00] * (amount_fen // 10_00))
    outcome = station.terminal.finish(progress.tx_id)
    assert outcome.outcome == "paid" and outcome.receipt_no is not None
    return outcome.receipt_no


def assert_printed_when_claimed(station: RealStation, outcome: Outcome) -> None:
    """A receipt that never printed whole is printed whole, as the original, when the
    resident claims it with the reprint code on... the screen (it showed the code); asked
    again, it comes out as a marked copy."""
    assert outcome.receipt_no is not None and outcome.token is not None
    receipt_no = outcome.receipt_no
    assert station.terminal.reprint(outcome.token) == (True, None)
    [original] = [r for r in station.prints_of(receipt_no, copy_no=0) if not r.truncated]
    assert receipt_no in original.text and "COPY" not in original.text
    assert station.terminal.reprint_by_number(receipt_no, by="T-1") == (True, None)
    [copy] = [r for r in station.prints_of(receipt_no, copy_no=1) if not r.truncated]
    assert "COPY 1" in copy.text and receipt_no in copy.text


# ---------------------------------------------------------------- receipt printer


def test_paper_out_before_a_payment_takes_money_services_off_and_loses_no_receipt(
    station_terminal: RealStation,
) -> None:
    station = station_terminal
    station.printer.paper_out()
    # The core's rule: a money service needs a printer (cash it cannot pay out leaves as a
    # printed voucher), so no payment is offered; the lamp asks for attention.
    for code in ("mobile-topup", "water-bill", "power-card", "reprint"):
        assert printer_unavailable(station, code)
    assert station.terminal.service_state() == "attention"
    station.terminal.tick()
    assert lamp(station) == "attention"
    # A payment started anyway (the screen raced the paper) is closed, and its receipt,
    # refused by the printer before a byte, stays reprintable once paper is loaded.
    progress = station.phone_topup(10_00)
    station.pay_in(progress.tx_id, 10_00)
    outcome = station.terminal.finish(progress.tx_id)
    assert outcome.outcome == "paid" and not outcome.printed
    assert outcome.print_problem is not None and "out of paper" in outcome.print_problem
    assert outcome.receipt_no is not None and station.prints_of(outcome.receipt_no) == []
    station.printer.restore()
    assert unavailable_because(station, "mobile-topup") == ()
    assert_printed_when_claimed(station, outcome)
    station.assert_nothing_lost()


def test_paper_out_in_the_middle_of_a_receipt_keeps_it_reprintable_by_number_marked(
    station_terminal: RealStation,
) -> None:
    station = station_terminal
    progress = station.phone_topup(20_00)
    station.pay_in(progress.tx_id, 10_00, 10_00)
    station.printer.paper_out_mid_job(4)
    outcome = station.terminal.finish(progress.tx_id)
    assert outcome.outcome == "paid" and not outcome.printed
    assert outcome.print_problem is not None and "part-way" in outcome.print_problem
    assert outcome.receipt_no is not None
    # What came out is a fragment, without the job line or cut of a whole receipt.
    [fragment] = station.new_receipts()
    assert fragment.truncated and "PAPER RAN OUT" in fragment.text
    assert station.prints_of(outcome.receipt_no) == []
    assert printer_unavailable(station, "mobile-topup")
    station.printer.restore()
    assert_printed_when_claimed(station, outcome)
    station.assert_nothing_lost()


def test_cover_open_during_a_payment_leaves_the_receipt_reprintable(
    station_terminal: RealStation,
) -> None:
    station = station_terminal
    progress = station.phone_topup(10_00)
    station.pay_in(progress.tx_id, 10_00)
    station.printer.cover_open()
    outcome = station.terminal.finish(progress.tx_id)
    assert outcome.outcome == "paid" and not outcome.printed
    assert outcome.print_problem is not None and "cover is open" in outcome.print_problem
    assert printer_unavailable(station, "mobile-topup")
    assert station.terminal.service_state() == "attention"
    station.printer.restore()
    assert outcome.receipt_no is not None
    assert_printed_when_claimed(station, outcome)
    station.assert_nothing_lost()


@pytest.mark.parametrize("fault", ["unplugged", "switched off"])
def test_a_printer_unplugged_or_off_recovers_when_back_without_a_restart(
    station_terminal: RealStation, fault: str
) -> None:
    station = station_terminal
    printer = engine_of(station.terminal).printer
    progress = station.phone_topup(10_00)
    station.pay_in(progress.tx_id, 10_00)
    if fault == "unplugged":
        station.printer.unplug()
    else:
        station.printer.offline()
    assert printer.status().online is None  # unknown, never "paper OK"
    assert PRINTER_OFFLINE in unavailable_because(station, "mobile-topup")
    outcome = station.terminal.finish(progress.tx_id)
    assert outcome.outcome == "paid" and not outcome.printed and outcome.print_problem
    station.printer.restore()  # plugged back in and powered on
    # The same driver object of the same running terminal finds the printer again.
    wait_for(lambda: printer.status().ready, "see the printer ready again")
    assert printer is engine_of(station.terminal).printer
    assert unavailable_because(station, "mobile-topup") == ()
    assert outcome.receipt_no is not None
    assert_printed_when_claimed(station, outcome)
    paid_phone_topup(station)  # and the next resident's receipt prints as usual
    station.assert_nothing_lost()


def test_garbage_on_the_printer_line_is_skipped_and_receipts_print(
    station_terminal: RealStation,
) -> None:
    station = station_terminal
    station.printer.noisy(True)
    station.printer.send_noise()
    receipt_no = paid_phone_topup(station)
    row = engine_of(station.terminal).closed_by_receipt(receipt_no)
    assert row is not None and row.printed
    [page] = station.prints_of(receipt_no)
    assert not page.truncated and "REPRINT" not in page.text
    health = engine_of(station.terminal).printer.health()
    assert int(health["noise_bytes"]) > 0 and health["paper"] == "ok"  # type: ignore[call-overload]
    station.assert_nothing_lost()


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("paper_out", PRINTER_PAPER_OUT), ("cover_open", PRINTER_COVER_OPEN)],
    ids=["paper-out", "cover-open"],
)
def test_a_stopped_printer_is_reported_with_what_to_fix(
    station_terminal: RealStation, fault: str, reason: str
) -> None:
    getattr(station_terminal.printer, fault)()
    assert unavailable_because(station_terminal, "mobile-topup") == (reason,)


# ---------------------------------------------------------------- card reader


@pytest.mark.parametrize("after_apply", [False, True], ids=["before-apply", "after-apply"])
def test_a_card_pulled_mid_credit_stays_pending_and_is_written_once_when_it_returns(
    station_terminal: RealStation, after_apply: bool
) -> None:
    station = station_terminal
    card_no = station.issue_power_card(seed=101 + int(after_apply))
    station.insert_card(card_no)
    progress = station.terminal.start_card_topup("power-card", 50_00)
    station.pay_in(progress.tx_id, 50_00)
    station.cards.pull_during_next_command(after_apply=after_apply)
    outcome = station.terminal.finish(progress.tx_id)
    assert outcome.outcome == "paid" and outcome.card_credit == "pending"
    assert outcome.record is not None and outcome.record["card_credit"] == "pending"
    assert station.cards.prepaid(card_no).purchase_counter == int(after_apply)
    station.pcscd.wait_for_empty_reader()

    station.insert_card(card_no)
    card = station.terminal.read_card()  # finishes the credit still owed to this card
    assert card is not None and card.purchase_counter == 1 and card.last_credit_fen == 50_00
    assert station.terminal.card_inserted() == []  # never twice
    [written] = station.journal("card_credit_written")
    assert written["tx_id"] == progress.tx_id and written["found_applied"] is after_apply
    assert station.cards.prepaid(card_no).purchase_counter == 1
    station.remove_card()
    station.assert_nothing_lost()


def test_a_stopped_pcscd_makes_card_top_up_unavailable_until_it_is_back(
    station_terminal: RealStation,
) -> None:
    station = station_terminal
    card_no = station.issue_power_card(seed=103)
    station.insert_card(card_no)  # the resident's card stays in the reader throughout
    station.pcscd.stop()  # the reader is gone as far as the terminal can tell
    health = station.terminal.device_health()["card_reader"]
    assert health["connected"] is False and health["card_present"] is None
    assert READER_MISSING in unavailable_because(station, "power-card")
    assert unavailable_because(station, "mobile-topup") == ()  # the rest still works
    with pytest.raises(CardError):
        station.terminal.start_card_topup("power-card", 50_00)
    assert station.journal("tx_open") == []  # refused before anything was opened

    station.pcscd.start()
    wait_for(
        lambda: station.terminal.device_health()["card_reader"]["connected"] is True,
        "see the reader again through the same driver",
    )
    assert unavailable_because(station, "power-card") == ()
    wait_for(station.card_present, "see the card that stayed in the reader")
    progress = station.terminal.start_card_topup("power-card", 50_00)
    station.pay_in(progress.tx_id, 50_00)
    outcome = station.terminal.finish(progress.tx_id)
    assert outcome.outcome == "paid" and outcome.card_credit == "written"
    assert station.cards.prepaid(card_no).purchase_counter == 1
    station.remove_card()
    station.assert_nothing_lost()


def test_a_card_answering_an_error_status_word_is_refused_or_credited_later_once(
    station_terminal: RealStation,
) -> None:
    station = station_terminal
    card_no = station.issue_power_card(seed=104)
    station.insert_card(card_no)
    # 6581 (memory failure) to the read before a top-up: refused, nothing opened.
    station.cards.answer_error("6581")
    with pytest.raises(CardError, match="6581"):
        station.terminal.start_card_topup("power-card", 50_00)
    assert station.journal("tx_open") == []
    # 6581 while the paid credit is being written: the credit stays pending.
    progress = station.terminal.start_card_topup("power-card", 50_00)
    station.pay_in(progress.tx_id, 50_00)
    station.cards.answer_error("6581")
    outcome = station.terminal.finish(progress.tx_id)
    assert outcome.outcome == "paid" and outcome.card_credit == "pending"
    assert station.cards.prepaid(card_no).purchase_counter == 0
    card = station.terminal.read_card()  # the card answers again: the credit is written
    assert card is not None and card.purchase_counter == 1
    assert station.terminal.card_inserted() == []
    assert len(station.journal("card_credit_written")) == 1
    station.remove_card()
    station.assert_nothing_lost()


# ---------------------------------------------------------------- USBKey token


def test_a_token_removed_between_two_signatures_stops_payments_until_it_returns(
    station_terminal: RealStation,
) -> None:
    station = station_terminal
    first = paid_phone_topup(station)
    first_close = station.terminal.journal.by_receipt(first)
    assert first_close is not None and "sig" in first_close
    progress = station.phone_topup(10_00)
    station.pay_in(progress.tx_id, 10_00)
    station.remove_token()
    # The posting is signed too, so nothing reaches the platform: the payment under way
    # closes with a voucher for its cash, its record marked "signature device failed".
    outcome = station.terminal.finish(progress.tx_id)
    assert outcome.outcome == "failed" and outcome.voucher_fen == 10_00 and outcome.printed
    assert outcome.record is not None and outcome.record.get("sig_failed") is True
    assert "sig" not in outcome.record
    with pytest.raises(PaymentRefused, match="signature device"):
        station.phone_topup(10_00)
    station.terminal.tick()
    assert station.terminal.journal.last_of_type("signature_recovered") is None
    assert lamp(station) == "out_of_service"

    station.return_token()
    station.terminal.tick()  # housekeeping, no customer needed, no restart
    station.terminal.tick()  # the lamp follows on the next tick (board before signer)
    recovered = station.terminal.journal.last_of_type("signature_recovered")
    assert recovered is not None and "sig" in recovered
    assert recovered["first_seq"] <= outcome.record["seq"] <= recovered["last_seq"]
    assert lamp(station) == "in_service"
    paid_phone_topup(station)
    station.assert_nothing_lost()


def test_a_token_pulled_while_idle_refuses_the_next_payment_naming_the_token(
    station_terminal: RealStation,
) -> None:
    station = station_terminal
    station.remove_token()
    with pytest.raises(PaymentRefused) as refused:
        station.phone_topup(10_00)
    [close] = station.journal("tx_close")
    assert close["outcome"] == "refused" and close.get("sig_failed") is True
    station.return_token()
    station.terminal.tick()
    station.assert_nothing_lost()
    assert "signature device" in str(refused.value), str(refused.value)
    assert "platform" not in str(close["reason"]), close["reason"]


def test_a_wrong_token_pin_stops_the_terminal_at_start_naming_the_pin_source(
    station_terminal: RealStation,
) -> None:
    station = station_terminal
    wrong = station.directory / "wrong.pin"
    wrong.write_text("135791\n")
    wrong.chmod(0o600)
    config = station.terminal_config(station.directory / "wrong-pin-terminal", wrong)
    with pytest.raises(WrongPin) as refused:
        build_terminal(config)
    assert "135791" not in str(refused.value) and "token.pin_source" in str(refused.value)
    # The running terminal, logged in with the right PIN, keeps signing.
    receipt_no = paid_phone_topup(station)
    close = station.terminal.journal.by_receipt(receipt_no)
    assert close is not None and "sig" in close
    station.assert_nothing_lost()


def test_a_token_pin_changed_under_the_running_terminal_is_never_retried_until_corrected(
    station_terminal: RealStation,
) -> None:
    station = station_terminal
    old_pin, new_pin = station.token.user_pin, "864200"
    paid_phone_topup(station)
    station.change_token_pin(old_pin, new_pin)
    try:
        # The token refuses the terminal's PIN: no payment starts (the first attempt is
        # refused when its float hold cannot be signed; it took no cash).
        with pytest.raises(PaymentRefused):
            station.phone_topup(10_00)
        with pytest.raises(PaymentRefused, match="signature device"):
            station.phone_topup(10_00)
        signer = station.terminal.signer
        assert "refused the user PIN" in str(signer.health()["last_error"])
        station.terminal.tick()  # never tried again: each try would count down a real token
        assert station.terminal.journal.last_of_type("signature_recovered") is None
        assert lamp(station) == "out_of_service"

        # A technician corrects the PIN source and restarts the terminal software.
        corrected = station.directory / "corrected.pin"
        corrected.write_text(new_pin + "\n")
        corrected.chmod(0o600)
        station.restart_terminal(corrected)
        recovered = station.terminal.journal.last_of_type("signature_recovered")
        assert recovered is not None and "sig" in recovered
        paid_phone_topup(station)
        station.assert_nothing_lost()
    finally:
        station.change_token_pin(new_pin, old_pin)


# ---------------------------------------------------------------- I/O board


def test_notes_counted_while_the_board_link_is_pulled_are_taken_once_after_reconnect(
    station_terminal: RealStation,
) -> None:
    station = station_terminal
    progress = station.phone_topup(50_00)
    station.pay_in(progress.tx_id, 20_00)
    station.board.pull_link()
    station.insert_cash("note", 20_00)  # the board counts on, keeping them on its flash
    station.insert_cash("note", 10_00)
    assert station.terminal.collect(progress.tx_id).cash_in_fen == 20_00
    assert CASH_OFFLINE in unavailable_because(station, "mobile-topup")
    with pytest.raises(NotEnoughCash):
        station.terminal.finish(progress.tx_id)  # not paid in full as far as it knows
    station.board.plug_link()
    wait_for(
        lambda: station.terminal.collect(progress.tx_id).cash_in_fen == 50_00,
        "take in the notes counted while the link was down",
    )
    assert station.terminal.collect(progress.tx_id).cash_in_fen == 50_00  # not doubled
    outcome = station.terminal.finish(progress.tx_id)
    assert outcome.outcome == "paid" and outcome.printed
    station.assert_nothing_lost()


def test_a_board_restart_mid_payment_loses_no_counted_note_and_is_journaled(
    station_terminal: RealStation,
) -> None:
    station = station_terminal
    progress = station.phone_topup(30_00)
    station.pay_in(progress.tx_id, 20_00)
    station.insert_cash("note", 10_00)  # counted on the board's flash, not yet taken in
    station.board.restart_board()
    assert station.terminal.collect(progress.tx_id).cash_in_fen == 30_00
    station.terminal.tick()
    assert [r["kind"] for r in station.journal("board_event")] == ["board_restart"]
    outcome = station.terminal.finish(progress.tx_id)
    assert outcome.outcome == "paid" and outcome.printed
    station.assert_nothing_lost()


def test_after_a_board_restart_mid_payment_the_inlets_reopen_for_the_rest(
    station_terminal: RealStation,
) -> None:
    station = station_terminal
    progress = station.phone_topup(30_00)
    station.pay_in(progress.tx_id, 10_00)
    station.board.restart_board()
    station.terminal.tick()
    assert station.terminal.collect(progress.tx_id).cash_in_fen == 10_00
    try:
        station.insert_cash("note", 20_00)  # CashHandedBack while the inlets stay closed
        assert station.terminal.collect(progress.tx_id).cash_in_fen == 30_00
    finally:
        station.terminal.cancel(progress.tx_id)
        station.assert_nothing_lost()


def test_a_tamper_alarm_takes_the_terminal_out_of_service_until_a_technician_clears_it(
    station_terminal: RealStation,
) -> None:
    station = station_terminal
    terminal = station.terminal
    station.board.open_enclosure()
    terminal.tick()
    [tamper] = station.journal("board_event")
    assert tamper["kind"] == "tamper"
    assert terminal.service_state() == "out_of_service" and lamp(station) == "out_of_service"
    with pytest.raises(PaymentRefused, match="tamper"):
        station.phone_topup(10_00)
    with pytest.raises(MaintenanceRequired):
        terminal.clear_tamper()

    station.insert_card(TECHNICIAN_CARD)
    with pytest.raises(TechnicianPinWrong):
        terminal.technician_login("0000")
    assert station.journal("technician_refused")
    assert terminal.technician_login(TECHNICIAN_PIN) == TECHNICIAN_ID
    assert lamp(station) == "maintenance"
    with pytest.raises(DeviceError):
        terminal.clear_tamper()  # the board refuses while the enclosure is still open
    assert terminal.board.tamper_latched
    station.board.close_enclosure()
    terminal.clear_tamper()
    with pytest.raises(PaymentRefused, match="maintenance"):
        station.phone_topup(10_00)  # not while the technician is still at work
    terminal.leave_maintenance()
    station.remove_card()
    assert not terminal.board.tamper_latched and station.journal("tamper_cleared")
    terminal.tick()
    assert terminal.service_state() == "in_service" and lamp(station) == "in_service"
    paid_phone_topup(station)
    station.assert_nothing_lost()


def test_a_door_opened_and_closed_is_journaled_once_each(station_terminal: RealStation) -> None:
    station = station_terminal
    station.board.open_door()
    station.terminal.tick()
    station.terminal.tick()  # asked again: the board's event is journaled only once
    status = station.terminal.board_status()
    assert status is not None and status.door_open is True
    station.board.close_door()
    station.terminal.tick()
    kinds = [r["kind"] for r in station.journal("board_event")]
    assert kinds == ["door_open", "door_closed"]
    paid_phone_topup(station)
    station.assert_nothing_lost()


# ---------------------------------------------------------------- operator platform


@pytest.mark.parametrize(
    ("post_fault", "settled_as"),
    [("timeout_after_commit", "paid"), ("timeout_before", "failed")],
    ids=["committed-unanswered", "never-arrived"],
)
def test_a_platform_unreachable_during_posting_is_settled_later_never_posted_twice(
    station_terminal: RealStation, post_fault: str, settled_as: str
) -> None:
    station = station_terminal
    progress = station.phone_topup(10_00)
    station.pay_in(progress.tx_id, 10_00)
    # Longer than the client's 2 s timeout: the posting's outcome is unknown to the terminal.
    station.platform.set_faults([f"post:{post_fault}:sleep_ms=3000", "status:error"])
    outcome = station.terminal.finish(progress.tx_id)
    assert outcome.outcome == "in_doubt"
    with pytest.raises(PaymentRefused, match="still open"):
        station.phone_topup(10_00)
    station.terminal.tick()  # still unreachable: stays in doubt, nothing sent blindly
    assert station.journal("tx_close") == []

    station.platform.clear_faults()
    # Housekeeping asks again once the retry falls due (10 s later); the test asks now.
    engine = engine_of(station.terminal)
    engine.advance(engine.store.get(progress.tx_id), ask_now=True)
    [close] = station.journal("tx_close")
    assert close["tx_id"] == progress.tx_id and close["outcome"] == settled_as
    if settled_as == "failed":
        assert close["voucher_fen"] == 10_00
    # Settled in the resident's absence: not printed into an empty tray, kept for a claim.
    assert close["awaiting_claim"] is True
    assert not engine.store.get(progress.tx_id).printed
    assert outcome.token is not None
    assert station.terminal.reprint(outcome.token) == (True, None)
    assert engine.store.get(progress.tx_id).printed
    station.assert_nothing_lost()


def test_cash_handed_back_is_the_harness_refusing_closed_inlets(
    station_terminal: RealStation,
) -> None:
    # The premise of the board rows: with no payment open, the inlets are closed and a
    # note is handed back uncounted, so every counted note belongs to a payment.
    with pytest.raises(CashHandedBack):
        station_terminal.insert_cash("note", 10_00)
    station_terminal.assert_nothing_lost()
