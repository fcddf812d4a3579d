"""User-facing text: gettext catalogs (kiosk/locale/<lang>/LC_MESSAGES/*.po).

Each subsystem keeps its own .po file (kiosk.po, receipts.po, catalog.po, ...); the files of
one language are merged, and a message id defined twice with different texts is an error.

Message ids are English; zh_CN is the default language and en is one tap away. Catalogs
are read with Babel's PO reader at start, so editing a .po file needs no compile step.
A message missing from a catalog falls back to its English id and is reported by tests.
"""

from collections.abc import Callable
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("zh_CN", "en")
DEFAULT_LANGUAGE = "zh_CN"

Translate = Callable[[str], str]


@cache
def catalog(lang: str) -> dict[str, str]:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; known: {', '.join(LANGUAGES)}")
    table: dict[str, str] = {}
    for path in sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            po = read_po(handle, locale=lang)
        for message in po:
            if not message.id or not message.string:
                continue
            key, text = str(message.id), str(message.string)
            if table.get(key, text) != text:
                raise ValueError(f"{path}: message {key!r} is translated differently elsewhere")
            table[key] = text
    return table


def translator(lang: str = DEFAULT_LANGUAGE) -> Translate:
    table = catalog(lang)

    def translate(message: str) -> str:
        return table.get(message, message)

    return translate


def bilingual(message: str) -> str:
    """Chinese first, then English, as receipts and notices print them."""
    chinese = translator("zh_CN")(message)
    return chinese if chinese == message else f"{chinese} {message}"
