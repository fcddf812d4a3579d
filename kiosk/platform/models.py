"""The operator platform's wire contract: errors, answer records, endpoints, refusal codes.

Written once for both ends: the terminal's client (kiosk.platform.client) parses answers
with the from_json readers here, and the platform simulator (platform_sim) writes them with
to_json, so the two cannot drift. This module does no I/O and never holds state.

Money is an integer number of fen; a reader refuses a float, a bool or a missing field
as a malformed answer rather than guessing.
"""

import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kiosk.errors import KioskError

SIGNATURE_HEADER = "X-Kiosk-Signature"
# Deposits to the float are at least 500 yuan (seed 002: 每次购买金额不得低于500元).
MIN_DEPOSIT_FEN = 50_000


class Operation(StrEnum):
    """Every platform operation; the value is its name in fault specs and error messages."""

    REGISTER = "register"
    LOOKUP = "lookup"
    HOLD = "hold"
    RELEASE = "release"
    POST = "post"
    AUTHORIZE = "authorize"
    STATUS = "status"
    REVERSE = "reverse"
    FLOAT = "float"
    DEPOSIT = "deposit"
    DEPOSIT_STATUS = "deposit_status"


# Every operation is a POST of one signed JSON object to its path.
PATHS: Mapping[Operation, str] = {
    Operation.REGISTER: "/v1/stations/register",
    Operation.LOOKUP: "/v1/bills/lookup",
    Operation.HOLD: "/v1/float/holds",
    Operation.RELEASE: "/v1/float/holds/release",
    Operation.POST: "/v1/payments",
    Operation.AUTHORIZE: "/v1/card-credits",
    Operation.STATUS: "/v1/payments/status",
    Operation.REVERSE: "/v1/payments/reverse",
    Operation.FLOAT: "/v1/float",
    Operation.DEPOSIT: "/v1/float/deposits",
    Operation.DEPOSIT_STATUS: "/v1/float/deposits/status",
}

# Requests that move money (or fence a key) and so carry an idempotency key.
MONEY_OPERATIONS = frozenset(
    {
        Operation.HOLD,
        Operation.RELEASE,
        Operation.POST,
        Operation.AUTHORIZE,
        Operation.REVERSE,
        Operation.DEPOSIT,
    }
)


class Refusal(StrEnum):
    """The code of a definite refusal (HTTP 4xx); nothing happened on the platform."""

    BAD_REQUEST = "bad_request"
    BAD_SIGNATURE = "bad_signature"
    BAD_CERTIFICATE = "bad_certificate"
    CERTIFICATE_CONFLICT = "certificate_conflict"
    CERTIFICATE_REVOKED = "certificate_revoked"
    NOT_REGISTERED = "not_registered"
    STALE_REQUEST = "stale_request"
    UNKNOWN_BILLER = "unknown_biller"
    UNKNOWN_ACCOUNT = "unknown_account"
    NO_BILL_DUE = "no_bill_due"
    UNKNOWN_BILL = "unknown_bill"
    BILL_ALREADY_PAID = "bill_already_paid"
    INSUFFICIENT_FLOAT = "insufficient_float"
    HOLD_MISSING = "hold_missing"
    HOLD_TOO_SMALL = "hold_too_small"
    KEY_REUSED = "key_reused"
    PAYMENT_REVERSED = "payment_reversed"
    CARD_COUNTER_USED = "card_counter_used"
    DEPOSIT_TOO_SMALL = "deposit_too_small"
    DEPOSIT_NOT_FOUND = "deposit_not_found"


class PlatformError(KioskError):
    """The operator platform could not be used as asked; the message says what to do."""


class PlatformUnavailable(PlatformError):
    """No answer in time, or the connection failed.

    For a money request the outcome is UNKNOWN: resolve it with a status query, never by
    assuming it failed.
    """


