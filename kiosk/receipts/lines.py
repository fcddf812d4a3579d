"""Text on a thermal printer's line: widths, wrapping, and the bilingual rows of every slip.

Owns how a receipt or slip puts words on paper. Columns are counted by display width (a
Chinese character takes two columns), so labels and amounts line up. Every user-facing
message goes through the gettext catalogs here (receipts.po): label() for "中文 English" on
one line, note() for a Chinese paragraph followed by the English one.
"""

import re
import unicodedata
from datetime import datetime

from kiosk.devices import ReceiptLine
from kiosk.i18n import bilingual, translator

SUPPORTED_COLUMNS = (32, 48)

_TOKEN = re.compile(r"\s+|\S")
# Chinese punctuation that may not begin a line (the basic rule of 禁则 line breaking).
_NO_LINE_START = frozenset("，。、；：！？）」』》〉】”’%")


def char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    # W and F are double width everywhere; A (ambiguous: ·, ×, —, °...) is double on a
    # Chinese printer, which prints them from its two-byte GB18030 font.
    return 2 if unicodedata.east_asian_width(char) in ("W", "F", "A") else 1


def display_width(text: str) -> int:
    """How many printer columns text takes."""
    return sum(char_width(char) for char in text)


def _cut(text: str, columns: int) -> str:
    """The longest start of text that fits columns."""
    width = 0
    for index, char in enumerate(text):
        width += char_width(char)
        if width > columns:
            return text[:index]
    return text


def wrap(text: str, columns: int) -> list[str]:
    """Break text into lines of at most columns display width.

    Written by hand because textwrap counts characters, not columns. English breaks at
    spaces; Chinese may break between any two characters; an over-long word is cut.
    """
    words: list[str] = []
    for token in _TOKEN.findall(text):
        if token in _NO_LINE_START and words and not words[-1].isspace():
            words[-1] += token
            continue
        # Consecutive narrow non-space characters form one word; wide ones stand alone.
        if (
            words
            and not token.isspace()
            and char_width(token) == 1
            and not words[-1].isspace()
            and char_width(words[-1][-1]) == 1
        ):
            words[-1] += token
        else:
            words.append(token)
    lines: list[str] = []
    current = ""
    for word in words:
        if display_width(current + word) <= columns:
            current += word
            continue
        if current.strip():
            lines.append(current.rstrip())
        current = "" if word.isspace() else word
        while display_width(current) > columns:
            head = _cut(current, columns)
            lines.append(head)
            current = current[len(head) :]
    if current.strip() or not lines:
        lines.append(current.rstrip())
    return lines


def chinese(message: str) -> str:
    return translator("zh_CN")(message)


def label(message: str) -> str:
    """ "中文 English": a label, Chinese first."""
    return bilingual(message)


def _right(text: str, columns: int) -> str:
    return " " * (columns - display_width(text)) + text


def row(message: str, value: str, columns: int) -> list[ReceiptLine]:
    """A label on the left and its value on the right, or on two lines if they do not fit."""
    text = label(message)
    gap = columns - display_width(text) - display_width(value)
    if gap >= 1:
        return [ReceiptLine(text + " " * gap + value)]
    lines = [ReceiptLine(line) for line in wrap(text, columns)]
    lines += [ReceiptLine(_right(line, columns)) for line in wrap(value, columns)]
    return lines


def note(message: str, columns: int, *, bold: bool = False) -> list[ReceiptLine]:
    """A sentence for the resident: the Chinese paragraph, then the English one."""
    paragraphs = [chinese(message), message]
    if paragraphs[0] == message:
        paragraphs = [message]
    return [
        ReceiptLine(line, bold=bold)
        for paragraph in paragraphs
        for line in wrap(paragraph, columns)
    ]


def centred(text: str, columns: int, *, bold: bool = False) -> list[ReceiptLine]:
    return [ReceiptLine(line, bold=bold, align="center") for line in wrap(text, columns)]


def title(message: str, columns: int) -> list[ReceiptLine]:
    """A slip's title: "中文 English", centred and bold."""
    return centred(label(message), columns, bold=True)


def rule(columns: int) -> ReceiptLine:
    return ReceiptLine("-" * columns)


def local_time(iso_time: str) -> str:
    try:
        return datetime.fromisoformat(iso_time).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso_time


def copy_marking(copy_no: int, columns: int) -> list[ReceiptLine]:
    return centred(f"{label('COPY')} {copy_no}", columns, bold=True)
