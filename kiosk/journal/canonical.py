"""The journal's byte-level format, defined once for the writer, the verifier and receipts.

Owns: canonical JSON (RFC 8785, through the rfc8785 library), the record hash, the bytes a
signature covers and the certificate fingerprint. docs/journal-format.md describes exactly
these rules for auditors. This module never touches the database or a signing device.
"""

import hashlib
import re
from collections.abc import Mapping
from typing import Any, cast

import orjson
import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kiosk.errors import KioskError

# Integers outside this range lose precision in IEEE 754 doubles, which RFC 8785 assumes.
MAX_SAFE_INTEGER = 2**53 - 1
# prev of the first record: there is no previous record to hash.
ZERO_HASH = "0" * 64

# Keys every record carries, written by the journal itself; fields may not override them.
BASE_KEYS = ("seq", "prev", "type", "time", "station", "terminal")
# Keys of the signature block (and of the signature outage marking).
# alg names the signature algorithm (kiosk.signing.SignatureAlgorithm; absent: ES256) and
# is itself signed, so an algorithm cannot be swapped under a signature.
SIGNATURE_KEYS = ("signer", "alg", "cert_sha256", "sig", "sig_failed")
SIGNER_KINDS = ("pkcs11", "software")
# Written by the journal on a record whose text it had to repair (lone surrogates, which no
# UTF-8 text can hold, replaced by U+FFFD): the sorted paths of the repaired fields.
TEXT_REPLACED_KEY = "text_replaced"
REPLACEMENT_CHARACTER = "\ufffd"

_SURROGATE = re.compile("[\ud800-\udfff]")


class JournalError(KioskError):
    """The journal refused a record, or a journal or receipt is damaged; the message says why."""


def repaired_text(text: str) -> str:
    """text with every lone surrogate replaced by U+FFFD (a valid pair becomes its character).

    Lone surrogates reach Python strings from JSON escapes ("\\ud800") and from file names
    decoded with surrogateescape; UTF-8, and so canonical JSON, cannot hold them.
    """
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _plain(value: object, path: str, repaired: list[str] | None = None) -> Any:
    """A plain dict/list copy of value, refusing anything outside the journal's JSON subset.

    The subset (strings, integers within 2**53, booleans, null, arrays, objects with ASCII
    keys) is what makes canonical JSON equal to sorted-key json.dumps, which auditors rely on.
    Text holding a lone surrogate is refused, or, when `repaired` is a list, repaired
    (repaired_text) and its path appended to the list.
    """
    where = path or "the record"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value.isascii() or _SURROGATE.search(value) is None:
            return str(value)
        if repaired is None:
            raise JournalError(
                f"journal field {where} holds a lone surrogate, which is not text: "
                "repair it (U+FFFD) before journaling it"
            )
        repaired.append(where)
        return repaired_text(value)
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise JournalError(
                f"journal field {where} is {value}, beyond +-(2**53-1): store it as text"
            )
        return int(value)
    if isinstance(value, float):
        raise JournalError(
            f"journal field {where} is a float ({value!r}): store money as integer fen"
        )
    if isinstance(value, Mapping):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise JournalError(f"journal field {where} has a non-text key {key!r}")
            if not key.isascii():
                raise JournalError(f"journal field {where} has a non-ASCII key {key!r}")
            plain[key] = _plain(item, f"{path}.{key}" if path else key, repaired)
        return plain
    if isinstance(value, list | tuple):
        return [_plain(item, f"{where}[{index}]", repaired) for index, item in enumerate(value)]
    raise JournalError(
        f"journal field {where} is a {type(value).__name__}: only text, whole numbers, "
        "true/false, null, lists and objects can be journaled"
    )


