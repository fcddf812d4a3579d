"""What a receipt printer put on paper, as plain text and as a PNG image of the paper.

Owns the printed page model (rows of text with their print modes, QR codes) and drawing it:
the text file a test reads and the image a person or a QR decoder looks at. The image uses
the printer's grid (12 dots per standard column, 24-dot rows, a Chinese character two
columns) and the Noto Sans CJK font, and draws each QR code from the data the printer
received (segno), module for module. It never decodes ESC/POS and never talks to a port.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont

from drivers.printer.capabilities import QR_QUIET_ZONE_MODULES, PaperWidth
from kiosk.receipts.layout import char_width

CJK_FONT_FILES = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"),
)
COLUMN_DOTS = 12  # font A: 12x24 dots per standard column
ROW_DOTS = 24
MARGIN_DOTS = 16  # blank paper drawn above and below the print


@dataclass(frozen=True)
class PrintedText:
    text: str
    align: str = "left"
    bold: bool = False
    width: int = 1  # character width multiple
    height: int = 1
    small: bool = False  # font B


@dataclass(frozen=True)
class PrintedQr:
    payload: bytes
    module_dots: int
    error_level: str
    align: str = "center"


PrintedRow = PrintedText | PrintedQr


@dataclass
class PrintedPage:
    """One receipt's paper, from the first row after the previous cut to its own cut."""

    rows: list[PrintedRow] = field(default_factory=list)
    cut: str | None = None  # full | partial; None while printing or when the paper ran out
    notes: list[str] = field(default_factory=list)  # unknown commands, paper ran out...

    def qr_payloads(self) -> list[bytes]:
        return [row.payload for row in self.rows if isinstance(row, PrintedQr)]


def text_width(row: PrintedText) -> int:
    """Columns the row takes on paper (font B rows are counted as font A, an upper bound)."""
    return sum(char_width(char) for char in row.text) * row.width


def page_text(page: PrintedPage, columns: int) -> str:
    """The page as UTF-8 text: aligned rows, [QR] lines, a [CUT] line and notes."""
    lines: list[str] = []
    for row in page.rows:
        if isinstance(row, PrintedQr):
            lines.append(f"[QR] {row.payload.decode('utf-8', 'replace')}")
            continue
        free = max(columns - text_width(row), 0)
        pad = {"left": 0, "center": free // 2, "right": free}[row.align]
        lines.append((" " * pad + row.text).rstrip())
    lines += [f"[{note}]" for note in page.notes]
    if page.cut is not None:
        lines.append(f"[CUT {page.cut}]")
    return "\n".join(lines) + "\n"


def qr_symbol(row: PrintedQr) -> segno.QRCode:
    # Version and mode chosen automatically from the data, as the printer's firmware does
    # (ESC/POS GS ( k fn 81: "automatically selects the best compaction mode").
    return segno.make_qr(row.payload, error=row.error_level.lower(), boost_error=False)


def render_page(page: PrintedPage, paper: PaperWidth) -> Image.Image:
    """The page as a black-on-white image, one pixel per printer dot."""
    height = 2 * MARGIN_DOTS
    symbols: list[segno.QRCode | None] = []
    for row in page.rows:
        if isinstance(row, PrintedQr):
            symbols.append(qr_symbol(row))
            height += _qr_dots(symbols[-1], row)
        else:
            symbols.append(None)
            height += ROW_DOTS * row.height
    image = Image.new("L", (paper.dots, height), 255)
    draw = ImageDraw.Draw(image)
    y = MARGIN_DOTS
    for row, symbol in zip(page.rows, symbols, strict=True):
        if isinstance(row, PrintedQr) and symbol is not None:
            y += _draw_qr(image, symbol, row, paper, y)
        elif isinstance(row, PrintedText):
            _draw_text(draw, row, paper, y)
            y += ROW_DOTS * row.height
    return image


def write_page(page: PrintedPage, paper: PaperWidth, columns: int, stem: Path) -> None:
    """Write <stem>.txt and <stem>.png, each complete or absent (temp file, then rename)."""
    text_path, png_path = stem.with_suffix(".txt"), stem.with_suffix(".png")
    temporary = png_path.with_name(f".{png_path.name}.tmp")
    render_page(page, paper).save(temporary, format="PNG")
    os.replace(temporary, png_path)
    temporary = text_path.with_name(f".{text_path.name}.tmp")
    temporary.write_text(page_text(page, columns), encoding="utf-8")
    os.replace(temporary, text_path)


def qr_dots(row: PrintedQr) -> int:
    """The QR code's height (and width) on paper in dots, quiet zone included."""
    return _qr_dots(qr_symbol(row), row)


def _draw_qr(
    image: Image.Image, symbol: segno.QRCode, row: PrintedQr, paper: PaperWidth, y: int
) -> int:
    size = _qr_dots(symbol, row)
    x = {"left": 0, "center": (paper.dots - size) // 2, "right": paper.dots - size}[row.align]
    for row_index, modules in enumerate(
        symbol.matrix_iter(scale=row.module_dots, border=QR_QUIET_ZONE_MODULES)
    ):
        for column_index, dark in enumerate(modules):
            if dark:
                image.putpixel((max(x, 0) + column_index, y + row_index), 0)
    return size


def _qr_dots(symbol: segno.QRCode | None, row: PrintedQr) -> int:
    """The QR code's height on paper in dots, quiet zone included."""
    if symbol is None:
        return 0
    return int(symbol.symbol_size(border=QR_QUIET_ZONE_MODULES)[0]) * row.module_dots


def _font(bold: bool, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = CJK_FONT_FILES[1 if bold else 0]
    if not path.exists():  # without fonts-noto-cjk the image still shows the layout
        return ImageFont.load_default()
    return ImageFont.truetype(str(path), size)


def _draw_text(draw: ImageDraw.ImageDraw, row: PrintedText, paper: PaperWidth, y: int) -> None:
    column_dots = (9 if row.small else COLUMN_DOTS) * row.width
    font = _font(row.bold, (17 if row.small else ROW_DOTS) * row.height - 2)
    width = sum(char_width(char) for char in row.text) * column_dots
    x = {"left": 0, "center": (paper.dots - width) // 2, "right": paper.dots - width}[row.align]
    x = max(x, 0)
    for char in row.text:
        # Each character is placed on the printer's grid rather than by the font's advance,
        # so columns line up on the image as they do on paper.
        draw.text((x, y), char, fill=0, font=font)
        x += char_width(char) * column_dots
