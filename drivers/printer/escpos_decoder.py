"""The ESC/POS byte stream as a printer reads it: bytes in, typed commands out.

Owns the parsing of every command the ESC/POS driver sends (and the status queries a host
may send at any time) into small command values, for the pseudo-terminal printer simulator
and for tests. Bytes it does not understand become Unknown commands that say why: they are
reported, never silently dropped. It keeps the two pieces of state that change how later
bytes are read (Chinese mode and the international character set) and nothing else; it
never prints, renders or answers.

Text in Chinese mode (FS &) is GB18030: a byte 0x81..0xFE starts a two-byte character, or a
four-byte one when the second byte is a digit 0x30..0x39. Outside Chinese mode bytes above
0x7F are read from code page PC437, the power-on default of these printers.

Real-time commands (DLE EOT, DLE DC4) are recognised between commands only, not inside
another command's data: the driver never sends them in the middle of a job's bytes.
"""

from dataclasses import dataclass

# ------------------------------------------------------------------ the commands


@dataclass(frozen=True)
class Initialize:
    """ESC @: clear the print modes (not the paper): bold off, normal size, left, font A."""


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class LineFeed:
    """LF: print the line buffer and move to the next line."""


@dataclass(frozen=True)
class CarriageReturn:
    """CR: ignored by receipt printers in their default (LF-driven) mode."""


@dataclass(frozen=True)
class Bold:
    on: bool


@dataclass(frozen=True)
class CharacterSize:
    width: int  # 1..8 times the normal width
    height: int  # 1..8 times the normal height


@dataclass(frozen=True)
class Align:
    align: str  # left | center | right


@dataclass(frozen=True)
class Font:
    font: str  # A (12x24 dots) | B (9x17 dots)


@dataclass(frozen=True)
class ChineseMode:
    on: bool


@dataclass(frozen=True)
class InternationalSet:
    number: int


@dataclass(frozen=True)
class FeedLines:
    lines: int


@dataclass(frozen=True)
class QrModel:
    model: int


@dataclass(frozen=True)
class QrModuleSize:
    dots: int


@dataclass(frozen=True)
class QrErrorLevel:
    level: str  # L | M | Q | H


@dataclass(frozen=True)
class QrStore:
    data: bytes


@dataclass(frozen=True)
class QrPrint:
    pass


@dataclass(frozen=True)
class Cut:
    full: bool
    feed_dots: int = 0


@dataclass(frozen=True)
class ProcessIdRequest:
    """GS ( H fn=48: answer 37 22 <id> 00 once everything before it is printed."""

    process_id: str


@dataclass(frozen=True)
class PaperSensorQuery:
    """GS r n: answered in turn, after everything before it is printed."""

    kind: int


@dataclass(frozen=True)
class StatusQuery:
    """DLE EOT n: real-time, answered at once even while the printer is offline."""

    kind: int


@dataclass(frozen=True)
class ClearBuffers:
    """DLE DC4 fn=8: real-time, drop every received byte not yet printed."""


@dataclass(frozen=True)
class Unknown:
    raw: bytes
    reason: str


Command = (
    Initialize
    | Text
    | LineFeed
    | CarriageReturn
    | Bold
    | CharacterSize
    | Align
    | Font
    | ChineseMode
    | InternationalSet
    | FeedLines
    | QrModel
    | QrModuleSize
    | QrErrorLevel
    | QrStore
    | QrPrint
    | Cut
    | ProcessIdRequest
    | PaperSensorQuery
    | StatusQuery
    | ClearBuffers
    | Unknown
)

REAL_TIME_COMMANDS = (StatusQuery, ClearBuffers)

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10
EOT, DC4, LF, CR = 0x04, 0x14, 0x0A, 0x0D
CLEAR_BUFFERS_ARGUMENTS = bytes((1, 3, 20, 1, 6, 2, 8))  # the fixed d1..d7 of DLE DC4 fn=8

_ALIGNMENTS = {0: "left", 48: "left", 1: "center", 49: "center", 2: "right", 50: "right"}
_FONTS = {0: "A", 48: "A", 1: "B", 49: "B"}
_QR_LEVELS = {48: "L", 49: "M", 50: "Q", 51: "H"}
# ESC R n: the international character sets whose substitutions this decoder knows.
# n=0 (U.S.A.) substitutes nothing; n=8 (Japan) prints 0x5C as YEN SIGN and 0x7E as overline.
INTERNATIONAL_SETS: dict[int, dict[int, str]] = {0: {}, 8: {0x5C: "\u00a5", 0x7E: "\u203e"}}


