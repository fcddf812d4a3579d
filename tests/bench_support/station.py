"""The benchmark's station token: a real SoftHSM2 token in the benchmark's own directory.

Owns making that token and the signer on it. SoftHSM2 reads SOFTHSM2_CONF only when the module
is initialised, so the benchmark points it at its own conf before the first signer is made;
one benchmark process uses one token directory. It never writes the PIN anywhere.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from drivers.token.pkcs11_signer import Pkcs11Signer
from drivers.token.softhsm import SOFTHSM_MODULE, init_softhsm_token
from kiosk.errors import KioskError

INSTITUTION_NO = "33078200001"
TERMINAL_ID = "T0001"
STATION_NAME = "青山社区便民服务站"


class SoftHsmMissing(KioskError):
    """SoftHSM2's PKCS#11 module is not installed."""


@dataclass(frozen=True)
class StationToken:
    conf: Path
    label: str
    key_label: str
    user_pin: str
    institution_no: str = INSTITUTION_NO
    terminal_id: str = TERMINAL_ID
    station_name: str = STATION_NAME
    module: str = SOFTHSM_MODULE

    def signer(self) -> Pkcs11Signer:
        return Pkcs11Signer(self.module, self.label, self.key_label, self.user_pin)

    def token_table(self) -> dict[str, str]:
        """The configuration's [token] table for this token (the PIN comes from elsewhere)."""
        return {
            "kind": "pkcs11",
            "module": self.module,
            "label": self.label,
            "key_label": self.key_label,
            "softhsm_conf": str(self.conf),
        }


def make_station_token(directory: Path, label: str = "bench") -> StationToken:
    """A provisioned SoftHSM2 station token in directory; SOFTHSM2_CONF points at it after."""
    if not Path(SOFTHSM_MODULE).is_file():
        raise SoftHsmMissing(
            f"SoftHSM2 is missing ({SOFTHSM_MODULE}): install softhsm2: apt-get install softhsm2"
        )
    user_pin = "864209"  # a throw-away token in a throw-away directory
    conf = init_softhsm_token(
        directory,
        label=label,
        so_pin="so-975310",
        user_pin=user_pin,
        institution_no=INSTITUTION_NO,
        terminal_id=TERMINAL_ID,
        station_name=STATION_NAME,
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    return StationToken(conf=conf, label=label, key_label="station", user_pin=user_pin)
