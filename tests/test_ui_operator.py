"""The station operator's screens on the real app (Xvfb): operator card and PIN, deposits,
the float, the cash box, voucher payout, the day close, reprints and the session timeout.

The operator card is the simulated reader's (simulators/smartcard.py, the same
card application and 3-try PIN rule as on PC/SC), and once the card on the real PC/SC
stack (pyscard -> private pcscd -> vpcd -> drivers/smartcard/operator_app.py); the
platform is the threaded simulator, the printer the simulated one; taps go through Kivy's
touch dispatch (tests.ui_harness). Typing rules and message ids are checked without a window.
"""

import dataclasses
import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.token.software import create_software_identity
from kiosk.clock import FixedClock
from kiosk.i18n import catalog
from kiosk.ledger.cash_box import Denomination
from kiosk.money import MAX_FEN
from kiosk.receipts.identifiers import grouped_voucher_id
from tests.fixtures.engine_hook import engine_of
from tests.fixtures.pcscd import PrivatePcscd
from tests.fixtures.terminal import STATION, TERMINAL, TerminalRig, rig_config
from ui.operator_desk import MESSAGE_IDS, Entry, OperatorForm, amount_fen, typed

OPERATOR_CARD = "8700000001"
OPERATOR_ID = "OP-0007"
PIN = "135790"


def operator_card_in(rig: Any) -> None:
    cards = rig.sims.cards
    cards.create_operator_card(OPERATOR_CARD, OPERATOR_ID, PIN)
    cards.remove_card()
    cards.insert_operator_card(OPERATOR_CARD)


def sessions(rig: Any) -> list[tuple[str, str | None]]:
    return [(r["action"], r.get("by")) for r in rig.records_of("operator_session")]


def log_in(ui: Any, pin: str = PIN) -> None:
    ui.tap("operator")
    ui.wait_screen("operator_login")
    ui.type_digits(pin)
    ui.tap("confirm")


def opened(rig: Any, ui_harness: Any) -> Any:
    """The app on the idle screen with the operator logged in on the home page."""
    operator_card_in(rig)
    ui = ui_harness(rig.terminal, language="en")
    ui.wait_screen("idle")
    log_in(ui)
    ui.wait_screen("operator_home")
    return ui


def type_keys(ui: Any, text: str) -> None:
    names = {".": "point", "-": "dash"}
    for char in text:
        ui.tap(f"key-{names.get(char, char)}")


def sell_topup(rig: Any, amount_fen: int, *notes: int) -> dict[str, Any]:
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", amount_fen)
    rig.insert(progress.tx_id, *notes)
    rig.terminal.finish(progress.tx_id)
    closes: list[dict[str, Any]] = rig.closes()
    return closes[-1]


# ---------------------------------------------------------------- without a window


