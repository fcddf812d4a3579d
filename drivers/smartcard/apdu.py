"""ISO/IEC 7816-4 APDUs as data: command encoding, response parsing and status words.

It owns the byte layout of short command APDUs (cases 1 to 4) and responses (data + SW1 SW2)
and the simple-TLV records our card applications exchange. Both ends use it: the host
driver (pcsc_reader) builds commands and parses responses, the simulated card (vpcd_card)
parses commands and builds responses, so the two cannot drift. It never talks to a reader.
"""

from dataclasses import dataclass
from typing import Final

# Status words shared by the applications (ISO/IEC 7816-4 section 5.6).
SW_OK: Final = 0x9000
SW_WRONG_LENGTH: Final = 0x6700
SW_SECURITY_STATUS_NOT_SATISFIED: Final = 0x6982
SW_AUTHENTICATION_BLOCKED: Final = 0x6983
SW_CONDITIONS_NOT_SATISFIED: Final = 0x6985
SW_COMMAND_NOT_ALLOWED: Final = 0x6986  # no application selected
SW_WRONG_DATA: Final = 0x6A80
SW_FILE_NOT_FOUND: Final = 0x6A82
SW_RECORD_NOT_FOUND: Final = 0x6A83
SW_WRONG_P1P2: Final = 0x6B00
SW_INS_NOT_SUPPORTED: Final = 0x6D00
SW_CLA_NOT_SUPPORTED: Final = 0x6E00

INS_SELECT: Final = 0xA4
INS_GET_RESPONSE: Final = 0xC0
P1_SELECT_BY_AID: Final = 0x04


class ApduError(ValueError):
    """Bytes that are not a well-formed APDU or record; the message says which byte is wrong."""


@dataclass(frozen=True)
class CommandApdu:
    """A short command APDU. le=None: no response data expected; le=256 is encoded as 00."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise ApduError(f"{name} {value} is not a byte (0 to 255)")
        if len(self.data) > 255:
            raise ApduError(f"command data of {len(self.data)} bytes needs an extended APDU")
        if self.le is not None and not 1 <= self.le <= 256:
            raise ApduError(f"Le {self.le} is not 1 to 256")

    def encode(self) -> bytes:
        body = bytes((self.cla, self.ins, self.p1, self.p2))
        if self.data:
            body += bytes((len(self.data),)) + self.data
        if self.le is not None:
            body += bytes((self.le % 256,))
        return body

    @classmethod
    def decode(cls, raw: bytes) -> "CommandApdu":
        """Parse a short APDU of case 1, 2, 3 or 4 (ISO/IEC 7816-3 section 12.1.3)."""
        if len(raw) < 4:
            raise ApduError(f"a command APDU has at least 4 bytes, not {len(raw)}")
        cla, ins, p1, p2 = raw[:4]
        rest = raw[4:]
        if not rest:
            return cls(cla, ins, p1, p2)
        if len(rest) == 1:
            return cls(cla, ins, p1, p2, le=rest[0] or 256)
        lc = rest[0]
        if lc == 0:
            raise ApduError("Lc 00 announces an extended APDU, which this card does not speak")
        if len(rest) == 1 + lc:
            return cls(cla, ins, p1, p2, data=bytes(rest[1:]))
        if len(rest) == 2 + lc:
            return cls(cla, ins, p1, p2, data=bytes(rest[1:-1]), le=rest[-1] or 256)
        raise ApduError(f"Lc {lc} does not match the {len(rest) - 1} bytes that follow it")


@dataclass(frozen=True)
class ResponseApdu:
    data: bytes
    sw: int

    @property
    def ok(self) -> bool:
        return self.sw == SW_OK

    @property
    def status_word(self) -> str:
        """The status word as four upper-case hex digits, as people and logs write it."""
        return f"{self.sw:04X}"

    def encode(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @classmethod
    def decode(cls, raw: bytes) -> "ResponseApdu":
        if len(raw) < 2:
            raise ApduError(f"a response APDU ends with SW1 SW2, got only {len(raw)} bytes")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))


def select_by_aid(aid: bytes) -> CommandApdu:
    return CommandApdu(0x00, INS_SELECT, P1_SELECT_BY_AID, 0x00, aid)


# Simple-TLV (ISO/IEC 7816-4 section 5.2.1, one tag byte, one length byte): written by hand
# because our records are a few short fields; BER-TLV libraries (asn1crypto) bring DER
# classes and multi-byte tags that these cards never use.


def encode_tlv(fields: list[tuple[int, bytes]]) -> bytes:
    out = bytearray()
    for tag, value in fields:
        if not 0x01 <= tag <= 0xFE:
            raise ApduError(f"simple-TLV tag {tag:#x} must be 01 to FE")
        if len(value) > 254:
            raise ApduError(f"simple-TLV value of {len(value)} bytes needs a 3-byte length")
        out += bytes((tag, len(value))) + value
    return bytes(out)


def decode_tlv(raw: bytes) -> dict[int, bytes]:
    """The fields of a simple-TLV record by tag; a repeated tag or a short value is an error."""
    fields: dict[int, bytes] = {}
    index = 0
    while index < len(raw):
        if index + 2 > len(raw):
            raise ApduError(f"simple-TLV record ends inside the header at byte {index}")
        tag, length = raw[index], raw[index + 1]
        if tag in (0x00, 0xFF) or length == 0xFF:
            raise ApduError(f"simple-TLV byte {index} has tag {tag:#04x} length {length:#04x}")
        value = raw[index + 2 : index + 2 + length]
        if len(value) != length:
            raise ApduError(f"simple-TLV tag {tag:#04x} announces {length} bytes, has {len(value)}")
        if tag in fields:
            raise ApduError(f"simple-TLV tag {tag:#04x} appears twice")
        fields[tag] = bytes(value)
        index += 2 + length
    return fields


def require_field(fields: dict[int, bytes], tag: int, what: str) -> bytes:
    try:
        return fields[tag]
    except KeyError:
        raise ApduError(f"the card's record has no {what} (tag {tag:#04x})") from None
