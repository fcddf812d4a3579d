"""A receipt as the ESC/POS bytes of one print job, for one printer model and paper width.

Owns turning a kiosk.devices.ReceiptDocument into the job's bytes: GB18030 Chinese through
the printer's Chinese mode, bold, double size, alignment, lines wrapped by display width, the
native QR code sized to the paper, the small-font job line, the feed and the cut the model's
autocutter makes, and the REPRINT marking. It also says how much paper the job takes, which
bounds how long a status-polled job may take to print. It checks a document before any byte
is built and never talks to a port (escpos_driver.py sends the job).
"""

from dataclasses import dataclass
from itertools import groupby

import segno

from drivers.printer import escpos_commands as esc
from drivers.printer.capabilities import (
    DOTS_PER_MM,
    LINE_PITCH_MM,
    QR_QUIET_ZONE_MODULES,
    PaperWidth,
    max_qr_symbol_modules,
)
from drivers.printer.profiles import PrinterProfile
from kiosk.devices import ReceiptDocument, ReceiptLine
from kiosk.i18n import bilingual
from kiosk.receipts.layout import wrap

# The largest QR module the driver asks for: bigger modules only waste paper.
MAX_QR_MODULE_DOTS = 6
# The last line of every job, in the small font: the job id, so that paper found in the
# printer (or a simulator's output) can be matched to the job that printed it.
JOB_LINE_PREFIX = "job "
REPRINT_MESSAGE = "REPRINT"


@dataclass(frozen=True)
class EscPosJob:
    data: bytes
    paper_mm: float  # paper the job feeds through the printer, QR code and feed included


def receipt_job(
    document: ReceiptDocument, profile: PrinterProfile, paper: PaperWidth, reprint: int = 0
) -> EscPosJob:
    """The job of a receipt; reprint > 0 adds the REPRINT marking (the n-th send)."""
    check_document(document, paper)
    out = bytearray(esc.INITIALIZE)
    rows = 0.0
    marking = (
        [ReceiptLine(f"** {bilingual(REPRINT_MESSAGE)} {reprint} **", bold=True, align="center")]
        if reprint
        else []
    )
    for line in (*marking, *document.lines, *marking):
        data, count = _line_bytes(line, paper.columns)
        out += data
        rows += count
    qr_mm = 0.0
    if document.qr_payload is not None:
        level = document.qr_error_level
        modules = qr_modules(document.qr_payload, level)
        dots = max(1, min(MAX_QR_MODULE_DOTS, paper.dots // modules))
        code = esc.qr_code(document.qr_payload.encode("utf-8"), dots, level)
        out += esc.ALIGN["center"] + code + esc.LF
        qr_mm = modules * dots / DOTS_PER_MM
        rows += 1
    out += esc.ALIGN["left"] + esc.FONT_B + text_bytes(JOB_LINE_PREFIX + document.job_id)
    out += esc.LF + esc.FONT_A
    out += esc.feed_lines(profile.feed_lines)
    out += esc.cut(profile.cut_for(esc.Cut(document.cut)))
    rows += 1 + profile.feed_lines
    return EscPosJob(bytes(out), rows * LINE_PITCH_MM + qr_mm)


def _line_bytes(line: ReceiptLine, columns: int) -> tuple[bytes, int]:
    """The line's bytes and the rows of paper it takes (a double-height row counts two)."""
    # Wrapped here rather than by the printer so that a wrapped line keeps its alignment
    # and breaks between words; a double-size character takes twice the columns.
    scale = 2 if line.double else 1
    rows = wrap(line.text, columns // scale) if line.text.strip() else [line.text]
    out = bytearray(esc.ALIGN[line.align] + esc.BOLD[line.bold] + esc.SIZE[line.double])
    for row in rows:
        out += text_bytes(row) + esc.LF
    out += esc.BOLD[False] + esc.SIZE[False]
    return bytes(out), len(rows) * scale


def text_bytes(text: str) -> bytes:
    """ASCII as it is; every other run through the printer's Chinese mode, in GB18030."""
    out = bytearray()
    for ascii_run, chars in groupby(text, key=str.isascii):
        run = "".join(chars)
        if ascii_run:
            out += run.encode("ascii")
        else:
            out += esc.CHINESE_ON + run.encode("gb18030") + esc.CHINESE_OFF
    return bytes(out)


def check_document(document: ReceiptDocument, paper: PaperWidth) -> None:
    """ValueError naming what is wrong with a document no printer could print."""
    if not document.job_id:
        raise ValueError("a receipt job needs a non-empty job id")
    cuts = tuple(esc.Cut)
    if document.cut not in cuts:
        raise ValueError(f"receipt cut {document.cut!r} is not one of {[str(c) for c in cuts]}")
    for line in document.lines:
        if line.align not in esc.ALIGN:
            raise ValueError(f"receipt line alignment {line.align!r} is not one of {esc.ALIGN}")
        _refuse_control_characters(line.text, "a receipt line")
    if document.qr_payload is not None:
        _refuse_control_characters(document.qr_payload, "the receipt's QR payload")
        if document.qr_error_level not in esc.QR_LEVELS:
            raise ValueError(
                f"QR error level {document.qr_error_level!r} is not one of {tuple(esc.QR_LEVELS)}"
            )
        if qr_modules(document.qr_payload, document.qr_error_level) > max_qr_symbol_modules(paper):
            raise ValueError(
                f"the receipt's QR payload ({len(document.qr_payload)} characters) is too "
                f"long for a legible QR code on {paper.width_mm} mm paper: shorten it"
            )


def qr_modules(payload: str, level: str = "M") -> int:
    """The QR symbol's width in modules, quiet zone included, as the printer will draw it
    (its firmware picks the mode from the data: alphanumeric for a receipt's KR2 code)."""
    try:
        symbol = segno.make_qr(payload, error=level.lower(), boost_error=False)
    except segno.DataOverflowError:
        return 10_000
    return int(symbol.symbol_size(border=QR_QUIET_ZONE_MODULES)[0])


def _refuse_control_characters(text: str, what: str) -> None:
    # A control character inside a line would be a printer command.
    for char in text:
        if ord(char) < 0x20 or ord(char) == 0x7F:
            raise ValueError(f"{what} contains the control character {char!r}: remove it")
