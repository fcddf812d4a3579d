"""The station key on a PKCS#11 token, by key type: generating it, reading it, signing with it.

Owns what differs between the key types a station token may hold (kiosk.signing.KeyType):

* p256: CKK_EC on secp256r1, generated with CKM_EC_KEY_PAIR_GEN; signs with
  CKM_ECDSA_SHA256, else SHA-256 on the host and CKM_ECDSA;
* rsa2048: CKK_RSA, 2048 bits, e = 65537, CKM_RSA_PKCS_KEY_PAIR_GEN; signs with
  CKM_SHA256_RSA_PKCS, else the SHA-256 DigestInfo made on the host and CKM_RSA_PKCS;
* sm2: CKK_EC on the SM2 curve, or a vendor key type, made with the vendor's tool; signs
  with the vendor's SM2 mechanism (Sm2Mechanism).

PKCS#11 defines no SM2 mechanism: each vendor numbers its own (CKM_VENDOR_DEFINED +
something) and says whether it takes the message (the token computes Z and SM3) or the
digest e = SM3(Z || M) made on the host. Both are configuration (docs/token.md). ECDSA and
SM2 tokens return r || s; the journal, X.509 and OpenSSL use DER.
"""

import hashlib
from dataclasses import dataclass
from typing import Any

from asn1crypto import keys as asn1_keys
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters
from pkcs11.util.rsa import encode_rsa_public_key

from kiosk import sm2
from kiosk.signing import KeyType as StationKeyType
from kiosk.signing import SignerUnavailable

P256_PARAMETERS = encode_named_curve_parameters("secp256r1")
SM2_PARAMETERS = encode_named_curve_parameters(sm2.CURVE_OID)
RSA_BITS = 2048
# DER DigestInfo prefix for SHA-256 (RFC 8017 section 9.2, note 1), for CKM_RSA_PKCS.
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_VENDOR_DEFINED = 0x80000000

_PRIVATE_TEMPLATE = {
    Attribute.SIGN: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.PRIVATE: True,
}


@dataclass(frozen=True)
class Sm2Mechanism:
    """How a vendor's PKCS#11 module signs SM2 with SM3 ([token] sm2_mechanism...)."""

    mechanism: int  # the vendor's CKM_ value, e.g. 0x80000000 + n
    hash_on_host: bool = False  # True: the mechanism signs e = SM3(Z || M) made here


def key_type_problem(key: Any, expected: StationKeyType) -> str | None:
    """Why a private key object on the token is not a key of the expected type, or None."""
    try:
        found = key.key_type
    except ValueError:  # python-pkcs11 knows no vendor key type
        found = None
    if expected is StationKeyType.P256:
        if found == KeyType.EC and key[Attribute.EC_PARAMS] == P256_PARAMETERS:
            return None
        return "it is not an ECDSA P-256 key"
    if expected is StationKeyType.RSA2048:
        if found == KeyType.RSA and len(key[Attribute.MODULUS]) * 8 >= RSA_BITS:
            return None
        return "it is not an RSA key of at least 2048 bits"
    if found == KeyType.EC and key[Attribute.EC_PARAMS] == SM2_PARAMETERS:
        return None
    if found is None or int(found) >= _VENDOR_DEFINED:
        return None  # a vendor's own SM2 key type: its mechanism will tell
    return "it is not an SM2 key"


def generate_key_pair(session: Any, key_type: StationKeyType, label: str) -> tuple[Any, Any]:
    """Generate the station key pair ON the token (never exportable); (public, private)."""
    if key_type is StationKeyType.RSA2048:
        public, private = session.generate_keypair(
            KeyType.RSA,
            RSA_BITS,
            store=True,
            label=label,
            public_template={
                Attribute.VERIFY: True,
                Attribute.PUBLIC_EXPONENT: (65537).to_bytes(3, "big"),
            },
            private_template=_PRIVATE_TEMPLATE,
        )
        return public, private
    curve = P256_PARAMETERS if key_type is StationKeyType.P256 else SM2_PARAMETERS
    parameters = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: curve}, local=True
    )
    public, private = parameters.generate_keypair(
        store=True,
        label=label,
        public_template={Attribute.VERIFY: True},
        private_template=_PRIVATE_TEMPLATE,
    )
    return public, private


def public_key_info(public: Any, key_type: StationKeyType) -> bytes:
    """The SubjectPublicKeyInfo (DER) of a public key object on the token."""
    if key_type is StationKeyType.RSA2048:
        rsa_key = asn1_keys.RSAPublicKey.load(encode_rsa_public_key(public))
        info = asn1_keys.PublicKeyInfo.wrap(rsa_key, "rsa")
        der: bytes = info.dump()
        return der
    if key_type is StationKeyType.SM2:
        raw = bytes(public[Attribute.EC_POINT])
        # CKA_EC_POINT is the DER OCTET STRING of the point (PKCS#11 2.40 section 2.3.3).
        if raw[:1] == b"\x04" and len(raw) == 67 and raw[1] == 65:
            raw = raw[2:]
        return sm2.Sm2PublicKey.from_point(raw).spki_der()
    der = encode_ec_public_key(public)
    return der


