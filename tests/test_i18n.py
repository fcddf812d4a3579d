import subprocess
import sys
from pathlib import Path

from kiosk.i18n import LANGUAGES, LOCALE_DIR, _read_translations, bilingual, catalog, translator


def test_every_language_catalog_loads() -> None:
    for lang in LANGUAGES:
        assert isinstance(catalog(lang), dict)


def test_chinese_comes_first_then_english() -> None:
    assert bilingual("Receipt") == "缴费凭条 Receipt"


def test_an_untranslated_message_falls_back_to_its_english_id() -> None:
    assert translator("zh_CN")("No such message id") == "No such message id"


def test_every_catalog_holds_what_babels_own_po_reader_reads() -> None:
    from babel.messages.pofile import read_po

    for lang in LANGUAGES:
        expected: dict[str, str] = {}
        for path in sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po")):
            with path.open("rb") as handle:
                for message in read_po(handle, locale=lang):
                    if message.id and message.string:
                        expected[str(message.id)] = str(message.string)
        assert catalog(lang) == expected


def test_a_message_twice_in_one_file_keeps_its_first_translation_and_plurals_are_skipped(
    tmp_path: Path,
) -> None:
    po = tmp_path / "demo.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n'
        '"Language: zh_CN\\n"\n\n'
        'msgid "Pay"\nmsgstr "缴费"\n\nmsgid "Pay"\nmsgstr "付款"\n\n'
        'msgid "Untranslated"\nmsgstr ""\n\n'
        'msgid "one note"\nmsgid_plural "%d notes"\nmsgstr[0] "%d 张"\n',
        encoding="utf-8",
    )
    assert _read_translations(po) == {"Pay": "缴费"}


def test_reading_the_catalogs_loads_no_cldr_locale_data() -> None:
    # A fresh interpreter: another test of this session may have loaded the data already.
    probe = (
        "import babel.core, babel.localedata, kiosk.i18n as i18n\n"
        "assert all(i18n.catalog(lang) for lang in i18n.LANGUAGES)\n"
        "print(babel.core._global_data is None, sorted(babel.localedata._cache))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["True", "[]"]
