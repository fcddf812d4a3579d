"""The operator platform as the terminal sees it: bills, float, postings, deposits, vouchers.

kiosk.platform owns the client side of the platform contract (kiosk.platform.models) and
nothing else: it never decides what an unknown outcome means for a customer's money (the
transaction engine does) and never imports the platform simulator.

Errors come in two groups by what they prove: PlatformRefused (with InsufficientFloat and
UnknownAccount) says the request was not carried out; OutcomeUnknown (PlatformUnavailable,
MalformedAnswer, UnprovenRefusal) says it may have been.
"""

from kiosk.platform.client import PlatformClient
from kiosk.platform.models import (
    HOLD_LIFETIME,
    MAX_CLOCK_SKEW,
    PAYMENT_SPECIFIC_REFUSALS,
    Bill,
    CardCredit,
    Deposit,
    FloatState,
    FloatStatement,
    InsufficientFloat,
    MalformedAnswer,
    OutcomeUnknown,
    PaymentState,
    PaymentStatus,
    PlatformError,
    PlatformRefused,
    PlatformUnavailable,
    Posting,
    Refusal,
    UnknownAccount,
    UnprovenRefusal,
    Voucher,
    VoucherState,
    resident_notice,
)

__all__ = [
    "HOLD_LIFETIME",
    "MAX_CLOCK_SKEW",
    "PAYMENT_SPECIFIC_REFUSALS",
    "Bill",
    "CardCredit",
    "Deposit",
    "FloatState",
    "FloatStatement",
    "InsufficientFloat",
    "MalformedAnswer",
    "OutcomeUnknown",
    "PaymentState",
    "PaymentStatus",
    "PlatformClient",
    "PlatformError",
    "PlatformRefused",
    "PlatformUnavailable",
    "Posting",
    "Refusal",
    "UnknownAccount",
    "UnprovenRefusal",
    "Voucher",
    "VoucherState",
    "resident_notice",
]
