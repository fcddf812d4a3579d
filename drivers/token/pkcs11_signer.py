"""The USBKey token driver: signs with the station key through a PKCS#11 module.

Owns the process's use of PKCS#11 modules (one loaded library per module path, shared and
serialised by one lock), the logged-in session to the station token, the mapping of PKCS#11
errors to kiosk.signing errors, and the recovery from a removed and reinserted token.
It must never let the user PIN reach a message, a log line or a repr, and never retry a PIN
the token refused (each wrong PIN brings a real token closer to locking).
"""

import hmac
import logging
import secrets
import threading
from datetime import UTC, datetime
from typing import Any

import pkcs11
from pkcs11 import Attribute, Mechanism, ObjectClass, TokenFlag
from pkcs11 import exceptions as p11

from drivers.token.certificate import days_left, describe, pem_of, public_key_info_of
from drivers.token.keys import (
    Sm2Mechanism,
    der_of_p1363,
    key_type_problem,
    mechanism_problem,
    sign_by_type,
    sign_ecdsa_p256,
)
from kiosk import sm2
from kiosk.signing import (
    ALGORITHM_OF_KEY,
    KeyType,
    SignatureAlgorithm,
    SignerError,
    SignerUnavailable,
    TokenLocked,
    WrongPin,
)

log = logging.getLogger(__name__)

# Re-exported: callers and tests use them from here.
__all__ = [
    "Pkcs11Module",
    "Pkcs11Signer",
    "der_of_p1363",
    "pkcs11_module",
    "sign_ecdsa_p256",
    "signer_error_for",
]


class Pkcs11Module:
    """One PKCS#11 library loaded in this process, shared by every signer that uses it.

    python-pkcs11 keeps one library object per path, and C_Finalize/C_Initialize close every
    session of every user of that library. So all use goes through `lock`, and `generation`
    counts re-initialisations: a session opened in an older generation is never used again
    (its handle number may by then belong to someone else's new session).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.generation = 0
        self._lib: Any = None
        # Digests of the PIN each token was logged in with by this process (keyed by label and
        # serial). A later login to a token already logged in is not checked by the token,
        # so it is checked against this; a per-process random key keeps the digests useless
        # outside this process.
        self._logins: dict[tuple[str, bytes], bytes] = {}
        self._pin_key = secrets.token_bytes(32)

    def lib(self) -> Any:
        if self._lib is None:
            try:
                self._lib = pkcs11.lib(self.path)
            except p11.PKCS11Error as exc:
                detail = str(exc) or type(exc).__name__
                raise SignerUnavailable(
                    f"cannot load the PKCS#11 module {self.path} ({detail}): check token.module"
                    " in the configuration (for SoftHSM2 also token.softhsm_conf)"
                ) from None
        return self._lib

    def reinitialize(self) -> None:
        """Finalize and initialise the library again so that it rescans its slots.

        SoftHSM2 reads SOFTHSM2_CONF and its token directory only in C_Initialize, and a
        reader-based module may keep a stale slot after a token was pulled; both see the
        current tokens after this.
        """
        with self.lock:
            self.generation += 1
            self._logins.clear()  # C_Finalize logged every token out
            if self._lib is None:
                self.lib()
                return
            try:
                self._lib.reinitialize()
            except p11.PKCS11Error as exc:
                detail = str(exc) or type(exc).__name__
                raise SignerUnavailable(
                    f"the PKCS#11 module {self.path} cannot be re-initialised ({detail}):"
                    " restart the terminal software"
                ) from None

    def find_token(self, label: str) -> Any:
        """The token with this label; rescans the slots once if it is not (or no longer) seen."""
        with self.lock:
            try:
                return self._get_token(label)
            except (p11.NoSuchToken, SignerUnavailable):
                pass
            except p11.PKCS11Error as exc:
                # A slot list that fails (SoftHSM2 answers CKR_GENERAL_ERROR once a token's
                # directory vanished) is healed by re-initialising, like a missing token.
                log.info("PKCS#11 slot list failed (%s); re-initialising", type(exc).__name__)
            self.reinitialize()
            try:
                return self._get_token(label)
            except p11.NoSuchToken:
                raise SignerUnavailable(
                    f"USBKey token '{label}' is not present: plug it in (or check the label in"
                    " token.label); the terminal uses it again as soon as it is back"
                ) from None
            except p11.PKCS11Error as exc:
                raise signer_error_for(exc, label) from None

    def open_user_session(self, token: Any, pin: str, *, rw: bool = False) -> Any:
        """A session logged in as the user; raises the PKCS#11 error of a refused PIN."""
        with self.lock:
            login = (token.label, token.serial)
            digest = hmac.digest(self._pin_key, pin.encode("utf-8"), "sha256")
            try:
                session = token.open(rw=rw, user_pin=pin)
            except p11.UserAlreadyLoggedIn:
                # Login belongs to the application, not the session: another user of this
                # module in this process is logged in, and a new session shares that login.
                # (python-pkcs11 leaves the failed login's own session open, not logged in.)
                accepted = self._logins.get(login)
                if accepted is not None and not hmac.compare_digest(accepted, digest):
                    raise p11.PinIncorrect() from None
                return token.open(rw=rw)
            self._logins[login] = digest
            return session

    def _get_token(self, label: str) -> Any:
        try:
            return self.lib().get_token(token_label=label)
        except p11.MultipleTokensReturned:
            raise SignerUnavailable(
                f"more than one token is labelled '{label}': unplug all but the station's USBKey"
            ) from None


