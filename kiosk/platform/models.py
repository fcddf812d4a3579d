"""The operator platform's wire contract: errors, answer records, endpoints, refusal codes.

Written once for both ends: the terminal's client (kiosk.platform.client) parses answers
with the from_json readers here, and the platform simulator (platform_sim) writes them with
to_json, so the two cannot drift. This module does no I/O and never holds state.

Money is an integer number of fen; a reader refuses a float, a bool or a missing field
as a malformed answer rather than guessing.

Errors are grouped by what they prove (docs/platform-api.md, "What an error proves"):
PlatformRefused says the request was NOT carried out; OutcomeUnknown says it may or may
not have been. Money code branches on these two groups, never on a list of classes.
"""

import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from kiosk.clock import iso
from kiosk.errors import KioskError
from kiosk.payment_codes import PaymentScheme

SIGNATURE_HEADER = "X-Kiosk-Signature"
# Deposits to the float are at least 500 yuan (seed 002: 每次购买金额不得低于500元).
MIN_DEPOSIT_FEN = 50_000
# The number of the postal outlet's deposit slip (存款凭证, seed 002: kept for checking):
# letters, digits and '-', 4 to 32 of them, as printed on the slip.
SLIP_NO_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{3,31}\Z")
# A request_time further than this from the platform's clock is refused (stale_request).
MAX_CLOCK_SKEW = timedelta(minutes=15)
# How long a float hold lives on the platform unless released or consumed first.
HOLD_LIFETIME = timedelta(minutes=30)


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
    # Payment orders: the resident pays by phone (docs/platform-api.md, "Payment orders").
    ORDER_CREATE = "order_create"
    ORDER_PAY = "order_pay"
    ORDER_STATUS = "order_status"
    ORDER_CLOSE = "order_close"
    ORDER_REFUND = "order_refund"
    REFUND_STATUS = "refund_status"
    FLOAT = "float"
    DEPOSIT = "deposit"
    DEPOSIT_STATUS = "deposit_status"
    VOUCHER_ISSUE = "voucher_issue"
    VOUCHER_REDEEM = "voucher_redeem"
    VOUCHER_STATUS = "voucher_status"
    STATEMENT = "statement"


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
    Operation.ORDER_CREATE: "/v1/orders",
    Operation.ORDER_PAY: "/v1/orders/pay",
    Operation.ORDER_STATUS: "/v1/orders/status",
    Operation.ORDER_CLOSE: "/v1/orders/close",
    Operation.ORDER_REFUND: "/v1/orders/refunds",
    Operation.REFUND_STATUS: "/v1/orders/refunds/status",
    Operation.FLOAT: "/v1/float",
    Operation.DEPOSIT: "/v1/float/deposits",
    Operation.DEPOSIT_STATUS: "/v1/float/deposits/status",
    Operation.VOUCHER_ISSUE: "/v1/vouchers",
    Operation.VOUCHER_REDEEM: "/v1/vouchers/redeem",
    Operation.VOUCHER_STATUS: "/v1/vouchers/status",
    Operation.STATEMENT: "/v1/float/statement",
}

# Requests that move money (or fence a key) and so carry an idempotency key.
MONEY_OPERATIONS = frozenset(
    {
        Operation.HOLD,
        Operation.RELEASE,
        Operation.POST,
        Operation.AUTHORIZE,
        Operation.REVERSE,
        Operation.ORDER_CREATE,
        Operation.ORDER_PAY,
        Operation.ORDER_CLOSE,
        Operation.ORDER_REFUND,
        Operation.DEPOSIT,
        Operation.VOUCHER_ISSUE,
        Operation.VOUCHER_REDEEM,
    }
)


