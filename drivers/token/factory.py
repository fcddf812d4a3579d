"""Builds the station's Signer from the [token] configuration table.

Owns the choice between the PKCS#11 token and the demo's software signer, and the
environment SoftHSM2 needs (SOFTHSM2_CONF) before its module is loaded.
"""

import os
from pathlib import Path

from drivers.token.keys import Sm2Mechanism
from drivers.token.pin import read_pin
from drivers.token.pkcs11_signer import Pkcs11Signer
from drivers.token.software import SoftwareSigner
from kiosk.config import TokenConfig
from kiosk.errors import ConfigError
from kiosk.signing import KeyType, Signer


def sm2_mechanism_of(token: TokenConfig) -> Sm2Mechanism | None:
    """The vendor SM2 mechanism the [token] table names (None when it names none)."""
    if not token.sm2_mechanism:
        return None
    return Sm2Mechanism(token.sm2_mechanism, token.sm2_hash_on_host)


def signer_from_config(token: TokenConfig, *, pin: str | None = None) -> Signer:
    """The Signer described by `token`; `pin` overrides token.pin_source (for tools and tests).

    A pkcs11 signer whose token is absent is still returned (its health says so and it
    connects when the token appears); a refused PIN raises WrongPin or TokenLocked.
    """
    if token.kind == "software":
        if not token.cert_file:
            raise ConfigError(
                "config key 'token.cert_file' is needed when token.kind is 'software'"
            )
        signer = SoftwareSigner.from_files(Path(token.key_file), Path(token.cert_file))
        if signer.key_type.value != token.key_type:
            raise ConfigError(
                f"config key 'token.key_type' is '{token.key_type}', but {token.key_file} holds"
                f" a {signer.key_type.value} key: correct token.key_type"
            )
        return signer
    if token.softhsm_conf:
        conf = Path(token.softhsm_conf)
        if not conf.is_file():
            raise ConfigError(
                f"config key 'token.softhsm_conf' names {conf}, which does not exist: make the"
                " SoftHSM2 token first or correct the path"
            )
        # SoftHSM2 reads this when the module is initialised, so it must be set before the
        # first PKCS#11 call of the process (and before any re-initialisation).
        os.environ["SOFTHSM2_CONF"] = str(conf)
    if not Path(token.module).is_file():
        raise ConfigError(
            f"config key 'token.module' names {token.module}, which does not exist: install"
            " the token vendor's PKCS#11 module or correct the path"
        )
    user_pin = pin if pin is not None else read_pin(token.pin_source)
    return Pkcs11Signer(
        token.module,
        token.label,
        token.key_label,
        user_pin,
        key_type=KeyType(token.key_type),
        sm2_mechanism=sm2_mechanism_of(token),
    )
