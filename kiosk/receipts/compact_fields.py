"""The fields map of the compact receipt code (KR2): field numbers, vocabularies, encodings.

Owns the table of docs/journal-format.md section 7.2: which number each tx_close field
travels under, the append-only vocabularies an index names, and how each value is packed
(pack raises Loose when a value does not fit, and it travels under its name) and unpacked
(ReceiptError when a code is damaged). Some encodings are relative to the record's terminal
and to the local date of its time (Context). Pure.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import IntEnum
from typing import Any

from kiosk.clock import iso
from kiosk.receipts.identifiers import VOUCHER_ALPHABET, is_voucher_id
from kiosk.receipts.model import ReceiptError


class Field(IntEnum):
    """Field numbers of the fields map (one CBOR byte each). Append only."""

    SIGNER = 0
    SEQ = 1
    TIME = 2
    UTC_OFFSET = 3
    TERMINAL = 4
    TX_ID = 5
    KIND = 6
    SERVICE = 7
    ACCOUNT_MASKED = 8
    AMOUNT_FEN = 9
    FEE_FEN = 10
    CASH_IN_FEN = 11
    VOUCHER_FEN = 12
    CREDITED_FEN = 13
    OUTCOME = 14
    PLATFORM_REF = 15
    TURNOVER_FEN = 16
    BUSINESS_DAY = 17
    CARD_NO_MASKED = 18
    CARD_CREDIT = 19
    REASON = 20
    VOUCHER_ID = 21
    VOUCHER_EXPIRES = 22
    ALG = 23
    REFUSAL = 24
    AWAITING_CLAIM = 25
    # Paying by phone (issue #21; kiosk.transactions.orders):
    PAYMENT_METHOD = 26
    PAID_WITH = 27
    PROVIDER_REF = 28
    PAID_IN_FEN = 29
    REFUNDED_FEN = 30


# The vocabularies a field number encodes as an index. Append only: an index names its text
# for ever. A value not listed travels under its name.
SIGNERS = ("pkcs11", "software")
# The record's alg (kiosk.signing.SignatureAlgorithm values); a record without alg is ES256.
ALGS = ("ES256", "RS256", "SM2-SM3")
KINDS = ("bill", "card_topup", "phone_topup", "cash_refund")
OUTCOMES = ("paid", "refused", "refund", "cancelled", "failed", "refunded")
PAYMENT_METHODS = ("cash", "qr")
WALLETS = ("wechat", "alipay", "unionpay")
CARD_CREDITS = ("written", "pending", "conflict")
REASONS = (
    "cancelled by the customer",
    "the station's prepaid float cannot cover this payment",
    "operator platform unreachable",
    "cash inserted outside a payment",
    "payment not accepted by the platform",
    "interrupted by a restart",
    "signature device failed",
    "abandoned: nobody finished the payment",
    "the operator's platform refused the payment",
    "the payment was reversed: it will never be posted",
    "the terminal's clock is wrong",
    "the payment order closed unpaid",
    "the resident cancelled the payment on the phone",
    "nobody paid the payment order in time",
    "paid after the resident left the screen: refunded to the wallet",
)
# Refusal codes of the platform (kiosk.platform.models.Refusal) a closing record may carry.
REFUSALS = (
    "bill_already_paid",
    "unknown_bill",
    "no_bill_due",
    "unknown_account",
    "unknown_biller",
    "insufficient_float",
    "hold_missing",
    "hold_too_small",
    "card_counter_used",
    "payment_reversed",
    "bad_request",
    "key_reused",
    "order_not_found",
    "order_not_paid",
    "order_used",
    "order_amount_mismatch",
)
DEFAULT_SIGNER = "pkcs11"
DEFAULT_UTC_OFFSET_MIN = 8 * 60  # China Standard Time: the offset of nearly every record

_HEX_SUFFIX = re.compile(r"^(?:[0-9a-f]{2})+\Z")
_MASKED = re.compile(r"^([^*]*)(\*+)([^*]*)\Z")
_NUMBERED = re.compile(r"^(.*?)([1-9][0-9]{0,18})\Z", re.DOTALL)


class Loose(Exception):
    """Internal: a value does not fit its field number's encoding; it travels by name."""


@dataclass(frozen=True)
class Context:
    """What the encodings of some fields are relative to: the record's terminal and day."""

    terminal: str | None
    local_day: date | None


