"""The gettext catalogs: compiled from .po to .mo with Babel (kiosk.i18n_build), read at run
time with the standard library's gettext (kiosk.i18n), a stale or missing .mo caught."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.i18n import (
    LANGUAGES,
    LOCALE_DIR,
    CatalogMissing,
    bilingual,
    catalog,
    load_language,
    recorded_source,
    source_record,
    stale_sources,
    translator,
)
from kiosk.i18n_build import CatalogConflict, compile_tree, main, read_language

HEADER = (
    'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n"Language: zh_CN\\n"\n\n'
)


def write_po(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_every_language_catalog_loads() -> None:
    for lang in LANGUAGES:
        assert isinstance(catalog(lang), dict)


def test_chinese_comes_first_then_english() -> None:
    assert bilingual("Receipt") == "缴费凭条 Receipt"


def test_an_untranslated_message_falls_back_to_its_english_id() -> None:
    assert translator("zh_CN")("No such message id") == "No such message id"


def test_every_po_has_a_fresh_mo_holding_what_babels_own_po_reader_reads() -> None:
    from babel.messages.pofile import read_po

    for lang in LANGUAGES:
        directory = LOCALE_DIR / lang / "LC_MESSAGES"
        catalog(lang)  # compiles what is out of date, as any first use does
        assert stale_sources(directory) == []
        expected: dict[str, str] = {}
        for path in sorted(directory.glob("*.po")):
            assert recorded_source(path.with_suffix(".mo")) == source_record(path)
            with path.open("rb") as handle:
                for message in read_po(handle, locale=lang):
                    if message.id and message.string:
                        expected[str(message.id)] = str(message.string)
        assert catalog(lang) == expected


def test_a_missing_or_stale_mo_is_caught_and_compiled_again(tmp_path: Path) -> None:
    directory = tmp_path / "zh_CN" / "LC_MESSAGES"
    po = write_po(directory / "demo.po", 'msgid "Pay"\nmsgstr "缴费"\n')
    assert stale_sources(directory) == [po]  # no .mo yet
    assert load_language(directory) == {"Pay": "缴费"}
    mo = po.with_suffix(".mo")
    assert mo.exists() and stale_sources(directory) == []

    # The .po changes but keeps an older time than its .mo (a copy, a checkout): the text
    # it was compiled from, not the file times, says the .mo is stale.
    made = mo.stat().st_mtime_ns
    write_po(po, 'msgid "Pay"\nmsgstr "付款"\n')
    os.utime(po, ns=(made - 10**9, made - 10**9))
    assert stale_sources(directory) == [po]
    assert load_language(directory) == {"Pay": "付款"}

    mo.write_bytes(b"not a catalog")  # torn or foreign: compiled again
    assert stale_sources(directory) == [po]
    assert load_language(directory) == {"Pay": "付款"}


def test_a_stale_mo_where_babel_is_absent_is_one_clear_error(tmp_path: Path) -> None:
    directory = tmp_path / "zh_CN" / "LC_MESSAGES"
    write_po(directory / "demo.po", 'msgid "Pay"\nmsgstr "缴费"\n')
    probe = (
        "import sys; sys.modules['babel'] = None\n"  # as on a terminal: no Babel
        "from pathlib import Path\n"
        "from kiosk.i18n import CatalogMissing, load_language\n"
        "try:\n"
        "    load_language(Path(sys.argv[1]))\n"
        "except CatalogMissing as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(directory)], capture_output=True, text=True, timeout=60
    )
    assert "demo.po has no up-to-date .mo" in done.stdout and "Babel" in done.stdout, done.stderr


def test_a_language_without_any_compiled_catalog_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "zh_CN" / "LC_MESSAGES"
    directory.mkdir(parents=True)
    with pytest.raises(CatalogMissing, match="no compiled catalog"):
        load_language(directory)


def test_an_id_with_two_texts_in_one_file_or_in_two_is_refused_at_build_time(
    tmp_path: Path,
) -> None:
    one = tmp_path / "one" / "zh_CN" / "LC_MESSAGES"
    write_po(one / "demo.po", 'msgid "Pay"\nmsgstr "缴费"\n\nmsgid "Pay"\nmsgstr "付款"\n')
    with pytest.raises(CatalogConflict, match="defined twice"):
        read_language(one)
    two = tmp_path / "two" / "zh_CN" / "LC_MESSAGES"
    write_po(two / "a.po", 'msgid "Pay"\nmsgstr "缴费"\n')
    write_po(two / "b.po", 'msgid "Pay"\nmsgstr "付款"\n')
    with pytest.raises(CatalogConflict, match="translated differently in a.po"):
        compile_tree(tmp_path / "two")
    assert not list(two.glob("*.mo")), "nothing is written from conflicting catalogs"
    assert main([str(tmp_path / "two")]) == 1


def test_the_same_text_twice_untranslated_entries_and_plurals_compile(tmp_path: Path) -> None:
    directory = tmp_path / "zh_CN" / "LC_MESSAGES"
    write_po(
        directory / "demo.po",
        'msgid "Pay"\nmsgstr "缴费"\n\nmsgid "Pay"\nmsgstr "缴费"\n\n'
        'msgid "Untranslated"\nmsgstr ""\n\n'
        'msgid "one note"\nmsgid_plural "%d notes"\nmsgstr[0] "%d 张"\n',
    )
    assert load_language(directory) == {"Pay": "缴费"}


def test_a_built_tree_holds_a_mo_for_every_po(tmp_path: Path) -> None:
    shutil.copytree(LOCALE_DIR, tmp_path / "src", ignore=shutil.ignore_patterns("*.mo"))
    written = compile_tree(tmp_path / "src", tmp_path / "built")
    sources = sorted((tmp_path / "src").glob("*/LC_MESSAGES/*.po"))
    assert len(written) == len(sources)
    for po in sources:
        mo = tmp_path / "built" / po.relative_to(tmp_path / "src").with_suffix(".mo")
        assert recorded_source(mo) == source_record(po)


def test_reading_the_catalogs_imports_no_babel() -> None:
    # A fresh interpreter: another test of this session may have imported Babel already.
    catalog("zh_CN"), catalog("en")  # the .mo files are up to date first
    probe = (
        "import sys, kiosk.i18n as i18n\n"
        "assert all(i18n.catalog(lang) for lang in i18n.LANGUAGES)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('babel', 'kiosk')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["['kiosk',", "'kiosk.errors',", "'kiosk.i18n']"]
