"""Initialising a blank station token: its label, its SO PIN and its first user PIN.

Owns what provisioning needs before a token can hold the station key: listing the slots of a
PKCS#11 module (which hold a blank token, which one carries the station label), initialising
one blank token (C_InitToken) with OpenSC's pkcs11-tool, setting its user PIN (C_InitPIN)
with python-pkcs11, and reading the SO PIN from --so-pin-source. Which slot to initialise is
decided by kiosk.provisioning.plan.token_decision, not here.

It must never put a PIN on a command line, in a message, a log line, a repr or a file, and
never call C_InitToken on a token that is not blank (it would erase the token).
"""

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from pkcs11 import TokenFlag
from pkcs11 import exceptions as p11

from drivers.token.pin import PinKind, read_pin
from drivers.token.pkcs11_signer import pkcs11_module
from kiosk.errors import ConfigError, KioskError

log = logging.getLogger(__name__)

# The child's environment, unlike its command line, is readable only by its own user and root
# (/proc/PID/environ is mode 400); pkcs11-tool reads "--so-pin env:NAME" from it.
_SO_PIN_VARIABLE = "KIOSK_PROVISION_SO_PIN"
_INIT_TOKEN_TIMEOUT_S = 120  # real tokens take seconds to erase and initialise
_LABEL_BYTES = 32  # CK_TOKEN_INFO.label is CK_UTF8CHAR[32]


class TokenInitialisationError(KioskError):
    """A blank token could not be initialised; the message says what to do."""


@dataclass(frozen=True)
class SlotInfo:
    """What provisioning needs to know about one slot holding a token."""

    slot_id: int
    description: str
    label: str  # "" for a blank token
    initialised: bool  # CKF_TOKEN_INITIALIZED
    user_pin_set: bool  # CKF_USER_PIN_INITIALIZED


SO_PIN = PinKind(
    "SO PIN",
    "--so-pin-source",
    "--so-pin-source",
    "export it before running provision",
    "you",
    "USBKey SO PIN to set: ",
)


def read_so_pin(source: str) -> str:
    """The SO PIN from an --so-pin-source value, by the user PIN's rules (drivers/token/pin.py)."""
    return read_pin(source, SO_PIN)


