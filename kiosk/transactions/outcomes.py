"""What the engine tells its callers: progress while collecting, the outcome, its refusals.

Also the reasons a transaction did not complete. Each is an English message id (translated
in receipts.po for the receipt and the screen), never a platform's free text: a refusal's
message can carry a full account number, so only its code is journaled.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from kiosk.errors import KioskError
from kiosk.transactions.kinds import CardCreditState, QrStage, TxOutcome


class PaymentRefused(KioskError):
    """A payment cannot start or continue; nothing was taken from the customer."""


class PaymentCodeRefused(KioskError):
    """The platform refused a payment code (declined, already used, another wallet): it was
    not charged and the order stays open for another code or the dynamic code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class NotEnoughCash(KioskError):
    """finish() was asked for before the amount due was inserted."""


class CloseReason(StrEnum):
    """Why a transaction closed without being paid (the tx_close record's `reason`)."""

    CUSTOMER_CANCELLED = "cancelled by the customer"
    ABANDONED = "abandoned: nobody finished the payment"
    RESTART = "interrupted by a restart"
    FLOAT_TOO_LOW = "the station's prepaid float cannot cover this payment"
    PLATFORM_REFUSED = "the operator's platform refused the payment"
    PLATFORM_UNREACHABLE = "operator platform unreachable"
    SIGNER_FAILED = "signature device failed"
    POSTING_REVERSED = "the payment was reversed: it will never be posted"
    CASH_OUTSIDE_PAYMENT = "cash inserted outside a payment"
    CLOCK_WRONG = "the terminal's clock is wrong"
    # Payments by phone (kiosk.transactions.orders):
    ORDER_CLOSED = "the payment order closed unpaid"
    ORDER_CANCELLED_ON_PHONE = "the resident cancelled the payment on the phone"
    ORDER_EXPIRED = "nobody paid the payment order in time"
    PAID_AFTER_LEAVING = "paid after the resident left the screen: refunded to the wallet"


@dataclass(frozen=True)
class Progress:
    tx_id: str
    state: str
    total_due_fen: int
    cash_in_fen: int
    # Notes and coins larger than this are not taken now (None: every denomination).
    largest_fen: int | None = None
    # Something went in that the acceptor could not recognise: the inlets are closed.
    suspense: int = 0

    @property
    def still_due_fen(self) -> int:
        return max(0, self.total_due_fen - self.cash_in_fen)


@dataclass(frozen=True)
class Outcome:
    tx_id: str
    outcome: TxOutcome
    receipt_no: str | None
    record: dict[str, Any] | None
    voucher_fen: int = 0
    credited_fen: int = 0
    card_credit: CardCreditState | None = None
    printed: bool = False
    print_problem: str | None = None
    # What the resident takes away to prove the payment is theirs (reprints, claims).
    token: str | None = None
    # In doubt: the reference and figures of the interim slip (printed when `printed`).
    cash_in_fen: int = 0
    total_due_fen: int = 0
    # Paid by phone: the wallet that paid, and what went back to it (outcome refunded).
    paid_with: str | None = None
    refunded_fen: int = 0


@dataclass(frozen=True)
class QrPayment:
    """A payment by phone as its screen shows it (Terminal.pay_bill_by_qr and the others)."""

    tx_id: str
    amount_fen: int  # what the resident pays: amount + fee
    code_url: str  # the dynamic code's content, to render as a QR code
    expires_at: datetime  # the order's expiry (countdown)
    stage: QrStage
    paid_with: str | None  # "wechat" | "alipay" | "unionpay" once paid
    outcome: Outcome | None  # set when stage is DONE or IN_DOUBT (receipt number etc.)
