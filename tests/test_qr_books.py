"""Payments by phone in the books (issue #21 item 4): the closing record's payment method,
the receipt and its signed code, the day close split by method, and a float check that
still balances with QR sales in the day (the platform simulator's statement counts float
debits only). The terminal core on simulated devices against the simulator over HTTP."""

import io
from typing import Any

from kiosk.journal import verify_jsonl
from kiosk.operator import Actor, Role
from kiosk.receipts import qr_payload, verify_receipt
from kiosk.settlement.pay_methods import payment_method_split
from kiosk.transactions.kinds import QrStage, TxOutcome
from tests.fixtures.platform import FUNDING_FEN
from tests.fixtures.terminal import STATION, TerminalRig
from tests.test_qr_payments import ALIPAY_CODE, WECHAT_CODE, close_of

OPERATOR = Actor("OP-0007", Role.OPERATOR)
UNIONPAY_CODE = "6212345678901234567"


def sell_by_qr(rig: TerminalRig, amount_fen: int, code: str) -> dict[str, Any]:
    payment = rig.terminal.start_phone_topup_by_qr("mobile-topup", "13800138000", amount_fen)
    done = rig.terminal.present_payment_code(payment.tx_id, code)
    assert done.stage is QrStage.DONE and done.outcome is not None
    return close_of(rig, payment.tx_id)


def sell_in_cash(rig: TerminalRig, amount_fen: int) -> dict[str, Any]:
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", amount_fen)
    rig.insert(progress.tx_id, amount_fen)
    rig.terminal.finish(progress.tx_id)
    return rig.closes()[-1]


def journal_sound(rig: TerminalRig) -> None:
    out = io.StringIO()
    rig.terminal.export_journal(out)
    report = verify_jsonl(out.getvalue().splitlines(keepends=True), rig.signer.certificate_pem())
    assert report.ok, report.problem


def test_a_qr_receipt_names_the_wallet_and_its_signed_code_verifies(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    close = sell_by_qr(rig, 50_00, ALIPAY_CODE)
    assert close["payment_method"] == "qr" and close["paid_with"] == "alipay"
    assert close["turnover_fen"] == 0  # the float paid nothing
    paper = rig.last_paper()
    assert "支付宝" in paper and "Alipay" in paper and close["provider_ref"] in paper
    assert "Cash received" not in paper
    check = verify_receipt(qr_payload(close), rig.signer.certificate_pem())
    assert check.genuine, check.problem
    assert check.record is not None and check.record["paid_in_fen"] == 50_00
    cash = sell_in_cash(rig, 10_00)
    assert cash["payment_method"] == "cash" and cash["turnover_fen"] == 10_00
    journal_sound(rig)


def test_a_refund_receipt_says_the_money_went_back_to_the_wallet(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    payment = rig.terminal.start_phone_topup_by_qr("mobile-topup", "13800138000", 30_00)
    rig.platform.set_faults(["post:refuse:code=no_bill_due:status=404"])
    done = rig.terminal.present_payment_code(payment.tx_id, WECHAT_CODE)
    assert done.outcome is not None and done.outcome.outcome is TxOutcome.REFUNDED
    paper = rig.last_paper()
    assert "全部款项已退回您的微信支付" in paper and "your WeChat Pay" in paper
    assert "Voucher" not in paper
    close = close_of(rig, payment.tx_id)
    check = verify_receipt(qr_payload(close), rig.signer.certificate_pem())
    assert check.genuine, check.problem


def test_the_day_close_splits_cash_and_each_wallet_and_the_float_still_balances(
    terminal_rig: TerminalRig,
) -> None:
    rig, desk = terminal_rig, terminal_rig.terminal.operator
    sell_in_cash(rig, 20_00)
    sell_by_qr(rig, 50_00, WECHAT_CODE)
    sell_by_qr(rig, 30_00, ALIPAY_CODE)
    sell_by_qr(rig, 10_00, UNIONPAY_CODE)
    refunded = rig.terminal.start_phone_topup_by_qr("mobile-topup", "13800138000", 40_00)
    rig.platform.set_faults(["post:refuse:code=no_bill_due:status=404"])
    rig.terminal.present_payment_code(refunded.tx_id, "134567890123450000")
    rig.platform.clear_faults()

    result = desk.close_day(actor=OPERATOR)
    day = result.record
    methods = day["payment_methods"]
    assert methods["cash"] == {"count": 1, "amount_fen": 20_00, "fee_fen": 0}
    assert methods["qr:wechat"]["amount_fen"] == 50_00
    assert methods["qr:alipay"]["amount_fen"] == 30_00
    assert methods["qr:unionpay"]["amount_fen"] == 10_00
    assert day["qr_refunded_fen"] == 40_00
    assert day["paid_count"] == 4 and day["paid_fen"] == 110_00
    # The float paid only the cash sale: the QR postings were funded by their orders.
    assert day["own_debits_fen"] == day["debits_fen"] == 20_00
    assert day["balanced"] is True and day["float_difference_fen"] == 0
    assert day["platform_float_fen"] == FUNDING_FEN - 20_00 == rig.platform.balance_fen(STATION)
    sheet = rig.last_paper()
    assert "微信支付" in sheet and "Paid by Alipay" in sheet and "原路退款" in sheet
    journal_sound(rig)


def test_the_split_is_recomputed_from_closes_and_old_closes_are_cash() -> None:
    day = "2026-11-23"
    closes = [
        {"business_day": day, "outcome": "paid", "amount_fen": 100, "fee_fen": 1},
        {
            "business_day": day,
            "outcome": "paid",
            "amount_fen": 200,
            "fee_fen": 0,
            "payment_method": "qr",
            "paid_with": "wechat",
            "refunded_fen": 0,
        },
        {
            "business_day": day,
            "outcome": "refunded",
            "amount_fen": 0,
            "fee_fen": 0,
            "payment_method": "qr",
            "paid_with": "alipay",
            "refunded_fen": 300,
        },
        {"business_day": "2026-11-22", "outcome": "paid", "amount_fen": 9, "fee_fen": 0},
    ]
    split = payment_method_split(closes, day)
    assert split["payment_methods"] == {
        "cash": {"count": 1, "amount_fen": 100, "fee_fen": 1},
        "qr:wechat": {"count": 1, "amount_fen": 200, "fee_fen": 0},
    }
    assert split["qr_refunded_fen"] == 300
