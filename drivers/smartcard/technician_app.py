"""The technician card application: its APDUs and the rules the card enforces.

A technician card opens maintenance mode: SELECT by AID, VERIFY the PIN (a retry counter
blocks the card after 3 wrong PINs: 63Cx, then 6983), then GET TECHNICIAN ID. The command
layout is written once for the host driver (pcsc_reader) and the simulated cards (vpcd_card
and the in-process simulated reader), and SimulatedTechnicianCard holds the card's rules so
both simulators block alike. docs/smartcard.md documents every APDU. Never talks to a reader.
"""

import dataclasses
import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from drivers.smartcard.apdu import ApduError, CommandApdu, select_by_aid

# A proprietary AID (first nibble F: not registered with ISO/IEC 7816-5), "KIOSKTE" in ASCII.
AID: Final = bytes.fromhex("F04B494F534B5445")

INS_VERIFY: Final = 0x20
P2_TECHNICIAN_PIN: Final = 0x81  # ISO 7816-4: specific (application) reference data number 1
CLA_PROPRIETARY: Final = 0x80
INS_GET_TECHNICIAN_ID: Final = 0xCA
P1P2_TECHNICIAN_ID: Final = (0x01, 0x01)

PIN_TRIES: Final = 3
PIN_MIN_LENGTH: Final = 4
PIN_MAX_LENGTH: Final = 12


def check_pin_format(pin: str) -> bytes:
    """The PIN as sent in VERIFY (ASCII digits), or ApduError saying what is wrong."""
    if not pin.isascii() or not pin.isdigit() or not PIN_MIN_LENGTH <= len(pin) <= PIN_MAX_LENGTH:
        raise ApduError(
            f"a technician PIN is {PIN_MIN_LENGTH} to {PIN_MAX_LENGTH} digits: type it again"
        )
    return pin.encode("ascii")


def select() -> CommandApdu:
    return select_by_aid(AID)


def verify(pin: str) -> CommandApdu:
    return CommandApdu(0x00, INS_VERIFY, 0x00, P2_TECHNICIAN_PIN, check_pin_format(pin))


def get_technician_id() -> CommandApdu:
    p1, p2 = P1P2_TECHNICIAN_ID
    return CommandApdu(CLA_PROPRIETARY, INS_GET_TECHNICIAN_ID, p1, p2, le=256)


def tries_left_of(sw: int) -> int | None:
    """The tries left a 63Cx status word reports, or None for another status word."""
    if sw & 0xFFF0 == 0x63C0:
        return sw & 0x000F
    return None


def pin_digest(card_no: str, pin: str) -> str:
    """How a simulated card keeps its PIN: salted with its number, so a state file shows no PIN."""
    return hashlib.sha256(f"{card_no}|{pin}".encode()).hexdigest()


@dataclass(frozen=True)
class SimulatedTechnicianCard:
    """A technician card's state; verify() gives the card after one VERIFY and its answer."""

    card_no: str
    technician_id: str
    pin_digest: str
    tries_left: int = PIN_TRIES

    def __post_init__(self) -> None:
        if not self.card_no.isascii() or not self.card_no.isdigit():
            raise ValueError(f"card number {self.card_no!r} must be digits only")
        if not self.technician_id.isascii() or not self.technician_id.isprintable():
            raise ValueError(f"technician id {self.technician_id!r} must be printable ASCII")
        if not 0 <= self.tries_left <= PIN_TRIES:
            raise ValueError(f"tries left must be 0 to {PIN_TRIES}, not {self.tries_left}")

    @classmethod
    def issue(cls, card_no: str, technician_id: str, pin: str) -> "SimulatedTechnicianCard":
        check_pin_format(pin)
        return cls(card_no, technician_id, pin_digest(card_no, pin))

    @property
    def blocked(self) -> bool:
        return self.tries_left == 0

    def verify(self, pin_bytes: bytes) -> tuple["SimulatedTechnicianCard", int]:
        """The card after a VERIFY with pin_bytes, and its status word.

        9000 resets the counter; a wrong PIN answers 63Cx with x tries left and 6983 once
        blocked. A blocked card answers 6983 to every VERIFY, even with the right PIN.
        """
        if self.blocked:
            return self, 0x6983
        pin = pin_bytes.decode("ascii", errors="replace")
        if hmac.compare_digest(pin_digest(self.card_no, pin), self.pin_digest):
            return dataclasses.replace(self, tries_left=PIN_TRIES), 0x9000
        after = dataclasses.replace(self, tries_left=self.tries_left - 1)
        return after, 0x6983 if after.blocked else 0x63C0 | after.tries_left