class Refusal(StrEnum):
    """The code of a refusal (HTTP 4xx); what each one proves is in docs/platform-api.md."""

    BAD_REQUEST = "bad_request"
    BAD_SIGNATURE = "bad_signature"
    BAD_CERTIFICATE = "bad_certificate"
    CERTIFICATE_CONFLICT = "certificate_conflict"
    CERTIFICATE_REVOKED = "certificate_revoked"
    NOT_REGISTERED = "not_registered"
    STALE_REQUEST = "stale_request"
    RATE_LIMITED = "rate_limited"  # sent by the operator's gateway, never by the ledger
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
    ORDER_CLOSED = "order_closed"
    ORDER_PENDING = "order_pending"
    METHOD_MISMATCH = "method_mismatch"
    PAYMENT_DECLINED = "payment_declined"
    AUTH_CODE_INVALID = "auth_code_invalid"
    ORDER_NOT_FOUND = "order_not_found"
    ORDER_NOT_PAID = "order_not_paid"
    ORDER_ALREADY_REFUNDED = "order_already_refunded"
    REFUND_AMOUNT_MISMATCH = "refund_amount_mismatch"
    REFUND_NOT_FOUND = "refund_not_found"
    # A posting funded by a payment order (order_key): the order is not usable for it.
    ORDER_USED = "order_used"
    ORDER_AMOUNT_MISMATCH = "order_amount_mismatch"
    DEPOSIT_TOO_SMALL = "deposit_too_small"
    DEPOSIT_NOT_FOUND = "deposit_not_found"
    SLIP_ALREADY_RECORDED = "slip_already_recorded"
    VOUCHER_NOT_FOUND = "voucher_not_found"
    VOUCHER_ALREADY_REDEEMED = "voucher_already_redeemed"
    VOUCHER_EXPIRED = "voucher_expired"
    VOUCHER_AMOUNT_MISMATCH = "voucher_amount_mismatch"


# The HTTP status the platform answers each refusal with.
REFUSAL_HTTP_STATUS: Mapping[str, HTTPStatus] = {
    Refusal.BAD_REQUEST: HTTPStatus.BAD_REQUEST,
    Refusal.BAD_SIGNATURE: HTTPStatus.UNAUTHORIZED,
    Refusal.BAD_CERTIFICATE: HTTPStatus.BAD_REQUEST,
    Refusal.CERTIFICATE_CONFLICT: HTTPStatus.CONFLICT,
    Refusal.CERTIFICATE_REVOKED: HTTPStatus.FORBIDDEN,
    Refusal.NOT_REGISTERED: HTTPStatus.FORBIDDEN,
    Refusal.STALE_REQUEST: HTTPStatus.BAD_REQUEST,
    Refusal.RATE_LIMITED: HTTPStatus.TOO_MANY_REQUESTS,
    Refusal.UNKNOWN_BILLER: HTTPStatus.NOT_FOUND,
    Refusal.UNKNOWN_ACCOUNT: HTTPStatus.NOT_FOUND,
    Refusal.NO_BILL_DUE: HTTPStatus.NOT_FOUND,
    Refusal.UNKNOWN_BILL: HTTPStatus.CONFLICT,
    Refusal.BILL_ALREADY_PAID: HTTPStatus.CONFLICT,
    Refusal.INSUFFICIENT_FLOAT: HTTPStatus.UNPROCESSABLE_ENTITY,
    Refusal.HOLD_MISSING: HTTPStatus.CONFLICT,
    Refusal.HOLD_TOO_SMALL: HTTPStatus.UNPROCESSABLE_ENTITY,
    Refusal.KEY_REUSED: HTTPStatus.CONFLICT,
    Refusal.PAYMENT_REVERSED: HTTPStatus.CONFLICT,
    Refusal.CARD_COUNTER_USED: HTTPStatus.CONFLICT,
    Refusal.ORDER_CLOSED: HTTPStatus.CONFLICT,
    Refusal.ORDER_PENDING: HTTPStatus.CONFLICT,
    Refusal.METHOD_MISMATCH: HTTPStatus.CONFLICT,
    Refusal.PAYMENT_DECLINED: HTTPStatus.UNPROCESSABLE_ENTITY,
    Refusal.AUTH_CODE_INVALID: HTTPStatus.UNPROCESSABLE_ENTITY,
    Refusal.ORDER_NOT_FOUND: HTTPStatus.NOT_FOUND,
    Refusal.ORDER_NOT_PAID: HTTPStatus.CONFLICT,
    Refusal.ORDER_ALREADY_REFUNDED: HTTPStatus.CONFLICT,
    Refusal.REFUND_AMOUNT_MISMATCH: HTTPStatus.CONFLICT,
    Refusal.REFUND_NOT_FOUND: HTTPStatus.NOT_FOUND,
    Refusal.ORDER_USED: HTTPStatus.CONFLICT,
    Refusal.ORDER_AMOUNT_MISMATCH: HTTPStatus.CONFLICT,
    Refusal.DEPOSIT_TOO_SMALL: HTTPStatus.UNPROCESSABLE_ENTITY,
    Refusal.DEPOSIT_NOT_FOUND: HTTPStatus.NOT_FOUND,
    Refusal.SLIP_ALREADY_RECORDED: HTTPStatus.CONFLICT,
    Refusal.VOUCHER_NOT_FOUND: HTTPStatus.NOT_FOUND,
    Refusal.VOUCHER_ALREADY_REDEEMED: HTTPStatus.CONFLICT,
    Refusal.VOUCHER_EXPIRED: HTTPStatus.GONE,
    Refusal.VOUCHER_AMOUNT_MISMATCH: HTTPStatus.CONFLICT,
}