class _Incomplete(Exception):
    """The buffer ends inside a command: wait for more bytes."""


class EscPosDecoder:
    """Feed bytes as they arrive; get back the complete commands they hold, in order."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.chinese_mode = False
        self.international_set = 0

    @property
    def incomplete(self) -> bytes:
        """Bytes of a command that has not fully arrived yet."""
        return bytes(self._buffer)

    def reset(self) -> bytes:
        """Forget a partly received command (the link dropped); returns what was dropped."""
        dropped = bytes(self._buffer)
        self._buffer.clear()
        return dropped

    def feed(self, data: bytes) -> list[Command]:
        self._buffer += data
        commands: list[Command] = []
        position = 0
        while position < len(self._buffer):
            try:
                command, length = self._parse(position)
            except _Incomplete:
                break
            commands.append(command)
            position += length
        del self._buffer[:position]
        return commands

    # ------------------------------------------------------------------ parsing

    def _byte(self, index: int) -> int:
        if index >= len(self._buffer):
            raise _Incomplete
        return self._buffer[index]

    def _parse(self, at: int) -> tuple[Command, int]:
        first = self._buffer[at]
        if first == LF:
            return LineFeed(), 1
        if first == CR:
            return CarriageReturn(), 1
        if first == ESC:
            return self._parse_esc(at)
        if first == GS:
            return self._parse_gs(at)
        if first == FS:
            return self._parse_fs(at)
        if first == DLE:
            return self._parse_dle(at)
        if first < 0x20 or first == 0x7F:
            return Unknown(bytes([first]), f"control byte 0x{first:02x} is not supported"), 1
        return self._parse_text(at)

    def _parse_esc(self, at: int) -> tuple[Command, int]:
        code = self._byte(at + 1)
        if code == ord("@"):
            self.chinese_mode = False
            self.international_set = 0
            return Initialize(), 2
        if code not in b"EaMRd":
            return Unknown(bytes([ESC, code]), f"ESC 0x{code:02x} is not supported"), 2
        argument = self._byte(at + 2)
        raw = bytes([ESC, code, argument])
        if code == ord("E"):
            return Bold(bool(argument & 1)), 3
        if code == ord("d"):
            return FeedLines(argument), 3
        if code == ord("a"):
            if argument not in _ALIGNMENTS:
                return Unknown(raw, f"ESC a {argument} is not an alignment"), 3
            return Align(_ALIGNMENTS[argument]), 3
        if code == ord("M"):
            if argument not in _FONTS:
                return Unknown(raw, f"ESC M {argument} is not a font"), 3
            return Font(_FONTS[argument]), 3
        if argument not in INTERNATIONAL_SETS:  # ESC R
            return Unknown(raw, f"ESC R {argument}: international set not supported"), 3
        self.international_set = argument
        return InternationalSet(argument), 3

    def _parse_gs(self, at: int) -> tuple[Command, int]:
        code = self._byte(at + 1)
        if code == ord("!"):
            size = self._byte(at + 2)
            return CharacterSize(width=(size >> 4) + 1, height=(size & 0x0F) + 1), 3
        if code == ord("V"):
            mode = self._byte(at + 2)
            if mode in (0, 48):
                return Cut(full=True), 3
            if mode in (1, 49):
                return Cut(full=False), 3
            if mode in (65, 66):
                return Cut(full=mode == 65, feed_dots=self._byte(at + 3)), 4
            return Unknown(bytes([GS, code, mode]), f"GS V {mode} is not a cut mode"), 3
        if code == ord("r"):
            kind = self._byte(at + 2)
            if kind in (1, 49):
                return PaperSensorQuery(1), 3
            return Unknown(bytes([GS, code, kind]), f"GS r {kind} is not supported"), 3
        if code == ord("("):
            return self._parse_gs_paren(at)
        return Unknown(bytes([GS, code]), f"GS 0x{code:02x} is not supported"), 2

    def _parse_gs_paren(self, at: int) -> tuple[Command, int]:
        function_set = self._byte(at + 2)
        size = self._byte(at + 3) + 256 * self._byte(at + 4)
        total = 5 + size
        if len(self._buffer) < at + total:
            raise _Incomplete
        raw = bytes(self._buffer[at : at + total])
        body = raw[5:]
        if function_set == ord("k"):
            return self._qr_command(raw, body), total
        if function_set == ord("H") and len(body) == 6 and body[:2] == b"00":
            return ProcessIdRequest(body[2:].decode("latin-1")), total
        return Unknown(raw, f"GS ( {chr(function_set)!r} function is not supported"), total

    @staticmethod
    def _qr_command(raw: bytes, body: bytes) -> Command:
        if len(body) < 2 or body[0] != ord("1"):
            return Unknown(raw, "GS ( k for a symbol other than QR (cn 49) is not supported")
        function, arguments = body[1], body[2:]
        if function == 65 and len(arguments) == 2 and arguments[0] in (49, 50, 51):
            return QrModel(arguments[0] - 48)
        if function == 67 and len(arguments) == 1 and 1 <= arguments[0] <= 16:
            return QrModuleSize(arguments[0])
        if function == 69 and len(arguments) == 1 and arguments[0] in _QR_LEVELS:
            return QrErrorLevel(_QR_LEVELS[arguments[0]])
        if function == 80 and arguments[:1] == b"0":
            return QrStore(arguments[1:])
        if function == 81 and arguments == b"0":
            return QrPrint()
        return Unknown(raw, f"GS ( k QR function {function} with these arguments is invalid")

    def _parse_fs(self, at: int) -> tuple[Command, int]:
        code = self._byte(at + 1)
        if code == ord("&"):
            self.chinese_mode = True
            return ChineseMode(True), 2
        if code == ord("."):
            self.chinese_mode = False
            return ChineseMode(False), 2
        return Unknown(bytes([FS, code]), f"FS 0x{code:02x} is not supported"), 2

    def _parse_dle(self, at: int) -> tuple[Command, int]:
        code = self._byte(at + 1)
        if code == EOT:
            kind = self._byte(at + 2)
            if kind in (1, 2, 3, 4):
                return StatusQuery(kind), 3
            return Unknown(bytes([DLE, EOT, kind]), f"DLE EOT {kind} is not supported"), 3
        if code == DC4:
            function = self._byte(at + 2)
            if function != 8:
                return Unknown(bytes([DLE, DC4, function]), f"DLE DC4 {function} unsupported"), 3
            arguments = bytes(self._byte(at + 3 + i) for i in range(7))
            if arguments != CLEAR_BUFFERS_ARGUMENTS:
                raw = bytes([DLE, DC4, function]) + arguments
                return Unknown(raw, "DLE DC4 8 with wrong fixed arguments"), 10
            return ClearBuffers(), 10
        return Unknown(bytes([DLE, code]), f"DLE 0x{code:02x} is not supported"), 2

    def _parse_text(self, at: int) -> tuple[Command, int]:
        substitutions = INTERNATIONAL_SETS[self.international_set]
        chars: list[str] = []
        position = at
        while position < len(self._buffer):
            byte = self._buffer[position]
            if byte < 0x20 or byte == 0x7F:
                break
            if byte < 0x80:
                chars.append(substitutions.get(byte, chr(byte)))
                position += 1
                continue
            if not self.chinese_mode:
                chars.append(bytes([byte]).decode("cp437"))
                position += 1
                continue
            length = self._gb18030_length(position)
            if length is None:  # the rest of the character has not arrived yet
                if chars:
                    break
                raise _Incomplete
            sequence = bytes(self._buffer[position : position + length])
            try:
                character = sequence.decode("gb18030")
            except UnicodeDecodeError:
                if chars:
                    break
                return Unknown(sequence, "invalid GB18030 byte sequence"), length
            chars.append(character)
            position += length
        return Text("".join(chars)), position - at

    def _gb18030_length(self, at: int) -> int | None:
        """1 for a lone invalid lead byte, 2 or 4 for a character; None if cut short."""
        if not 0x81 <= self._buffer[at] <= 0xFE:
            return 1
        if at + 1 >= len(self._buffer):
            return None
        if 0x30 <= self._buffer[at + 1] <= 0x39:
            return 4 if at + 3 < len(self._buffer) else None
        return 2
