"""The money screens of issues #16-#18 on the real app: a notice that keeps the payment, the
in-doubt result and the clock guard, unrecognised cash, the inlet limit, top-up confirmation,
service hours, claims by reprint code.

The app runs under Xvfb on the test terminal (simulated devices, the threaded platform
simulator), tapped through Kivy's touch pipeline (tests.ui_harness)."""

import dataclasses
from datetime import timedelta
from typing import Any

from kiosk.events import Event
from kiosk.runtime import RuntimeEvent
from tests.fixtures.engine_hook import engine_of


def topup_to_cash(ui: Any, number: str = "13800138000", amount: str = "amount-2000") -> None:
    ui.wait_screen("idle")
    ui.phone_topup_to_cash(number, amount)


def insert(rig: Any, ui: Any, value_fen: int) -> None:
    before = ui.controller.resident.cash_inserted_fen
    rig.sims.cash.insert("note", value_fen)
    ui.wait_for(
        lambda: ui.controller.resident.cash_inserted_fen > before or ui.controller.screen != "cash",
        "the note to be counted",
    )


def shown(ui: Any, fragment: str) -> bool:
    return any(fragment in text for text in ui.texts())


def test_a_board_link_error_while_collecting_keeps_the_payment_and_ok_cancels_it_to_a_voucher(
    terminal_rig: Any, ui_harness: Any
) -> None:
    rig = terminal_rig
    ui = ui_harness(rig.terminal, language="en")
    topup_to_cash(ui, amount="amount-5000")
    tx_id = ui.controller.journey.progress.tx_id

    def link_fails_after_the_note(event: Event) -> None:
        # On the terminal's thread, right after the note was journaled: the acceptor's link
        # goes down before the screen asks for the cash taken in.
        if event.kind == RuntimeEvent.CASH_COUNTED:
            rig.sims.cash.fail_next_host_calls(1000)

    rig.terminal.events.subscribe(link_fails_after_the_note)
    rig.sims.cash.insert("note", 20_00)
    ui.wait_screen("notice")
    assert ui.controller.journey.progress is not None  # the transaction is kept
    assert ui.find("ok").text == "OK: cancel the payment"
    assert shown(ui, "Your payment is still open: OK cancels it")
    ui.tap("ok")
    ui.wait_screen("result")
    rig.sims.cash.stop_failing_host_calls()
    [close] = rig.closes()
    assert (close["tx_id"], close["outcome"], close["voucher_fen"]) == (tx_id, "cancelled", 20_00)
    assert shown(ui, "Voucher printed: ¥20.00")
    assert engine_of(rig.terminal).store.open_transactions() == []


def test_a_payment_in_doubt_shows_the_interim_slips_codes_and_never_a_receipt_number(
    terminal_rig: Any, ui_harness: Any
) -> None:
    rig = terminal_rig
    ui = ui_harness(rig.terminal, language="en")
    topup_to_cash(ui)
    rig.platform.set_faults(["post:alter_amount", "status:alter_amount"])
    insert(rig, ui, 20_00)
    ui.wait_screen("in_doubt")
    outcome = ui.controller.journey.outcome
    assert outcome.outcome == "in_doubt" and outcome.receipt_no is None and outcome.printed
    for fragment in (
        outcome.tx_id,
        outcome.token,
        "¥20.00",
        "The result is settled automatically: do not pay again.",
        "An interim slip with these codes was printed",
    ):
        assert shown(ui, fragment), fragment
    assert not shown(ui, "Receipt number")
    assert outcome.token in rig.last_paper()  # what the screen says is what the slip says
    rig.platform.clear_faults()
    ui.tap("done")
    ui.wait_screen("rating")  # a rating after a payment in doubt too


def test_an_unprinted_interim_slip_tells_the_resident_to_write_the_codes_down(
    terminal_rig: Any, ui_harness: Any
) -> None:
    rig = terminal_rig
    ui = ui_harness(rig.terminal)
    topup_to_cash(ui)
    rig.platform.set_faults(["post:alter_amount", "status:alter_amount"])
    rig.sims.printer.paper_out()
    insert(rig, ui, 20_00)
    ui.wait_screen("in_doubt")
    assert not ui.controller.journey.outcome.printed
    assert shown(ui, "临时凭条未能打印，请记下交易参考号和查询码")
    rig.platform.clear_faults()
    rig.sims.printer.restore()


def test_a_wrong_clock_stops_the_payment_and_its_cancel_ends_on_the_interim_slip_screen(
    terminal_rig: Any, ui_harness: Any
) -> None:
    rig = terminal_rig
    ui = ui_harness(rig.terminal, language="en")
    topup_to_cash(ui, amount="amount-5000")
    insert(rig, ui, 20_00)
    rig.clock.advance(timedelta(minutes=-10))  # behind the journal: the clock cannot be trusted
    insert(rig, ui, 50_00)  # covers it: finishing is refused while the clock is wrong
    ui.wait_screen("notice")
    ui.tap("ok")
    ui.wait_screen("in_doubt")
    assert ui.controller.journey.clock_wrong
    assert shown(ui, "The terminal's clock is wrong: the payment cannot be closed now.")
    assert engine_of(rig.terminal).store.open_transactions()  # closed once the clock is right
    ui.tap("done")
    ui.wait_screen("rating")
    ui.tap("skip")
    ui.wait_screen("out_of_service")  # the clock is a fault like the others
    ui.wait_for(lambda: shown(ui, "The terminal's clock is wrong"), "the clock reason")