# The refusals that prove the platform examined THIS key's request and did not (and, by
# idempotency, never will) carry it out: the platform decides each of them only after it
# looked the key up, so a request already carried out under the key would have been
# answered with its first answer instead. Anything else (the envelope, the signature, the
# clock, a gateway, key_reused, a code this terminal does not know) is decided before or
# apart from that lookup and proves nothing about an earlier attempt. Reasoning per code:
# docs/platform-api.md, "What an error proves".
PAYMENT_SPECIFIC_REFUSALS: frozenset[str] = frozenset(
    {
        Refusal.UNKNOWN_BILLER,
        Refusal.UNKNOWN_ACCOUNT,
        Refusal.NO_BILL_DUE,
        Refusal.UNKNOWN_BILL,
        Refusal.BILL_ALREADY_PAID,
        Refusal.INSUFFICIENT_FLOAT,
        Refusal.HOLD_MISSING,
        Refusal.HOLD_TOO_SMALL,
        Refusal.PAYMENT_REVERSED,
        Refusal.CARD_COUNTER_USED,
        # Payment orders: each is decided after the order (or refund) key and, for a
        # payment code, this code's attempt on the order were looked up.
        Refusal.ORDER_CLOSED,
        Refusal.ORDER_PENDING,
        Refusal.METHOD_MISMATCH,
        Refusal.PAYMENT_DECLINED,
        Refusal.AUTH_CODE_INVALID,
        Refusal.ORDER_NOT_FOUND,
        Refusal.ORDER_NOT_PAID,
        Refusal.ORDER_ALREADY_REFUNDED,
        Refusal.REFUND_AMOUNT_MISMATCH,
        Refusal.REFUND_NOT_FOUND,
        # A posting funded by an order: decided after the payment key was looked up.
        Refusal.ORDER_USED,
        Refusal.ORDER_AMOUNT_MISMATCH,
        Refusal.DEPOSIT_TOO_SMALL,
        Refusal.DEPOSIT_NOT_FOUND,
        Refusal.SLIP_ALREADY_RECORDED,
        Refusal.VOUCHER_NOT_FOUND,
        Refusal.VOUCHER_ALREADY_REDEEMED,
        Refusal.VOUCHER_EXPIRED,
        Refusal.VOUCHER_AMOUNT_MISMATCH,
    }
)


# ---------------------------------------------------------------- errors, by what they prove


class PlatformError(KioskError):
    """The operator platform could not be used as asked; the message says what to do."""


class OutcomeUnknown(PlatformError):
    """The request may or may not have been carried out.

    For a money request, resolve it with a status query (payment_status, voucher_status,
    deposit_status), never by assuming it failed or succeeded.
    """


class PlatformUnavailable(OutcomeUnknown):
    """No answer in time, the connection failed, or an HTTP 5xx answer."""


class MalformedAnswer(OutcomeUnknown):
    """An answer that breaks the contract: wrong type, missing field, a gateway's page, or
    amounts that are not the ones sent. In doubt: alert, and resolve by status."""


