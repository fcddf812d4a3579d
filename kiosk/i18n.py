"""User-facing text: gettext catalogs (kiosk/locale/<lang>/LC_MESSAGES/*.mo).

Each subsystem keeps its own catalog (kiosk.po, receipts.po, catalog.po, ...), written as a
.po file and read at run time as the .mo file compiled from it, with the standard library's
gettext: no Babel on a terminal. The .mo files are compiled when the software is built
(setup.py, kiosk.i18n_build); a wheel carries them and not the .po sources. In a development
checkout, where the .po files sit beside them, a .mo that is missing or records another
.po than the one there is compiled again on first use (with Babel, which the dev set has),
so editing a .po needs no step of its own. The files of one language are merged; a message
id defined twice with different texts is an error, refused when the catalogs are compiled
(and checked again here).

Message ids are English; zh_CN is the default language and en is one tap away. A message
missing from a catalog falls back to its English id and is reported by tests.
"""

import gettext
import hashlib
import struct
from collections.abc import Callable
from functools import cache
from pathlib import Path

from kiosk.errors import KioskError

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("zh_CN", "en")
DEFAULT_LANGUAGE = "zh_CN"

Translate = Callable[[str], str]


class CatalogMissing(KioskError):
    """A language has no compiled catalog, or a .mo is stale where it cannot be compiled."""


def _read_compiled(mo: Path) -> gettext.GNUTranslations:
    with mo.open("rb") as handle:
        return gettext.GNUTranslations(handle)


# A .mo records the .po it was compiled from in its Project-Id-Version header (written by
# kiosk.i18n_build): "<CATALOG_PROJECT> sha256:<SHA-256 of the .po file>".
CATALOG_PROJECT = "kiosk-terminal-catalog"


def source_record(po: Path) -> str:
    """The Project-Id-Version a .mo compiled from this .po carries."""
    return f"{CATALOG_PROJECT} sha256:{hashlib.sha256(po.read_bytes()).hexdigest()}"


def recorded_source(mo: Path) -> str | None:
    """The .po a .mo was compiled from, as its header records it; None when there is no
    such .mo or it cannot be read (both mean: compile it)."""
    try:
        return _read_compiled(mo).info().get("project-id-version")
    except (OSError, ValueError, struct.error, IndexError):
        return None


def _messages(translations: gettext.GNUTranslations) -> dict[str, str]:
    # GNUTranslations keeps what it parsed in _catalog (the header under "", plural entries
    # under tuples); it has no public way to list a catalog's messages.
    parsed: dict[object, str] = translations._catalog  # type: ignore[attr-defined]
    return {key: text for key, text in parsed.items() if isinstance(key, str) and key and text}


def stale_sources(directory: Path) -> list[Path]:
    """The .po files here whose .mo is missing, unreadable or compiled from another text."""
    return [
        po
        for po in sorted(directory.glob("*.po"))
        if recorded_source(po.with_suffix(".mo")) != source_record(po)
    ]


def load_language(directory: Path) -> dict[str, str]:
    """Every message of one language's directory: its .mo files merged (compiled first
    where a .po beside them is newer in content)."""
    stale = stale_sources(directory)
    if stale:
        try:
            from kiosk.i18n_build import compile_language
        except ImportError:
            raise CatalogMissing(
                f"{stale[0]} has no up-to-date .mo beside it and Babel is not installed to "
                "compile it: install the dev set (make) or run python -m kiosk.i18n_build"
            ) from None
        compile_language(directory)
    compiled = sorted(directory.glob("*.mo"))
    if not compiled:
        raise CatalogMissing(
            f"no compiled catalog (.mo) in {directory}: the software was built without its "
            "catalogs; build the wheel again (setup.py compiles them)"
        )
    table: dict[str, str] = {}
    for mo in compiled:
        for key, text in _messages(_read_compiled(mo)).items():
            if table.get(key, text) != text:
                raise ValueError(f"{mo}: message {key!r} is translated differently elsewhere")
            table[key] = text
    return table


@cache
def catalog(lang: str) -> dict[str, str]:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; known: {', '.join(LANGUAGES)}")
    return load_language(LOCALE_DIR / lang / "LC_MESSAGES")


def translator(lang: str = DEFAULT_LANGUAGE) -> Translate:
    table = catalog(lang)

    def translate(message: str) -> str:
        return table.get(message, message)

    return translate


def bilingual(message: str) -> str:
    """Chinese first, then English, as receipts and notices print them."""
    chinese = translator("zh_CN")(message)
    return chinese if chinese == message else f"{chinese} {message}"