@given(
    yuan=st.integers(min_value=0, max_value=MAX_FEN // 100 - 1),
    fen=st.integers(min_value=0, max_value=99),
    decimals=st.sampled_from([0, 1, 2]),
)
def test_an_amount_typed_key_by_key_is_exactly_its_whole_fen(
    yuan: int, fen: int, decimals: int
) -> None:
    written = str(yuan) if decimals == 0 else f"{yuan}.{fen:02d}"[: len(str(yuan)) + 1 + decimals]
    text = ""
    for key in written:
        text = typed(Entry.AMOUNT, text, key)
    assert text == written
    assert amount_fen(text) == int(Decimal(written) * 100)


def test_amount_typing_refuses_a_second_point_a_third_decimal_and_letters() -> None:
    text = ""
    for key in "12.345.A6":
        text = typed(Entry.AMOUNT, text, key)
    assert text == "12.34"
    assert typed(Entry.AMOUNT, "", ".") == "0."
    assert typed(Entry.AMOUNT, "0", "5") == "5"
    assert typed(Entry.AMOUNT, "1000000", "0") == "1000000"  # past kiosk.money.MAX_FEN
    assert typed(Entry.AMOUNT, "1000000.0", "1") == "1000000.0"
    assert amount_fen("500.") == 500_00
    assert amount_fen("") is None and amount_fen(".") is None
    assert typed(Entry.SLIP, "", "-") == ""  # a slip number starts with a letter or digit
    assert typed(Entry.SLIP, "PS", "-") == "PS-"
    assert typed(Entry.RECEIPT, "12", "A") == "12"
    assert typed(Entry.VOUCHER, "A" * 16, "B") == "A" * 16


def test_a_count_by_denomination_adds_up_in_fen() -> None:
    form = OperatorForm(counts={Denomination.NOTE_100: "3", Denomination.COIN_05: "3"})
    assert form.counted_fen() == 301_50
    assert form.count().total_fen == 301_50


def test_every_operator_screen_text_has_a_chinese_translation_with_its_placeholders() -> None:
    chinese = catalog("zh_CN")
    for message_id in MESSAGE_IDS:
        assert message_id in chinese, message_id
        places = sorted(re.findall(r"{(\w*)}", message_id))
        assert sorted(re.findall(r"{(\w*)}", chinese[message_id])) == places, message_id


# ---------------------------------------------------------------- on the real app


def test_the_operator_card_and_its_pin_open_the_operator_home_and_logout_closes_it(
    board_rig: Any, ui_harness: Any
) -> None:
    operator_card_in(board_rig)
    ui = ui_harness(board_rig.terminal, language="en")
    ui.wait_screen("idle")
    log_in(ui, "111111")
    ui.wait_screen("operator_login")
    assert ui.controller.journey.error == "Wrong operator PIN: 2 tries left"
    ui.type_digits(PIN)
    ui.tap("confirm")
    ui.wait_screen("operator_home")
    assert ui.controller.operator.actor is not None
    assert {f"op-{a}" for a in ("deposit", "float", "close_day")} <= ui.action_ids()
    assert any(f"Operator: {OPERATOR_ID}" in text for text in ui.texts())
    ui.tap("logout")
    ui.wait_screen("idle")
    assert board_rig.terminal.operator.operator is None
    assert sessions(board_rig) == [
        ("refused", None),
        ("login", OPERATOR_ID),
        ("logout", OPERATOR_ID),
    ]


def test_without_an_operator_card_the_pin_screen_says_to_insert_it(
    board_rig: Any, ui_harness: Any
) -> None:
    ui = ui_harness(board_rig.terminal, language="zh_CN")
    ui.wait_screen("idle")
    log_in(ui)
    ui.wait_screen("operator_login")
    assert ui.controller.journey.error == "请先插入经办人员卡，再输入密码。"


def test_a_deposit_below_500_yuan_is_refused_and_a_valid_one_is_pending_then_confirmed(
    board_rig: Any, ui_harness: Any
) -> None:
    ui = opened(board_rig, ui_harness)
    ui.tap("op-deposit")
    ui.wait_screen("operator_deposit")
    type_keys(ui, "499.99")
    ui.tap("field-slip")
    ui.pump(2)
    type_keys(ui, "PS-1001")
    ui.tap("record")
    ui.wait_screen("operator_deposit")
    error = ui.controller.operator.error
    assert "at least ¥500.00" in error and "¥499.99 is less" in error
    assert board_rig.records_of("float_deposit") == []  # nothing journaled

    ui.tap("field-amount")
    ui.pump(2)
    ui.tap("key-clear")
    type_keys(ui, "500.05")
    ui.tap("record")
    ui.wait_screen("operator_home")
    assert "recorded: pending" in ui.controller.operator.message
    [pending] = board_rig.records_of("float_deposit")
    assert (pending["amount_fen"], pending["slip_no"], pending["state"]) == (
        500_05,
        "PS-1001",
        "pending",
    )
    assert (pending["by"], pending["role"]) == (OPERATOR_ID, "operator")

    ui.tap("op-float")
    ui.wait_screen("operator_float")
    overview = ui.controller.operator.form.overview
    assert overview is not None and overview.pending_deposits_fen == 500_05
    entry = overview.deposits[0]
    board_rig.platform.confirm_deposit(entry.key)
    ui.tap("refresh")
    ui.wait_screen("operator_float")
    overview = ui.controller.operator.form.overview
    assert overview is not None and overview.pending_deposits_fen == 0
    assert overview.deposits[0].state == "confirmed"
    assert any("confirmed" in text for text in ui.texts())
    assert [r["state"] for r in board_rig.records_of("float_deposit")] == ["pending", "confirmed"]


def test_a_cash_count_with_a_discrepancy_is_journaled_reported_and_its_slip_printed(
    board_rig: Any, ui_harness: Any
) -> None:
    sell_topup(board_rig, 50_00, 50_00)
    ui = opened(board_rig, ui_harness)
    ui.tap("op-collect_cash")
    ui.wait_screen("operator_cash")
    assert ui.controller.operator.form.expected_fen == 50_00
    ui.tap("count-note-20")
    ui.pump(2)
    ui.type_digits("2")
    ui.tap("count-coin-0.5")
    ui.pump(2)
    ui.type_digits("3")
    assert any("Counted: ¥41.50" in text for text in ui.texts())
    ui.tap("collect")
    ui.wait_screen("operator_home")
    message = ui.controller.operator.message
    assert "counted ¥41.50, expected ¥50.00, discrepancy -¥8.50" in message
    assert "collection slip was printed" in message
    [collection] = board_rig.records_of("cash_collection")
    assert collection["discrepancy_fen"] == -8_50 and collection["by"] == OPERATOR_ID
    assert collection["count"] == {"note-20": 2, "coin-0.5": 3}
    assert any(j.startswith("collection/") for j in board_rig.sims.printer.printed_job_ids())


def test_a_voucher_is_shown_then_paid_once_and_refused_the_second_time(
    board_rig: Any, ui_harness: Any
) -> None:
    close = sell_topup(board_rig, 30_00, 50_00)  # 20 yuan over: a voucher
    code = str(close["voucher_id"])
    ui = opened(board_rig, ui_harness)
    ui.tap("op-pay_voucher")
    ui.wait_screen("operator_voucher")
    assert "pay-out" not in ui.action_ids()  # nothing to pay before the voucher is shown
    type_keys(ui, code)
    ui.tap("look-up")
    ui.wait_screen("operator_voucher")
    form = ui.controller.operator.form
    assert form.voucher is not None and form.voucher.amount_fen == 20_00
    assert any(grouped_voucher_id(code) in text for text in ui.texts())
    ui.tap("pay-out")
    ui.wait_screen("operator_voucher")
    form = ui.controller.operator.form
    assert (
        form.paid is True and ui.controller.operator.outcome == "Paid: hand ¥20.00 to the resident."
    )
    paid = [r for r in board_rig.records_of("voucher_payout") if r["state"] == "paid"]
    assert [(r["voucher_id"], r["operator"], r["amount_fen"]) for r in paid] == [
        (code, OPERATOR_ID, 20_00)
    ]

    type_keys(ui, code)
    ui.tap("look-up")
    ui.wait_screen("operator_voucher")
    form = ui.controller.operator.form
    assert (
        "cannot be paid out" in ui.controller.operator.error
        and form.refusal_code == "voucher_already_redeemed"
    )
    assert form.voucher is None and "pay-out" not in ui.action_ids()
    assert len([r for r in board_rig.records_of("voucher_payout") if r["state"] == "paid"]) == 1


def test_a_payout_whose_answer_is_unknown_says_to_hand_nothing_over_until_it_is_settled(
    board_rig: Any, ui_harness: Any
) -> None:
    close = sell_topup(board_rig, 30_00, 50_00)
    code = str(close["voucher_id"])
    ui = opened(board_rig, ui_harness)
    ui.tap("op-pay_voucher")
    ui.wait_screen("operator_voucher")
    type_keys(ui, code)
    ui.tap("look-up")
    ui.wait_screen("operator_voucher")
    board_rig.platform.set_faults(["voucher_redeem:timeout_before:sleep_ms=900"])
    ui.tap("pay-out")
    ui.wait_screen("operator_voucher")
    form = ui.controller.operator.form
    assert form.paid is False and "do NOT hand over cash yet" in ui.controller.operator.outcome
    assert not [r for r in board_rig.records_of("voucher_payout") if r["state"] == "paid"]
    board_rig.platform.set_faults([])
    ui.tap("pay-out")  # the same code again settles it
    ui.wait_screen("operator_voucher")
    assert ui.controller.operator.form.paid is True


def test_closing_the_day_journals_it_by_the_operator_and_prints_the_day_sheet(
    board_rig: Any, ui_harness: Any
) -> None:
    sell_topup(board_rig, 30_00, 50_00)
    ui = opened(board_rig, ui_harness)
    ui.tap("op-close_day")
    ui.wait_screen("operator_close_day")
    assert any("1 paid, ¥30.00" in text for text in ui.texts())
    ui.tap("close-day")
    ui.wait_screen("operator_home")
    message = ui.controller.operator.message
    assert "closed" in message and "day sheet" in message and "could not" not in message
    [closed] = board_rig.records_of("day_close")
    assert closed["closed_by"] == f"operator:{OPERATOR_ID}"
    day = closed["business_day"]
    assert f"day-sheet/{day}/0" in board_rig.sims.printer.printed_job_ids()

    ui.tap("op-close_day")  # the closed day's sheet can be printed again (a copy)
    ui.wait_screen("operator_close_day")
    ui.tap("print-sheet")
    ui.wait_screen("operator_home")
    assert ui.controller.operator.message == "The day sheet was printed."
    assert f"day-sheet/{day}/1" in board_rig.sims.printer.printed_job_ids()


def test_a_receipt_is_reprinted_by_its_number_and_a_wrong_number_is_one_line(
    board_rig: Any, ui_harness: Any
) -> None:
    close = sell_topup(board_rig, 30_00, 50_00)
    receipt_no = str(close["receipt_no"])
    ui = opened(board_rig, ui_harness)
    ui.tap("op-reprint")
    ui.wait_screen("operator_reprint")
    ui.tap("reprint")
    ui.pump(2)
    assert ui.controller.operator.error == "Type the number after the dash on the receipt"
    ui.type_digits("999")
    ui.tap("reprint")
    ui.wait_screen("operator_reprint")
    assert ui.controller.operator.error  # no such receipt: one line, still here
    ui.tap("key-clear")
    ui.type_digits(str(int(receipt_no.rsplit("-", 1)[1])))
    ui.tap("reprint")
    ui.wait_screen("operator_home")
    assert ui.controller.operator.message == f"Receipt {receipt_no} reprinted."
    # The original was printed at the sale: this is its first marked copy.
    assert f"{receipt_no}/1" in board_rig.sims.printer.printed_job_ids()


def test_a_session_left_alone_returns_to_idle_and_is_journaled_as_expired(
    board_rig: Any, ui_harness: Any
) -> None:
    ui = opened(board_rig, ui_harness)
    ui.tap("op-deposit")
    ui.wait_screen("operator_deposit")
    type_keys(ui, "600")
    timeout = board_rig.terminal.config.operator.session_timeout_s
    left = ui.controller.seconds_left()
    assert left is not None and timeout - 5 < left <= timeout  # the session's, not 60 s
    ui.controller.last_touch -= timeout + 1  # as if nobody touched it for that long
    ui.wait_screen("idle")
    assert ui.controller.operator.actor is None
    assert ui.controller.operator.form.value(Entry.AMOUNT) == ""  # nothing typed is kept
    assert sessions(board_rig)[-1] == ("expired", OPERATOR_ID)
    assert board_rig.terminal.operator.operator is None


def test_a_result_line_follows_a_language_switch(board_rig: Any, ui_harness: Any) -> None:
    ui = opened(board_rig, ui_harness)
    ui.tap("op-reprint")
    ui.wait_screen("operator_reprint")
    ui.tap("reprint")
    ui.pump(2)
    assert ui.controller.operator.error == "Type the number after the dash on the receipt"
    ui.tap("language")
    ui.pump(2)
    assert ui.controller.operator.error == "请输入凭条号中横线后面的数字"
    assert "请输入凭条号中横线后面的数字" in ui.texts()


def test_pulling_the_operator_card_out_ends_the_session(board_rig: Any, ui_harness: Any) -> None:
    ui = opened(board_rig, ui_harness)
    ui.tap("op-collect_cash")
    ui.wait_screen("operator_cash")
    board_rig.sims.cards.remove_card()
    ui.wait_screen("idle")
    assert ui.controller.operator.actor is None
    assert sessions(board_rig)[-1] == ("logout", OPERATOR_ID)
    assert board_rig.terminal.operator.operator is None


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_the_idle_screen_offers_the_operator_entry_quietly(
    board_rig: Any, ui_harness: Any, language: str
) -> None:
    ui = ui_harness(board_rig.terminal, language=language)
    ui.wait_screen("idle")
    button = ui.find("operator")
    assert button.text == ("经办人员" if language == "zh_CN" else "Station operator")
    assert ui.layout_problems() == []


@pytest.fixture
def pcsc_rig(tmp_path: Path, platform_sim: Any, pcscd: PrivatePcscd) -> Iterator[Any]:
    """A started terminal whose card reader is the real PC/SC driver on the private pcscd,
    with the cards served through vpcd (rig.sims.cards is None: rig.vpcd holds the cards)."""
    config = rig_config(tmp_path / "terminal", platform_sim.url)
    devices = dataclasses.replace(config.devices, card_reader="real", reader_name=pcscd.reader_name)
    config = dataclasses.replace(config, devices=devices)
    signer = create_software_identity(
        Path(config.token.key_file),
        Path(config.token.cert_file),
        institution_no=STATION,
        terminal_id=TERMINAL,
        station_name="青山社区便民服务站",
    )
    clock = FixedClock(datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    platform_sim.fund(STATION)
    rig = TerminalRig(config, signer, clock, platform_sim, None, None)  # type: ignore[arg-type]
    rig.build()
    rig.terminal.start()
    cards = pcscd.card_simulator(tmp_path / "cards.json")
    rig.vpcd = cards  # type: ignore[attr-defined]
    try:
        yield rig
    finally:
        getattr(engine_of(rig.terminal).cards, "close", lambda: None)()
        rig.terminal.close()
        cards.close()
        pcscd.wait_for_empty_reader()


def test_the_operator_card_on_pcsc_through_vpcd_opens_the_screens_and_counts_wrong_pins(
    pcsc_rig: Any, ui_harness: Any
) -> None:
    cards = pcsc_rig.vpcd
    cards.issue_operator("87000000000007", OPERATOR_ID, PIN)
    cards.insert("87000000000007")
    ui = ui_harness(pcsc_rig.terminal, language="en")
    ui.wait_screen("idle")
    for tries_left in (2, 1):
        log_in(ui, "111111")
        ui.wait_screen("operator_login")
        assert ui.controller.journey.error == f"Wrong operator PIN: {tries_left} tries left"
        ui.tap("cancel")
        ui.wait_screen("idle")
    log_in(ui)
    ui.wait_screen("operator_home")
    assert cards.operator("87000000000007").tries_left == 3  # the right PIN resets the count
    ui.tap("op-float")
    ui.wait_screen("operator_float")
    assert ui.controller.operator.form.overview is not None
    ui.tap("back")
    ui.wait_screen("operator_home")
    ui.tap("logout")
    ui.wait_screen("idle")
    assert sessions(pcsc_rig) == [
        ("refused", None),
        ("refused", None),
        ("login", OPERATOR_ID),
        ("logout", OPERATOR_ID),
    ]