class UnprovenRefusal(OutcomeUnknown):
    """A refusal that proves nothing: an earlier attempt of the same money request got no
    answer (and may have been carried out), and this refusal's code is not one of
    PAYMENT_SPECIFIC_REFUSALS (a gateway, the clock, the signature, key_reused...)."""

    def __init__(self, code: str, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


class PlatformRefused(PlatformError):
    """A refusal that proves this request was not carried out on the platform."""

    def __init__(self, code: str, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status  # None when refused by the client before sending


class InsufficientFloat(PlatformRefused):
    """The station's float (balance minus holds) does not cover the amount."""


class UnknownAccount(PlatformRefused):
    """The biller does not know the account, or it has no bill due."""


def refusal_error(code: str, message: str, http_status: int | None = None) -> PlatformRefused:
    """The PlatformRefused subclass a refusal code stands for."""
    if code == Refusal.INSUFFICIENT_FLOAT:
        return InsufficientFloat(code, message, http_status)
    if code in (Refusal.UNKNOWN_ACCOUNT, Refusal.NO_BILL_DUE):
        return UnknownAccount(code, message, http_status)
    return PlatformRefused(code, message, http_status)


# What a resident (or the station operator paying out a voucher) is told, by refusal code
# (English message ids; Chinese in platform.po). Codes not listed here are faults of the
# terminal or the operator, not of the resident.
RESIDENT_NOTICES: Mapping[str, str] = {
    Refusal.UNKNOWN_ACCOUNT: "The biller does not know this account number. "
    "Please check the number on your bill.",
    Refusal.NO_BILL_DUE: "There is no bill due for this account.",
    Refusal.BILL_ALREADY_PAID: "This bill has already been paid.",
    Refusal.INSUFFICIENT_FLOAT: "This terminal cannot take payments now. "
    "Please ask the station staff or come back later.",
    Refusal.CARD_COUNTER_USED: "This card already has a credit waiting. "
    "Please insert the card again to finish it.",
    Refusal.VOUCHER_NOT_FOUND: "This voucher is not known at this station. "
    "Please check the voucher number.",
    Refusal.VOUCHER_ALREADY_REDEEMED: "This voucher has already been paid out.",
    Refusal.VOUCHER_EXPIRED: "This voucher has expired. Please ask the station staff.",
    Refusal.VOUCHER_AMOUNT_MISMATCH: "The amount does not match this voucher. "
    "Please ask the station staff.",
    Refusal.PAYMENT_DECLINED: "Your wallet declined the payment. "
    "Please check its balance, or pay another way.",
    Refusal.AUTH_CODE_INVALID: "This payment code has expired or was already used. "
    "Please refresh the payment code in your wallet and scan it again.",
    Refusal.METHOD_MISMATCH: "This payment code is not from the wallet you chose. "
    "Please show the payment code of that wallet.",
    Refusal.ORDER_PENDING: "A payment is waiting for you to confirm it on your phone. "
    "Please confirm or cancel it there first.",
    Refusal.ORDER_CLOSED: "This payment was cancelled and cannot be paid any more. "
    "Please start again.",
}
NOTICE_UNAVAILABLE = "The payment service is not answering. Please try again later."
NOTICE_REFUSED = "The payment service refused this request. Please ask the station staff."


def resident_notice(error: PlatformError) -> str:
    """The English message id of the one-time notice a resident sees for this error."""
    if isinstance(error, PlatformRefused):
        return RESIDENT_NOTICES.get(error.code, NOTICE_REFUSED)
    return NOTICE_UNAVAILABLE


# ---------------------------------------------------------------- strict JSON readers


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


def read_optional_fen(data: Mapping[str, Any], name: str, record: str) -> int | None:
    if name not in data:
        raise _malformed(record, f"field '{name}' is missing")
    return None if data[name] is None else read_fen(data, name, record)


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


def read_date(data: Mapping[str, Any], name: str, record: str) -> date:
    text = read_str(data, name, record)
    try:
        # fromisoformat alone would also take "20260501"; the wire form is YYYY-MM-DD.
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise _malformed(record, f"field '{name}' is {text!r}, not a date YYYY-MM-DD") from None


def read_optional_time(data: Mapping[str, Any], name: str, record: str) -> datetime | None:
    text = read_optional_str(data, name, record)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _malformed(record, f"field '{name}' is {text!r}, not an ISO 8601 time with offset")
    return moment


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
    fee_fen: int
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
            fee_fen=read_fen(data, "fee_fen", "card credit"),
            mac=mac,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "ref": self.ref,
            "card_no": self.card_no,
            "new_counter": self.new_counter,
            "amount_fen": self.amount_fen,
            "fee_fen": self.fee_fen,
            "mac": self.mac.hex(),
        }


class PaymentState(StrEnum):
    POSTED = "posted"
    REVERSED = "reversed"  # reversed after posting, or fenced before any posting arrived
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class PaymentStatus:
    """What the platform knows of a payment key.

    ref, amount_fen and fee_fen are those of the key's posting, and None when the key was
    never posted (not_found, or reversed before any posting arrived).
    """

    key: str
    state: PaymentState
    ref: str | None
    amount_fen: int | None = None
    fee_fen: int | None = None

    @property
    def was_posted(self) -> bool:
        return self.ref is not None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PaymentStatus":
        record = "payment status"
        states = frozenset(PaymentState)
        status = cls(
            key=read_str(data, "key", record),
            state=PaymentState(read_choice(data, "state", record, states)),
            ref=read_optional_str(data, "ref", record),
            amount_fen=read_optional_fen(data, "amount_fen", record),
            fee_fen=read_optional_fen(data, "fee_fen", record),
        )
        if status.state is PaymentState.POSTED and status.ref is None:
            raise _malformed(record, "a posted payment has no reference")
        if status.state is PaymentState.NOT_FOUND and status.ref is not None:
            raise _malformed(record, f"a payment not found has the reference {status.ref!r}")
        if (status.amount_fen is None, status.fee_fen is None) != (
            not status.was_posted,
            not status.was_posted,
        ):
            raise _malformed(record, "amount and fee must be given exactly when it was posted")
        return status

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "state": str(self.state),
            "ref": self.ref,
            "amount_fen": self.amount_fen,
            "fee_fen": self.fee_fen,
        }


