"""Paying by phone on the screens: the method choice, the code, waiting, cancel, results.

Owns the resident's side of a payment by phone (issue #21): after a confirmation, cash or
scan to pay (扫码支付) when the terminal can take it; the payment order started through the
terminal (Terminal.pay_bill_by_qr, start_phone_topup_by_qr, start_card_topup_by_qr); the
order asked where it stands every POLL_S on the terminal's thread (CoreWorker, never on
the Kivy thread, one poll at a time); a payment code read by the scanner presented once
(the runtime's PAYMENT_CODE_SCANNED event); the countdown to the order's expiry, at whose
end the order is closed; cancel; and which result screen follows. Amounts and outcomes
come from the core; the journey's state lives in the controller's Journey. No Kivy.
"""

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from kiosk import speech
from kiosk.devices import ScanMisread
from kiosk.payment_codes import PaymentCodeInvalid, PaymentScheme
from kiosk.service_faults import Fault
from kiosk.transactions.kinds import CardCreditState, QrStage, TxOutcome
from kiosk.transactions.outcomes import PaymentCodeRefused, QrPayment
from ui.screen_ids import ScreenId

if TYPE_CHECKING:
    from ui.controller import KioskController

log = logging.getLogger(__name__)

# How often the screen asks the platform where the order stands (one call of the core).
POLL_S = 2.0
# The wallets the aggregated code takes, in the order the screens name them.
WALLETS: dict[PaymentScheme, str] = {
    PaymentScheme.WECHAT: "WeChat Pay",
    PaymentScheme.ALIPAY: "Alipay",
    PaymentScheme.UNIONPAY: "UnionPay",
}
FINAL = frozenset({QrStage.DONE, QrStage.IN_DOUBT})
# Runtime faults that stop payments by phone: every order is a request to the platform.
PLATFORM_FAULTS = frozenset({Fault.PLATFORM_UNREACHABLE, Fault.PLATFORM_REFUSED})