_MODULES: dict[str, Pkcs11Module] = {}
_MODULES_LOCK = threading.Lock()


def pkcs11_module(path: str) -> Pkcs11Module:
    """The process-wide handle of the PKCS#11 library at `path` (loaded on first use)."""
    with _MODULES_LOCK:
        module = _MODULES.get(path)
        if module is None:
            module = _MODULES[path] = Pkcs11Module(path)
        return module


_PIN_REFUSED = (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange)


def signer_error_for(exc: p11.PKCS11Error, token_label: str) -> SignerError:
    """The kiosk.signing error a person can act on for a PKCS#11 failure."""
    if isinstance(exc, p11.PinLocked):
        return TokenLocked(
            f"the user PIN of USBKey token '{token_label}' is locked after too many wrong PINs:"
            " a technician must unblock it with the SO PIN, then restart the terminal software"
        )
    if isinstance(exc, _PIN_REFUSED):
        return WrongPin(
            f"USBKey token '{token_label}' refused the user PIN: correct the PIN that"
            " token.pin_source gives, then restart (the PIN is not tried again, so that wrong"
            " tries do not lock the token)"
        )
    if isinstance(exc, p11.PinExpired):
        return WrongPin(
            f"the user PIN of USBKey token '{token_label}' has expired: a technician must set"
            " a new one"
        )
    if isinstance(exc, p11.UserPinNotInitialized):
        return SignerUnavailable(
            f"USBKey token '{token_label}' has no user PIN yet: provision the token first"
        )
    reason = type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
    return SignerUnavailable(
        f"USBKey token '{token_label}' cannot sign ({reason}): check that it is plugged in;"
        " if it is, unplug it, plug it in again and retry"
    )


def _serial_text(serial: bytes) -> str:
    return serial.decode("ascii", "replace").strip()


