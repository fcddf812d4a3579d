"""What the engine tells its callers: progress while collecting, the outcome, its refusals.

Also the reasons a transaction did not complete. Each is an English message id (translated
in receipts.po for the receipt and the screen), never a platform's free text: a refusal's
message can carry a full account number, so only its code is journaled.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kiosk.errors import KioskError
from kiosk.transactions.kinds import CardCreditState, TxOutcome


class PaymentRefused(KioskError):
    """A payment cannot start or continue; nothing was taken from the customer."""


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