def der_of_p1363(raw: bytes) -> bytes:
    """PKCS#11's r||s signature (IEEE P1363) as the DER that X.509, the journal and OpenSSL
    use (ECDSA and SM2 alike).

    Through cryptography's encoder, not pkcs11.util.ec's (asn1crypto, pure Python): about
    2 us instead of 20 on the commit path of every payment; a test holds the two equal.
    """
    half = len(raw) // 2
    return encode_dss_signature(
        int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
    )


def sign_ecdsa_p256(key: Any, mechanisms: set[Any], data: bytes) -> bytes:
    """DER ECDSA signature over SHA-256(data) by a private key object on a token."""
    if Mechanism.ECDSA_SHA256 in mechanisms:
        raw = key.sign(data, mechanism=Mechanism.ECDSA_SHA256)
    else:
        # Tokens without the combined mechanism (SoftHSM2 2.6 among them) sign a digest
        # made on the host with plain CKM_ECDSA; the signature is the same.
        raw = key.sign(hashlib.sha256(data).digest(), mechanism=Mechanism.ECDSA)
    return der_of_p1363(raw)


def sign_rsa_sha256(key: Any, mechanisms: set[Any], data: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 signature over SHA-256(data) by a private key object on a token."""
    if Mechanism.SHA256_RSA_PKCS in mechanisms:
        signature: bytes = key.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS)
        return signature
    # CKM_RSA_PKCS pads what it is given: give it the DigestInfo of the host's SHA-256.
    digest_info = _SHA256_DIGEST_INFO + hashlib.sha256(data).digest()
    signature = key.sign(digest_info, mechanism=Mechanism.RSA_PKCS)
    return signature


def sign_sm2(key: Any, how: Sm2Mechanism, public: sm2.Sm2PublicKey, data: bytes) -> bytes:
    """DER SM2 signature over data (user id 1234567812345678) by a key object on a token."""
    message = public.digest(data) if how.hash_on_host else data
    raw = key.sign(message, mechanism=how.mechanism)
    if len(raw) != 64:
        raise SignerUnavailable(
            f"the token's SM2 mechanism 0x{how.mechanism:x} returned {len(raw)} bytes, not the"
            " 64 of r || s: check token.sm2_mechanism against the vendor's documentation"
        )
    return der_of_p1363(raw)


def mechanism_problem(
    key_type: StationKeyType, mechanisms: set[Any], sm2_mechanism: Sm2Mechanism | None
) -> str | None:
    """Why the token cannot sign with a key of key_type, or None when it can."""
    if key_type is StationKeyType.P256:
        if mechanisms & {Mechanism.ECDSA, Mechanism.ECDSA_SHA256}:
            return None
        return "offers no ECDSA mechanism"
    if key_type is StationKeyType.RSA2048:
        if mechanisms & {Mechanism.SHA256_RSA_PKCS, Mechanism.RSA_PKCS}:
            return None
        return "offers neither CKM_SHA256_RSA_PKCS nor CKM_RSA_PKCS"
    if sm2_mechanism is None:
        return (
            "holds an SM2 key, but token.sm2_mechanism is not set: give the vendor's SM2 with"
            " SM3 mechanism number (docs/token.md)"
        )
    if sm2_mechanism.mechanism not in mechanisms:
        return (
            f"does not list mechanism 0x{sm2_mechanism.mechanism:x} (token.sm2_mechanism):"
            " give the vendor's SM2 with SM3 mechanism number"
        )
    return None


def sign_by_type(
    key: Any,
    key_type: StationKeyType,
    mechanisms: set[Any],
    data: bytes,
    *,
    sm2_mechanism: Sm2Mechanism | None = None,
    sm2_public: sm2.Sm2PublicKey | None = None,
) -> bytes:
    """The station signature over data by a key of key_type on a token."""
    if key_type is StationKeyType.P256:
        return sign_ecdsa_p256(key, mechanisms, data)
    if key_type is StationKeyType.RSA2048:
        return sign_rsa_sha256(key, mechanisms, data)
    if sm2_mechanism is None or sm2_public is None:
        raise SignerUnavailable(
            "an SM2 token needs token.sm2_mechanism and its certificate (for the SM2 public"
            " key) before it can sign"
        )
    return sign_sm2(key, sm2_mechanism, sm2_public, data)
