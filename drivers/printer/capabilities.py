"""What each receipt paper width allows, as data: columns of the standard font and dots.

Thermal receipt printers of this class print 12x24-dot ASCII characters (8 dots per mm), so a
58 mm roll prints 384 dots = 32 columns and an 80 mm roll 576 dots = 48 columns; a Chinese
character (24x24 dots) takes two columns. Drivers and the receipt layout read this table and
never hard-code a width.
"""

from dataclasses import dataclass

DOTS_PER_MM = 8  # 203 dpi thermal heads
# The default line spacing (ESC 2) of these printers: 1/6 inch per text row.
LINE_PITCH_MM = 25.4 / 6


@dataclass(frozen=True)
class PaperWidth:
    width_mm: int
    columns: int  # characters of the standard ASCII font per line
    dots: int  # printable dots per line


PAPER_WIDTHS: tuple[PaperWidth, ...] = (
    PaperWidth(width_mm=58, columns=32, dots=384),
    PaperWidth(width_mm=80, columns=48, dots=576),
)


def paper_for_columns(columns: int) -> PaperWidth:
    """The paper width whose standard font prints `columns` characters per line."""
    for paper in PAPER_WIDTHS:
        if paper.columns == columns:
            return paper
    known = ", ".join(f"{p.columns} ({p.width_mm} mm)" for p in PAPER_WIDTHS)
    raise ValueError(f"no receipt paper prints {columns} columns; known: {known}")


def paper_for_width(width_mm: int) -> PaperWidth:
    """The capabilities of a paper roll width_mm wide."""
    for paper in PAPER_WIDTHS:
        if paper.width_mm == width_mm:
            return paper
    known = ", ".join(f"{p.width_mm} mm" for p in PAPER_WIDTHS)
    raise ValueError(f"no receipt paper is {width_mm} mm wide; known: {known}")


# A QR module narrower than 3 dots (0.375 mm at 8 dots/mm) is not read reliably from thermal
# paper by phone cameras, so a receipt's QR code, quiet zone included, must fit the line at 3
# dots per module.
MIN_QR_MODULE_DOTS = 3
QR_QUIET_ZONE_MODULES = 4


def max_qr_symbol_modules(paper: PaperWidth) -> int:
    """The widest QR symbol (in modules, quiet zone included) this paper prints legibly."""
    return paper.dots // MIN_QR_MODULE_DOTS
