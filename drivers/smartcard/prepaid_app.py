"""The prepaid utility card application's APDUs: the AID, each command and the card record.

Written once for both ends: the host driver (pcsc_reader) builds these commands and parses
the answers, the simulated card (vpcd_card) parses the commands and builds the answers.
docs/smartcard.md documents every APDU. What the card decides (MAC, counter, refusals) lives
in drivers.smartcard.prepaid_card; this module never talks to a reader.
"""

from dataclasses import dataclass
from typing import Final

from drivers.smartcard.apdu import (
    ApduError,
    CommandApdu,
    decode_tlv,
    encode_tlv,
    require_field,
    select_by_aid,
)
from drivers.smartcard.prepaid_mac import MAC_LENGTH
from kiosk.devices import PrepaidCard

# A proprietary AID (first nibble F: not registered with ISO/IEC 7816-5), "KIOSKPP" in ASCII.
AID: Final = bytes.fromhex("F04B494F534B5050")

CLA_PROPRIETARY: Final = 0x80
INS_READ_CARD: Final = 0xB0
INS_CREDIT: Final = 0xD2

# Tags of the card record (simple-TLV) returned by READ CARD and CREDIT.
TAG_CARD_NO: Final = 0xC1
TAG_UTILITY: Final = 0xC2
TAG_METER_NO: Final = 0xC3
TAG_PURCHASE_COUNTER: Final = 0xC4
TAG_LAST_CREDIT_FEN: Final = 0xC5

CREDIT_DATA_LENGTH: Final = 4 + 4 + MAC_LENGTH
MAX_U32: Final = 2**32 - 1


def select() -> CommandApdu:
    return select_by_aid(AID)


def read_card() -> CommandApdu:
    return CommandApdu(CLA_PROPRIETARY, INS_READ_CARD, 0x00, 0x00, le=256)


@dataclass(frozen=True)
class CreditRequest:
    amount_fen: int
    new_counter: int
    mac: bytes


def credit(amount_fen: int, new_counter: int, mac: bytes) -> CommandApdu:
    """CREDIT: amount (4 bytes), new purchase counter (4 bytes), the issuer's MAC (8 bytes)."""
    if not 0 <= amount_fen <= MAX_U32 or not 0 <= new_counter <= MAX_U32:
        raise ApduError("a credit's amount and counter must fit 4 unsigned bytes")
    if len(mac) != MAC_LENGTH:
        raise ApduError(f"a credit MAC has {MAC_LENGTH} bytes, not {len(mac)}")
    data = amount_fen.to_bytes(4, "big") + new_counter.to_bytes(4, "big") + mac
    return CommandApdu(CLA_PROPRIETARY, INS_CREDIT, 0x00, 0x00, data, le=256)


def parse_credit(data: bytes) -> CreditRequest:
    if len(data) != CREDIT_DATA_LENGTH:
        raise ApduError(f"CREDIT data has {CREDIT_DATA_LENGTH} bytes, not {len(data)}")
    return CreditRequest(
        amount_fen=int.from_bytes(data[0:4], "big"),
        new_counter=int.from_bytes(data[4:8], "big"),
        mac=bytes(data[8:]),
    )


def encode_card_record(card: PrepaidCard) -> bytes:
    return encode_tlv(
        [
            (TAG_CARD_NO, card.card_no.encode("ascii")),
            (TAG_UTILITY, card.utility.encode("ascii")),
            (TAG_METER_NO, card.meter_no.encode("ascii")),
            (TAG_PURCHASE_COUNTER, card.purchase_counter.to_bytes(4, "big")),
            (TAG_LAST_CREDIT_FEN, card.last_credit_fen.to_bytes(4, "big")),
        ]
    )


def decode_card_record(raw: bytes) -> PrepaidCard:
    """The card as the terminal core sees it; raises ApduError for a malformed record."""
    fields = decode_tlv(raw)

    def text(tag: int, what: str) -> str:
        value = require_field(fields, tag, what)
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            raise ApduError(f"the card's {what} is not ASCII") from None

    def number(tag: int, what: str) -> int:
        value = require_field(fields, tag, what)
        if len(value) != 4:
            raise ApduError(f"the card's {what} has {len(value)} bytes, not 4")
        return int.from_bytes(value, "big")

    return PrepaidCard(
        card_no=text(TAG_CARD_NO, "card number"),
        utility=text(TAG_UTILITY, "utility"),
        meter_no=text(TAG_METER_NO, "meter number"),
        purchase_counter=number(TAG_PURCHASE_COUNTER, "purchase counter"),
        last_credit_fen=number(TAG_LAST_CREDIT_FEN, "last credit"),
    )