class PlatformRefused(PlatformError):
    """A definite refusal by the platform: nothing happened there."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class InsufficientFloat(PlatformRefused):
    """The station's float (balance minus holds) does not cover the amount."""


class UnknownAccount(PlatformRefused):
    """The biller does not know the account, or it has no bill due."""


def refusal_error(code: str, message: str) -> PlatformRefused:
    """The PlatformRefused subclass a refusal code stands for."""
    if code == Refusal.INSUFFICIENT_FLOAT:
        return InsufficientFloat(code, message)
    if code in (Refusal.UNKNOWN_ACCOUNT, Refusal.NO_BILL_DUE):
        return UnknownAccount(code, message)
    return PlatformRefused(code, message)


# What a resident is told, by refusal code (English message ids; Chinese in platform.po).
# Codes not listed here are faults of the terminal or the operator, not of the resident.
RESIDENT_NOTICES: Mapping[str, str] = {
    Refusal.UNKNOWN_ACCOUNT: "The biller does not know this account number. "
    "Please check the number on your bill.",
    Refusal.NO_BILL_DUE: "There is no bill due for this account.",
    Refusal.BILL_ALREADY_PAID: "This bill has already been paid.",
    Refusal.INSUFFICIENT_FLOAT: "This terminal cannot take payments now. "
    "Please ask the station staff or come back later.",
    Refusal.CARD_COUNTER_USED: "This card already has a credit waiting. "
    "Please insert the card again to finish it.",
}
NOTICE_UNAVAILABLE = "The payment service is not answering. Please try again later."
NOTICE_REFUSED = "The payment service refused this request. Please ask the station staff."


def resident_notice(error: PlatformError) -> str:
    """The English message id of the one-time notice a resident sees for this error."""
    if isinstance(error, PlatformRefused):
        return RESIDENT_NOTICES.get(error.code, NOTICE_REFUSED)
    return NOTICE_UNAVAILABLE


# ---------------------------------------------------------------- strict JSON readers


class MalformedAnswer(PlatformError):
    """An answer that does not follow the contract (wrong type, missing field, bad value)."""


def _malformed(record: str, detail: str) -> MalformedAnswer:
    return malformed_answer(f"{record}: {detail}")


def malformed_answer(detail: str) -> MalformedAnswer:
    return MalformedAnswer(
        f"malformed answer from the operator platform ({detail}): report it to the operator"
    )


def read_int(data: Mapping[str, Any], name: str, record: str) -> int:
    value = data.get(name)
    # bool is an int subclass and a float may look whole: both are refused for money.
    if type(value) is not int:
        raise _malformed(record, f"field '{name}' is {value!r}, not a whole number")
    return value


def read_fen(data: Mapping[str, Any], name: str, record: str) -> int:
    value = read_int(data, name, record)
    if value < 0:
        raise _malformed(record, f"field '{name}' is a negative amount {value}")
    return value


