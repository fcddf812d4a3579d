"""Payments by phone (issue #21): the same money safety as cash, against the platform
simulator over HTTP with its provider behaviours, the simulated devices and the real journal
(docs/transactions.md, "Payments by phone")."""

from datetime import timedelta
from typing import Any

import pytest

from kiosk.payment_codes import PaymentCodeInvalid
from kiosk.transactions.kinds import QrStage, TxOutcome
from kiosk.transactions.outcomes import PaymentCodeRefused, QrPayment
from kiosk.transactions.states import TxState
from tests.fixtures.payment_orders import OrderDesk
from tests.fixtures.terminal import STATION, TerminalRig
from tests.test_transactions import payments, quote

WECHAT_CODE = "134567890123456789"
ALIPAY_CODE = "284567890123456789"


def desk(rig: TerminalRig) -> OrderDesk:
    return OrderDesk(rig.platform)


def order_key(rig: TerminalRig, tx_id: str) -> str:
    key = rig.terminal.engine.store.get(tx_id).order_key
    assert key is not None
    return key


def close_of(rig: TerminalRig, tx_id: str) -> dict[str, Any]:
    [close] = [c for c in rig.closes() if c["tx_id"] == tx_id]
    return close


def later(rig: TerminalRig, minutes: float = 15) -> None:
    """Let every retry's backoff pass, then run housekeeping."""
    rig.clock.advance(timedelta(minutes=minutes))
    rig.terminal.tick()


def start_bill(rig: TerminalRig) -> QrPayment:
    payment = rig.terminal.pay_bill_by_qr(quote(rig, "water-bill"))
    assert payment.stage is QrStage.WAITING and payment.code_url
    return payment


def assert_paid(rig: TerminalRig, payment: QrPayment, wallet: str) -> dict[str, Any]:
    assert payment.stage is QrStage.DONE and payment.outcome is not None
    assert payment.outcome.outcome is TxOutcome.PAID and payment.paid_with == wallet
    close = close_of(rig, payment.tx_id)
    assert close["payment_method"] == "qr" and close["paid_with"] == wallet
    assert close["cash_in_fen"] == 0 and close["voucher_fen"] == 0
    assert close["paid_in_fen"] == close["amount_fen"] + close["fee_fen"] == payment.amount_fen
    assert close["refunded_fen"] == 0 and close["provider_ref"]
    return close


def assert_refunded(rig: TerminalRig, tx_id: str) -> dict[str, Any]:
    row = rig.terminal.engine.store.get(tx_id)
    assert row.tx_state is TxState.CLOSED and row.outcome == "refunded"
    close = close_of(rig, tx_id)
    assert close["outcome"] == "refunded" and close["payment_method"] == "qr"
    assert close["refunded_fen"] == close["paid_in_fen"] == row.total_due_fen
    assert close["amount_fen"] == 0 and close["voucher_fen"] == 0 and close["cash_in_fen"] == 0
    assert "voucher_id" not in close
    return close


# ---------------------------------------------------------------------- happy paths


def test_a_bill_paid_by_the_dynamic_code_is_posted_once_from_the_order_not_the_float(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    balance = rig.platform.balance_fen(STATION)
    payment = start_bill(rig)
    assert rig.terminal.qr_payment(payment.tx_id).stage is QrStage.WAITING
    desk(rig).resident_pays(order_key(rig, payment.tx_id), "alipay")
    done = rig.terminal.qr_payment(payment.tx_id)
    close = assert_paid(rig, done, "alipay")
    [posting] = payments(rig)
    assert posting["amount_fen"] == close["amount_fen"]
    assert rig.platform.balance_fen(STATION) == balance  # the float paid nothing
    assert done.outcome is not None and done.outcome.printed
    # Asked again: the same result, nothing posted twice.
    again = rig.terminal.qr_payment(payment.tx_id)
    assert again.stage is QrStage.DONE and again.outcome is not None
    assert again.outcome.receipt_no == done.outcome.receipt_no
    assert len(payments(rig)) == 1


def test_a_payment_code_pays_the_order_at_once(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    payment = start_bill(rig)
    done = rig.terminal.present_payment_code(payment.tx_id, WECHAT_CODE)
    assert_paid(rig, done, "wechat")
    assert len(payments(rig)) == 1


def test_a_scan_that_is_no_payment_code_is_one_clear_error_and_nothing_is_sent(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    payment = start_bill(rig)
    before = rig.platform.requests_seen().get("order_pay", 0)
    with pytest.raises(PaymentCodeInvalid, match="scan again"):
        rig.terminal.present_payment_code(payment.tx_id, "HELLO-WORLD")
    assert rig.platform.requests_seen().get("order_pay", 0) == before
    assert rig.terminal.qr_payment(payment.tx_id).stage is QrStage.WAITING


def test_a_declined_code_charges_nothing_and_the_order_stays_open(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    desk(rig).set_provider(["decline:count=1"])
    payment = start_bill(rig)
    with pytest.raises(PaymentCodeRefused) as refused:
        rig.terminal.present_payment_code(payment.tx_id, WECHAT_CODE)
    assert refused.value.code == "payment_declined"
    assert rig.terminal.qr_payment(payment.tx_id).stage is QrStage.WAITING
    desk(rig).resident_pays(order_key(rig, payment.tx_id))
    assert_paid(rig, rig.terminal.qr_payment(payment.tx_id), "wechat")


def test_pending_then_confirmed_on_the_phone(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    desk(rig).set_provider(["pay_after:s=30"])
    payment = start_bill(rig)
    confirming = rig.terminal.present_payment_code(payment.tx_id, ALIPAY_CODE)
    assert confirming.stage is QrStage.CONFIRMING and confirming.outcome is None
    assert rig.terminal.qr_payment(payment.tx_id).stage is QrStage.CONFIRMING
    desk(rig).resident_confirms(order_key(rig, payment.tx_id))
    assert_paid(rig, rig.terminal.qr_payment(payment.tx_id), "alipay")


def test_a_phone_top_up_by_qr(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    payment = rig.terminal.start_phone_topup_by_qr("mobile-topup", "13800138000", 50_00)
    assert payment.stage is QrStage.WAITING
    done = rig.terminal.present_payment_code(payment.tx_id, WECHAT_CODE)
    close = assert_paid(rig, done, "wechat")
    assert close["amount_fen"] == 50_00


# ---------------------------------------------------------------------- cancelled


def test_cancelled_on_the_phone_closes_with_no_money(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    payment = start_bill(rig)
    desk(rig).resident_cancels(order_key(rig, payment.tx_id))
    done = rig.terminal.qr_payment(payment.tx_id)
    assert done.stage is QrStage.DONE and done.outcome is not None
    assert done.outcome.outcome is TxOutcome.CANCELLED
    close = close_of(rig, payment.tx_id)
    assert close["paid_in_fen"] == close["refunded_fen"] == close["amount_fen"] == 0
    assert payments(rig) == []


def test_the_resident_cancels_at_the_screen(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    payment = start_bill(rig)
    done = rig.terminal.cancel_qr_payment(payment.tx_id)
    assert done.outcome is not None and done.outcome.outcome is TxOutcome.CANCELLED
    assert desk(rig).order(order_key(rig, payment.tx_id))["state"] == "closed"
    # The order can never be paid now.
    with pytest.raises(Exception, match="order_closed|closed"):
        desk(rig).resident_pays(order_key(rig, payment.tx_id))
