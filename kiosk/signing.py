"""What the terminal core needs from the station's signing device (the USBKey token).

The token holds the station's key (ECDSA P-256, RSA-2048 or SM2) and certificate. kiosk/
only knows this interface and the vocabularies of key types and signature algorithms; the
PKCS#11 driver and the demo's software signer live in drivers/token, and checking a
signature against a certificate is kiosk/station_keys.py.
"""

from enum import StrEnum
from typing import Protocol

from kiosk.errors import KioskError


class SignerError(KioskError):
    """The signing device cannot sign now (removed, locked, broken)."""


class SignerUnavailable(SignerError):
    """The token is not present or its session was lost."""


class TokenLocked(SignerError):
    """The token's user PIN is locked after too many wrong attempts."""


class WrongPin(SignerError):
    """The PIN given for the token was refused."""


class KeyType(StrEnum):
    """The station key's type: the [token] key_type value and what provisioning generates."""

    P256 = "p256"  # ECDSA on NIST P-256 (secp256r1)
    RSA2048 = "rsa2048"  # RSA, 2048-bit modulus (larger moduli verify too)
    SM2 = "sm2"  # 国密 SM2 (GB/T 32918) on the SM2 curve


class SignatureAlgorithm(StrEnum):
    """The `alg` of a signed journal record: how its sig was made (docs/journal-format.md)."""

    # ECDSA P-256 over SHA-256, DER signature. Records without alg were signed this way.
    ES256 = "ES256"
    # RSASSA-PKCS1-v1_5 over SHA-256 (CKM_SHA256_RSA_PKCS): every RSA token has it; see
    # docs/token.md for why not PSS.
    RS256 = "RS256"
    # SM2 over SM3 with the standard user id 1234567812345678 (GM/T 0009), DER signature.
    SM2_SM3 = "SM2-SM3"


# The algorithm of a record that names none (journals written before alg existed).
LEGACY_ALGORITHM = SignatureAlgorithm.ES256
ALGORITHM_OF_KEY = {
    KeyType.P256: SignatureAlgorithm.ES256,
    KeyType.RSA2048: SignatureAlgorithm.RS256,
    KeyType.SM2: SignatureAlgorithm.SM2_SM3,
}


class Signer(Protocol):
    # "pkcs11" for a real token (or SoftHSM2), "software" for the demo's in-memory key.
    # Every record signed by a software signer says so in the journal.
    kind: str
    # How sign() signs; the journal writes it as the record's alg (it is signed too).
    algorithm: SignatureAlgorithm

    def sign(self, data: bytes) -> bytes:
        """Return the signature over data by self.algorithm (DER for ECDSA and SM2)."""
        ...

    def certificate_pem(self) -> bytes:
        """The station certificate (PEM) whose public key verifies sign()."""
        ...

    def health(self) -> dict[str, object]:
        """Device state for telemetry and diagnostics (present, logged in, days left...)."""
        ...
