"""What the terminal core needs from the station's signing device (the USBKey token).

The token holds the station's ECDSA P-256 key and certificate. kiosk/ only knows this
interface; the PKCS#11 driver and the demo's software signer live in drivers/token.
"""

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


class Signer(Protocol):
    # "pkcs11" for a real token (or SoftHSM2), "software" for the demo's in-memory key.
    # Every record signed by a software signer says so in the journal.
    kind: str

    def sign(self, data: bytes) -> bytes:
        """Return the DER-encoded ECDSA P-256 signature over SHA-256(data)."""
        ...

    def certificate_pem(self) -> bytes:
        """The station certificate (PEM) whose public key verifies sign()."""
        ...

    def health(self) -> dict[str, object]:
        """Device state for telemetry and diagnostics (present, logged in, days left...)."""
        ...