DEPOSIT_STATES = frozenset({"pending", "confirmed"})


@dataclass(frozen=True)
class Deposit:
    key: str
    state: str  # "pending" until the operator confirms it, then "confirmed"
    amount_fen: int
    slip_no: str  # the postal outlet's deposit slip (存款凭证)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Deposit":
        slip_no = read_str(data, "slip_no", "deposit")
        if not SLIP_NO_PATTERN.match(slip_no):
            raise _malformed("deposit", f"field 'slip_no' is {slip_no!r}, not a slip number")
        return cls(
            key=read_str(data, "key", "deposit"),
            state=read_choice(data, "state", "deposit", DEPOSIT_STATES),
            amount_fen=read_fen(data, "amount_fen", "deposit"),
            slip_no=slip_no,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "state": self.state,
            "amount_fen": self.amount_fen,
            "slip_no": self.slip_no,
        }


@dataclass(frozen=True)
class FloatStatement:
    """The station's float account as the platform keeps it, read in one transaction.

    Every figure but the balance and holds is cumulative since the station's account was
    opened: the terminal subtracts two statements to learn what moved between them, so
    nothing depends on when each was read (docs/platform-api.md, "Statement").
    opening_fen: the balance the account was opened with (0: the credit line is zero; a
    balance carried over from an earlier system otherwise); deposits_fen: confirmed
    deposits; debits_fen: amount + fee of every posting; refunds_fen: amount + fee of the
    postings reversed after posting; terminal_*: the same for the asking terminal only;
    vouchers_outstanding_fen: vouchers of the station registered and neither redeemed nor
    expired. The balance is opening + deposits - debits + refunds, always.
    """

    balance_fen: int
    held_fen: int
    opening_fen: int
    deposits_fen: int
    debits_fen: int
    refunds_fen: int
    terminal_debits_fen: int
    terminal_refunds_fen: int
    vouchers_outstanding_fen: int

    @property
    def available_fen(self) -> int:
        return self.balance_fen - self.held_fen

    @property
    def float_state(self) -> FloatState:
        return FloatState(self.balance_fen, self.held_fen)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "FloatStatement":
        names = [field for field in cls.__dataclass_fields__]
        statement = cls(**{name: read_fen(data, name, "statement") for name in names})
        if statement.available_fen < 0:
            raise _malformed("statement", "holds exceed the balance, which the credit line forbids")
        moved = (
            statement.opening_fen
            + statement.deposits_fen
            - statement.debits_fen
            + statement.refunds_fen
        )
        if moved != statement.balance_fen:
            raise _malformed(
                "statement",
                f"the balance {statement.balance_fen} is not opening + deposits - debits + "
                f"refunds = {moved}",
            )
        if (
            statement.terminal_debits_fen > statement.debits_fen
            or statement.terminal_refunds_fen > statement.refunds_fen
            or statement.refunds_fen > statement.debits_fen
        ):
            raise _malformed("statement", "a part is larger than its whole")
        return statement

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class VoucherState(StrEnum):
    ISSUED = "issued"  # registered by the terminal that printed it; can be paid out
    REDEEMED = "redeemed"  # paid out once; never again
    EXPIRED = "expired"  # not redeemed by the end of its expiry date


