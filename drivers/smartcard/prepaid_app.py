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
from kiosk.devices import CardLoad, PrepaidCard

# A proprietary AID (first nibble F: not registered with ISO/IEC 7816-5), "KIOSKPP" in ASCII.
AID: Final = bytes.fromhex("F04B494F534B5050")

CLA_PROPRIETARY: Final = 0x80
INS_READ_CARD: Final = 0xB0
INS_CREDIT: Final = 0xD2
INS_READ_RECORD: Final = 0xB2  # ISO/IEC 7816-4 READ RECORD(S)

# Tags of the card record (simple-TLV) returned by READ CARD and CREDIT.
TAG_CARD_NO: Final = 0xC1
TAG_UTILITY: Final = 0xC2
TAG_METER_NO: Final = 0xC3
TAG_PURCHASE_COUNTER: Final = 0xC4
TAG_LAST_CREDIT_FEN: Final = 0xC5

# The load log: a cyclic record file, as the transaction-detail files of PBOC and utility
# CPU cards. Short EF identifier 18 (PBOC's), read with READ RECORD, P2 = SFI << 3 | 4
# ("record number in P1"); record 1 is the newest load. The card keeps the newest 10.
SFI_LOAD_LOG: Final = 0x18
P2_LOAD_LOG_RECORD: Final = SFI_LOAD_LOG << 3 | 0x04
LOAD_LOG_RECORDS: Final = 10

# Tags of a load record (simple-TLV); CREDIT carries the terminal and reference in the
# same tags, and the card copies them into the record it appends.
TAG_LOAD_COUNTER: Final = 0xD1
TAG_LOAD_AMOUNT_FEN: Final = 0xD2
TAG_LOAD_TERMINAL: Final = 0xD3
TAG_LOAD_REF: Final = 0xD4

# The card stores the terminal id and the reference as ASCII in fields of bounded length:
# 32 bytes hold every terminal id the configuration allows ([station] terminal_id, 1-32),
# 64 bytes hold our references (terminal id, 16 hex digits, "-p": at most 51 bytes).
MAX_TERMINAL_BYTES: Final = 32
MAX_REF_BYTES: Final = 64

# CREDIT data: amount (4) · new counter (4) · MAC (8), then the terminal and reference TLVs.
CREDIT_FIXED_LENGTH: Final = 4 + 4 + MAC_LENGTH
MAX_U32: Final = 2**32 - 1


def select() -> CommandApdu:
    return select_by_aid(AID)


def read_card() -> CommandApdu:
    return CommandApdu(CLA_PROPRIETARY, INS_READ_CARD, 0x00, 0x00, le=256)


def read_load_record(number: int) -> CommandApdu:
    """READ RECORD number (1 = the newest load) of the load-log file."""
    if not 1 <= number <= 0xFF:
        raise ApduError(f"record number {number} is not 1 to 255")
    return CommandApdu(0x00, INS_READ_RECORD, number, P2_LOAD_LOG_RECORD, le=256)


@dataclass(frozen=True)
class CreditRequest:
    amount_fen: int
    new_counter: int
    mac: bytes
    terminal: str
    ref: str


def credit(amount_fen: int, new_counter: int, mac: bytes, terminal: str, ref: str) -> CommandApdu:
    """CREDIT: amount (4 bytes), new purchase counter (4), the issuer's MAC (8), then the
    terminal id (tag D3) and transaction reference (tag D4) the MAC was computed for.

    Only what the APDU cannot carry is refused here (ApduError); the card itself refuses a
    terminal id or reference longer than its fields (6A80), so the card stays the judge.
    """
    if not 0 <= amount_fen <= MAX_U32 or not 0 <= new_counter <= MAX_U32:
        raise ApduError("a credit's amount and counter must fit 4 unsigned bytes")
    if len(mac) != MAC_LENGTH:
        raise ApduError(f"a credit MAC has {MAC_LENGTH} bytes, not {len(mac)}")
    try:
        texts = [
            (TAG_LOAD_TERMINAL, terminal.encode("ascii")),
            (TAG_LOAD_REF, ref.encode("ascii")),
        ]
    except UnicodeEncodeError:
        raise ApduError("a credit's terminal id and reference must be ASCII") from None
    data = amount_fen.to_bytes(4, "big") + new_counter.to_bytes(4, "big") + mac
    return CommandApdu(CLA_PROPRIETARY, INS_CREDIT, 0x00, 0x00, data + encode_tlv(texts), le=256)


def parse_credit(data: bytes) -> CreditRequest:
    """The credit a CREDIT command carries; ApduError for data too short or malformed TLV."""
    if len(data) < CREDIT_FIXED_LENGTH:
        raise ApduError(f"CREDIT data has at least {CREDIT_FIXED_LENGTH} bytes, not {len(data)}")
    fields = decode_tlv(data[CREDIT_FIXED_LENGTH:])
    return CreditRequest(
        amount_fen=int.from_bytes(data[0:4], "big"),
        new_counter=int.from_bytes(data[4:8], "big"),
        mac=bytes(data[8:CREDIT_FIXED_LENGTH]),
        terminal=_ascii(require_field(fields, TAG_LOAD_TERMINAL, "terminal id"), "terminal id"),
        ref=_ascii(require_field(fields, TAG_LOAD_REF, "transaction reference"), "reference"),
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
    """The card as the terminal core sees it, without its load log (READ RECORD has that);
    raises ApduError for a malformed record."""
    fields = decode_tlv(raw)
    return PrepaidCard(
        card_no=_ascii(require_field(fields, TAG_CARD_NO, "card number"), "card number"),
        utility=_ascii(require_field(fields, TAG_UTILITY, "utility"), "utility"),
        meter_no=_ascii(require_field(fields, TAG_METER_NO, "meter number"), "meter number"),
        purchase_counter=_u32(fields, TAG_PURCHASE_COUNTER, "purchase counter"),
        last_credit_fen=_u32(fields, TAG_LAST_CREDIT_FEN, "last credit"),
    )


def encode_load_record(load: CardLoad) -> bytes:
    return encode_tlv(
        [
            (TAG_LOAD_COUNTER, load.counter.to_bytes(4, "big")),
            (TAG_LOAD_AMOUNT_FEN, load.amount_fen.to_bytes(4, "big")),
            (TAG_LOAD_TERMINAL, load.terminal.encode("ascii")),
            (TAG_LOAD_REF, load.ref.encode("ascii")),
        ]
    )


def decode_load_record(raw: bytes) -> CardLoad:
    """One load-log record; raises ApduError for a malformed record."""
    fields = decode_tlv(raw)
    return CardLoad(
        counter=_u32(fields, TAG_LOAD_COUNTER, "load counter"),
        amount_fen=_u32(fields, TAG_LOAD_AMOUNT_FEN, "load amount"),
        terminal=_ascii(require_field(fields, TAG_LOAD_TERMINAL, "load terminal"), "terminal id"),
        ref=_ascii(require_field(fields, TAG_LOAD_REF, "load reference"), "reference"),
    )


def _ascii(value: bytes, what: str) -> str:
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise ApduError(f"the card's {what} is not ASCII") from None


def _u32(fields: dict[int, bytes], tag: int, what: str) -> int:
    value = require_field(fields, tag, what)
    if len(value) != 4:
        raise ApduError(f"the card's {what} has {len(value)} bytes, not 4")
    return int.from_bytes(value, "big")
