"""The bill payment journey on the real app under Xvfb, tapped through Kivy's touch pipeline."""

import random
from typing import Any

from kiosk.catalog.sample_accounts import valid_account


def journal_closes(rig: Any) -> list[dict[str, Any]]:
    return [r for r in rig.terminal.journal.records() if r["type"] == "tx_close"]


def insert_until_paid(rig: Any, ui: Any, *notes_fen: int) -> None:
    for value in notes_fen:
        before = ui.controller.resident.cash_inserted_fen
        rig.sims.cash.insert("note", value)
        ui.wait_for(
            lambda before=before: (
                ui.controller.resident.cash_inserted_fen > before or ui.controller.screen != "cash"
            ),
            "the inserted note to show",
        )


def test_a_water_bill_is_paid_from_idle_with_touches_and_journaled(
    terminal_rig: Any, ui_harness: Any
) -> None:
    ui = ui_harness(terminal_rig.terminal)
    ui.wait_screen("idle")
    assert "水费" in " ".join(ui.texts())  # Chinese by default, services listed
    ui.tap("start")
    ui.wait_screen("menu")
    ui.tap("service-water-bill")  # two taps from idle to the service
    ui.wait_screen("account")
    service = terminal_rig.terminal.catalog().service("water-bill")
    account = valid_account(service, random.Random(5))
    ui.type_digits(account[:-1] + str((int(account[-1]) + 1) % 10))  # one digit mistyped
    ui.tap("confirm")
    ui.pump(2)
    assert ui.controller.screen == "account"
    assert (
        "输入有误" in ui.controller.journey.error
        or "无效" in ui.controller.journey.error
        or (ui.controller.journey.error)
    )
    ui.tap("key-delete")
    ui.type_digits(account[-1])
    ui.tap("confirm")
    ui.wait_screen("confirm")
    quote = ui.controller.journey.quote
    assert quote is not None and quote.account == account
    ui.tap("pay")
    ui.wait_screen("pay_method")  # cash, or scan to pay
    ui.tap("pay-cash")
    ui.wait_screen("cash")
    due = quote.total_fen
    notes = []
    while sum(notes) < due:
        notes.append(100_00)
    insert_until_paid(terminal_rig, ui, *notes)
    ui.wait_screen("result")
    outcome = ui.controller.journey.outcome
    assert outcome is not None and outcome.outcome == "paid" and outcome.printed
    [close] = journal_closes(terminal_rig)
    assert close["outcome"] == "paid" and close["amount_fen"] + close["credited_fen"] >= 0
    assert close["cash_in_fen"] == sum(notes)
    ui.tap("done")
    ui.wait_screen("rating")
    ui.tap("rate-bad")
    ui.wait_screen("rating_reason")
    ui.tap("reason-too_slow")
    ui.wait_screen("complaint")  # a complaint may follow; this resident leaves it
    ui.tap("no-complaint")
    ui.wait_screen("thanks")
    [rating] = ui.controller.resident.ratings.ratings()
    assert (rating.tx_id, rating.satisfied, rating.reason) == (close["tx_id"], False, "too_slow")
    ui.tap("done")
    ui.wait_screen("idle")
    assert ui.controller.journey.quote is None


def test_cancel_after_cash_prints_a_voucher_and_the_language_toggles(
    terminal_rig: Any, ui_harness: Any
) -> None:
    ui = ui_harness(terminal_rig.terminal)
    ui.wait_screen("idle")
    ui.tap("language")
    ui.pump()
    assert "Touch here to start" in ui.texts()
    ui.phone_topup_to_cash("13800138000", "amount-5000")
    insert_until_paid(terminal_rig, ui, 20_00)
    cancel = ui.find("cancel")
    assert "voucher" in cancel.text and "¥20.00" in cancel.text
    ui.tap("cancel")
    ui.wait_screen("result")
    [close] = journal_closes(terminal_rig)
    assert (close["outcome"], close["voucher_fen"]) == ("cancelled", 20_00)
    assert any("Voucher printed: ¥20.00" in text for text in ui.texts())


def test_a_receipt_that_cannot_be_printed_is_shown_with_its_qr_code(
    terminal_rig: Any, ui_harness: Any
) -> None:
    ui = ui_harness(terminal_rig.terminal, language="en")
    ui.wait_screen("idle")
    ui.phone_topup_to_cash("13800138000", "amount-2000")
    terminal_rig.sims.printer.paper_out()
    insert_until_paid(terminal_rig, ui, 20_00)
    ui.wait_screen("result")
    outcome = ui.controller.journey.outcome
    assert outcome.outcome == "paid" and not outcome.printed
    assert any(w for w in ui.widgets() if getattr(w, "action_id", "") == "receipt-qr")
    assert ui.controller.resident.receipt_qr().startswith("KR2:")
    assert any(outcome.receipt_no in text for text in ui.texts())
