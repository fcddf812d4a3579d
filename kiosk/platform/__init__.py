"""The operator platform as the terminal sees it: bill lookup, float, postings, deposits.

kiosk.platform owns the client side of the platform contract (kiosk.platform.models) and
nothing else: it never decides what an unknown outcome means for a customer's money (the
transaction engine does) and never imports the platform simulator.
"""

from kiosk.platform.client import PlatformClient
from kiosk.platform.models import (
    Bill,
    CardCredit,
    Deposit,
    FloatState,
    InsufficientFloat,
    MalformedAnswer,
    PaymentStatus,
    PlatformError,
    PlatformRefused,
    PlatformUnavailable,
    Posting,
    UnknownAccount,
    resident_notice,
)

__all__ = [
    "Bill",
    "CardCredit",
    "Deposit",
    "FloatState",
    "InsufficientFloat",
    "MalformedAnswer",
    "PaymentStatus",
    "PlatformClient",
    "PlatformError",
    "PlatformRefused",
    "PlatformUnavailable",
    "Posting",
    "UnknownAccount",
    "resident_notice",
]
