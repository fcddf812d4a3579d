"""The operator platform as the terminal sees it: bills, float, postings, deposits, vouchers,
payment orders (paying by phone).

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
    MONEY_TAKEN_STATES,
    ORDER_LIFETIME,
    PAYMENT_SPECIFIC_REFUSALS,
    Bill,
    CardCredit,
    CloseReason,
    Deposit,
    FloatState,
    FloatStatement,
    InsufficientFloat,
    MalformedAnswer,
    Order,
    OrderState,
    OutcomeUnknown,
    PaymentState,
    PaymentStatus,
    PlatformError,
    PlatformRefused,
    PlatformUnavailable,
    Posting,
    Refund,
    RefundState,
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
    "MONEY_TAKEN_STATES",
    "ORDER_LIFETIME",
    "PAYMENT_SPECIFIC_REFUSALS",
    "Bill",
    "CardCredit",
    "CloseReason",
    "Deposit",
    "FloatState",
    "FloatStatement",
    "InsufficientFloat",
    "MalformedAnswer",
    "Order",
    "OrderState",
    "OutcomeUnknown",
    "PaymentState",
    "PaymentStatus",
    "PlatformClient",
    "PlatformError",
    "PlatformRefused",
    "PlatformUnavailable",
    "Posting",
    "Refund",
    "RefundState",
    "Refusal",
    "UnknownAccount",
    "UnprovenRefusal",
    "Voucher",
    "VoucherState",
    "resident_notice",
]
