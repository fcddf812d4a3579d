"""User-facing text: gettext catalogs (kiosk/locale/<lang>/LC_MESSAGES/*.po).

Each subsystem keeps its own .po file (kiosk.po, receipts.po, catalog.po, ...); the files of
one language are merged, and a message id defined twice with different texts is an error.

Message ids are English; zh_CN is the default language and en is one tap away. Catalogs
are read with Babel's PO reader at start, so editing a .po file needs no compile step.
A message missing from a catalog falls back to its English id and is reported by tests.
It never loads Babel's CLDR locale data (see _Translations).
"""

from collections.abc import Callable
from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import PoFileParser

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("zh_CN", "en")
DEFAULT_LANGUAGE = "zh_CN"

Translate = Callable[[str], str]


class _Translations(Catalog):
    """What Babel's PO parser reads from one file, kept as message id -> Message.

    Babel's own Catalog reads the header too, and its Language line makes Babel look the
    locale up in its CLDR data; listing a Catalog's messages formats the header's dates with
    CLDR data as well. That data (about 3 MB of Python objects, kept for the life of the
    process) only serves plural rules, and no message here has plural forms. So the header
    and plural entries are skipped; messages are kept as Catalog keeps them (a message id
    seen twice in one file keeps its first translation).
    """

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, Message] = {}

    def __setitem__(self, msgid: object, message: Message) -> None:
        if isinstance(msgid, str) and msgid:
            self.by_id.setdefault(msgid, message)


def _read_translations(path: Path) -> dict[str, str]:
    translations = _Translations()
    with path.open("rb") as handle:
        PoFileParser(translations).parse(handle)
    return {key: str(m.string) for key, m in translations.by_id.items() if m.string}


@cache
def catalog(lang: str) -> dict[str, str]:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; known: {', '.join(LANGUAGES)}")
    table: dict[str, str] = {}
    for path in sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po")):
        for key, text in _read_translations(path).items():
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