class QrPayments:
    def __init__(self, controller: "KioskController") -> None:
        self.c = controller
        self._poll_due = 0.0  # monotonic time of the next poll
        self._polling = False  # a poll or a presented code is on the terminal's thread
        self._deadline: float | None = None  # monotonic time the order expires

    # ------------------------------------------------------------------ the method

    def offered(self) -> bool:
        """Whether scan to pay is offered: not while the platform is known unreachable or
        refusing this station (the terminal has no call that says so for orders alone)."""
        if self.c.platform_ok is False:
            return False
        return not any(str(fault) in PLATFORM_FAULTS for fault in self.c.terminal.faults)

    def pay(self) -> None:
        """The confirmation's Pay: the method choice, or cash when only cash can be taken."""
        if self.offered():
            self.c.show(ScreenId.PAY_METHOD)
        else:
            self.pay_cash()

    def pay_cash(self) -> None:
        if self.c.journey.quote is not None:
            self.c.resident.confirm_bill()
        else:
            self.c.resident.confirm_topup()

    def wallet_names(self) -> str:
        """The wallets' names in the resident's language: 微信支付、支付宝、云闪付."""
        separator = "、" if self.c.lang == "zh_CN" else ", "
        return separator.join(self.c.t(name) for name in WALLETS.values())

    def wallet_name(self, paid_with: str | None) -> str:
        """The wallet that paid, by name; the scheme's code if the screens do not know it."""
        for scheme, name in WALLETS.items():
            if paid_with == scheme:
                return self.c.t(name)
        return paid_with or ""

    @property
    def scanner_present(self) -> bool:
        return self.c.terminal.scanner is not None

    # ------------------------------------------------------------------ starting

    def pay_by_phone(self) -> None:
        c = self.c
        journey = c.journey
        terminal = c.terminal
        bill, topup = journey.quote, journey.topup

        def start() -> tuple[QrPayment, float]:
            if bill is not None:
                payment = terminal.pay_bill_by_qr(bill)
            else:
                assert topup is not None
                if topup.service.kind == "phone_topup":
                    payment = terminal.start_phone_topup_by_qr(
                        topup.service.code, topup.account, topup.amount_fen
                    )
                else:
                    payment = terminal.start_card_topup_by_qr(topup.service.code, topup.amount_fen)
            return payment, self._seconds_left(payment)

        c.run(start, self._started, busy=c.t("Preparing your payment..."))

    def _seconds_left(self, payment: QrPayment) -> float:
        """On the terminal's thread: seconds to the order's expiry. The expiry is the
        platform's time; the client measures the platform's clock against this machine's
        (clock_skew, from the last answer's Date), so the platform's now is the machine's
        now moved by that skew, and a terminal clock a little off does not change the
        resident's time to pay."""
        now = datetime.now(UTC)
        skew = self.c.terminal.platform.clock_skew()
        if skew is not None:
            now += skew
        return (payment.expires_at - now).total_seconds()

    def _started(self, result: tuple[QrPayment, float]) -> None:
        payment, left = result
        c = self.c
        c.platform_ok = True
        c.journey.qr = payment
        c.journey.qr_error = ""
        c.journey.qr_expired = False
        c.touched()
        self._moved(payment, left)
        if payment.stage not in FINAL:
            c.voice.say(
                speech.clause(speech.Phrase.PLEASE_SCAN, c.lang, amount=payment.amount_fen),
                c.lang,
            )

    # ------------------------------------------------------------------ waiting

    def seconds_left(self) -> float | None:
        """What the countdown shows: seconds until the order expires (None: no order)."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - self.c.monotonic())

    def countdown_text(self) -> str:
        left = self.seconds_left()
        if left is None:
            return ""
        whole = int(left + 0.999)
        return self.c.t("Time left to pay: {minutes}:{seconds:02d}").format(
            minutes=whole // 60, seconds=whole % 60
        )

    def open(self) -> bool:
        """Whether this journey's payment by phone is still open (not final)."""
        qr = self.c.journey.qr
        return qr is not None and qr.stage not in FINAL

    def waiting(self) -> bool:
        """Whether the code's screen shows an open payment (polled, the scanner armed)."""
        return self.c.screen == ScreenId.QR_PAY and self.open()

    def tick(self) -> None:
        """From the controller's tick (a few times a second, main thread): the countdown,
        the next poll, and the order closed when the countdown ran out."""
        if not self.waiting():
            return
        c = self.c
        c.refresh()  # the countdown's live text
        if self._polling or c.journey.finishing:
            return
        left = self.seconds_left()
        if left is not None and left <= 0:
            c.journey.qr_expired = True
            self.cancel()
            return
        now = c.monotonic()
        if now >= self._poll_due:
            self._poll()

    def _poll(self) -> None:
        qr = self.c.journey.qr
        assert qr is not None
        tx_id, terminal = qr.tx_id, self.c.terminal

        def poll() -> tuple[QrPayment, float]:
            payment = terminal.qr_payment(tx_id)
            return payment, self._seconds_left(payment)

        self._polling = True
        self.c.worker.submit(poll, self._answered, self._poll_failed)

    def _answered(self, result: tuple[QrPayment, float]) -> None:
        self._polling = False
        payment, left = result
        qr = self.c.journey.qr
        if qr is None or qr.tx_id != payment.tx_id or qr.stage in FINAL:
            return  # the journey moved on while the answer came
        self._moved(payment, left)

    def _poll_failed(self, error: Exception) -> None:
        # Not a notice: the order stands where it stood; the next poll asks again, and the
        # countdown's end closes the order (a close unanswered leaves the interim slip).
        self._polling = False
        self._poll_due = self.c.monotonic() + POLL_S
        log.info("payment by phone not asked: %s", error)

    def code_scanned(self, code: object) -> None:
        """A payment code read by the scanner while the code's screen waits: present it."""
        qr = self.c.journey.qr
        if not self.waiting() or qr is None or not isinstance(code, str):
            return
        c = self.c
        c.touched()
        c.journey.qr_error = ""
        tx_id, terminal = qr.tx_id, c.terminal

        def present() -> tuple[QrPayment, float]:
            payment = terminal.present_payment_code(tx_id, code)
            return payment, self._seconds_left(payment)

        self._polling = True
        c.worker.submit(present, self._answered, self._code_refused)

    def _code_refused(self, error: Exception) -> None:
        self._polling = False
        c = self.c
        if isinstance(error, PaymentCodeRefused | PaymentCodeInvalid):
            log.info("payment code not taken: %s", error)
            c.journey.qr_error = c.t(
                "Your payment code was not accepted and nothing was charged. Show a new "
                "payment code, or scan the code on the screen."
            )
            c.refresh()
            return
        self._poll_failed(error)

    def code_misread(self) -> None:
        if self.waiting():
            self.c.journey.qr_error = self.c.t(ScanMisread.RESIDENT_NOTICE)
            self.c.refresh()

    # ------------------------------------------------------------------ cancel

    def cancel(self) -> None:
        """The resident cancels (or the countdown ran out): the order is closed. A payment
        that arrived just before the close completes; a close unanswered: the interim slip."""
        c = self.c
        qr = c.journey.qr
        if qr is None or qr.stage in FINAL:
            c.resident.journey_over()
            return
        tx_id, terminal = qr.tx_id, c.terminal
        c.journey.finishing = True

        def cancel() -> tuple[QrPayment, float]:
            payment = terminal.cancel_qr_payment(tx_id)
            return payment, self._seconds_left(payment)

        def cancelled(result: tuple[QrPayment, float]) -> None:
            c.journey.finishing = False
            payment, left = result
            self._moved(payment, left)

        def failed(error: Exception) -> None:
            c.journey.finishing = False
            c.fail(error)

        c.run(cancel, cancelled, busy=c.t("Cancelling..."), failed=failed)

    # ------------------------------------------------------------------ moving on

    def _moved(self, payment: QrPayment, left: float) -> None:
        c = self.c
        journey = c.journey
        journey.qr = payment
        if payment.stage not in FINAL:
            self._deadline = c.monotonic() + left
            self._poll_due = c.monotonic() + POLL_S
            if c.screen != ScreenId.QR_PAY:
                c.show(ScreenId.QR_PAY)
            else:
                c.refresh()
            return
        self._deadline = None
        outcome = payment.outcome
        assert outcome is not None
        journey.outcome = outcome
        if left <= 0 and outcome.outcome == TxOutcome.CANCELLED:
            journey.qr_expired = True
        c.touched()
        if payment.stage is QrStage.IN_DOUBT:
            c.show(ScreenId.QR_IN_DOUBT)
            return
        if outcome.card_credit == CardCreditState.PENDING:
            journey.pending_card_tx = outcome.tx_id
            c.show(ScreenId.CARD_REINSERT)
            return
        self._announce(payment)
        c.show(ScreenId.QR_RESULT)

    def _announce(self, payment: QrPayment) -> None:
        """唱付: what was received by phone and paid, or what goes back to the wallet."""
        c = self.c
        outcome = payment.outcome
        assert outcome is not None
        if outcome.outcome == TxOutcome.PAID:
            said = speech.result_sentence(
                c.lang,
                received_fen=payment.amount_fen,
                paid_fen=payment.amount_fen,
                credited_fen=outcome.credited_fen,
            )
        elif outcome.outcome == TxOutcome.REFUNDED:
            said = speech.clause(speech.Phrase.REFUNDED, c.lang, amount=outcome.refunded_fen)
        else:
            return  # nothing was taken: nothing to announce
        c.voice.say(said, c.lang)