@dataclass(frozen=True)
class Voucher:
    """A voucher as the platform records it: single-use money with its own id."""

    voucher_id: str
    state: VoucherState
    amount_fen: int
    receipt_no: str  # the receipt it was printed on
    expires: date  # the last day it can be redeemed
    redeemed_at: datetime | None
    redeemed_by: str | None  # the terminal that paid it out (of the issuing station)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Voucher":
        record = "voucher"
        voucher = cls(
            voucher_id=read_str(data, "voucher_id", record),
            state=VoucherState(read_choice(data, "state", record, frozenset(VoucherState))),
            amount_fen=read_fen(data, "amount_fen", record),
            receipt_no=read_str(data, "receipt_no", record),
            expires=read_date(data, "expires", record),
            redeemed_at=read_optional_time(data, "redeemed_at", record),
            redeemed_by=read_optional_str(data, "redeemed_by", record),
        )
        if voucher.amount_fen == 0:
            raise _malformed(record, "a voucher of 0 fen")
        redeemed = voucher.state is VoucherState.REDEEMED
        if (voucher.redeemed_at is not None, voucher.redeemed_by is not None) != (
            redeemed,
            redeemed,
        ):
            raise _malformed(
                record, "redeemed_at and redeemed_by must be given exactly when redeemed"
            )
        return voucher

    def to_json(self) -> dict[str, Any]:
        return {
            "voucher_id": self.voucher_id,
            "state": str(self.state),
            "amount_fen": self.amount_fen,
            "receipt_no": self.receipt_no,
            "expires": self.expires.isoformat(),
            "redeemed_at": None if self.redeemed_at is None else iso(self.redeemed_at),
            "redeemed_by": self.redeemed_by,
        }


# ---------------------------------------------------------------- payment orders (paying by phone)

# How long the platform keeps an order open for payment unless it is paid or closed first.
ORDER_LIFETIME = timedelta(minutes=5)
# The method of an order the resident may pay with any wallet (the aggregated dynamic code).
ANY_METHOD = "any"


class OrderState(StrEnum):
    """Where a payment order stands; what each state proves is in docs/platform-api.md."""

    CREATED = "created"  # open, nothing paid: payable by its dynamic code or a payment code
    PENDING = "pending"  # a payment code was presented; the resident confirms on the phone
    PAID = "paid"  # the money was taken, once
    CLOSED = "closed"  # never paid, and never will be (closed_reason says why)
    REFUNDING = "refunding"  # paid; a refund to the original method is under way
    REFUNDED = "refunded"  # paid, and refunded in full to the original method
    REFUND_FAILED = "refund_failed"  # paid; the refund failed (a new refund key may retry)
    NOT_FOUND = "not_found"  # the platform never heard of the key (order_status only)


# The states in which the resident's money was taken (paid_with and provider_ref are given).
MONEY_TAKEN_STATES = frozenset(
    {OrderState.PAID, OrderState.REFUNDING, OrderState.REFUNDED, OrderState.REFUND_FAILED}
)
# The states in which an order may still be paid.
OPEN_ORDER_STATES = frozenset({OrderState.CREATED, OrderState.PENDING})


class CloseReason(StrEnum):
    TERMINAL = "terminal"  # the terminal closed it (order_close)
    RESIDENT = "resident"  # the resident cancelled the payment on the phone
    EXPIRED = "expired"  # nobody paid before expires_at


def method_to_wire(method: PaymentScheme | None) -> str:
    return ANY_METHOD if method is None else str(method)


def read_method(data: Mapping[str, Any], name: str, record: str) -> PaymentScheme | None:
    """An order's method on the wire: a wallet, or "any" (None)."""
    value = read_choice(data, name, record, frozenset({*PaymentScheme, ANY_METHOD}))
    return None if value == ANY_METHOD else PaymentScheme(value)


def _read_optional_scheme(data: Mapping[str, Any], name: str, record: str) -> PaymentScheme | None:
    if read_optional_str(data, name, record) is None:
        return None
    return PaymentScheme(read_choice(data, name, record, frozenset(PaymentScheme)))


