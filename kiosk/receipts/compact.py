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
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import base45
import cbor2
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from kiosk.journal.canonical import JournalError, checked_record
from kiosk.journal.record_types import RecordType
from kiosk.journal.store import receipt_no_of
from kiosk.receipts.compact_fields import (
    BY_NUMBER,
    DEFAULT_SIGNER,
    SIGNERS,
    SPECIAL,
    SPECS,
    Context,
    Field,
    Loose,
    local_day,
    pack_time,
    unpack_time,
    vocabulary,
)
from kiosk.receipts.model import ReceiptError

PREFIX = "KR2:"
PREV_BYTES = 32
# Keys the verifier computes: they never travel.
DERIVED_KEYS = ("type", "station", "cert_sha256", "prev", "sig")
_PREV = re.compile(r"[0-9a-f]{64}")

__all__ = ["PREFIX", "Algorithm", "CompactCode", "Field", "decode_code", "encode_code"]


class Algorithm(IntEnum):
    """How the signature travels; the station certificate's key says how it is checked."""

    UNSIGNED = 0  # closed during a signature device outage: the record carries sig_failed
    ECDSA_P256 = 1  # r || s, 32 bytes each, big-endian (the DER of the record's sig, unpacked)
    STORED = 2  # the bytes of the record's sig as they are (RSA, another curve ...): larger
    SM2_SM3 = 3  # r || s of an SM2 signature (alg "SM2-SM3"), packed as ECDSA_P256's


# Algorithms whose signature travels as r || s, 32 bytes each.
_RAW_PAIRS = (Algorithm.ECDSA_P256, Algorithm.SM2_SM3)
SM2_ALG = "SM2-SM3"


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
    alg = record.get("alg")
    if alg not in (None, "ES256", SM2_ALG):
        return Algorithm.STORED, der  # RSA: its signature is as long as its modulus
    try:
        r, s = decode_dss_signature(der)
    except ValueError:
        r = s = -1
    if r < 0 or r.bit_length() > 256 or s.bit_length() > 256 or encode_dss_signature(r, s) != der:
        if alg == SM2_ALG:
            raise ReceiptError(
                f"receipt {record.get('receipt_no')}'s SM2 signature is not DER r, s"
            )
        return Algorithm.STORED, der
    pair = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return (Algorithm.SM2_SM3 if alg == SM2_ALG else Algorithm.ECDSA_P256), pair


def _sig_text(algorithm: Algorithm, signature: bytes) -> str | None:
    if algorithm is Algorithm.UNSIGNED:
        return None
    if algorithm in _RAW_PAIRS:
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        signature = encode_dss_signature(r, s)
    return base64.b64encode(signature).decode("ascii")


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
        pack_time(rest.pop("time"), fields)
    terminal = record.get("terminal")
    context = Context(terminal if isinstance(terminal, str) else None, local_day(record["time"]))
    for spec in SPECS:
        if spec.key not in rest:
            continue
        value = rest.pop(spec.key)
        try:
            fields[spec.number] = spec.pack(value, context)
        except Loose:
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
        if number not in BY_NUMBER and number not in SPECIAL:
            raise ReceiptError(
                f"the receipt code has field number {number}, unknown to this version: "
                "update kiosk-tool, or the code is damaged"
            )
        spec = BY_NUMBER.get(Field(number)) if number in BY_NUMBER else None
        if spec is not None and spec.key in named:
            raise ReceiptError(f"the receipt code is damaged: it carries {spec.key} twice")
    if "time" in named and Field.TIME in fields:
        raise ReceiptError("the receipt code is damaged: it carries time twice")
    if "signer" in named and Field.SIGNER in fields:
        raise ReceiptError("the receipt code is damaged: it carries signer twice")

    record: dict[str, Any] = {
        "type": RecordType.TX_CLOSE,
        "station": station,
        "prev": code.prev.hex(),
    }
    record["time"] = unpack_time(fields)
    terminal = fields.get(Field.TERMINAL, fields.get("terminal"))
    context = Context(terminal if isinstance(terminal, str) else None, local_day(record["time"]))
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
            record["signer"] = vocabulary(SIGNERS)[1](fields[Field.SIGNER], context)
        else:
            record["signer"] = fields.get("signer", DEFAULT_SIGNER)
        if cert_sha256 is not None:
            record["cert_sha256"] = cert_sha256
        record["sig"] = _sig_text(code.algorithm, code.signature)
    elif Field.SIGNER in fields or "signer" in named:
        raise ReceiptError("the receipt code is damaged: an unsigned record names a signer")
    # One code, one record: the SM2 number goes with alg SM2-SM3 and only with it.
    if (code.algorithm is Algorithm.SM2_SM3) != (record.get("alg") == SM2_ALG):
        raise ReceiptError(
            "the receipt code is damaged: its signature algorithm and the record's alg differ"
        )
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
    if record.get("type") != RecordType.TX_CLOSE:
        raise ReceiptError(
            f"only a tx_close record goes into a receipt code, not {record.get('type')!r}"
        )
    prev = record.get("prev")
    if not isinstance(prev, str) or not _PREV.fullmatch(prev):
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
    if (algorithm in _RAW_PAIRS and len(signature) != 64) or (
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