def test_unrecognised_cash_is_explained_on_the_cash_screen_and_cancel_vouchers_the_rest(
    terminal_rig: Any, ui_harness: Any
) -> None:
    rig = terminal_rig
    ui = ui_harness(rig.terminal, language="en")
    topup_to_cash(ui, amount="amount-5000")
    insert(rig, ui, 20_00)
    rig.sims.cash.insert_unrecognised("note")
    ui.wait_for(
        lambda: ui.controller.journey.progress.suspense > 0, "the unrecognised item on screen"
    )
    ui.pump(2)
    assert shown(ui, "could not be recognised") and shown(ui, "The cash inlets are closed now.")
    assert "finish" not in ui.action_ids()  # not covered: only cancel is offered
    assert "claim" in rig.last_paper().lower() or rig.last_paper()  # the claim slip came out
    assert rig.records_of("cash_suspense")
    ui.tap("cancel")
    ui.wait_screen("result")
    [close] = rig.closes()
    assert (close["outcome"], close["voucher_fen"]) == ("cancelled", 20_00)


def test_the_cash_screen_names_the_largest_note_the_inlets_take_now(
    terminal_rig: Any, ui_harness: Any
) -> None:
    rig = terminal_rig
    ui = ui_harness(rig.terminal)
    topup_to_cash(ui, amount="amount-2000")
    insert(rig, ui, 5_00)  # 15 yuan due: a 20-yuan note covers it
    ui.wait_for(lambda: shown(ui, "请投入不超过¥20.00的纸币或硬币"), "the inlet limit")


def test_a_mistyped_phone_number_is_corrected_on_the_top_up_confirmation(
    terminal_rig: Any, ui_harness: Any
) -> None:
    rig = terminal_rig
    ui = ui_harness(rig.terminal, language="en")
    ui.wait_screen("idle")
    ui.tap("start")
    ui.wait_screen("menu")
    ui.tap("service-mobile-topup")
    ui.wait_screen("account")
    ui.type_digits("13800138001")
    ui.tap("confirm")
    ui.wait_screen("amount")
    ui.tap("amount-3000")
    ui.wait_screen("topup_confirm")
    assert shown(ui, "138 0013 8001") and shown(ui, "Total to pay: ¥30.00")
    assert rig.closes() == [] and engine_of(rig.terminal).store.open_transactions() == []
    ui.tap("change-number")
    ui.wait_screen("account")
    assert ui.controller.journey.digits == "13800138001"  # as typed, to correct one digit
    ui.tap("key-delete")
    ui.type_digits("0")
    ui.tap("confirm")
    ui.wait_screen("amount")
    ui.tap("amount-3000")
    ui.wait_screen("topup_confirm")
    assert shown(ui, "138 0013 8000")
    ui.tap("pay")
    ui.wait_screen("pay_method")  # cash, or scan to pay
    ui.tap("pay-cash")
    ui.wait_screen("cash")
    [opened] = rig.records_of("tx_open")
    assert opened["account_masked"].endswith("8000")


def test_outside_service_hours_the_cash_screen_says_nobody_pays_a_voucher_out(
    terminal_rig: Any, ui_harness: Any
) -> None:
    rig = terminal_rig
    config = rig.terminal.config
    # The rig's clock is 10:00: hours from noon leave the station unstaffed now.
    rig.terminal.config = dataclasses.replace(
        config, station=dataclasses.replace(config.station, service_hours="12:00-20:00")
    )
    ui = ui_harness(rig.terminal, language="en")
    topup_to_cash(ui)
    assert shown(ui, "Outside service hours (12:00-20:00): nobody can pay a voucher out")
    insert(rig, ui, 20_00)  # the payment may still proceed
    ui.wait_screen("result")


def test_a_result_settled_while_the_resident_was_away_is_collected_whole_with_the_code(
    terminal_rig: Any, ui_harness: Any
) -> None:
    rig = terminal_rig
    ui = ui_harness(rig.terminal, language="en")
    topup_to_cash(ui)
    rig.platform.set_faults(["post:alter_amount", "status:alter_amount"])
    insert(rig, ui, 20_00)
    ui.wait_screen("in_doubt")
    token = ui.controller.journey.outcome.token
    ui.tap("done")
    ui.wait_screen("rating")
    ui.tap("skip")
    ui.wait_screen("idle")
    rig.platform.clear_faults()
    rig.clock.advance(timedelta(minutes=1))  # the in-doubt retry falls due
    ui.wait_for(lambda: bool(rig.closes()), "housekeeping to settle the payment", timeout=30)
    assert rig.closes()[0]["awaiting_claim"] is True
    ui.tap("start")
    ui.wait_screen("menu")
    assert "Reprint or collect a receipt" in ui.find("service-reprint").text
    ui.tap("service-reprint")
    ui.wait_screen("reprint")
    ui.type_digits("1234")
    ui.tap("confirm")
    ui.pump(2)
    assert "8 digits" in ui.controller.journey.error  # never sent to the core
    ui.tap("key-clear")
    ui.type_digits(token)
    ui.tap("confirm")
    ui.wait_screen("reprinted")
    assert rig.records_of("receipt_claimed")  # the original, not a copy
    assert "COPY" not in rig.last_paper().upper()