@dataclass(frozen=True)
class Spec:
    key: str
    number: Field
    pack: Callable[[Any, Context], Any]
    unpack: Callable[[Any, Context], Any]


def _uint(value: Any, _: Context) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Loose
    return value


def _unpack_uint(value: Any, _: Context) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReceiptError("the receipt code is damaged: an amount is not a whole number")
    return value


def _text(value: Any, _: Context) -> str:
    if not isinstance(value, str):
        raise Loose
    return value


def _unpack_text(value: Any, _: Context) -> str:
    if not isinstance(value, str):
        raise ReceiptError("the receipt code is damaged: a text field is not text")
    return value


def _true(value: Any, _: Context) -> int:
    if value is not True:
        raise Loose
    return 1


def _unpack_true(value: Any, _: Context) -> bool:
    if value != 1 or isinstance(value, bool):
        raise ReceiptError("the receipt code is damaged: a flag is not set as flags are")
    return True


def vocabulary(table: tuple[str, ...]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def pack(value: Any, _: Context) -> int:
        if not isinstance(value, str) or value not in table:
            raise Loose
        return table.index(value)

    def unpack(value: Any, _: Context) -> str:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(table):
            raise ReceiptError(
                f"the receipt code names a value ({value!r}) this version does not know: "
                "update kiosk-tool, or the code is damaged"
            )
        return table[value]

    return pack, unpack


def _masked(value: Any, _: Context) -> list[Any]:
    found = _MASKED.match(value) if isinstance(value, str) else None
    if found is None:
        raise Loose
    return [found.group(1), len(found.group(2)), found.group(3)]


def _unpack_masked(value: Any, _: Context) -> str:
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not isinstance(value[0], str)
        or not isinstance(value[2], str)
        or isinstance(value[1], bool)
        or not isinstance(value[1], int)
        or not 1 <= value[1] <= 64
    ):
        raise ReceiptError("the receipt code is damaged: a masked number is malformed")
    return f"{value[0]}{'*' * value[1]}{value[2]}"


def _reference(value: Any, _: Context) -> Any:
    """A platform reference: null, or its text split into a prefix and a trailing number."""
    if value is None:
        return None
    found = _NUMBERED.match(value) if isinstance(value, str) else None
    if found is None:
        raise Loose
    return [found.group(1), int(found.group(2))]


def _unpack_reference(value: Any, _: Context) -> str | None:
    if value is None:
        return None
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
        and value[1] > 0
    ):
        return f"{value[0]}{value[1]}"
    raise ReceiptError("the receipt code is damaged: the platform reference is malformed")


def _tx_id(value: Any, context: Context) -> bytes:
    """A transaction id "<terminal>-<hex digits>" as the bytes of its hex digits."""
    prefix = f"{context.terminal}-"
    if not isinstance(value, str) or context.terminal is None or not value.startswith(prefix):
        raise Loose
    digits = value[len(prefix) :]
    if not _HEX_SUFFIX.match(digits):
        raise Loose
    return bytes.fromhex(digits)


def _unpack_tx_id(value: Any, context: Context) -> str:
    if not isinstance(value, bytes) or not value or context.terminal is None:
        raise ReceiptError("the receipt code is damaged: the transaction id is malformed")
    return f"{context.terminal}-{value.hex()}"


def _day(value: Any, context: Context) -> int:
    """A date as days after the local date of the record's time."""
    if not isinstance(value, str) or context.local_day is None:
        raise Loose
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise Loose from None
    if day.isoformat() != value:
        raise Loose
    return (day - context.local_day).days


def _unpack_day(value: Any, context: Context) -> str:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or context.local_day is None
        or abs(value) > 36600
    ):
        raise ReceiptError("the receipt code is damaged: a date is malformed")
    return (context.local_day + timedelta(days=value)).isoformat()


def _voucher_id(value: Any, _: Context) -> bytes:
    """16 characters of Crockford's base32 packed 5 bits each into 10 bytes."""
    if not isinstance(value, str) or not is_voucher_id(value):
        raise Loose
    number = 0
    for char in value:
        number = number * 32 + VOUCHER_ALPHABET.index(char)
    return number.to_bytes(10, "big")


def _unpack_voucher_id(value: Any, _: Context) -> str:
    if not isinstance(value, bytes) or len(value) != 10:
        raise ReceiptError("the receipt code is damaged: the voucher id is malformed")
    number = int.from_bytes(value, "big")
    chars = []
    for _position in range(16):
        number, digit = divmod(number, 32)
        chars.append(VOUCHER_ALPHABET[digit])
    return "".join(reversed(chars))


