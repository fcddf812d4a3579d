"""SM2 signatures with SM3 (GB/T 32918.2, GM/T 0009), the 国密 algorithm of Chinese USBKeys.

Owns SM2 keys as this project holds them (a public point, a private scalar for the demo's
software signer only), their encodings (SubjectPublicKeyInfo and PKCS#8 as OpenSSL 3 writes
them: id-ecPublicKey with the SM2 curve), the SM2 digest e = SM3(Z || M) with the standard
user id 1234567812345678, and signing and verifying with DER signatures (the form OpenSSL and
X.509 use).

The `cryptography` library has no SM2 (its curves list lacks it and it refuses SM2 keys), so
the curve arithmetic and SM3 are gmssl's (pure Python, so it runs on the terminal's ARM board
too). gmssl's own API is wrapped here because it takes and returns hex text, strips a
leading "04" from a public key with lstrip (which can eat the x coordinate's own digits),
draws its nonce from `random`, and does not range-check r and s: this module passes the
point itself, draws k with `secrets`, and checks every value against the curve first.
"""

import binascii
import secrets
from dataclasses import dataclass

from asn1crypto import core as asn1_core
from asn1crypto import keys as asn1_keys
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from gmssl import sm2 as gm_sm2
from gmssl import sm3 as gm_sm3

CURVE_OID = "1.2.156.10197.1.301"
# The X.509 / CMS signature algorithm "SM2 with SM3" (GM/T 0006).
SM2_SM3_SIGNATURE_OID = "1.2.156.10197.1.501"
# GM/T 0009-2012 section 10: the user id when the parties agree on no other.
DEFAULT_USER_ID = b"1234567812345678"

_TABLE = gm_sm2.default_ecc_table
P = int(_TABLE["p"], 16)
A = int(_TABLE["a"], 16)
B = int(_TABLE["b"], 16)
N = int(_TABLE["n"], 16)
GX = int(_TABLE["g"][:64], 16)
GY = int(_TABLE["g"][64:], 16)

# asn1crypto reads the SM2 curve by name once it is registered (it knows only NIST curves).
if CURVE_OID not in asn1_keys.NamedCurve._map:
    asn1_keys.NamedCurve.register("sm2p256v1", CURVE_OID, 32)


class Sm2Error(ValueError):
    """An SM2 key or signature is malformed; the message says which."""


def sm3(data: bytes) -> bytes:
    return binascii.unhexlify(gm_sm3.sm3_hash(list(data)))


def _on_curve(x: int, y: int) -> bool:
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def _crypt(public_hex: str = "", private_hex: str = "") -> gm_sm2.CryptSM2:
    crypt = gm_sm2.CryptSM2(private_key=private_hex, public_key="")
    crypt.public_key = public_hex  # x || y in hex; set directly (see the module docstring)
    return crypt


@dataclass(frozen=True)
class Sm2PublicKey:
    x: int
    y: int

    @classmethod
    def from_point(cls, point: bytes) -> "Sm2PublicKey":
        """The key of an uncompressed point 04 || x || y (32 bytes each)."""
        if len(point) != 65 or point[0] != 4:
            raise Sm2Error("an SM2 public key must be an uncompressed point of 65 bytes")
        x, y = int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big")
        if not _on_curve(x, y):
            raise Sm2Error("the SM2 public key is not a point of the SM2 curve")
        return cls(x, y)

    @property
    def point(self) -> bytes:
        return b"\x04" + self.x.to_bytes(32, "big") + self.y.to_bytes(32, "big")

    def spki_der(self) -> bytes:
        """SubjectPublicKeyInfo as OpenSSL 3 writes it (id-ecPublicKey, namedCurve SM2)."""
        info = asn1_keys.PublicKeyInfo(
            {
                "algorithm": {
                    "algorithm": "ec",
                    "parameters": asn1_keys.ECDomainParameters(
                        name="named", value=asn1_keys.NamedCurve(CURVE_OID)
                    ),
                },
                "public_key": self.point,
            }
        )
        der: bytes = info.dump()
        return der

    def digest(self, data: bytes, user_id: bytes = DEFAULT_USER_ID) -> bytes:
        """e = SM3(Z || data), Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA).

        What a token that signs a host-made digest signs (GB/T 32918.2 section 6.1).
        """
        if len(user_id) >= 8192:
            raise Sm2Error("an SM2 user id must be shorter than 8192 bytes")
        z = sm3(
            (len(user_id) * 8).to_bytes(2, "big")
            + user_id
            + b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY, self.x, self.y))
        )
        return sm3(z + data)

    def verify(self, signature_der: bytes, data: bytes) -> bool:
        """Whether signature_der (DER r, s) is this key's SM2 signature over data."""
        try:
            r, s = decode_dss_signature(signature_der)
        except ValueError:
            return False
        if encode_dss_signature(r, s) != signature_der or not (0 < r < N and 0 < s < N):
            return False
        crypt = _crypt(public_hex=f"{self.x:064x}{self.y:064x}")
        return bool(crypt.verify(f"{r:064x}{s:064x}", self.digest(data)))