@dataclass(frozen=True)
class Order:
    """A payment order as the platform knows it (order_create, order_pay, order_status,
    order_close all answer one).

    amount_fen, method and expires_at are None exactly when the platform has no such order:
    not_found, or closed by the terminal before any request made it (a fenced key).
    paid_with and provider_ref are given exactly when the money was taken
    (MONEY_TAKEN_STATES); closed_reason exactly when closed. code_url is what the terminal
    shows as the dynamic code, for an order made by order_create.
    """

    key: str
    state: OrderState
    amount_fen: int | None
    method: PaymentScheme | None  # the wallet asked for; None: any
    expires_at: datetime | None
    code_url: str | None = None
    paid_with: PaymentScheme | None = None
    provider_ref: str | None = None
    closed_reason: CloseReason | None = None

    @property
    def money_taken(self) -> bool:
        return self.state in MONEY_TAKEN_STATES

    @property
    def known(self) -> bool:
        """The platform holds the order's details (not not_found, not a fenced key)."""
        return self.amount_fen is not None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Order":
        record = "payment order"
        state = OrderState(read_choice(data, "state", record, frozenset(OrderState)))
        amount_fen = read_optional_fen(data, "amount_fen", record)
        known = amount_fen is not None
        closed_reason = read_optional_str(data, "closed_reason", record)
        order = cls(
            key=read_str(data, "key", record),
            state=state,
            amount_fen=amount_fen,
            method=read_method(data, "method", record) if known else None,
            expires_at=read_optional_time(data, "expires_at", record),
            code_url=read_optional_str(data, "code_url", record),
            paid_with=_read_optional_scheme(data, "paid_with", record),
            provider_ref=read_optional_str(data, "provider_ref", record),
            closed_reason=None
            if closed_reason is None
            else CloseReason(read_choice(data, "closed_reason", record, frozenset(CloseReason))),
        )
        if not known and (data.get("method") is not None or order.expires_at is not None):
            raise _malformed(record, "an order without an amount has a method or an expiry")
        if known and order.expires_at is None:
            raise _malformed(record, "an order with an amount has no expiry")
        if known and order.amount_fen == 0:
            raise _malformed(record, "an order of 0 fen")
        if not known and state not in (OrderState.NOT_FOUND, OrderState.CLOSED):
            raise _malformed(record, f"a {state} order has no amount")
        if state is OrderState.NOT_FOUND and (known or order.closed_reason or order.code_url):
            raise _malformed(record, "an order not found has details")
        taken = order.money_taken
        if (order.paid_with is not None, order.provider_ref is not None) != (taken, taken):
            raise _malformed(record, "paid_with and provider_ref must be given exactly when paid")
        if (order.closed_reason is not None) != (state is OrderState.CLOSED):
            raise _malformed(record, "closed_reason must be given exactly when closed")
        return order

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "state": str(self.state),
            "amount_fen": self.amount_fen,
            "method": method_to_wire(self.method) if self.known else None,
            "expires_at": None if self.expires_at is None else iso(self.expires_at),
            "code_url": self.code_url,
            "paid_with": None if self.paid_with is None else str(self.paid_with),
            "provider_ref": self.provider_ref,
            "closed_reason": None if self.closed_reason is None else str(self.closed_reason),
        }


class RefundState(StrEnum):
    PROCESSING = "processing"  # the provider has it; the money is on its way back
    SUCCEEDED = "succeeded"  # back on the resident's original payment method
    FAILED = "failed"  # the provider could not refund (failure says why)


@dataclass(frozen=True)
class Refund:
    """A refund of a paid order, in full, to the method it was paid with."""

    key: str  # the refund key (idempotent)
    order_key: str
    state: RefundState
    amount_fen: int
    method: PaymentScheme  # the original payment method the money goes back to
    failure: str | None = None  # the provider's reason, exactly when failed

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Refund":
        record = "refund"
        refund = cls(
            key=read_str(data, "key", record),
            order_key=read_str(data, "order_key", record),
            state=RefundState(read_choice(data, "state", record, frozenset(RefundState))),
            amount_fen=read_fen(data, "amount_fen", record),
            method=PaymentScheme(read_choice(data, "method", record, frozenset(PaymentScheme))),
            failure=read_optional_str(data, "failure", record),
        )
        if refund.amount_fen == 0:
            raise _malformed(record, "a refund of 0 fen")
        if (refund.failure is not None) != (refund.state is RefundState.FAILED):
            raise _malformed(record, "failure must be given exactly when the refund failed")
        return refund

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "order_key": self.order_key,
            "state": str(self.state),
            "amount_fen": self.amount_fen,
            "method": str(self.method),
            "failure": self.failure,
        }
