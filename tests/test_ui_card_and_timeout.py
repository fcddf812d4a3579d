"""Prepaid card top-up with the card pulled mid-credit, the idle timeout, out of service."""

import random
from typing import Any

from kiosk.catalog.sample_accounts import valid_account


def test_a_card_pulled_while_written_is_finished_when_the_same_card_comes_back(
    terminal_rig: Any, ui_harness: Any
) -> None:
    cards = terminal_rig.sims.cards
    service = terminal_rig.terminal.catalog().service("power-card")
    card_no = valid_account(service, random.Random(7))
    cards.create_card(card_no, "electricity", "M000042")
    ui = ui_harness(terminal_rig.terminal)
    ui.wait_screen("idle")
    ui.tap("start")
    ui.wait_screen("menu")
    ui.tap("service-power-card")
    ui.wait_screen("card_insert")
    cards.insert_card(card_no)
    ui.wait_screen("amount")
    assert any(card_no[-4:] in text for text in ui.texts())
    ui.tap("amount-10000")
    ui.wait_screen("topup_confirm")
    ui.tap("pay")
    ui.wait_screen("pay_method")  # cash, or scan to pay
    ui.tap("pay-cash")
    ui.wait_screen("cash")
    cards.pull_during_next_command(after_apply=False)
    terminal_rig.sims.cash.insert("note", 100_00)
    ui.wait_screen("card_reinsert")
    assert cards.card(card_no).purchase_counter == 0
    cards.insert_card(card_no)
    ui.wait_screen("result")
    assert ui.controller.journey.outcome.card_credit == "written"
    assert cards.card(card_no).purchase_counter == 1
    types = terminal_rig.journal_types()
    assert "card_credit_written" in types and types.count("tx_close") == 1


def test_the_idle_timeout_counts_down_and_clears_everything_typed(
    terminal_rig: Any, ui_harness: Any
) -> None:
    ui = ui_harness(terminal_rig.terminal, idle_timeout_s=4.0, countdown_s=3.0)
    ui.wait_screen("idle")
    ui.tap("start")
    ui.wait_screen("menu")
    ui.tap("service-gas-bill")
    ui.wait_screen("account")
    ui.type_digits("8812")
    ui.wait_for(lambda: "continue" in ui.action_ids(), "the countdown")
    ui.tap("continue")
    ui.pump(2)
    assert "continue" not in ui.action_ids() and ui.controller.screen == "account"
    ui.wait_screen("idle", timeout=30)
    assert ui.controller.journey.digits == "" and not any("8812" in t for t in ui.texts())


def test_a_timeout_during_cash_collection_ends_in_a_voucher(
    terminal_rig: Any, ui_harness: Any
) -> None:
    ui = ui_harness(terminal_rig.terminal, idle_timeout_s=4.0, countdown_s=2.0)
    ui.wait_screen("idle")
    ui.tap("start")
    ui.wait_screen("menu")
    ui.tap("service-mobile-topup")
    ui.wait_screen("account")
    ui.type_digits("13900139000")
    ui.tap("confirm")
    ui.wait_screen("amount")
    ui.tap("amount-10000")
    ui.wait_screen("topup_confirm")
    ui.tap("pay")
    ui.wait_screen("pay_method")  # cash, or scan to pay
    ui.tap("pay-cash")
    ui.wait_screen("cash")
    terminal_rig.sims.cash.insert("note", 50_00)
    ui.wait_screen("result", timeout=30)
    [close] = terminal_rig.closes()
    assert (close["outcome"], close["voucher_fen"]) == ("cancelled", 50_00)


def test_a_printer_out_of_paper_shows_out_of_service_with_the_reason(
    terminal_rig: Any, ui_harness: Any
) -> None:
    terminal_rig.sims.printer.paper_out()
    ui = ui_harness(terminal_rig.terminal)
    ui.wait_screen("out_of_service")
    assert any("缺纸" in text for text in ui.texts())
    terminal_rig.sims.printer.restore()
    ui.wait_screen("idle")


def test_an_unplugged_reader_marks_only_card_tiles_unavailable(
    terminal_rig: Any, ui_harness: Any
) -> None:
    terminal_rig.sims.cards.unplug()
    ui = ui_harness(terminal_rig.terminal, language="en")
    ui.wait_for(lambda: ui.controller.status == "partial", "the reader to be noticed")
    ui.tap("start")
    ui.wait_screen("menu")
    assert "The card reader is not working" in ui.find("service-power-card").text
    ui.tap("service-power-card")
    ui.wait_screen("notice")
    ui.tap("ok")
    ui.wait_screen("idle")


def test_every_button_is_at_least_15_mm_on_the_configured_screen(
    terminal_rig: Any, ui_harness: Any
) -> None:
    ui = ui_harness(terminal_rig.terminal)
    ui.wait_screen("idle")
    minimum = ui.controller.settings.min_target_px
    for screen in ("idle", "menu"):
        if screen == "menu":
            ui.tap("start")
            ui.wait_screen("menu")
        for widget in ui.widgets():
            if getattr(widget, "action_id", "") and widget.get_root_window():
                assert min(widget.size) >= minimum - 1, (screen, widget.action_id, widget.size)