@dataclass(frozen=True)
class Sm2PrivateKey:
    """An SM2 private key in memory: the demo's software signer and tests only."""

    scalar: int

    def __post_init__(self) -> None:
        if not 0 < self.scalar < N - 1:
            raise Sm2Error("an SM2 private key must lie between 1 and n-2")

    @classmethod
    def generate(cls) -> "Sm2PrivateKey":
        return cls(secrets.randbelow(N - 2) + 1)

    def public_key(self) -> Sm2PublicKey:
        crypt = _crypt(private_hex=f"{self.scalar:064x}")
        point = crypt._kg(self.scalar, _TABLE["g"])
        return Sm2PublicKey(int(point[:64], 16), int(point[64:], 16))

    def sign(self, data: bytes) -> bytes:
        """The DER SM2 signature over data (user id 1234567812345678), fresh k each time."""
        public = self.public_key()
        digest = public.digest(data)
        crypt = _crypt(f"{public.x:064x}{public.y:064x}", f"{self.scalar:064x}")
        while True:
            k = secrets.randbelow(N - 1) + 1
            signed = crypt.sign(digest, f"{k:064x}")
            if signed is not None:  # None: r = 0, r + k = n or s = 0; draw another k
                return encode_dss_signature(int(signed[:64], 16), int(signed[64:], 16))

    def pkcs8_pem(self) -> bytes:
        """The key as OpenSSL 3 writes it (`openssl genpkey -algorithm SM2`): PKCS#8 PEM."""
        parameters = asn1_keys.ECDomainParameters(
            name="named", value=asn1_keys.NamedCurve(CURVE_OID)
        )
        inner = asn1_keys.ECPrivateKey(
            {
                "version": "ecPrivkeyVer1",
                "private_key": self.scalar,
                "public_key": self.public_key().point,
            }
        )
        info = asn1_keys.PrivateKeyInfo(
            {
                "version": 0,
                "private_key_algorithm": {"algorithm": "ec", "parameters": parameters},
                "private_key": inner,
            }
        )
        return _pem("PRIVATE KEY", info.dump())


def _pem(kind: str, der: bytes) -> bytes:
    from asn1crypto import pem

    armored: bytes = pem.armor(kind, der)
    return armored


def _is_sm2_algorithm(algorithm: asn1_keys.PublicKeyAlgorithm) -> bool:
    oid = algorithm["algorithm"].dotted
    if oid == CURVE_OID:  # some issuers name the SM2 curve as the key algorithm itself
        return True
    if algorithm["algorithm"].native != "ec":
        return False
    parameters = algorithm["parameters"]
    return bool(parameters.name == "named" and parameters.chosen.dotted == CURVE_OID)


def public_key_from_spki(spki_der: bytes) -> Sm2PublicKey | None:
    """The SM2 key of a SubjectPublicKeyInfo; None when it holds another kind of key."""
    try:
        info = asn1_keys.PublicKeyInfo.load(spki_der)
        if not _is_sm2_algorithm(info["algorithm"]):
            return None
        point = bytes(info["public_key"].contents[1:])  # BIT STRING: unused-bits byte first
    except (ValueError, TypeError, KeyError) as exc:
        raise Sm2Error(f"the public key is not readable: {exc}") from None
    return Sm2PublicKey.from_point(point)


def load_private_key_pem(pem_data: bytes) -> Sm2PrivateKey | None:
    """The SM2 key of a PKCS#8 PEM (OpenSSL's form); None when it holds another kind of key."""
    from asn1crypto import pem

    try:
        _kind, _headers, der = pem.unarmor(pem_data)
        info = asn1_keys.PrivateKeyInfo.load(der)
        algorithm = info["private_key_algorithm"]
        oid = algorithm["algorithm"].dotted
        parameters = algorithm["parameters"]
        if oid != CURVE_OID and not (
            algorithm["algorithm"].native == "ec"
            and isinstance(parameters, asn1_keys.ECDomainParameters)
            and parameters.name == "named"
            and parameters.chosen.dotted == CURVE_OID
        ):
            return None
        inner = info["private_key"]
        parsed = inner.parsed if isinstance(inner, asn1_core.ParsableOctetString) else inner
        scalar = parsed["private_key"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise Sm2Error(f"the SM2 private key is not readable: {exc}") from None
    return Sm2PrivateKey(int(scalar))