def _specs() -> tuple[Spec, ...]:
    uint = (_uint, _unpack_uint)
    text = (_text, _unpack_text)
    masked = (_masked, _unpack_masked)
    day = (_day, _unpack_day)
    table: list[tuple[str, Field, tuple[Callable[..., Any], Callable[..., Any]]]] = [
        ("seq", Field.SEQ, uint),
        ("terminal", Field.TERMINAL, text),
        ("tx_id", Field.TX_ID, (_tx_id, _unpack_tx_id)),
        ("kind", Field.KIND, vocabulary(KINDS)),
        ("service", Field.SERVICE, text),
        ("account_masked", Field.ACCOUNT_MASKED, masked),
        ("amount_fen", Field.AMOUNT_FEN, uint),
        ("fee_fen", Field.FEE_FEN, uint),
        ("cash_in_fen", Field.CASH_IN_FEN, uint),
        ("voucher_fen", Field.VOUCHER_FEN, uint),
        ("credited_fen", Field.CREDITED_FEN, uint),
        ("outcome", Field.OUTCOME, vocabulary(OUTCOMES)),
        ("platform_ref", Field.PLATFORM_REF, (_reference, _unpack_reference)),
        ("turnover_fen", Field.TURNOVER_FEN, uint),
        ("business_day", Field.BUSINESS_DAY, day),
        ("card_no_masked", Field.CARD_NO_MASKED, masked),
        ("card_credit", Field.CARD_CREDIT, vocabulary(CARD_CREDITS)),
        ("reason", Field.REASON, vocabulary(REASONS)),
        ("voucher_id", Field.VOUCHER_ID, (_voucher_id, _unpack_voucher_id)),
        ("voucher_expires", Field.VOUCHER_EXPIRES, day),
        ("alg", Field.ALG, vocabulary(ALGS)),
        ("refusal", Field.REFUSAL, vocabulary(REFUSALS)),
        ("awaiting_claim", Field.AWAITING_CLAIM, (_true, _unpack_true)),
        ("payment_method", Field.PAYMENT_METHOD, vocabulary(PAYMENT_METHODS)),
        ("paid_with", Field.PAID_WITH, vocabulary(WALLETS)),
        ("provider_ref", Field.PROVIDER_REF, (_reference, _unpack_reference)),
        ("paid_in_fen", Field.PAID_IN_FEN, uint),
        ("refunded_fen", Field.REFUNDED_FEN, uint),
    ]
    return tuple(Spec(key, number, pack, unpack) for key, number, (pack, unpack) in table)


SPECS = _specs()
BY_NUMBER = {spec.number: spec for spec in SPECS}
# Field numbers whose encoding is not a Spec: the signer, the time and its offset.
SPECIAL = (Field.SIGNER, Field.TIME, Field.UTC_OFFSET)


def local_day(time_text: object) -> date | None:
    try:
        return datetime.fromisoformat(str(time_text)).date()
    except ValueError:
        return None


def pack_time(value: Any, fields: dict[int | str, Any]) -> None:
    """time as Unix seconds (and its UTC offset in minutes unless +08:00), else by name."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    offset = None if moment is None else moment.utcoffset()
    if (
        moment is None
        or offset is None
        or iso(moment) != value
        or offset % timedelta(minutes=1)
        or moment.timestamp() < 0
    ):
        fields["time"] = value
        return
    fields[Field.TIME] = int(moment.timestamp())
    minutes = offset // timedelta(minutes=1)
    if minutes != DEFAULT_UTC_OFFSET_MIN:
        fields[Field.UTC_OFFSET] = minutes


def unpack_time(fields: Mapping[int | str, Any]) -> str:
    if "time" in fields:
        return _unpack_text(fields["time"], Context(None, None))
    seconds = fields.get(Field.TIME)
    minutes = fields.get(Field.UTC_OFFSET, DEFAULT_UTC_OFFSET_MIN)
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int)
        or isinstance(minutes, bool)
        or not isinstance(minutes, int)
        or not -1440 < minutes < 1440
    ):
        raise ReceiptError("the receipt code is damaged: it has no valid time")
    try:
        zone = timezone(timedelta(minutes=minutes))
        return iso(datetime.fromtimestamp(seconds, zone))
    except (OverflowError, OSError, ValueError):
        raise ReceiptError("the receipt code is damaged: its time is impossible") from None
