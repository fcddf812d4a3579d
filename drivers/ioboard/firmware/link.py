"""The I/O board link protocol: frames and messages, the ONE description both ends run.

This module is copied unchanged onto the MicroPython board and imported by the CPython host
driver, so the two sides cannot drift (docs/ioboard.md has the frame diagram). It therefore
uses only what MicroPython has: struct, json, bytes/bytearray; no typing, dataclasses, enum
or binascii.crc_hqx at run time. It owns framing (COBS between zero delimiters), the CRC,
the message type numbers and the payload layouts. It never touches a port, a pin or a file.
"""

import json
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - MicroPython has no typing module; mypy reads this
    from typing import Any
else:
    # CPython evaluates signature annotations when a def runs; MicroPython ignores them.
    Any = object

# Version of the message set below. The frame layout and the HELLO request/response are
# frozen for ever, so that any host can tell any board which version it speaks.
# v2: cash events carry unrecognised items (kind, inlet, pulse count), SET_ACCEPTING carries
# the largest denomination to let in, STATUS reports it (docs/ioboard.md, "Versions").
PROTOCOL_VERSION = 2

DELIMITER = 0
MAX_PAYLOAD = 240
# seq, type, length, payload, crc: the body before COBS; COBS adds at most one byte per 254.
HEADER_SIZE = 3
MAX_BODY = HEADER_SIZE + MAX_PAYLOAD + 2
MAX_ENCODED = MAX_BODY + MAX_BODY // 254 + 1

# ---------------------------------------------------------------- message types
# Requests go host -> board; the board answers each with the same seq and the request's
# type | RESPONSE_BIT, or with ERROR. NAK tells the host a frame arrived damaged.
HELLO = 0x01
STATUS = 0x02
CASH_PENDING = 0x03
CASH_ACK = 0x04
SET_ACCEPTING = 0x05
BOARD_EVENTS = 0x06
BOARD_EVENT_ACK = 0x07
SET_LAMP = 0x08
HEARTBEAT = 0x09
SET_MAINTENANCE = 0x0A
CLEAR_TAMPER = 0x0B
# Stop the link loop and give the USB serial back to the MicroPython REPL (the link disables
# Ctrl-C because 0x03 is an ordinary byte in frames); used by `kiosk-tool ioboard flash/console`.
STOP_FOR_REPL = 0x0C
RESPONSE_BIT = 0x80
NAK = 0xFE
ERROR = 0xFF

REQUEST_NAMES = {
    HELLO: "hello",
    STATUS: "status",
    CASH_PENDING: "cash_pending",
    CASH_ACK: "cash_ack",
    SET_ACCEPTING: "set_accepting",
    BOARD_EVENTS: "board_events",
    BOARD_EVENT_ACK: "board_event_ack",
    SET_LAMP: "set_lamp",
    HEARTBEAT: "heartbeat",
    SET_MAINTENANCE: "set_maintenance",
    CLEAR_TAMPER: "clear_tamper",
    STOP_FOR_REPL: "stop_for_repl",
}

# ERROR payload: code (u8) + UTF-8 text a technician can act on.
ERR_MALFORMED = 1  # payload does not match the request's layout
ERR_UNKNOWN_TYPE = 2  # request type this firmware does not know
ERR_HANDSHAKE_FIRST = 3  # the board (re)started: the host must send HELLO again
ERR_REFUSED = 4  # a valid request the board will not do now (text says why)

# Capabilities reported in HELLO (bit mask, u16).
CAP_COIN = 0x0001
CAP_NOTE = 0x0002
CAP_DOOR = 0x0004
CAP_TAMPER = 0x0008
CAP_LAMP = 0x0010
CAP_WATCHDOG = 0x0020
CAP_TEMPERATURE = 0x0040
CAPABILITY_NAMES = (
    (CAP_COIN, "coin"),
    (CAP_NOTE, "note"),
    (CAP_DOOR, "door"),
    (CAP_TAMPER, "tamper"),
    (CAP_LAMP, "lamp"),
    (CAP_WATCHDOG, "watchdog"),
    (CAP_TEMPERATURE, "temperature"),
)

