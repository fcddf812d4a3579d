"""The compact receipt code "KR2:": a signed tx_close record small enough for QR version 10.

Owns the byte layout of docs/journal-format.md section 7.2, both ways. A code is "KR2:"
followed by the base45 text (RFC 9285, the base45 library) of a CBOR array (RFC 8949, the
cbor2 library, deterministic encoding):

    [algorithm, prev (32 bytes) followed by the signature, fields]

The fields map holds every field of the record except those the verifier computes: type
(always tx_close), station and cert_sha256 (from the station certificate), receipt_no (from
terminal and seq). A field travels under a small number with a compact encoding when its
value fits that encoding, else under its own name with its JSON value. decode_record()
rebuilds the exact record, so its canonical JSON is what the station's token signed.

Pure: no I/O, no certificates (the caller gives the station and certificate hash).
"""

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import IntEnum
from typing import Any

import base45
import cbor2
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from kiosk.clock import iso
from kiosk.journal.canonical import JournalError, checked_record
from kiosk.journal.store import receipt_no_of
from kiosk.receipts.identifiers import VOUCHER_ALPHABET, is_voucher_id
from kiosk.receipts.model import ReceiptError

PREFIX = "KR2:"
PREV_BYTES = 32
# Keys the verifier computes: they never travel.
DERIVED_KEYS = ("type", "station", "cert_sha256", "prev", "sig")


class Algorithm(IntEnum):
    """How the signature travels; the station certificate's key says how it is checked."""

    UNSIGNED = 0  # closed during a signature device outage: the record carries sig_failed
    ECDSA_P256 = 1  # r || s, 32 bytes each, big-endian (the DER of the record's sig, unpacked)
    STORED = 2  # the bytes of the record's sig as they are (RSA, another curve ...): larger


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


# The vocabularies a field number encodes as an index. Append only: an index names its text
# for ever. A value not listed travels under its name.
SIGNERS = ("pkcs11", "software")
KINDS = ("bill", "card_topup", "phone_topup", "cash_refund")
OUTCOMES = ("paid", "refused", "refund", "cancelled", "failed")
CARD_CREDITS = ("written", "pending")
REASONS = (
    "cancelled by the customer",
    "the station's prepaid float cannot cover this payment",
    "operator platform unreachable",
    "cash inserted outside a payment",
    "payment not accepted by the platform",
    "interrupted by a restart",
    "signature device failed",
)
DEFAULT_SIGNER = "pkcs11"
DEFAULT_UTC_OFFSET_MIN = 8 * 60  # China Standard Time: the offset of nearly every record

_HEX_SUFFIX = re.compile(r"^(?:[0-9a-f]{2})+\Z")
_MASKED = re.compile(r"^([^*]*)(\*+)([^*]*)\Z")
_NUMBERED = re.compile(r"^(.*?)([1-9][0-9]{0,18})\Z", re.DOTALL)


class _Loose(Exception):
    """Internal: a value does not fit its field number's encoding; it travels by name."""


@dataclass(frozen=True)
class _Context:
    """What the encodings of some fields are relative to: the record's terminal and day."""

    terminal: str | None
    local_day: date | None


@dataclass(frozen=True)
class _Spec:
    key: str
    number: Field
    pack: Callable[[Any, _Context], Any]
    unpack: Callable[[Any, _Context], Any]


def _uint(value: Any, _: _Context) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Loose
    return value


def _unpack_uint(value: Any, _: _Context) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReceiptError("the receipt code is damaged: an amount is not a whole number")
    return value


def _text(value: Any, _: _Context) -> str:
    if not isinstance(value, str):
        raise _Loose
    return value


def _unpack_text(value: Any, _: _Context) -> str:
    if not isinstance(value, str):
        raise ReceiptError("the receipt code is damaged: a text field is not text")
    return value