class Pkcs11Signer:
    """kiosk.signing.Signer for the station key on a PKCS#11 token (USBKey or SoftHSM2).

    key_type is the configured type of the station key (token.key_type); a key of another
    type on the token is refused, because the journal's alg is written before signing.
    """

    kind = "pkcs11"

    def __init__(
        self,
        module_path: str,
        token_label: str,
        key_label: str,
        pin: str,
        *,
        key_type: KeyType = KeyType.P256,
        sm2_mechanism: Sm2Mechanism | None = None,
    ) -> None:
        self._module = pkcs11_module(module_path)
        self._token_label = token_label
        self._key_label = key_label
        self.key_type = key_type
        self.algorithm: SignatureAlgorithm = ALGORITHM_OF_KEY[key_type]
        self._sm2_mechanism = sm2_mechanism
        self._sm2_public: sm2.Sm2PublicKey | None = None
        self.__pin = pin
        self._token: Any = None
        self._session: Any = None
        self._key: Any = None
        self._mechanisms: set[Mechanism] = set()
        self._generation = -1
        self._cert_pem: bytes | None = None
        # A refused or locked PIN is remembered: trying it again would only count down the
        # token's retry counter. A new signer (after the PIN is corrected) starts afresh.
        self._refusal: SignerError | None = None
        self._last_error = ""
        with self._module.lock:
            try:
                self._connect()
            except SignerUnavailable as exc:
                # An absent token is a state the terminal reports and recovers from, not a
                # reason to fail at start; a refused PIN is, and propagates.
                self._last_error = str(exc)
                log.info("%s", exc)

    def __repr__(self) -> str:
        return (
            f"Pkcs11Signer(module_path={self._module.path!r}, token_label={self._token_label!r},"
            f" key_label={self._key_label!r}, key_type={self.key_type.value!r})"
        )

    # -- Signer ----------------------------------------------------------------------------

    def sign(self, data: bytes) -> bytes:
        with self._module.lock:
            for attempt in (1, 2):
                try:
                    if not self._connected():
                        self._connect()
                    signature = sign_by_type(
                        self._key,
                        self.key_type,
                        self._mechanisms,
                        data,
                        sm2_mechanism=self._sm2_mechanism,
                        sm2_public=self._sm2_public,
                    )
                except SignerError as exc:
                    self._last_error = str(exc)
                    raise
                except p11.PKCS11Error as exc:
                    error = signer_error_for(exc, self._token_label)
                    self._drop_session()
                    if attempt == 2 or not isinstance(error, SignerUnavailable):
                        self._last_error = str(error)
                        raise error from None
                    # Retrying is safe: a signature changes nothing on the token.
                    log.warning(
                        "signing on USBKey token '%s' failed (%s); re-opening the token once",
                        self._token_label,
                        type(exc).__name__,
                    )
                    continue
                self._last_error = ""
                return signature
        raise AssertionError("unreachable")  # pragma: no cover

    def certificate_pem(self) -> bytes:
        with self._module.lock:
            if self._cert_pem is None:
                try:
                    self._connect()
                except SignerError as exc:
                    self._last_error = str(exc)
                    raise
            if self._cert_pem is None:
                raise SignerUnavailable(
                    f"USBKey token '{self._token_label}' holds no certificate labelled"
                    f" '{self._key_label}': provision the token's station certificate"
                )
            # The certificate is public and does not change while the key stays the same, so
            # the copy read at login serves even while the token is briefly out.
            return self._cert_pem

    def health(self) -> dict[str, object]:
        with self._module.lock:
            self._probe()
            health: dict[str, object] = {
                "kind": self.kind,
                "module": self._module.path,
                "token_label": self._token_label,
                "key_label": self._key_label,
                "key_type": self.key_type.value,
                "algorithm": self.algorithm.value,
                "present": False,
                "logged_in": self._connected(),
                "token_serial": None,
                "mechanism": None,
                "cert_subject": None,
                "cert_not_after": None,
                "cert_days_left": None,
                "pin_locked": isinstance(self._refusal, TokenLocked),
                "last_error": self._last_error or None,
            }
            if self._token is not None:
                try:
                    info = self._token.slot.get_token()
                    health["present"] = True
                    health["token_serial"] = _serial_text(info.serial)
                    health["pin_locked"] = bool(info.flags & TokenFlag.USER_PIN_LOCKED) or bool(
                        health["pin_locked"]
                    )
                except p11.PKCS11Error:
                    health["present"] = False
            if self._connected():
                health["mechanism"] = self._mechanism_text()
            if self._cert_pem is not None:
                subject, not_after = describe(self._cert_pem)
                health["cert_subject"] = subject
                health["cert_not_after"] = not_after.isoformat(timespec="seconds")
                health["cert_days_left"] = days_left(self._cert_pem, datetime.now(UTC))
            return health

    def _mechanism_text(self) -> str:
        if self.key_type is KeyType.RSA2048:
            if Mechanism.SHA256_RSA_PKCS in self._mechanisms:
                return "CKM_SHA256_RSA_PKCS"
            return "CKM_RSA_PKCS (SHA-256 DigestInfo on the host)"
        if self.key_type is KeyType.SM2 and self._sm2_mechanism is not None:
            how = self._sm2_mechanism
            where = "SM3(Z || M) on the host" if how.hash_on_host else "the token hashes"
            return f"vendor SM2 mechanism 0x{how.mechanism:x} ({where})"
        if Mechanism.ECDSA_SHA256 in self._mechanisms:
            return "CKM_ECDSA_SHA256"
        return "CKM_ECDSA (SHA-256 on the host)"

    # -- session handling ------------------------------------------------------------------

    def _connected(self) -> bool:
        return self._session is not None and self._generation == self._module.generation

    def _probe(self) -> None:
        """Check that the session still works (or get one), recording what went wrong."""
        if self._refusal is not None:
            self._last_error = str(self._refusal)
            return
        try:
            if self._connected():
                try:
                    self._key[Attribute.KEY_TYPE]
                    return
                except p11.PKCS11Error:
                    self._drop_session()
            self._connect()
            self._last_error = ""
        except SignerError as exc:
            self._last_error = str(exc)

    def _drop_session(self) -> None:
        session, self._session, self._key = self._session, None, None
        if session is not None and self._generation == self._module.generation:
            try:
                session.close()
            except p11.PKCS11Error:
                pass  # the session is gone already, which is why it is being dropped

    def _connect(self) -> None:
        """Find the token, log in and look up the key and certificate; raise SignerError."""
        if self._refusal is not None:
            raise self._refusal
        self._drop_session()
        self._token = None
        token = self._module.find_token(self._token_label)
        self._token = token
        generation = self._module.generation
        try:
            session = self._module.open_user_session(token, self.__pin)
        except (p11.PinLocked, *_PIN_REFUSED, p11.PinExpired) as exc:
            self._refusal = signer_error_for(exc, self._token_label)
            log.info("%s", self._refusal)
            raise self._refusal from None
        except p11.PKCS11Error as exc:
            raise signer_error_for(exc, self._token_label) from None
        try:
            key = self._find_private_key(session)
            mechanisms = set(token.slot.get_mechanisms())
            problem = mechanism_problem(self.key_type, mechanisms, self._sm2_mechanism)
            if problem is not None:
                raise SignerUnavailable(f"USBKey token '{self._token_label}' {problem}")
            cert_der = self._find_certificate(session)
            cert_pem = None if cert_der is None else pem_of(cert_der)
            sm2_public = self._sm2_public_of(cert_pem)
        except p11.PKCS11Error as exc:
            session.close()
            raise signer_error_for(exc, self._token_label) from None
        except SignerError:
            session.close()
            raise
        self._session, self._key, self._mechanisms = session, key, mechanisms
        self._generation = generation
        if cert_pem is not None:
            self._cert_pem = cert_pem
            self._sm2_public = sm2_public
        log.info("logged in to USBKey token '%s' (key '%s')", self._token_label, self._key_label)

    def _find_private_key(self, session: Any) -> Any:
        try:
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=self._key_label)
        except p11.NoSuchKey:
            raise SignerUnavailable(
                f"USBKey token '{self._token_label}' holds no private key labelled"
                f" '{self._key_label}': provision the token or check token.key_label"
            ) from None
        except p11.MultipleObjectsReturned:
            raise SignerUnavailable(
                f"USBKey token '{self._token_label}' holds several keys labelled"
                f" '{self._key_label}': a technician must remove the extra ones"
            ) from None
        problem = key_type_problem(key, self.key_type)
        if problem is not None:
            raise SignerUnavailable(
                f"key '{self._key_label}' on USBKey token '{self._token_label}': {problem},"
                f" but token.key_type is '{self.key_type.value}': correct token.key_type or"
                " provision the token again"
            )
        return key

    def _sm2_public_of(self, cert_pem: bytes | None) -> sm2.Sm2PublicKey | None:
        """The SM2 public key of the station certificate (what SM3(Z || M) is computed with)."""
        if self.key_type is not KeyType.SM2 or cert_pem is None:
            return None
        try:
            public = sm2.public_key_from_spki(public_key_info_of(cert_pem))
        except (ValueError, sm2.Sm2Error):
            public = None
        if public is None:
            raise SignerUnavailable(
                f"the certificate '{self._key_label}' on USBKey token '{self._token_label}'"
                " holds no SM2 key, but token.key_type is 'sm2'"
            )
        return public

    def _find_certificate(self, session: Any) -> bytes | None:
        for certificate in session.get_objects(
            {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: self._key_label}
        ):
            return bytes(certificate[Attribute.VALUE])
        return None