# Cash event kinds and inlets on the wire (u8 index). "unrecognised": a pulse train that
# matches no denomination of its inlet; it is buffered and numbered like cash, worth 0 fen.
CASH_KINDS = ("coin", "note", "unrecognised")
INLETS = ("coin", "note")
UNRECOGNISED = "unrecognised"
# SET_ACCEPTING / STATUS: no denomination limit.
NO_LIMIT = 0xFFFFFFFF
# Board event kinds (u8 index). Firmware 2.0 reports unrecognised trains as cash events and no
# longer makes cash_unrecognised; the name stays so that its index keeps its meaning.
BOARD_EVENT_KINDS = (
    "door_open",
    "door_closed",
    "tamper",
    "tamper_cleared",
    "watchdog_reset",
    "board_restart",
    "cash_unrecognised",
    "inlet_jammed",
)
LAMP_MODES = ("in_service", "out_of_service", "maintenance", "attention")

# How many events one CASH_PENDING / BOARD_EVENTS answer carries; the host asks again after
# the last number it got until an answer is short.
CASH_PAGE = 16
BOARD_EVENT_PAGE = 4
TEMPERATURE_UNKNOWN = -32768

# STATUS flag bits
FLAG_DOOR_KNOWN = 0x01
FLAG_DOOR_OPEN = 0x02
FLAG_TAMPER_LATCHED = 0x04
FLAG_MAINTENANCE = 0x08
FLAG_ACCEPTING = 0x10
FLAG_JAMMED = 0x20
FLAG_CLOCK_SET = 0x40
FLAG_WATCHDOG_GAVE_UP = 0x80


class LinkError(Exception):
    """A frame or payload that cannot be decoded; the text says what was wrong."""


# ---------------------------------------------------------------- CRC-16/CCITT-FALSE
# Written by hand because MicroPython's binascii has no crc_hqx (CPython's binascii.crc_hqx
# computes the same function; the tests check that). Polynomial 0x1021, initial 0xFFFF.


def _make_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _make_crc_table()


def crc16(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFF00) ^ table[((crc >> 8) ^ byte) & 0xFF]
    return crc


# ---------------------------------------------------------------- COBS
# Consistent Overhead Byte Stuffing removes every zero byte from a frame so that a zero
# always means "frame boundary": after any garbage the receiver is back in step at the next
# zero. Hand-written because no COBS module exists for MicroPython and this file must run
# unchanged on both sides.


def cobs_encode(data: bytes | bytearray) -> bytes:
    out = bytearray()
    code_index = 0
    out.append(0)
    code = 1
    for byte in data:
        if byte == 0:
            out[code_index] = code
            code_index = len(out)
            out.append(0)
            code = 1
        else:
            out.append(byte)
            code += 1
            if code == 0xFF:
                out[code_index] = code
                code_index = len(out)
                out.append(0)
                code = 1
    out[code_index] = code
    return bytes(out)


def cobs_decode(data: bytes | bytearray) -> bytes:
    out = bytearray()
    index = 0
    length = len(data)
    while index < length:
        code = data[index]
        if code == 0:
            raise LinkError("zero byte inside a COBS block")
        end = index + code
        if end > length:
            raise LinkError("COBS block runs past the end of the frame")
        out.extend(data[index + 1 : end])
        index = end
        if code != 0xFF and index < length:
            out.append(0)
    return bytes(out)


# ---------------------------------------------------------------- frames


def encode_frame(seq: int, msg_type: int, payload: bytes | bytearray = b"") -> bytes:
    """One frame on the wire: 0x00, COBS(seq, type, length, payload, CRC-16 big-endian), 0x00.

    The leading zero ends whatever garbage came before, so a frame is never glued to it.
    The length byte is redundant with the delimiters on purpose: a dropped or duplicated
    byte then fails the length check for certain, not only the CRC with odds of 1 in 65536.
    """
    if len(payload) > MAX_PAYLOAD:
        raise LinkError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = bytearray(struct.pack(">BBB", seq & 0xFF, msg_type & 0xFF, len(payload)))
    body.extend(payload)
    body.extend(struct.pack(">H", crc16(body)))
    return b"\x00" + cobs_encode(body) + b"\x00"