def _vocabulary(table: tuple[str, ...]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def pack(value: Any, _: _Context) -> int:
        if not isinstance(value, str) or value not in table:
            raise _Loose
        return table.index(value)

    def unpack(value: Any, _: _Context) -> str:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(table):
            raise ReceiptError(
                f"the receipt code names a value ({value!r}) this version does not know: "
                "update kiosk-tool, or the code is damaged"
            )
        return table[value]

    return pack, unpack


def _masked(value: Any, _: _Context) -> list[Any]:
    found = _MASKED.match(value) if isinstance(value, str) else None
    if found is None:
        raise _Loose
    return [found.group(1), len(found.group(2)), found.group(3)]


def _unpack_masked(value: Any, _: _Context) -> str:
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


def _reference(value: Any, _: _Context) -> Any:
    """A platform reference: null, or its text split into a prefix and a trailing number."""
    if value is None:
        return None
    found = _NUMBERED.match(value) if isinstance(value, str) else None
    if found is None:
        raise _Loose
    return [found.group(1), int(found.group(2))]


def _unpack_reference(value: Any, _: _Context) -> str | None:
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


def _tx_id(value: Any, context: _Context) -> bytes:
    """A transaction id "<terminal>-<hex digits>" as the bytes of its hex digits."""
    prefix = f"{context.terminal}-"
    if not isinstance(value, str) or context.terminal is None or not value.startswith(prefix):
        raise _Loose
    digits = value[len(prefix) :]
    if not _HEX_SUFFIX.match(digits):
        raise _Loose
    return bytes.fromhex(digits)


def _unpack_tx_id(value: Any, context: _Context) -> str:
    if not isinstance(value, bytes) or not value or context.terminal is None:
        raise ReceiptError("the receipt code is damaged: the transaction id is malformed")
    return f"{context.terminal}-{value.hex()}"


def _day(value: Any, context: _Context) -> int:
    """A date as days after the local date of the record's time."""
    if not isinstance(value, str) or context.local_day is None:
        raise _Loose
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise _Loose from None
    if day.isoformat() != value:
        raise _Loose
    return (day - context.local_day).days


def _unpack_day(value: Any, context: _Context) -> str:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or context.local_day is None
        or abs(value) > 36600
    ):
        raise ReceiptError("the receipt code is damaged: a date is malformed")
    return (context.local_day + timedelta(days=value)).isoformat()


def _voucher_id(value: Any, _: _Context) -> bytes:
    """16 characters of Crockford's base32 packed 5 bits each into 10 bytes."""
    if not isinstance(value, str) or not is_voucher_id(value):
        raise _Loose
    number = 0
    for char in value:
        number = number * 32 + VOUCHER_ALPHABET.index(char)
    return number.to_bytes(10, "big")


def _unpack_voucher_id(value: Any, _: _Context) -> str:
    if not isinstance(value, bytes) or len(value) != 10:
        raise ReceiptError("the receipt code is damaged: the voucher id is malformed")
    number = int.from_bytes(value, "big")
    chars = []
    for _position in range(16):
        number, digit = divmod(number, 32)
        chars.append(VOUCHER_ALPHABET[digit])
    return "".join(reversed(chars))


def _specs() -> tuple[_Spec, ...]:
    uint = (_uint, _unpack_uint)
    text = (_text, _unpack_text)
    masked = (_masked, _unpack_masked)
    day = (_day, _unpack_day)
    table: list[tuple[str, Field, tuple[Callable[..., Any], Callable[..., Any]]]] = [
        ("seq", Field.SEQ, uint),
        ("terminal", Field.TERMINAL, text),
        ("tx_id", Field.TX_ID, (_tx_id, _unpack_tx_id)),
        ("kind", Field.KIND, _vocabulary(KINDS)),
        ("service", Field.SERVICE, text),
        ("account_masked", Field.ACCOUNT_MASKED, masked),
        ("amount_fen", Field.AMOUNT_FEN, uint),
        ("fee_fen", Field.FEE_FEN, uint),
        ("cash_in_fen", Field.CASH_IN_FEN, uint),
        ("voucher_fen", Field.VOUCHER_FEN, uint),
        ("credited_fen", Field.CREDITED_FEN, uint),
        ("outcome", Field.OUTCOME, _vocabulary(OUTCOMES)),
        ("platform_ref", Field.PLATFORM_REF, (_reference, _unpack_reference)),
        ("turnover_fen", Field.TURNOVER_FEN, uint),
        ("business_day", Field.BUSINESS_DAY, day),
        ("card_no_masked", Field.CARD_NO_MASKED, masked),
        ("card_credit", Field.CARD_CREDIT, _vocabulary(CARD_CREDITS)),
        ("reason", Field.REASON, _vocabulary(REASONS)),
        ("voucher_id", Field.VOUCHER_ID, (_voucher_id, _unpack_voucher_id)),
        ("voucher_expires", Field.VOUCHER_EXPIRES, day),
    ]
    return tuple(_Spec(key, number, pack, unpack) for key, number, (pack, unpack) in table)


SPECS = _specs()
_BY_NUMBER = {spec.number: spec for spec in SPECS}
# Field numbers whose encoding is not a _Spec: the signer, the time and its offset.
_SPECIAL = (Field.SIGNER, Field.TIME, Field.UTC_OFFSET)


@dataclass(frozen=True)
class CompactCode:
    """A decoded KR2 code, before the station certificate supplies what it leaves out."""

    algorithm: Algorithm
    prev: bytes
    signature: bytes
    fields: dict[int | str, Any]


