"""The ESC/POS commands the terminal sends to a receipt printer, as bytes: the wire, once.

Owns every command byte sequence the driver writes (print modes, Chinese mode, the native QR
code, feeds and cuts, the end-of-job process-id request, the real-time status queries and the
buffer clear). The driver builds jobs from these; the decoder (escpos_decoder.py) reads the
same bytes back and a test checks each builder against it, so the two ends cannot drift. The
replies a printer sends are in status.py. It never talks to a port.

Byte values follow the Epson ESC/POS reference (TM series), which the Chinese receipt
printers this terminal uses copy. python-escpos used to supply the QR and cut sequences; they
are eleven bytes of arithmetic, written here so that one module describes the wire (issue #20).
"""

from enum import StrEnum

ESC, GS, FS, DLE = b"\x1b", b"\x1d", b"\x1c", b"\x10"
LF = b"\n"

INITIALIZE = ESC + b"@"
CHINESE_ON, CHINESE_OFF = FS + b"&", FS + b"."
BOLD = {False: ESC + b"E\x00", True: ESC + b"E\x01"}
SIZE = {False: GS + b"!\x00", True: GS + b"!\x11"}  # double: twice as wide and as high
ALIGN = {"left": ESC + b"a\x00", "center": ESC + b"a\x01", "right": ESC + b"a\x02"}
FONT_A, FONT_B = ESC + b"M\x00", ESC + b"M\x01"

# DLE DC4 fn=8 with its fixed arguments d1..d7 = 1 3 20 1 6 2 8: drop every received byte
# not yet printed (real-time; answered with status.BUFFER_CLEARED_REPLY).
CLEAR_BUFFERS_ARGUMENTS = bytes((1, 3, 20, 1, 6, 2, 8))
CLEAR_BUFFERS = DLE + b"\x14\x08" + CLEAR_BUFFERS_ARGUMENTS

# GS ( k cn=49 (QR code) functions and the error-correction levels' byte values.
QR_SYMBOL = 49
QR_SELECT_MODEL, QR_MODULE_SIZE, QR_ERROR_LEVEL, QR_STORE, QR_PRINT = 65, 67, 69, 80, 81
QR_LEVELS = {"L": 48, "M": 49, "Q": 50, "H": 51}
QR_MODEL_2 = 50
QR_MAX_MODULE_DOTS = 16  # the largest module size GS ( k fn 167 accepts

# GS ( H fn=48 "process ID": the printer answers once everything before it is printed.
PROCESS_ID_FUNCTION = b"00"


class Cut(StrEnum):
    FULL = "full"
    PARTIAL = "partial"


_CUT_MODES = {Cut.FULL: 0, Cut.PARTIAL: 1}


def _gs_paren(function_set: bytes, body: bytes) -> bytes:
    """GS ( <function set> pL pH <body>: the length-prefixed command family."""
    if len(body) > 0xFFFF:
        raise ValueError(f"GS ( {function_set.decode()} body of {len(body)} bytes is too long")
    return GS + b"(" + function_set + len(body).to_bytes(2, "little") + body


def qr_code(data: bytes, module_dots: int, error_level: str = "M") -> bytes:
    """The native QR code (model 2): select the model, module size and level, store, print."""
    if not 1 <= module_dots <= QR_MAX_MODULE_DOTS:
        raise ValueError(f"QR module size {module_dots} dots is outside 1..{QR_MAX_MODULE_DOTS}")
    level = QR_LEVELS[error_level]

    def function(number: int, arguments: bytes) -> bytes:
        return _gs_paren(b"k", bytes((QR_SYMBOL, number)) + arguments)

    return (
        function(QR_SELECT_MODEL, bytes((QR_MODEL_2, 0)))
        + function(QR_MODULE_SIZE, bytes((module_dots,)))
        + function(QR_ERROR_LEVEL, bytes((level,)))
        + function(QR_STORE, b"0" + data)
        + function(QR_PRINT, b"0")
    )


def feed_lines(lines: int) -> bytes:
    """ESC d n: print the buffer and feed n lines (0..255)."""
    if not 0 <= lines <= 255:
        raise ValueError(f"cannot feed {lines} lines in one command (0..255)")
    return ESC + b"d" + bytes((lines,))


def cut(kind: Cut) -> bytes:
    """GS V m: cut the paper where it is (the caller feeds it past the cutter first)."""
    return GS + b"V" + bytes((_CUT_MODES[kind],))


def process_id_request(process_id: str) -> bytes:
    """GS ( H fn=48 with a four-character process id (status.PROCESS_ID_ALPHABET)."""
    encoded = process_id.encode("ascii")
    if len(encoded) != 4:
        raise ValueError(f"a process id has 4 characters, not {process_id!r}")
    return _gs_paren(b"H", PROCESS_ID_FUNCTION + encoded)


def status_query(kind: int) -> bytes:
    """DLE EOT n: real-time status n = 1..4, answered at once even while the printer is stopped."""
    if kind not in (1, 2, 3, 4):
        raise ValueError(f"DLE EOT {kind} is not a status kind")
    return DLE + b"\x04" + bytes((kind,))
