"""Compiling the gettext catalogs: each kiosk/locale/<lang>/LC_MESSAGES/*.po to a .mo file.

Owns the build-time side of kiosk.i18n: reading the .po sources with Babel, the rule that a
message id defined twice with different texts in one language (in one file or in two) is an
error, and writing each file's messages as a GNU .mo file (Babel's writer) that records the
SHA-256 of the .po it came from, so kiosk.i18n can tell a stale or missing .mo from a fresh
one. It runs where Babel is installed (the tools and dev sets): when a wheel is built
(setup.py), and in a development checkout when kiosk.i18n finds a .mo out of date. The
terminal's run time never imports it.

    python -m kiosk.i18n_build [LOCALE_DIR]    compile what is out of date (default: kiosk/locale)
"""

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileParser

from kiosk.i18n import recorded_source, source_record


class CatalogConflict(ValueError):
    """A message id has two different texts in one language; the message names both."""


class _Definitions(Catalog):
    """Every definition Babel's PO parser reads from one file, in order, kept as
    (message id, text). Babel's own Catalog keeps one per id and reads the header's Language
    into CLDR locale data; neither is wanted here. Plural entries (none in these catalogs:
    gettext's ngettext is not used) and untranslated ones are skipped."""

    def __init__(self) -> None:
        super().__init__()
        self.definitions: list[tuple[str, str]] = []

    def __setitem__(self, msgid: object, message: Message) -> None:
        if isinstance(msgid, str) and msgid and isinstance(message.string, str):
            if message.string:
                self.definitions.append((msgid, message.string))


def read_po(po: Path) -> dict[str, str]:
    """message id -> text of one .po file; CatalogConflict for an id with two texts."""
    parsed = _Definitions()
    with po.open("rb") as handle:
        PoFileParser(parsed).parse(handle)
    messages: dict[str, str] = {}
    for msgid, text in parsed.definitions:
        if messages.setdefault(msgid, text) != text:
            raise CatalogConflict(
                f"{po}: message {msgid!r} is defined twice with different texts: keep one"
            )
    return messages


def read_language(directory: Path) -> dict[Path, dict[str, str]]:
    """Every .po of one language's directory, checked together: an id translated
    differently in two files is a CatalogConflict naming both."""
    files = {po: read_po(po) for po in sorted(directory.glob("*.po"))}
    seen: dict[str, tuple[str, Path]] = {}
    for po, messages in files.items():
        for msgid, text in messages.items():
            first = seen.setdefault(msgid, (text, po))
            if first[0] != text:
                raise CatalogConflict(
                    f"{po}: message {msgid!r} is translated differently in {first[1].name}: "
                    "make the texts the same or the ids different"
                )
    return files


def write_compiled(po: Path, messages: dict[str, str], out: Path) -> None:
    """out (a .mo) from one .po's messages, written whole or not at all."""
    # Babel writes Project-Id-Version as "<project> <version>": kiosk.i18n.source_record.
    project, version = source_record(po).rsplit(" ", 1)
    catalog = Catalog(project=project, version=version, charset="utf-8")
    for msgid, text in messages.items():
        catalog.add(msgid, text)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out.parent, suffix=".part", delete=False) as part:
        write_mo(part, catalog)
    os.replace(part.name, out)


def compile_language(directory: Path, out_dir: Path | None = None) -> list[Path]:
    """Compile the .po files of one language's directory into out_dir (default: beside
    them); only the .mo files that are missing or out of date are written. Returns them."""
    written = []
    for po, messages in read_language(directory).items():
        mo = (out_dir or directory) / po.with_suffix(".mo").name
        if recorded_source(mo) != source_record(po):
            write_compiled(po, messages, mo)
            written.append(mo)
    return written


def compile_tree(locale_dir: Path, out_dir: Path | None = None) -> list[Path]:
    """Every language under locale_dir (<lang>/LC_MESSAGES/*.po), into the same layout
    under out_dir (default: in place)."""
    written = []
    for directory in sorted(locale_dir.glob("*/LC_MESSAGES")):
        target = None if out_dir is None else out_dir / directory.relative_to(locale_dir)
        written += compile_language(directory, target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    locale_dir = Path(args[0]) if args else Path(__file__).parent / "locale"
    try:
        written = compile_tree(locale_dir)
    except CatalogConflict as exc:
        print(f"kiosk.i18n_build: {exc}", file=sys.stderr)
        return 1
    print(f"{len(written)} catalog(s) compiled under {locale_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
