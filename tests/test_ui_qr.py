"""Paying by phone on the real app (issue #21 item 5): the method choice, the dynamic code with
its amount and countdown, a payment code from the simulated scanner, cancel, expiry, a refund
to the wallet and the interim slip.

The app runs under Xvfb on the test terminal (simulated devices, the threaded platform
simulator with its provider behaviours, docs/platform-api.md "Provider behaviours"), tapped
through Kivy's touch pipeline (tests.ui_harness). The resident's phone is the simulator's
/sim/orders controls (tests/fixtures/payment_orders.py)."""

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kiosk.catalog.sample_accounts import valid_account
from kiosk.payment_codes import PaymentScheme
from kiosk.transactions.kinds import QrStage
from simulators.scanner import sample_code
from tests.fixtures.engine_hook import engine_of
from tests.fixtures.payment_orders import OrderDesk
from tests.fixtures.terminal import TerminalRig, started_rig


@pytest.fixture
def scanner_rig(tmp_path: Path, platform_sim: Any) -> Iterator[TerminalRig]:
    """The test terminal with the simulated payment-code scanner (rig.sims.scanner)."""
    with started_rig(tmp_path / "terminal", platform_sim, scanner="sim") as rig:
        yield rig


def shown(ui: Any, fragment: str) -> bool:
    return any(fragment in text for text in ui.texts())


def order_key(rig: TerminalRig, ui: Any) -> str:
    qr = ui.controller.journey.qr
    assert qr is not None
    key = ui.core(lambda: engine_of(rig.terminal).store.get(qr.tx_id).order_key)
    assert isinstance(key, str)
    return key


def bill_to_code(rig: TerminalRig, ui: Any, seed: int = 5) -> Any:
    """From idle, a water bill confirmed and paid by phone: the code's screen."""
    ui.wait_screen("idle")
    ui.tap("start")
    ui.wait_screen("menu")
    ui.tap("service-water-bill")
    ui.wait_screen("account")
    service = rig.terminal.catalog().service("water-bill")
    ui.type_digits(valid_account(service, random.Random(seed)))
    ui.tap("confirm")
    ui.wait_screen("confirm")
    quote = ui.controller.journey.quote
    ui.tap("pay")
    ui.wait_screen("pay_method")
    assert shown(ui, ui.controller.qr.wallet_names())  # scan to pay names the wallets
    ui.tap("pay-qr")
    ui.wait_screen("qr_pay")
    return quote


def phone_to_code(ui: Any) -> None:
    ui.wait_screen("idle")
    ui.tap("start")
    ui.wait_screen("menu")
    ui.tap("service-mobile-topup")
    ui.wait_screen("account")
    ui.type_digits("13800138000")
    ui.tap("confirm")
    ui.wait_screen("amount")
    ui.tap("amount-5000")
    ui.wait_screen("topup_confirm")
    ui.tap("pay")
    ui.wait_screen("pay_method")
    ui.tap("pay-qr")
    ui.wait_screen("qr_pay")


def test_a_bill_paid_by_the_dynamic_code_shows_the_code_amount_countdown_and_a_receipt(
    terminal_rig: TerminalRig, ui_harness: Any, tmp_path: Path
) -> None:
    rig = terminal_rig
    ui = ui_harness(rig.terminal, voice=True)
    quote = bill_to_code(rig, ui)
    qr = ui.controller.journey.qr
    assert qr is not None and qr.stage is QrStage.WAITING and qr.code_url
    assert qr.amount_fen == quote.total_fen
    ui.find("payment-qr")  # the dynamic code is drawn
    assert shown(ui, ui.controller.money(quote.total_fen))
    assert shown(ui, "剩余支付时间：4:") or shown(ui, "剩余支付时间：5:00")
    assert not shown(ui, "出示付款码")  # no scanner on this terminal: not offered
    assert ui.controller.voice.spoken[-1].startswith("请扫码支付")  # 唱收
    assert ui.controller.seconds_left() is None  # no idle timeout while paying on the phone
    OrderDesk(rig.platform).resident_pays(order_key(rig, ui), "alipay")
    ui.wait_screen("qr_result")  # found by the screen's own polling
    outcome = ui.controller.journey.outcome
    assert outcome is not None and outcome.outcome == "paid" and outcome.printed
    assert shown(ui, "已通过支付宝支付" + ui.controller.money(quote.total_fen))
    assert shown(ui, outcome.receipt_no)
    [close] = rig.closes()
    assert (close["payment_method"], close["paid_with"], close["cash_in_fen"]) == (
        "qr",
        "alipay",
        0,
    )
    assert ui.controller.voice.spoken[-1].startswith("收您")
    ui.tap("done")
    ui.wait_screen("rating")


def test_a_phone_top_up_paid_with_a_payment_code_from_the_scanner(
    scanner_rig: TerminalRig, ui_harness: Any
) -> None:
    rig = scanner_rig
    ui = ui_harness(rig.terminal, language="en")
    phone_to_code(ui)
    assert shown(ui, "Or show your payment code to the scanner")
    rig.sims.scanner.scan("12345")  # not a payment code: one line, nothing sent
    ui.wait_for(lambda: bool(ui.controller.journey.qr_error), "the misread to be shown")
    assert ui.controller.screen == "qr_pay"
    assert shown(ui, "The code could not be read")
    rig.sims.scanner.scan(sample_code(PaymentScheme.WECHAT, 7))
    ui.wait_screen("qr_result")
    outcome = ui.controller.journey.outcome
    assert outcome is not None and outcome.outcome == "paid"
    paid = ui.controller.money(ui.controller.journey.qr.amount_fen)
    assert shown(ui, f"Paid {paid} with WeChat Pay")
    [close] = rig.closes()
    assert (close["paid_with"], close["amount_fen"]) == ("wechat", 50_00)