class TokenSlots:
    """The slots of one PKCS#11 module, for finding and initialising a blank station token."""

    def __init__(self, module_path: str) -> None:
        self.module_path = module_path
        self._module = pkcs11_module(module_path)

    def __repr__(self) -> str:
        return f"TokenSlots(module_path={self.module_path!r})"

    def slots(self) -> list[SlotInfo]:
        """Every slot with a token in it, seen afresh (the module is re-initialised first)."""
        with self._module.lock:
            # A token plugged in (or initialised by another process) since the module was
            # initialised is seen only after C_Initialize for some modules (SoftHSM2 among them).
            self._module.reinitialize()
            found = []
            for slot in self._module.lib().get_slots(token_present=True):
                try:
                    token = slot.get_token()
                except p11.PKCS11Error:
                    continue  # pulled out while we looked: it is not there
                flags = token.flags
                initialised = bool(flags & TokenFlag.TOKEN_INITIALIZED)
                found.append(
                    SlotInfo(
                        slot_id=int(slot.slot_id),
                        description=str(slot.slot_description).strip(),
                        label=str(token.label).strip() if initialised else "",
                        initialised=initialised,
                        user_pin_set=bool(flags & TokenFlag.USER_PIN_INITIALIZED),
                    )
                )
            return found

    def initialise(self, slot_id: int, *, label: str, so_pin: str, user_pin: str) -> None:
        """Initialise the blank token in slot_id: label and SO PIN, then the user PIN.

        The caller has just seen the slot blank (C_InitToken on a token in use erases it).
        """
        if not 1 <= len(label.encode("utf-8")) <= _LABEL_BYTES:
            raise ConfigError("a token label must be 1 to 32 bytes long (PKCS#11 CK_TOKEN_INFO)")
        self._init_token(slot_id, label=label, so_pin=so_pin)
        self.set_user_pin(label, so_pin=so_pin, user_pin=user_pin)
        log.info("initialised the blank token in slot %d as '%s'", slot_id, label)

    def set_user_pin(self, label: str, *, so_pin: str, user_pin: str) -> None:
        """Set the user PIN of the initialised token `label`, logged in as the SO."""
        with self._module.lock:
            token = self._module.find_token(label)  # rescans: pkcs11-tool changed the token
            try:
                with token.open(rw=True, so_pin=so_pin) as session:
                    session.init_pin(user_pin)
            except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange) as exc:
                # Never retried: each wrong SO PIN counts down the token's SO retry counter.
                raise TokenInitialisationError(
                    f"USBKey token '{label}' refused the SO PIN or the new user PIN"
                    f" ({type(exc).__name__}): check --so-pin-source and the user PIN's length"
                    " for this token, then run provision again"
                ) from None
            except p11.PinLocked:
                raise TokenInitialisationError(
                    f"the SO PIN of USBKey token '{label}' is locked: the token vendor must"
                    " reset the token"
                ) from None
            except p11.PKCS11Error as exc:
                raise TokenInitialisationError(
                    f"USBKey token '{label}' could not set its user PIN ({type(exc).__name__}):"
                    " unplug it, plug it in again and run provision again"
                ) from None

    def _init_token(self, slot_id: int, *, label: str, so_pin: str) -> None:
        # python-pkcs11 0.10 does not wrap C_InitToken. OpenSC's pkcs11-tool does, for any
        # module, and reads "--so-pin env:NAME" from its environment (documented in OpenSC
        # 0.23, Debian 12), so the SO PIN never appears on its command line, which every
        # local user can read in /proc. The user PIN is set in this process afterwards.
        tool = shutil.which("pkcs11-tool")
        if tool is None:
            raise TokenInitialisationError(
                "pkcs11-tool is not installed, and it is needed to initialise a blank token:"
                " apt-get install opensc"
            )
        command = [
            tool, "--module", self.module_path, "--slot", str(slot_id),
            "--init-token", "--label", label, "--so-pin", f"env:{_SO_PIN_VARIABLE}",
        ]  # fmt: skip
        environment = {**os.environ, _SO_PIN_VARIABLE: so_pin}
        try:
            done = subprocess.run(
                command,
                env=environment,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_INIT_TOKEN_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TokenInitialisationError(
                f"pkcs11-tool did not finish initialising the token in slot {slot_id} within"
                f" {_INIT_TOKEN_TIMEOUT_S} s: unplug the token, plug it in and run provision again"
            ) from None
        if done.returncode != 0:
            raise TokenInitialisationError(_init_token_failure(slot_id, done.stderr))
        with self._module.lock:
            self._module.reinitialize()  # see the token as pkcs11-tool left it


def _init_token_failure(slot_id: int, stderr: str) -> str:
    """One line for a failed pkcs11-tool --init-token (its output holds no PIN: env: is used)."""
    match = re.search(r"CKR_[A-Z_]+", stderr)
    reason = match.group(0) if match else (stderr.strip().splitlines() or ["no output"])[-1]
    if reason in ("CKR_PIN_INCORRECT", "CKR_PIN_INVALID", "CKR_PIN_LEN_RANGE"):
        # SoftHSM2 answers CKR_PIN_INCORRECT to an SO PIN of the wrong length, and a token the
        # vendor initialised with a transport SO PIN answers it to any other SO PIN.
        return (
            f"the token in slot {slot_id} refused the SO PIN ({reason}): give one within the"
            " token's PIN length limits ('pkcs11-tool --module MODULE -L' shows them), or the"
            " vendor's SO PIN if the vendor set one, with --so-pin-source"
        )
    return (
        f"pkcs11-tool could not initialise the token in slot {slot_id} ({reason}): check the"
        " token and run provision again"
    )
