"""The station's public key as its certificate holds it, and checking a signature with it.

Owns which keys a station may have (ECDSA P-256, RSA of at least 2048 bits, SM2), which
signature algorithm each key checks (kiosk.signing.ALGORITHM_OF_KEY), the refusal of a
record whose `alg` does not fit the key, and the verification itself: ECDSA and RSA through
`cryptography`, SM2 through kiosk/sm2.py (cryptography has no SM2). The journal verifier,
receipts, diagnostics and the platform simulator all check signatures here. Pure.
"""

from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from kiosk import sm2
from kiosk.signing import ALGORITHM_OF_KEY, LEGACY_ALGORITHM, KeyType, SignatureAlgorithm

MIN_RSA_BITS = 2048
ALGORITHM_NAMES = tuple(str(algorithm) for algorithm in SignatureAlgorithm)

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | sm2.Sm2PublicKey


class StationKeyError(ValueError):
    """A certificate's key is not one a station may have; the message says why."""


@dataclass(frozen=True)
class StationKey:
    key_type: KeyType
    key: PublicKey

    @property
    def algorithm(self) -> SignatureAlgorithm:
        return ALGORITHM_OF_KEY[self.key_type]

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Whether signature is this key's signature over data by self.algorithm."""
        key = self.key
        try:
            if isinstance(key, sm2.Sm2PublicKey):
                return key.verify(signature, data)
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            else:
                key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    def spki_der(self) -> bytes:
        """The SubjectPublicKeyInfo (DER): equal for the same key in two certificates."""
        if isinstance(self.key, sm2.Sm2PublicKey):
            return self.key.spki_der()
        return self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def station_key_of(certificate: x509.Certificate) -> StationKey:
    """The station key a certificate holds; StationKeyError for any other kind of key."""
    try:
        key = certificate.public_key()
    except UnsupportedAlgorithm:
        # cryptography refuses the SM2 curve: read the SubjectPublicKeyInfo ourselves.
        spki = _spki_of(certificate)
        try:
            found = sm2.public_key_from_spki(spki)
        except sm2.Sm2Error as exc:
            raise StationKeyError(f"the certificate's key is not usable: {exc}") from None
        if found is None:
            raise StationKeyError(
                "the certificate's key is of a kind no station token has (it must be ECDSA "
                "P-256, RSA-2048 or SM2)"
            ) from None
        return StationKey(KeyType.SM2, found)
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name != "secp256r1":
            raise StationKeyError(
                f"the certificate's ECDSA key is on curve {key.curve.name}, not P-256"
            )
        return StationKey(KeyType.P256, key)
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise StationKeyError(
                f"the certificate's RSA key has {key.key_size} bits, fewer than {MIN_RSA_BITS}"
            )
        return StationKey(KeyType.RSA2048, key)
    raise StationKeyError(
        "the certificate's key is of a kind no station token has (it must be ECDSA P-256, "
        "RSA-2048 or SM2)"
    )


def _spki_of(certificate: x509.Certificate) -> bytes:
    from asn1crypto import x509 as asn1_x509

    der = certificate.public_bytes(serialization.Encoding.DER)
    loaded = asn1_x509.Certificate.load(der)
    spki: bytes = loaded["tbs_certificate"]["subject_public_key_info"].dump()
    return spki


def request_spki(request: x509.CertificateSigningRequest) -> bytes:
    """The SubjectPublicKeyInfo (DER) of a PKCS#10 request, for any key (SM2 included)."""
    from asn1crypto import csr as asn1_csr

    der = request.public_bytes(serialization.Encoding.DER)
    loaded = asn1_csr.CertificationRequest.load(der)
    spki: bytes = loaded["certification_request_info"]["subject_pk_info"].dump()
    return spki


def certificate_spki(certificate: x509.Certificate) -> bytes:
    """The SubjectPublicKeyInfo (DER) of a certificate, for any key (SM2 included)."""
    return _spki_of(certificate)


def algorithm_problem(alg: object, key: StationKey) -> str | None:
    """Why a record's alg does not fit the key that is to check it, or None when it does.

    A record without alg (None) was signed before alg existed: ES256.
    """
    if alg is None:
        alg = str(LEGACY_ALGORITHM)
        if key.algorithm is not LEGACY_ALGORITHM:
            return (
                f"it names no alg (so {alg}), but its certificate holds a "
                f"{key.key_type.value} key, which signs {key.algorithm.value}"
            )
        return None
    if alg not in ALGORITHM_NAMES:
        return f"its alg is {alg!r}, not one of {', '.join(ALGORITHM_NAMES)}"
    if alg != key.algorithm.value:
        return (
            f"its alg is {alg}, but its certificate holds a {key.key_type.value} key, which "
            f"signs {key.algorithm.value}"
        )
    return None