def test_a_declined_payment_code_charges_nothing_and_the_code_stays(
    scanner_rig: TerminalRig, ui_harness: Any
) -> None:
    rig = scanner_rig
    OrderDesk(rig.platform).set_provider(["decline:count=1"])
    ui = ui_harness(rig.terminal, language="en")
    phone_to_code(ui)
    rig.sims.scanner.scan(sample_code(PaymentScheme.ALIPAY, 3))
    ui.wait_for(lambda: bool(ui.controller.journey.qr_error), "the refusal to be shown")
    assert shown(ui, "nothing was charged")
    assert ui.controller.screen == "qr_pay" and rig.closes() == []


def test_cancel_before_paying_closes_the_order_and_takes_nothing(
    terminal_rig: TerminalRig, ui_harness: Any
) -> None:
    rig = terminal_rig
    ui = ui_harness(rig.terminal, language="en")
    bill_to_code(rig, ui)
    key = order_key(rig, ui)
    ui.tap("cancel")
    ui.wait_screen("qr_result")
    assert shown(ui, "Payment cancelled") and shown(ui, "Nothing was taken from your phone.")
    assert OrderDesk(rig.platform).order(key)["state"] == "closed"
    [close] = rig.closes()
    assert close["outcome"] == "cancelled" and close["paid_in_fen"] == 0


def test_an_order_that_expires_ends_with_time_ran_out_and_nothing_taken(
    terminal_rig: TerminalRig, ui_harness: Any
) -> None:
    rig = terminal_rig
    ui = ui_harness(rig.terminal, language="en")
    bill_to_code(rig, ui)
    key = order_key(rig, ui)
    # Five minutes pass for the platform and the terminal alike; nobody pays. The screen's
    # next poll reads the platform's clock from its answer: the countdown is over.
    OrderDesk(rig.platform).later(301)
    rig.clock.advance(timedelta(seconds=301))
    ui.wait_screen("qr_result")
    assert shown(ui, "The time to pay ran out")
    assert OrderDesk(rig.platform).order(key)["state"] == "closed"
    [close] = rig.closes()
    assert close["outcome"] == "cancelled" and close["paid_in_fen"] == 0


def test_a_paid_order_whose_bill_is_refused_is_refunded_to_the_wallet(
    terminal_rig: TerminalRig, ui_harness: Any
) -> None:
    rig = terminal_rig
    ui = ui_harness(rig.terminal, language="en")
    bill_to_code(rig, ui)
    rig.platform.set_faults(["post:refuse:code=bill_already_paid:status=409"])
    OrderDesk(rig.platform).resident_pays(order_key(rig, ui), "unionpay")
    ui.wait_screen("qr_result")
    outcome = ui.controller.journey.outcome
    assert outcome is not None and outcome.outcome == "refunded"
    assert shown(ui, "The money goes back to your UnionPay")
    [close] = rig.closes()
    assert close["outcome"] == "refunded" and close["voucher_fen"] == 0


def test_a_payment_left_in_doubt_shows_the_interim_slip_in_every_mode(
    terminal_rig: TerminalRig, ui_harness: Any
) -> None:
    from tests.screen_tour import LANGUAGES, MODES

    rig = terminal_rig
    OrderDesk(rig.platform).set_provider(["refund_fail:times=1"])
    ui = ui_harness(rig.terminal, language="en")
    bill_to_code(rig, ui)
    rig.platform.set_faults(["post:refuse:code=bill_already_paid:status=409"])
    OrderDesk(rig.platform).resident_pays(order_key(rig, ui), "wechat")
    ui.wait_screen("qr_in_doubt")
    outcome = ui.controller.journey.outcome
    assert outcome is not None and outcome.outcome == "in_doubt" and outcome.receipt_no is None
    for fragment in (outcome.tx_id, outcome.token, "do not pay again", "WeChat Pay"):
        assert shown(ui, fragment), fragment
    display = ui.controller.display
    for lang in LANGUAGES:
        for _mode, large, contrast in MODES:
            display.set_language(lang)
            display.set_modes(large_text=large, high_contrast=contrast)
            ui.pump(2)
            assert ui.layout_problems() == [], (lang, large, contrast)


def test_scan_to_pay_is_not_offered_while_the_platform_is_at_fault(
    terminal_rig: TerminalRig, ui_harness: Any
) -> None:
    from kiosk.service_faults import Fault

    rig = terminal_rig
    ui = ui_harness(rig.terminal, language="en")
    ui.wait_screen("idle")
    assert ui.controller.qr.offered()
    rig.terminal.faults[Fault.PLATFORM_UNREACHABLE] = "no answer"
    try:
        assert not ui.controller.qr.offered()
    finally:
        rig.terminal.faults.clear()
    ui.controller.platform_ok = False  # the last core call found the platform unreachable
    assert not ui.controller.qr.offered()


def test_every_wallet_name_has_its_chinese_name() -> None:
    from kiosk.i18n import catalog
    from ui.qr_payment import WALLETS

    chinese = catalog("zh_CN")
    assert [chinese[name] for name in WALLETS.values()] == ["微信支付", "支付宝", "云闪付"]
