"""SoftHSM2 station tokens for tests, the demo and a technician's bench.

Owns making a SoftHSM2 token that looks like a provisioned station USBKey: a softhsm2.conf
for one token directory, the token itself, a station key pair (ECDSA P-256 or RSA-2048;
SoftHSM2 2.6 has no SM2 signature mechanism) generated ON the token
(private key sensitive and not extractable) and a self-signed station certificate signed BY
the token, stored beside the key under the same label and CKA_ID. It writes nothing secret:
the PINs go to the token only, never to a file, a command line, a message or a log.

SoftHSM2 reads SOFTHSM2_CONF when the module is initialised (C_Initialize), so whoever loads
the module for these tokens must set SOFTHSM2_CONF to the returned path first (the factory
does so from token.softhsm_conf).
"""

import ctypes
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pkcs11 import Attribute, CertificateType, ObjectClass, TokenFlag
from pkcs11 import exceptions as p11

from drivers.token.certificate import (
    build_self_signed_certificate,
    institution_no_of,
    pem_of,
    subject_key_identifier,
)
from drivers.token.keys import generate_key_pair, public_key_info, sign_by_type
from drivers.token.pkcs11_signer import pkcs11_module, signer_error_for
from drivers.token.software import station_subject
from kiosk.errors import ConfigError
from kiosk.signing import ALGORITHM_OF_KEY, KeyType, SignerUnavailable

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
_CKR_OK = 0
_CKR_PIN_LEN_RANGE = 0xA2

log = logging.getLogger(__name__)


