"""The station operator's card application: its APDUs and the rules the card enforces.

An operator card (经办人员卡) opens the operator's session at the kiosk: SELECT by its own AID,
VERIFY the PIN, then GET OPERATOR ID. It is the technician card's application under another
AID, with the same command layout and the same PIN rule (3 tries, 63Cx, then blocked with
6983), so a reader tells the two roles apart by the application it selects, never by a field
a card could claim. SimulatedOperatorCard keeps the card's state and applies the technician
card's PIN rule (drivers.smartcard.technician_app: one rule for both). docs/smartcard.md
lists the APDUs. Never talks to a reader.
"""

import dataclasses
from dataclasses import dataclass
from typing import Final

from drivers.smartcard import technician_app
from drivers.smartcard.apdu import CommandApdu, select_by_aid
from drivers.smartcard.technician_app import (
    CLA_PROPRIETARY,
    INS_VERIFY,
    PIN_TRIES,
    SimulatedTechnicianCard,
    check_pin_format,
    pin_digest,
    tries_left_of,
)

# A proprietary AID (first nibble F: not registered with ISO/IEC 7816-5), "KIOSKOP" in ASCII.
AID: Final = bytes.fromhex("F04B494F534B4F50")

P2_OPERATOR_PIN: Final = technician_app.P2_TECHNICIAN_PIN  # the application's own PIN
INS_GET_OPERATOR_ID: Final = technician_app.INS_GET_TECHNICIAN_ID
P1P2_OPERATOR_ID: Final = (0x01, 0x02)

__all__ = [
    "AID",
    "CLA_PROPRIETARY",
    "INS_GET_OPERATOR_ID",
    "INS_VERIFY",
    "P1P2_OPERATOR_ID",
    "P2_OPERATOR_PIN",
    "SimulatedOperatorCard",
    "check_pin_format",
    "get_operator_id",
    "select",
    "tries_left_of",
    "verify",
]


def select() -> CommandApdu:
    return select_by_aid(AID)


def verify(pin: str) -> CommandApdu:
    return CommandApdu(0x00, INS_VERIFY, 0x00, P2_OPERATOR_PIN, check_pin_format(pin))


def get_operator_id() -> CommandApdu:
    p1, p2 = P1P2_OPERATOR_ID
    return CommandApdu(CLA_PROPRIETARY, INS_GET_OPERATOR_ID, p1, p2, le=256)


@dataclass(frozen=True)
class SimulatedOperatorCard:
    """An operator card's state; verify() gives the card after one VERIFY and its answer."""

    card_no: str
    operator_id: str
    pin_digest: str
    tries_left: int = PIN_TRIES

    def __post_init__(self) -> None:
        self._pin_rule()  # the technician card's checks of number, id and tries

    @classmethod
    def issue(cls, card_no: str, operator_id: str, pin: str) -> "SimulatedOperatorCard":
        check_pin_format(pin)
        return cls(card_no, operator_id, pin_digest(card_no, pin))

    @property
    def blocked(self) -> bool:
        return self.tries_left == 0

    def verify(self, pin_bytes: bytes) -> tuple["SimulatedOperatorCard", int]:
        """The card after a VERIFY with pin_bytes, and its status word (the technician
        card's rule: 9000 resets the counter, 63Cx counts down, 6983 once blocked)."""
        after, sw = self._pin_rule().verify(pin_bytes)
        return dataclasses.replace(self, tries_left=after.tries_left), sw

    def _pin_rule(self) -> SimulatedTechnicianCard:
        return SimulatedTechnicianCard(
            self.card_no, self.operator_id, self.pin_digest, self.tries_left
        )
