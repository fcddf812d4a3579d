"""Reading a cash count typed by a person: "note-100=3 coin-0.5=4" into a CashCount.

The screen counts with a keypad per denomination and builds the CashCount itself; kiosk-tool
and the back office send the count as text, one DENOMINATION=PIECES per item, the
denominations named as kiosk.ledger.cash_box.Denomination names them. A bad item is refused
in one line that names it and lists what is accepted.
"""

from collections.abc import Iterable

from kiosk.errors import TranslatedError
from kiosk.ledger.cash_box import CashCount, Denomination

# Operator-facing message ids (Chinese in kiosk/locale/zh_CN/LC_MESSAGES/operator.po).
BAD_ITEM = "{item} is not a count: write DENOMINATION=PIECES, a denomination being one of {known}."
TWICE = "{denomination} is counted twice: give each denomination once."
MESSAGE_IDS = (BAD_ITEM, TWICE)


class CountUnreadable(TranslatedError):
    """A typed count that cannot be read."""


def parse_count(items: Iterable[str]) -> CashCount:
    """The count of items like "note-100=3" (spaces around '=' allowed; an empty list is a
    count of an empty box)."""
    known = ", ".join(d.value for d in Denomination)
    pieces: dict[Denomination, int] = {}
    for item in items:
        name, sign, number = (part.strip() for part in item.partition("="))
        try:
            denomination = Denomination(name.lower())
        except ValueError:
            denomination = None
        if not sign or denomination is None or not number.isdigit() or not number.isascii():
            raise CountUnreadable(BAD_ITEM, item=repr(item), known=known)
        if denomination in pieces:
            raise CountUnreadable(TWICE, denomination=denomination.value)
        pieces[denomination] = int(number)
    return CashCount(pieces)