def read_str(data: Mapping[str, Any], name: str, record: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise _malformed(record, f"field '{name}' is {value!r}, not a non-empty text")
    return value


def read_optional_str(data: Mapping[str, Any], name: str, record: str) -> str | None:
    if name not in data:
        raise _malformed(record, f"field '{name}' is missing")
    if data[name] is None:
        return None
    return read_str(data, name, record)


def read_choice(data: Mapping[str, Any], name: str, record: str, choices: frozenset[str]) -> str:
    value = read_str(data, name, record)
    if value not in choices:
        raise _malformed(record, f"field '{name}' is {value!r}, not one of {sorted(choices)}")
    return value


# ---------------------------------------------------------------- answer records


@dataclass(frozen=True)
class Bill:
    bill_id: str
    biller: str
    account: str
    holder_masked: str  # the holder's name with all but the surname masked, e.g. 王**
    period: str  # the billing period, YYYY-MM
    amount_due_fen: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Bill":
        return cls(
            bill_id=read_str(data, "bill_id", "bill"),
            biller=read_str(data, "biller", "bill"),
            account=read_str(data, "account", "bill"),
            holder_masked=read_str(data, "holder_masked", "bill"),
            period=read_str(data, "period", "bill"),
            amount_due_fen=read_fen(data, "amount_due_fen", "bill"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "bill_id": self.bill_id,
            "biller": self.biller,
            "account": self.account,
            "holder_masked": self.holder_masked,
            "period": self.period,
            "amount_due_fen": self.amount_due_fen,
        }


@dataclass(frozen=True)
class FloatState:
    balance_fen: int
    held_fen: int

    @property
    def available_fen(self) -> int:
        return self.balance_fen - self.held_fen

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "FloatState":
        state = cls(
            balance_fen=read_fen(data, "balance_fen", "float"),
            held_fen=read_fen(data, "held_fen", "float"),
        )
        if state.available_fen < 0:
            raise _malformed("float", "holds exceed the balance, which the credit line forbids")
        return state

    def to_json(self) -> dict[str, Any]:
        return {"balance_fen": self.balance_fen, "held_fen": self.held_fen}


@dataclass(frozen=True)
class Posting:
    key: str
    ref: str  # the platform's reference, printed on the receipt
    amount_fen: int
    fee_fen: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Posting":
        return cls(
            key=read_str(data, "key", "posting"),
            ref=read_str(data, "ref", "posting"),
            amount_fen=read_fen(data, "amount_fen", "posting"),
            fee_fen=read_fen(data, "fee_fen", "posting"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "ref": self.ref,
            "amount_fen": self.amount_fen,
            "fee_fen": self.fee_fen,
        }


@dataclass(frozen=True)
class CardCredit:
    key: str
    ref: str
    card_no: str
    new_counter: int
    amount_fen: int
    mac: bytes  # hex on the wire

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "CardCredit":
        mac_hex = read_str(data, "mac", "card credit")
        try:
            mac = binascii.unhexlify(mac_hex)
        except (binascii.Error, ValueError):
            raise _malformed("card credit", f"field 'mac' is {mac_hex!r}, not hex") from None
        new_counter = read_int(data, "new_counter", "card credit")
        if new_counter < 1:
            raise _malformed("card credit", f"field 'new_counter' is {new_counter}, below 1")
        return cls(
            key=read_str(data, "key", "card credit"),
            ref=read_str(data, "ref", "card credit"),
            card_no=read_str(data, "card_no", "card credit"),
            new_counter=new_counter,
            amount_fen=read_fen(data, "amount_fen", "card credit"),
            mac=mac,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "ref": self.ref,
            "card_no": self.card_no,
            "new_counter": self.new_counter,
            "amount_fen": self.amount_fen,
            "mac": self.mac.hex(),
        }


PAYMENT_STATES = frozenset({"posted", "not_found", "reversed"})


@dataclass(frozen=True)
class PaymentStatus:
    key: str
    state: str  # "posted" | "not_found" | "reversed"
    ref: str | None  # None when never posted

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PaymentStatus":
        status = cls(
            key=read_str(data, "key", "payment status"),
            state=read_choice(data, "state", "payment status", PAYMENT_STATES),
            ref=read_optional_str(data, "ref", "payment status"),
        )
        if status.state == "posted" and status.ref is None:
            raise _malformed("payment status", "a posted payment has no reference")
        return status

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "state": self.state, "ref": self.ref}


DEPOSIT_STATES = frozenset({"pending", "confirmed"})


@dataclass(frozen=True)
class Deposit:
    key: str
    state: str  # "pending" until the operator confirms it, then "confirmed"
    amount_fen: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Deposit":
        return cls(
            key=read_str(data, "key", "deposit"),
            state=read_choice(data, "state", "deposit", DEPOSIT_STATES),
            amount_fen=read_fen(data, "amount_fen", "deposit"),
        )

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "state": self.state, "amount_fen": self.amount_fen}