def decode_body(encoded: bytes | bytearray) -> tuple[int, int, bytes]:
    """(seq, type, payload) of one frame's bytes between delimiters, or LinkError."""
    body = cobs_decode(encoded)
    if len(body) < HEADER_SIZE + 2:
        raise LinkError(f"frame of {len(body)} bytes is shorter than its header and CRC")
    if len(body) != HEADER_SIZE + body[2] + 2:
        raise LinkError(f"frame of {len(body)} bytes does not match its length byte {body[2]}")
    if crc16(body[:-2]) != struct.unpack(">H", body[-2:])[0]:
        raise LinkError("CRC mismatch")
    return body[0], body[1], bytes(body[HEADER_SIZE:-2])


class Deframer:
    """Turns a byte stream into frames, skipping and counting damaged ones.

    feed() returns the frames completed by the new bytes, as (seq, type, payload). A damaged
    frame (bad COBS, bad CRC, too long) is dropped and counted in `damaged`; the receiver is
    back in step at the next zero byte.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._overflowed = False
        self.damaged = 0
        self.frames = 0

    def feed(self, data: bytes | bytearray) -> list[tuple[int, int, bytes]]:
        frames = []
        for byte in data:
            if byte != DELIMITER:
                if len(self._buffer) < MAX_ENCODED:
                    self._buffer.append(byte)
                else:
                    self._overflowed = True
                continue
            if self._overflowed:
                self.damaged += 1
            elif self._buffer:
                try:
                    frames.append(decode_body(self._buffer))
                    self.frames += 1
                except LinkError:
                    self.damaged += 1
            self._buffer = bytearray()
            self._overflowed = False
        return frames


# ---------------------------------------------------------------- payloads
# Every payload layout is a pair of functions here, used by both ends. Integers are
# big-endian; text is UTF-8 with a u8 length.


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")[:255]
    return struct.pack(">B", len(raw)) + raw


def _read_text(payload: bytes, offset: int) -> tuple[str, int]:
    if offset >= len(payload):
        raise LinkError("text field missing")
    length = payload[offset]
    end = offset + 1 + length
    if end > len(payload):
        raise LinkError("text field runs past the payload")
    try:
        return payload[offset + 1 : end].decode("utf-8"), end
    except UnicodeError:
        raise LinkError("text field is not UTF-8") from None


def _unpack(fmt: str, payload: bytes, what: str) -> tuple[Any, ...]:
    if len(payload) != struct.calcsize(fmt):
        raise LinkError(f"{what} payload has {len(payload)} bytes, expected {struct.calcsize(fmt)}")
    return struct.unpack(fmt, payload)


def encode_hello(protocol_version: int, host_nonce: int, host_time_ms: int) -> bytes:
    return struct.pack(">BIQ", protocol_version, host_nonce, host_time_ms)


def decode_hello(payload: bytes) -> tuple[int, int, int]:
    # Only the version byte is frozen; a board reads it before anything else so that a
    # host of another version gets ERR_VERSION rather than a misread payload.
    if len(payload) < 1:
        raise LinkError("hello without a protocol version")
    if payload[0] != PROTOCOL_VERSION:
        return payload[0], 0, 0
    version, nonce, host_time_ms = _unpack(">BIQ", payload, "hello")
    return version, nonce, host_time_ms


def encode_hello_response(
    protocol_version: int,
    host_nonce: int,
    board_id: str,
    firmware_version: str,
    capabilities: int,
    boots: int,
) -> bytes:
    return (
        struct.pack(">BIHI", protocol_version, host_nonce, capabilities, boots)
        + _text(board_id)
        + _text(firmware_version)
    )


def decode_hello_response(payload: bytes) -> dict[str, Any]:
    if len(payload) < 11:
        raise LinkError(f"hello response of {len(payload)} bytes is too short")
    version, nonce, capabilities, boots = struct.unpack(">BIHI", payload[:11])
    board_id, offset = _read_text(payload, 11)
    firmware_version, offset = _read_text(payload, offset)
    return {
        "protocol_version": version,
        "host_nonce": nonce,
        "capabilities": capabilities,
        "boots": boots,
        "board_id": board_id,
        "firmware_version": firmware_version,
    }


def capability_names(mask: int) -> list[str]:
    return [name for bit, name in CAPABILITY_NAMES if mask & bit]


def encode_u8(value: int) -> bytes:
    return struct.pack(">B", value)


def decode_u8(payload: bytes, what: str) -> int:
    value: int = _unpack(">B", payload, what)[0]
    return value


def encode_u32(value: int) -> bytes:
    return struct.pack(">I", value)


def decode_u32(payload: bytes, what: str) -> int:
    value: int = _unpack(">I", payload, what)[0]
    return value


def encode_u64(value: int) -> bytes:
    return struct.pack(">Q", value)


def decode_u64(payload: bytes, what: str) -> int:
    value: int = _unpack(">Q", payload, what)[0]
    return value


# A cash event on the wire: number (u32), kind (u8 index into CASH_KINDS), value in fen (u32),
# inlet (u8 index into INLETS), pulses (u16: the train length of an unrecognised item, 0 when
# not recorded). A note or coin is worth more than 0 fen and came in through its own inlet;
# an unrecognised item is worth 0 fen; anything else is a LinkError.
_CASH_EVENT = ">IBIBH"
_CASH_EVENT_SIZE = 12


def encode_cash_events(events: list[tuple[int, str, int, str, int]]) -> bytes:
    out = bytearray(struct.pack(">B", len(events)))
    for number, kind, value_fen, inlet, pulses in events:
        out.extend(
            struct.pack(
                _CASH_EVENT,
                number,
                CASH_KINDS.index(kind),
                value_fen,
                INLETS.index(inlet),
                min(pulses, 0xFFFF),
            )
        )
    return bytes(out)


def decode_cash_events(payload: bytes) -> list[tuple[int, str, int, str, int]]:
    if not payload or len(payload) != 1 + payload[0] * _CASH_EVENT_SIZE:
        raise LinkError("cash event list has a wrong length")
    events = []
    for index in range(payload[0]):
        start = 1 + index * _CASH_EVENT_SIZE
        number, kind, value_fen, inlet, pulses = struct.unpack(
            _CASH_EVENT, payload[start : start + _CASH_EVENT_SIZE]
        )
        if kind >= len(CASH_KINDS):
            raise LinkError(f"cash event kind {kind} is unknown")
        if inlet >= len(INLETS):
            raise LinkError(f"cash event inlet {inlet} is unknown")
        kind_name = CASH_KINDS[kind]
        if kind_name == UNRECOGNISED:
            if value_fen != 0:
                raise LinkError(f"unrecognised cash event {number} is worth {value_fen} fen")
        elif value_fen == 0 or INLETS[inlet] != kind_name:
            raise LinkError(f"cash event {number} is not a valid {kind_name}")
        events.append((number, kind_name, value_fen, INLETS[inlet], pulses))
    return events


# SET_ACCEPTING: open (u8 0/1), largest denomination to let in, in fen (u32, NO_LIMIT: all).


def encode_set_accepting(accepting: bool, largest_fen: int | None) -> bytes:
    largest = NO_LIMIT if largest_fen is None or largest_fen >= NO_LIMIT else largest_fen
    return struct.pack(">BI", 1 if accepting else 0, largest)


def decode_set_accepting(payload: bytes) -> tuple[bool, int | None]:
    accepting, largest = _unpack(">BI", payload, "set_accepting")
    if accepting > 1:
        raise LinkError(f"set_accepting flag {accepting} is neither 0 nor 1")
    return accepting == 1, None if largest == NO_LIMIT else largest


# A board event: number (u32), kind (u8 index into BOARD_EVENT_KINDS), board time in ms
# (u64), clock_set (u8: 1 = Unix time set by a host, 0 = milliseconds since board start),
# detail as JSON text.


def encode_board_events(events: list[tuple[int, str, int, bool, dict[str, Any]]]) -> bytes:
    out = bytearray(struct.pack(">B", len(events)))
    for number, kind, time_ms, clock_set, detail in events:
        out.extend(
            struct.pack(
                ">IBQB", number, BOARD_EVENT_KINDS.index(kind), time_ms, 1 if clock_set else 0
            )
        )
        out.extend(_text(json.dumps(detail)))
    return bytes(out)


def decode_board_events(payload: bytes) -> list[tuple[int, str, int, bool, dict[str, Any]]]:
    if not payload:
        raise LinkError("board event list is empty")
    events = []
    offset = 1
    for _ in range(payload[0]):
        if offset + 14 > len(payload):
            raise LinkError("board event list is truncated")
        number, kind, time_ms, clock_set = struct.unpack(">IBQB", payload[offset : offset + 14])
        if kind >= len(BOARD_EVENT_KINDS):
            raise LinkError(f"board event kind {kind} is unknown")
        text, offset = _read_text(payload, offset + 14)
        try:
            detail = json.loads(text)
        except ValueError:
            raise LinkError("board event detail is not JSON") from None
        if not isinstance(detail, dict):
            raise LinkError("board event detail is not an object")
        events.append((number, BOARD_EVENT_KINDS[kind], time_ms, clock_set == 1, detail))
    if offset != len(payload):
        raise LinkError("board event list has trailing bytes")
    return events


# STATUS answer: flags (u8), lamp (u8), temperature in tenths of a degree C (i16,
# TEMPERATURE_UNKNOWN when the sensor failed), unacknowledged cash (u16), unacknowledged
# board events (u16), uptime ms (u32), watchdog resets since the board started (u16),
# largest denomination let in (u32 fen, NO_LIMIT: all), firmware version (text).
_STATUS = ">BBhHHIHI"
_STATUS_SIZE = struct.calcsize(_STATUS)


def encode_status(status: dict[str, Any]) -> bytes:
    return struct.pack(
        _STATUS,
        status["flags"],
        LAMP_MODES.index(status["lamp"]),
        status["temperature_decic"],
        status["unacknowledged_cash"],
        status["unacknowledged_board_events"],
        status["uptime_ms"] & 0xFFFFFFFF,
        status["watchdog_resets"],
        NO_LIMIT if status["largest_fen"] is None else status["largest_fen"],
    ) + _text(status["firmware_version"])


def decode_status(payload: bytes) -> dict[str, Any]:
    if len(payload) < _STATUS_SIZE:
        raise LinkError(f"status of {len(payload)} bytes is too short")
    flags, lamp, decic, cash, board, uptime, resets, largest = struct.unpack(
        _STATUS, payload[:_STATUS_SIZE]
    )
    if lamp >= len(LAMP_MODES):
        raise LinkError(f"lamp mode {lamp} is unknown")
    firmware_version, end = _read_text(payload, _STATUS_SIZE)
    if end != len(payload):
        raise LinkError("status has trailing bytes")
    return {
        "flags": flags,
        "lamp": LAMP_MODES[lamp],
        "temperature_decic": decic,
        "unacknowledged_cash": cash,
        "unacknowledged_board_events": board,
        "uptime_ms": uptime,
        "watchdog_resets": resets,
        "largest_fen": None if largest == NO_LIMIT else largest,
        "firmware_version": firmware_version,
    }


def encode_error(code: int, text: str) -> bytes:
    return struct.pack(">B", code) + _text(text)


def decode_error(payload: bytes) -> tuple[int, str]:
    if not payload:
        raise LinkError("error without a code")
    text, _ = _read_text(payload, 1) if len(payload) > 1 else ("", 1)
    return payload[0], text
