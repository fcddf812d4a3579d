from kiosk.i18n import LANGUAGES, bilingual, catalog, translator


def test_every_language_catalog_loads() -> None:
    for lang in LANGUAGES:
        assert isinstance(catalog(lang), dict)


def test_chinese_comes_first_then_english() -> None:
    assert bilingual("Receipt") == "缴费凭条 Receipt"


def test_an_untranslated_message_falls_back_to_its_english_id() -> None:
    assert translator("zh_CN")("No such message id") == "No such message id"