# ------------------------------------------------------------------ the signature


def _signature(record: Mapping[str, Any]) -> tuple[Algorithm, bytes]:
    sig = record.get("sig")
    if sig is None:
        if record.get("sig_failed") is not True:
            raise ReceiptError(
                f"receipt {record.get('receipt_no')} has neither a signature nor sig_failed"
            )
        return Algorithm.UNSIGNED, b""
    try:
        der = base64.b64decode(str(sig), validate=True)
    except (binascii.Error, ValueError):
        raise ReceiptError(f"receipt {record.get('receipt_no')}'s sig is not base64") from None
    try:
        r, s = decode_dss_signature(der)
    except ValueError:
        return Algorithm.STORED, der
    if r.bit_length() > 256 or s.bit_length() > 256 or encode_dss_signature(r, s) != der:
        return Algorithm.STORED, der
    return Algorithm.ECDSA_P256, r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _sig_text(algorithm: Algorithm, signature: bytes) -> str | None:
    if algorithm is Algorithm.UNSIGNED:
        return None
    if algorithm is Algorithm.ECDSA_P256:
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        signature = encode_dss_signature(r, s)
    return base64.b64encode(signature).decode("ascii")


# ------------------------------------------------------------------ the fields


def _local_day(time_text: object) -> date | None:
    try:
        return datetime.fromisoformat(str(time_text)).date()
    except ValueError:
        return None


def _pack_time(value: Any, fields: dict[int | str, Any]) -> None:
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


def _unpack_time(fields: Mapping[int | str, Any]) -> str:
    if "time" in fields:
        return _unpack_text(fields["time"], _Context(None, None))
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


def encode_fields(record: Mapping[str, Any]) -> dict[int | str, Any]:
    """The fields map of a tx_close record (everything but the derived keys, prev and sig)."""
    rest = {key: value for key, value in record.items() if key not in DERIVED_KEYS}
    fields: dict[int | str, Any] = {}
    signer = rest.pop("signer", None)
    if signer is not None and signer != DEFAULT_SIGNER:
        if signer in SIGNERS:
            fields[Field.SIGNER] = SIGNERS.index(signer)
        else:
            fields["signer"] = signer
    if "time" in rest:
        _pack_time(rest.pop("time"), fields)
    terminal = record.get("terminal")
    context = _Context(terminal if isinstance(terminal, str) else None, _local_day(record["time"]))
    for spec in SPECS:
        if spec.key not in rest:
            continue
        value = rest.pop(spec.key)
        try:
            fields[spec.number] = spec.pack(value, context)
        except _Loose:
            fields[spec.key] = value
    seq = record.get("seq")
    if isinstance(seq, int) and context.terminal is not None:
        if rest.get("receipt_no") == receipt_no_of(context.terminal, seq):
            del rest["receipt_no"]
    fields.update(rest)
    return fields


def decode_record(code: CompactCode, *, station: str, cert_sha256: str | None) -> dict[str, Any]:
    """The complete tx_close record a code holds, given what the station certificate says.

    ReceiptError when the fields are malformed (a damaged or altered code).
    """
    fields = code.fields
    named = {key for key in fields if isinstance(key, str)}
    carried = sorted(named.intersection(DERIVED_KEYS))
    if carried:
        raise ReceiptError(f"the receipt code is damaged: it carries {carried[0]} itself")
    for number in (key for key in fields if isinstance(key, int)):
        if number not in _BY_NUMBER and number not in _SPECIAL:
            raise ReceiptError(
                f"the receipt code has field number {number}, unknown to this version: "
                "update kiosk-tool, or the code is damaged"
            )
        spec = _BY_NUMBER.get(Field(number)) if number in _BY_NUMBER else None
        if spec is not None and spec.key in named:
            raise ReceiptError(f"the receipt code is damaged: it carries {spec.key} twice")
    if "time" in named and Field.TIME in fields:
        raise ReceiptError("the receipt code is damaged: it carries time twice")
    if "signer" in named and Field.SIGNER in fields:
        raise ReceiptError("the receipt code is damaged: it carries signer twice")

    record: dict[str, Any] = {"type": "tx_close", "station": station, "prev": code.prev.hex()}
    record["time"] = _unpack_time(fields)
    terminal = fields.get(Field.TERMINAL, fields.get("terminal"))
    context = _Context(terminal if isinstance(terminal, str) else None, _local_day(record["time"]))
    for spec in SPECS:
        if spec.number in fields:
            record[spec.key] = spec.unpack(fields[spec.number], context)
    for key in named - {"time", "signer"}:
        record[key] = fields[key]
    seq = record.get("seq")
    if "receipt_no" not in record and isinstance(seq, int) and context.terminal is not None:
        record["receipt_no"] = receipt_no_of(context.terminal, seq)
    if code.algorithm is not Algorithm.UNSIGNED:
        if Field.SIGNER in fields:
            record["signer"] = _vocabulary(SIGNERS)[1](fields[Field.SIGNER], context)
        else:
            record["signer"] = fields.get("signer", DEFAULT_SIGNER)
        if cert_sha256 is not None:
            record["cert_sha256"] = cert_sha256
        record["sig"] = _sig_text(code.algorithm, code.signature)
    elif Field.SIGNER in fields or "signer" in named:
        raise ReceiptError("the receipt code is damaged: an unsigned record names a signer")
    try:
        record = checked_record(record)
    except JournalError as exc:
        raise ReceiptError(f"the receipt code is damaged: {exc}") from None
    # One record, one code: a field under its name that its number could carry, a default
    # written out, an offset without its time... would rebuild the same record from
    # another code.
    if encode_fields(record) != fields:
        raise ReceiptError("the receipt code is not in its canonical form: it was altered")
    return record


