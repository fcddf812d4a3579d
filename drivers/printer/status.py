"""What the bits of an ESC/POS printer's status replies mean, as data both ends share.

Owns the DLE EOT n (real-time status, n = 1..4) bit table, the fixed-bit pattern that tells a
real-time status byte apart from line noise and from other replies, and the translation of
four status bytes into a kiosk.devices.PrinterStatus. The ESC/POS driver decodes with it and
the pseudo-terminal simulator encodes with it, so the two cannot drift. It never talks to a
port.

Bit meanings follow the Epson ESC/POS reference for DLE EOT (TM series; the Chinese receipt
printers this terminal uses copy it). python-escpos knows only n=1 bit 3 and the n=4 paper
masks, and its paper_status() reads "no reply" as "paper adequate", which this terminal must
never do: hence this table.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kiosk.devices import PrinterStatus

# Every DLE EOT reply has bit 0 = 0, bit 1 = 1, bit 4 = 1 and bit 7 = 0: a byte that does not
# match is not a status reply (noise, or another command's answer) and must be ignored.
STATUS_FIXED_MASK = 0b1001_0011
STATUS_FIXED_BITS = 0b0001_0010

STATUS_KINDS = (1, 2, 3, 4)


@dataclass(frozen=True)
class StatusBit:
    kind: int  # the n of DLE EOT n
    mask: int  # the bit (or both bits of a sensor pair) that are set when the condition holds
    condition: str
    meaning: str


STATUS_BITS: tuple[StatusBit, ...] = (
    StatusBit(1, 0b0000_0100, "drawer_pin3_high", "drawer kick-out connector pin 3 is high"),
    StatusBit(1, 0b0000_1000, "offline", "the printer is offline (it prints nothing)"),
    StatusBit(1, 0b0010_0000, "waiting_recovery", "waiting for online recovery"),
    StatusBit(1, 0b0100_0000, "feed_button", "the paper feed button is being pressed"),
    StatusBit(2, 0b0000_0100, "cover_open", "the paper cover is open"),
    StatusBit(2, 0b0000_1000, "feeding", "paper is being fed by the feed button"),
    StatusBit(2, 0b0010_0000, "paper_end_stop", "printing stopped because the paper ran out"),
    StatusBit(2, 0b0100_0000, "error", "an error occurred"),
    StatusBit(3, 0b0000_0100, "mechanical_error", "a recoverable mechanical error occurred"),
    StatusBit(3, 0b0000_1000, "autocutter_error", "the autocutter jammed or failed"),
    StatusBit(3, 0b0010_0000, "unrecoverable_error", "an unrecoverable error occurred"),
    StatusBit(3, 0b0100_0000, "auto_recoverable_error", "print head overheated (recovers)"),
    # The paper sensors report on two bits each, both set when the condition holds.
    StatusBit(4, 0b0000_1100, "paper_near_end", "the roll is nearly used up"),
    StatusBit(4, 0b0110_0000, "paper_out", "there is no paper"),
)

# The conditions of n=3 that PrinterStatus.error covers, with what a technician should do.
ERROR_ADVICE: Mapping[str, str] = {
    "autocutter_error": "clear the paper from the cutter and switch the printer off and on",
    "mechanical_error": "open and close the cover, then switch the printer off and on",
    "unrecoverable_error": "switch the printer off and on; if it persists, replace it",
    "auto_recoverable_error": "let the print head cool down for a few minutes",
}


def is_status_reply(byte: int) -> bool:
    """Whether byte can be a DLE EOT reply (its fixed bits match)."""
    return byte & STATUS_FIXED_MASK == STATUS_FIXED_BITS


def encode_status(kind: int, conditions: Iterable[str]) -> int:
    """The reply byte to DLE EOT kind when the named conditions hold (the simulator's side)."""
    if kind not in STATUS_KINDS:
        raise ValueError(f"DLE EOT {kind} is not a status kind this table knows")
    wanted = set(conditions)
    byte = STATUS_FIXED_BITS
    for bit in STATUS_BITS:
        if bit.kind == kind and bit.condition in wanted:
            byte |= bit.mask
    return byte


def decode_status(kind: int, byte: int) -> frozenset[str]:
    """The conditions a DLE EOT kind reply byte reports (the driver's side).

    A sensor pair counts only when both its bits are set, as the reference defines it; a
    byte whose fixed bits do not match raises ValueError (it is not a status reply).
    """
    if not is_status_reply(byte):
        raise ValueError(f"0x{byte:02x} is not a DLE EOT status reply")
    return frozenset(
        bit.condition for bit in STATUS_BITS if bit.kind == kind and byte & bit.mask == bit.mask
    )


def printer_status(replies: Mapping[int, int]) -> PrinterStatus:
    """The PrinterStatus of the four DLE EOT replies {1: byte, 2: byte, 3: byte, 4: byte}."""
    conditions = {kind: decode_status(kind, replies[kind]) for kind in STATUS_KINDS}
    errors = error_conditions(replies)
    return PrinterStatus(
        # ESC/POS "offline" covers a cover open, paper out or an error: the printer answers
        # but prints nothing. online=None stays reserved for "did not answer at all".
        online="offline" not in conditions[1],
        cover_open="cover_open" in conditions[2],
        paper_near_end="paper_near_end" in conditions[4],
        paper_out="paper_out" in conditions[4] or "paper_end_stop" in conditions[2],
        error=bool(errors) or "error" in conditions[2],
    )


def error_conditions(replies: Mapping[int, int]) -> list[str]:
    """The error conditions of the n=3 reply, in table order."""
    found = decode_status(3, replies[3])
    return [bit.condition for bit in STATUS_BITS if bit.kind == 3 and bit.condition in found]


# ---------------------------------------------------------------- other replies the driver reads

# GS ( H fn=48 "process ID response": the printer sends 37 22 d1 d2 d3 d4 00 when it has
# processed (printed) everything sent before the request, so it marks the end of a job.
PROCESS_ID_HEADER = b"\x37\x22"
PROCESS_ID_LENGTH = 4
PROCESS_ID_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # within 0x30..0x7A as required
# DLE DC4 fn=8 "clear buffers" is answered with 37 25 00.
BUFFER_CLEARED_REPLY = b"\x37\x25\x00"


def process_id_response(process_id: str) -> bytes:
    """The bytes a printer sends back for GS ( H with this process id."""
    return PROCESS_ID_HEADER + process_id.encode("ascii") + b"\x00"
