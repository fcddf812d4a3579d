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
from tests.fixtures.engine_hook import engine_of
from tests.fixtures.payment_orders import OrderDesk
from tests.fixtures.terminal import STATION, TerminalRig
from tests.test_transactions import payments, quote

WECHAT_CODE = "134567890123456789"
ALIPAY_CODE = "284567890123456789"


def desk(rig: TerminalRig) -> OrderDesk:
    return OrderDesk(rig.platform)


def order_key(rig: TerminalRig, tx_id: str) -> str:
    key = engine_of(rig.terminal).store.get(tx_id).order_key
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
    row = engine_of(rig.terminal).store.get(tx_id)
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


# ---------------------------------------------------------------------- the resident's timing


def test_paid_late_after_the_kiosk_closed_is_refunded_by_the_platform_and_the_tx_cancelled(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    orders = desk(rig)
    orders.set_provider(["pay_after:s=30"])
    payment = start_bill(rig)
    key = order_key(rig, payment.tx_id)
    done = rig.terminal.cancel_qr_payment(payment.tx_id)
    assert done.outcome is not None and done.outcome.outcome is TxOutcome.CANCELLED
    orders.later(31)  # the resident's payment arrives after the close
    assert orders.order(key)["state"] == "closed"
    events = [event for event, _ in orders.notifications(key)]
    assert "paid_after_close" in events and "late_payment_refunded" in events
    later(rig)
    close = close_of(rig, payment.tx_id)
    assert close["outcome"] == "cancelled" and close["paid_in_fen"] == 0
    assert payments(rig) == []


def test_a_close_that_finds_the_money_taken_completes_while_the_resident_is_at_the_screen(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    desk(rig).set_provider(["provider_timeout:s=60"])
    payment = start_bill(rig)
    # The provider took the money; the platform does not know yet.
    assert rig.terminal.qr_payment(payment.tx_id).stage is QrStage.WAITING
    done = rig.terminal.cancel_qr_payment(payment.tx_id)  # the screen timed out
    assert_paid(rig, done, "wechat")
    assert len(payments(rig)) == 1


def test_a_close_that_finds_the_money_taken_after_a_restart_refunds_it(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    desk(rig).set_provider(["provider_timeout:s=60"])
    payment = start_bill(rig)
    key = order_key(rig, payment.tx_id)
    rig.crash_and_restart()
    close = assert_refunded(rig, payment.tx_id)
    assert close["reason"] == "paid after the resident left the screen: refunded to the wallet"
    assert desk(rig).order(key)["state"] == "refunded"
    assert payments(rig) == []


def test_a_provider_timeout_after_paid_is_settled_by_order_status(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    orders = desk(rig)
    orders.set_provider(["provider_timeout:s=30"])
    payment = start_bill(rig)
    assert rig.terminal.qr_payment(payment.tx_id).stage is QrStage.WAITING
    orders.later(31)
    assert_paid(rig, rig.terminal.qr_payment(payment.tx_id), "wechat")


def test_duplicate_and_late_notifications_change_nothing(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    orders = desk(rig)
    orders.set_provider(["notify_repeat:n=3"])
    payment = start_bill(rig)
    done = rig.terminal.present_payment_code(payment.tx_id, WECHAT_CODE)
    assert_paid(rig, done, "wechat")
    key = order_key(rig, payment.tx_id)
    assert orders.notifications(key).count(("paid", 3)) == 1
    later(rig)
    assert len(payments(rig)) == 1 and len(rig.closes()) == 1


# ---------------------------------------------------------------------- money back to the wallet


def test_a_posting_refused_after_paid_is_refunded_to_the_wallet_never_a_voucher(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    payment = start_bill(rig)
    rig.platform.set_faults(["post:refuse:code=bill_already_paid:status=409"])
    done = rig.terminal.present_payment_code(payment.tx_id, ALIPAY_CODE)
    assert done.stage is QrStage.DONE and done.outcome is not None
    assert done.outcome.outcome is TxOutcome.REFUNDED and done.outcome.voucher_fen == 0
    assert done.outcome.refunded_fen == payment.amount_fen and done.paid_with == "alipay"
    close = assert_refunded(rig, payment.tx_id)
    assert close["refusal"] == "bill_already_paid"
    [refund] = desk(rig).orders()["refunds"]
    assert refund["method"] == "alipay" and refund["amount_fen"] == payment.amount_fen
    assert rig.platform.vouchers() == [] and payments(rig) == []


def test_a_failed_refund_is_alerted_and_retried_under_a_new_refund_key(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    desk(rig).set_provider(["refund_fail:times=1"])
    payment = start_bill(rig)
    rig.platform.set_faults(["post:refuse:code=bill_already_paid:status=409"])
    in_doubt = rig.terminal.present_payment_code(payment.tx_id, WECHAT_CODE)
    assert in_doubt.stage is QrStage.IN_DOUBT and in_doubt.outcome is not None
    assert in_doubt.outcome.printed  # the interim slip: money goes back to the phone
    assert engine_of(rig.terminal).store.get(payment.tx_id).tx_state is TxState.REFUNDING
    alerts = [r for r in rig.terminal.journal.records() if r["type"] == "alert"]
    assert [a["alert"] for a in alerts].count("refund_failed") == 1
    rig.platform.clear_faults()
    later(rig)
    assert_refunded(rig, payment.tx_id)
    refunds = desk(rig).orders()["refunds"]
    assert [r["state"] for r in refunds] == ["failed", "succeeded"]
    assert len({r["key"] for r in refunds}) == 2
    assert rig.terminal.qr_payment(payment.tx_id).outcome.outcome is TxOutcome.REFUNDED  # type: ignore[union-attr]


def test_a_posting_in_doubt_is_settled_by_status_and_posted_once(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    payment = start_bill(rig)
    rig.platform.set_faults(["post:timeout_after_commit:sleep_ms=800", "status:error:count=1"])
    in_doubt = rig.terminal.present_payment_code(payment.tx_id, WECHAT_CODE)
    assert in_doubt.stage is QrStage.IN_DOUBT
    rig.platform.clear_faults()
    later(rig)
    row = engine_of(rig.terminal).store.get(payment.tx_id)
    assert row.tx_state is TxState.CLOSED and row.outcome == "paid"
    assert close_of(rig, payment.tx_id)["awaiting_claim"] is True
    assert len(payments(rig)) == 1


def test_a_card_top_up_by_qr_writes_the_card_after_the_posting(
    terminal_rig: TerminalRig,
) -> None:
    from tests.test_card_topup import new_card

    rig = terminal_rig
    card_no = new_card(rig)
    payment = rig.terminal.start_card_topup_by_qr("power-card", 50_00)
    done = rig.terminal.present_payment_code(payment.tx_id, WECHAT_CODE)
    assert_paid(rig, done, "wechat")
    assert done.outcome is not None and done.outcome.card_credit == "written"
    assert rig.sims.cards.card(card_no).balance_fen == 50_00


# ---------------------------------------------------------------------- kill -9


class Killed(BaseException):
    """What a kill -9 does to the process at this instant: nothing after it runs."""


def kill_at(rig: TerminalRig, monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """The terminal dies just as it calls the platform's method (its intent committed)."""

    def die(*args: Any, **kwargs: Any) -> Any:
        raise Killed(method)

    monkeypatch.setattr(rig.terminal.platform, method, die)


def test_killed_before_the_first_order_request_fences_the_key(
    terminal_rig: TerminalRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = terminal_rig
    kill_at(rig, monkeypatch, "create_order")
    with pytest.raises(Killed):
        rig.terminal.pay_bill_by_qr(quote(rig, "water-bill"))
    monkeypatch.undo()
    [row] = engine_of(rig.terminal).store.open_transactions()
    assert row.tx_state is TxState.AWAITING_PAYMENT and row.order_key
    rig.crash_and_restart()
    closed = engine_of(rig.terminal).store.get(row.tx_id)
    assert closed.tx_state is TxState.CLOSED and closed.outcome == "cancelled"
    assert desk(rig).order(row.order_key)["state"] == "closed"  # fenced


def test_killed_while_waiting_then_paid_before_the_restart_refunds(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    payment = start_bill(rig)
    desk(rig).resident_pays(order_key(rig, payment.tx_id), "unionpay")
    rig.crash_and_restart()
    close = assert_refunded(rig, payment.tx_id)
    assert close["paid_with"] == "unionpay" and close["reason"] == (
        "paid after the resident left the screen: refunded to the wallet"
    )


def test_killed_while_waiting_unpaid_cancels(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    payment = start_bill(rig)
    rig.crash_and_restart()
    assert close_of(rig, payment.tx_id)["outcome"] == "cancelled"
    assert desk(rig).order(order_key(rig, payment.tx_id))["state"] == "closed"


def test_killed_with_the_posting_sent_completes_it_once(
    terminal_rig: TerminalRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = terminal_rig
    payment = start_bill(rig)
    rig.platform.set_faults(["post:timeout_after_commit:sleep_ms=800"])
    real_status = rig.terminal.platform.payment_status
    kill_at(rig, monkeypatch, "payment_status")
    with pytest.raises(Killed):
        rig.terminal.present_payment_code(payment.tx_id, WECHAT_CODE)
    monkeypatch.undo()
    assert real_status is not None
    rig.platform.clear_faults()
    assert engine_of(rig.terminal).store.get(payment.tx_id).tx_state is TxState.POSTING
    rig.crash_and_restart()
    row = engine_of(rig.terminal).store.get(payment.tx_id)
    assert row.tx_state is TxState.CLOSED and row.outcome == "paid"
    assert len(payments(rig)) == 1


def test_killed_before_the_posting_was_sent_posts_it_after_the_restart_or_refunds(
    terminal_rig: TerminalRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = terminal_rig
    payment = start_bill(rig)
    kill_at(rig, monkeypatch, "post_payment")
    with pytest.raises(Killed):
        rig.terminal.present_payment_code(payment.tx_id, WECHAT_CODE)
    monkeypatch.undo()
    rig.crash_and_restart()
    # Never sent: status says not_found, the key is fenced and the order refunded.
    assert_refunded(rig, payment.tx_id)
    assert payments(rig) == []


def test_killed_while_refunding_refunds_once_after_the_restart(
    terminal_rig: TerminalRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = terminal_rig
    payment = start_bill(rig)
    rig.platform.set_faults(["post:refuse:code=bill_already_paid:status=409"])
    kill_at(rig, monkeypatch, "refund_order")
    with pytest.raises(Killed):
        rig.terminal.present_payment_code(payment.tx_id, WECHAT_CODE)
    monkeypatch.undo()
    rig.platform.clear_faults()
    row = engine_of(rig.terminal).store.get(payment.tx_id)
    assert row.tx_state is TxState.REFUNDING and row.refund_key is not None
    rig.crash_and_restart()
    assert_refunded(rig, payment.tx_id)
    assert len(desk(rig).orders()["refunds"]) == 1


def papers(rig: TerminalRig) -> int:
    return sum(1 for p in rig.sims.printer.out_dir.iterdir() if p.suffix == ".txt")


def test_the_screen_polling_a_payment_in_doubt_prints_its_interim_slip_once(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    payment = start_bill(rig)
    rig.platform.set_faults(["post:timeout_after_commit:sleep_ms=800", "status:error"])
    in_doubt = rig.terminal.present_payment_code(payment.tx_id, WECHAT_CODE)
    assert in_doubt.stage is QrStage.IN_DOUBT and in_doubt.outcome is not None
    assert in_doubt.outcome.printed
    slip = " ".join(rig.last_paper().split())
    assert "do not pay again" in slip and "goes back to your phone" in slip
    assert "手机已付款项将原路退回" in slip.replace(" ", "") and "Cash received" not in slip
    printed = papers(rig)
    for _ in range(3):
        assert rig.terminal.qr_payment(payment.tx_id).stage is QrStage.IN_DOUBT
    assert papers(rig) == printed
    rig.platform.clear_faults()
    later(rig)
    assert rig.terminal.qr_payment(payment.tx_id).stage is QrStage.DONE
    assert len(payments(rig)) == 1


# ---------------------------------------------------------------------- the runtime and scanner


def test_the_runtime_hands_scanned_codes_to_the_screens_only_while_a_payment_waits(
    terminal_rig: TerminalRig,
) -> None:
    from kiosk.events import Event
    from kiosk.runtime import Cadence, Runtime, RuntimeEvent
    from simulators.scanner import SimulatedScanner, garbled, sample_code

    rig = terminal_rig
    scanner = SimulatedScanner()  # the scanner simulator: no real one can run here
    rig.terminal.scanner = scanner
    seen: list[Event] = []
    rig.terminal.events.subscribe(seen.append)
    runtime = Runtime(rig.terminal, started=True, cadence=Cadence(platform_call_s=1.0))

    def scanned() -> list[str]:
        return [e.data["code"] for e in seen if e.kind == RuntimeEvent.PAYMENT_CODE_SCANNED]

    scanner.scan(sample_code())  # no payment waits: read and dropped
    runtime.turn()
    assert scanned() == []

    payment = start_bill(rig)  # arms the scanner
    code = sample_code(serial=7)
    scanner.scan(garbled(code))
    scanner.scan(code)
    for _ in range(3):
        runtime.turn()
    assert scanned() == [code]
    assert any(e.kind == RuntimeEvent.PAYMENT_CODE_MISREAD for e in seen)
    done = rig.terminal.present_payment_code(payment.tx_id, scanned()[0])
    assert done.stage is QrStage.DONE
    assert any(e.kind == RuntimeEvent.ORDER_PAID for e in seen)

    scanner.scan(sample_code(serial=8))  # paid: the scanner is disarmed again
    runtime.turn()
    assert scanned() == [code]


def test_a_payment_nobody_finished_is_closed_by_housekeeping_after_the_journey_timeout(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    payment = start_bill(rig)
    rig.clock.advance(timedelta(minutes=3))
    rig.terminal.tick()  # the resident may still be at the screen
    assert engine_of(rig.terminal).store.get(payment.tx_id).tx_state is TxState.AWAITING_PAYMENT
    later(rig, minutes=4)
    close = close_of(rig, payment.tx_id)
    assert close["outcome"] == "cancelled" and close["paid_in_fen"] == 0
    assert desk(rig).order(order_key(rig, payment.tx_id))["state"] == "closed"


def test_an_abandoned_payment_found_paid_is_refunded_not_completed(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    desk(rig).set_provider(["provider_timeout:s=600"])  # the platform learns it late
    payment = start_bill(rig)
    later(rig, minutes=7)
    assert_refunded(rig, payment.tx_id)
    assert payments(rig) == []