# ------------------------------------------------------------------ the code as text


def encode_code(record: Mapping[str, Any]) -> str:
    """The KR2 code of a tx_close record: "KR2:" and base45 of the CBOR body."""
    if record.get("type") != "tx_close":
        raise ReceiptError(
            f"only a tx_close record goes into a receipt code, not {record.get('type')!r}"
        )
    prev = record.get("prev")
    if not isinstance(prev, str) or not _HEX_SUFFIX.match(prev) or len(prev) != 2 * PREV_BYTES:
        raise ReceiptError(f"receipt {record.get('receipt_no')} has no valid prev hash")
    if not isinstance(record.get("receipt_no"), str):
        raise ReceiptError("the tx_close record has no receipt_no: it cannot be a receipt")
    algorithm, signature = _signature(record)
    fields = encode_fields(record)
    body = cbor2.dumps([int(algorithm), bytes.fromhex(prev) + signature, fields], canonical=True)
    # The encoding is checked both ways before it is printed: what a verifier will rebuild
    # must be the record, byte for byte, or the receipt would never verify.
    rebuilt = decode_record(
        decode_body(body),
        station=str(record.get("station")),
        cert_sha256=record.get("cert_sha256"),
    )
    if rebuilt != dict(record):
        raise ReceiptError(
            f"receipt {record.get('receipt_no')} cannot be encoded faithfully: report it"
        )
    text: str = base45.b45encode(body).decode("ascii")
    return PREFIX + text


def decode_body(body: bytes) -> CompactCode:
    """The structure of a KR2 body; ReceiptError when it is damaged or not canonical."""
    try:
        decoded = cbor2.loads(body)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError):
        raise ReceiptError("the receipt code is damaged: its content is not readable") from None
    if (
        not isinstance(decoded, list)
        or len(decoded) != 3
        or isinstance(decoded[0], bool)
        or not isinstance(decoded[0], int)
        or not isinstance(decoded[1], bytes)
        or len(decoded[1]) < PREV_BYTES
        or not isinstance(decoded[2], dict)
        or not all(isinstance(key, int | str) for key in decoded[2])
    ):
        raise ReceiptError("the receipt code is damaged: its content has the wrong shape")
    try:
        canonical = cbor2.dumps(decoded, canonical=True)
    except (cbor2.CBOREncodeError, ValueError, TypeError):
        canonical = b""
    if canonical != body:
        # Also catches bytes after the array, which cbor2.loads ignores.
        raise ReceiptError("the receipt code is not in its canonical form: it was altered")
    try:
        algorithm = Algorithm(decoded[0])
    except ValueError:
        raise ReceiptError(
            f"the receipt code uses signature algorithm {decoded[0]}, unknown to this "
            "version: update kiosk-tool"
        ) from None
    prev, signature = decoded[1][:PREV_BYTES], decoded[1][PREV_BYTES:]
    if (algorithm is Algorithm.ECDSA_P256 and len(signature) != 64) or (
        algorithm is Algorithm.UNSIGNED and signature
    ):
        raise ReceiptError("the receipt code is damaged: its signature has the wrong length")
    return CompactCode(algorithm, prev, signature, decoded[2])


def decode_code(text: str) -> CompactCode:
    """The structure of a scanned "KR2:" code; ReceiptError when it is damaged."""
    if not text.startswith(PREFIX):
        raise ReceiptError(f"this is not a compact receipt code: it must start with {PREFIX}")
    try:
        body = base45.b45decode(text[len(PREFIX) :])
    except ValueError:
        raise ReceiptError(
            "the receipt code is damaged: it is not base45 text (scan it again)"
        ) from None
    return decode_body(body)