def canonical_json(obj: Mapping[str, object]) -> bytes:
    """The RFC 8785 canonical JSON bytes of a record (UTF-8, sorted keys, no spaces)."""
    if not isinstance(obj, Mapping):
        raise JournalError(f"a journal record must be an object, not {type(obj).__name__}")
    plain = _plain(obj, "")
    try:
        return rfc8785.dumps(cast(dict[str, Any], plain))
    except rfc8785.CanonicalizationError as exc:  # _plain checked everything; kept as a guard
        raise JournalError(f"journal record cannot be canonicalised: {exc}") from None


def _within_subset(value: object) -> bool:
    """True when value is already plain data of the journal's subset (checked without copying)."""
    kind = type(value)
    if kind is str:
        text = cast(str, value)
        return text.isascii() or _SURROGATE.search(text) is None
    if kind is bool or value is None:
        return True
    if kind is int:
        return -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER  # type: ignore[operator]
    if kind is dict:
        # A loop with the common leaf types inline, not all() over a generator: a record is
        # one flat dict checked on the commit path of every payment.
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str or not key.isascii():
                return False
            leaf = type(item)
            if leaf is str:
                # Chinese text is common; a lone surrogate in it is what no UTF-8 can hold.
                if item.isascii() or _SURROGATE.search(item) is None:
                    continue
                return False
            if leaf is bool or item is None:
                continue
            if leaf is int:
                if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                    return False
                continue
            if not _within_subset(item):
                return False
        return True
    if kind is list:
        return all(_within_subset(item) for item in value)  # type: ignore[attr-defined]
    return False


def checked_record(record: Mapping[str, object], *, repair_text: bool = False) -> dict[str, Any]:
    """record as plain data of the journal's subset, or JournalError naming what is refused.

    repair_text: text holding lone surrogates is repaired (repaired_text) instead of refused,
    and the record names the repaired fields under TEXT_REPLACED_KEY. The journal's writer
    does this, so that no text handed to it can wedge a transaction's commit.
    """
    if type(record) is dict and _within_subset(record):
        return record
    if not isinstance(record, Mapping):
        raise JournalError(f"a journal record must be an object, not {type(record).__name__}")
    repaired: list[str] | None = [] if repair_text else None
    plain = cast(dict[str, Any], _plain(record, "", repaired))
    if repaired:
        plain[TEXT_REPLACED_KEY] = sorted(repaired)
    return plain


def encode_checked(plain: Mapping[str, object]) -> bytes:
    """The canonical JSON bytes of a record that checked_record() accepted.

    Not rfc8785 on the commit path: its pure-Python serialiser costs more than the PKCS#11
    signature itself. Within the journal's subset (plain dicts and lists, ASCII keys, integers
    within 2**53, no floats) RFC 8785 is exactly orjson with sorted keys: compact, UTF-8,
    nothing escaped but quotes, backslashes and control characters, the same way. A property
    test compares the bytes with canonical_json's, and the verifier re-encodes every stored
    record with canonical_json, so a divergence could never pass unnoticed.
    """
    try:
        return orjson.dumps(plain, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:  # checked_record refused what orjson cannot encode
        raise JournalError(f"journal record cannot be canonicalised: {exc}") from None


def encode_record(record: Mapping[str, object]) -> bytes:
    """canonical_json(record), fast: checked_record() then encode_checked()."""
    return encode_checked(checked_record(record))


def record_hash(record: Mapping[str, object]) -> str:
    """Hex SHA-256 of the canonical JSON of the complete record (signature included).

    Through the fast encoder (byte-identical, see encode_checked): the back office hashes
    every record it receives. The verifier still compares each stored text with rfc8785's.
    """
    return hashlib.sha256(encode_record(record)).hexdigest()


def signed_bytes(record: Mapping[str, object]) -> bytes:
    """What a record's signature covers: the canonical JSON of the record without "sig"."""
    return canonical_json({key: value for key, value in record.items() if key != "sig"})


def certificate_sha256(cert_pem: bytes) -> str:
    """Hex SHA-256 of the DER encoding of the (first) PEM certificate in cert_pem."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise JournalError(
            "the station certificate is not a PEM certificate: check the token or the file"
        ) from None
    return der_sha256(cert)


def der_sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