def write_softhsm_conf(token_dir: Path) -> Path:
    """Write token_dir/softhsm2.conf keeping SoftHSM2's tokens in token_dir/tokens."""
    token_dir = token_dir.resolve()
    tokens = token_dir / "tokens"
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf = token_dir / "softhsm2.conf"
    text = (
        "# SoftHSM2 for the kiosk's tests and demo (drivers/token/softhsm.py); holds no secret.\n"
        f"directories.tokendir = {tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )
    if not conf.exists() or conf.read_text(encoding="utf-8") != text:
        conf.write_text(text, encoding="utf-8")
    return conf


@contextmanager
def _softhsm_conf(conf: Path) -> Iterator[None]:
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["SOFTHSM2_CONF"]
        else:
            os.environ["SOFTHSM2_CONF"] = previous


def _check_pin(name: str, pin: str) -> None:
    # SoftHSM2's limits; a clear message here beats CKR_PIN_LEN_RANGE later.
    if not 4 <= len(pin.encode("utf-8")) <= 255:
        raise ConfigError(f"the {name} must be 4 to 255 characters long")


def init_softhsm_token(
    token_dir: Path,
    *,
    label: str,
    so_pin: str,
    user_pin: str,
    institution_no: str,
    terminal_id: str,
    station_name: str,
    days: int = 730,
    key_label: str = "station",
    key_type: KeyType = KeyType.P256,
) -> Path:
    """Make (or reuse) a SoftHSM2 station token in token_dir; return its softhsm2.conf path.

    Running it again on the same directory and label is safe: the existing token, key and
    certificate are reused (and logged as such); a certificate for another 机构号 is refused.
    Several labels may share one directory: each is its own token. key_type p256 or rsa2048.
    """
    if key_type is KeyType.SM2:
        raise ConfigError(
            "SoftHSM2 2.6 has no SM2 signature mechanism: use token.kind = 'software' with an"
            " SM2 key for a bench, or the vendor's SM2 USBKey"
        )
    if not 1 <= len(label.encode("utf-8")) <= 32:
        raise ConfigError("a token label must be 1 to 32 bytes long (PKCS#11 CK_TOKEN_INFO)")
    _check_pin("SO PIN", so_pin)
    _check_pin("user PIN", user_pin)
    conf = write_softhsm_conf(token_dir)
    module = pkcs11_module(SOFTHSM_MODULE)
    with module.lock, _softhsm_conf(conf):
        # C_Initialize again so that SoftHSM2 reads this conf and scans this directory.
        module.reinitialize()
        lib = module.lib()
        try:
            token = lib.get_token(token_label=label)
            log.info("reusing the existing SoftHSM2 token '%s' in %s", label, token_dir)
        except p11.NoSuchToken:
            token = _initialise_free_token(lib, label=label, so_pin=so_pin, user_pin=user_pin)
        try:
            session = module.open_user_session(token, user_pin, rw=True)
        except p11.PKCS11Error as exc:
            raise signer_error_for(exc, label) from None
        with session:
            private_key, public_key = _station_key_pair(session, label=key_label, key_type=key_type)
            _station_certificate(
                session,
                private_key,
                public_key,
                mechanisms=set(token.slot.get_mechanisms()),
                key_type=key_type,
                institution_no=institution_no,
                terminal_id=terminal_id,
                station_name=station_name,
                days=days,
            )
    return conf


def _initialise_free_token(lib: Any, *, label: str, so_pin: str, user_pin: str) -> Any:
    free = [
        slot
        for slot in lib.get_slots(token_present=True)
        if not slot.get_token().flags & TokenFlag.TOKEN_INITIALIZED
    ]
    if not free:
        raise SignerUnavailable("SoftHSM2 offers no free slot: check its token directory")
    _c_init_token(free[0].slot_id, so_pin=so_pin, label=label)
    token = lib.get_token(token_label=label)
    with token.open(rw=True, so_pin=so_pin) as so_session:
        so_session.init_pin(user_pin)
    log.info("initialised SoftHSM2 token '%s'", label)
    return token


def _c_init_token(slot_id: int, *, so_pin: str, label: str) -> None:
    # python-pkcs11 0.10 does not wrap C_InitToken, and softhsm2-util takes PINs only on its
    # command line (readable by every local user through /proc) or from a terminal. The
    # module exports C_InitToken, and dlopen of the same path returns the library that
    # python-pkcs11 has already initialised, so call it directly.
    library = ctypes.CDLL(SOFTHSM_MODULE)
    init_token = library.C_InitToken
    init_token.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    init_token.restype = ctypes.c_ulong
    pin = so_pin.encode("utf-8")
    padded_label = label.encode("utf-8").ljust(32, b" ")  # CK_UTF8CHAR[32], blank padded
    result = init_token(slot_id, pin, len(pin), padded_label)
    if result == _CKR_PIN_LEN_RANGE:
        raise ConfigError("SoftHSM2 refused the SO PIN's length: use 4 to 255 characters")
    if result != _CKR_OK:
        raise SignerUnavailable(f"SoftHSM2 could not initialise the token (CKR 0x{result:x})")


def _station_key_pair(session: Any, *, label: str, key_type: KeyType) -> tuple[Any, Any]:
    try:
        private_key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        public_key = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
        log.info("reusing the existing key pair '%s'", label)
        return private_key, public_key
    except p11.NoSuchKey:
        pass
    public_key, private_key = generate_key_pair(session, key_type, label)
    # CKA_ID = the certificate's subjectKeyIdentifier, as most token tools expect.
    key_id = subject_key_identifier(public_key_info(public_key, key_type))
    public_key[Attribute.ID] = key_id
    private_key[Attribute.ID] = key_id
    return private_key, public_key


def _station_certificate(
    session: Any,
    private_key: Any,
    public_key: Any,
    *,
    mechanisms: set[Any],
    key_type: KeyType,
    institution_no: str,
    terminal_id: str,
    station_name: str,
    days: int,
) -> None:
    label = private_key.label
    for existing in session.get_objects(
        {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: label}
    ):
        held = institution_no_of(pem_of(bytes(existing[Attribute.VALUE])))
        if held != institution_no:
            raise ConfigError(
                f"this SoftHSM2 token already holds the certificate of 机构号 {held}, not"
                f" {institution_no}: use another token directory or label"
            )
        log.info("reusing the existing station certificate '%s'", label)
        return
    key_info = public_key_info(public_key, key_type)
    certificate = build_self_signed_certificate(
        key_info,
        lambda tbs: sign_by_type(private_key, key_type, mechanisms, tbs),
        institution_no=institution_no,
        terminal_id=terminal_id,
        station_name=station_name,
        days=days,
        algorithm=ALGORITHM_OF_KEY[key_type],
    )
    session.create_object(
        {
            Attribute.CLASS: ObjectClass.CERTIFICATE,
            Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: False,
            Attribute.LABEL: label,
            Attribute.ID: subject_key_identifier(key_info),
            Attribute.SUBJECT: station_subject(
                institution_no, terminal_id, station_name
            ).public_bytes(),
            Attribute.VALUE: certificate,
        }
    )
