"""Amounts read as money (kiosk.speech.amounts) and the spoken phrases (kiosk.speech.phrases).

Pure rules, no engine. The Chinese reading is checked against examples, against cn2an (the
maintained converter, whose cheque-style capitals are mapped to everyday characters) and by
reading it back with cn2an over the whole range of amounts.
"""

import re
import string

import cn2an
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.i18n import catalog
from kiosk.money import MAX_FEN, MoneyError
from kiosk.speech import Phrase, clause, result_sentence, speak_amount_en, speak_amount_zh
from kiosk.speech.amounts import number_zh
from kiosk.speech.phrases import SAMPLE_FEN, every_sentence, foreign_characters, sentence

amounts = st.integers(min_value=0, max_value=MAX_FEN)


@pytest.mark.parametrize(
    ("fen", "spoken"),
    [
        (20256, "二百零二元五角六分"),
        (1005, "十元零五分"),
        (10000, "一百元"),
        (100, "一元"),
        (0, "零元"),
        (110000, "一千一百元"),
        (100050, "一千元零五角"),
        (10005, "一百元零五分"),
        (1050, "十元零五角"),
        (1056, "十元零五角六分"),
        (1100, "十一元"),
        (11000, "一百一十元"),
        (200, "二元"),
        (20000, "二百元"),
        (5, "五分"),
        (50, "五角"),
        (55, "五角五分"),
        (105, "一元零五分"),
        (100100, "一千零一元"),
        (1000100, "一万零一元"),
        (1001000, "一万零一十元"),
        (10000000, "十万元"),
        (10005000, "十万零五十元"),
        (MAX_FEN, "一百万元"),
    ],
)
def test_amounts_are_read_as_money_in_mandarin(fen: int, spoken: str) -> None:
    assert speak_amount_zh(fen) == spoken


@pytest.mark.parametrize(
    ("fen", "spoken"),
    [(20256, "202 yuan 56 fen"), (0, "0 yuan"), (5, "5 fen"), (100050, "1000 yuan 50 fen")],
)
def test_amounts_are_read_as_money_in_english(fen: int, spoken: str) -> None:
    assert speak_amount_en(fen) == spoken


@pytest.mark.parametrize("fen", [-1, MAX_FEN + 1, 1.5, True])
def test_an_impossible_amount_is_refused_with_one_clear_error(fen: object) -> None:
    with pytest.raises(MoneyError):
        speak_amount_zh(fen)  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        speak_amount_en(fen)  # type: ignore[arg-type]


def test_numbers_beyond_what_the_groups_can_say_are_refused() -> None:
    assert number_zh(10**12 - 1).startswith("九千九百九十九亿")
    with pytest.raises(ValueError, match="negative or too large"):
        number_zh(10**12)


def _read_back(spoken: str) -> int:
    """Fen from a Chinese money reading, with cn2an reading the number of yuan."""
    match = re.fullmatch(
        r"(?:(.+)元)?(?:零?([一二三四五六七八九])角)?(?:零?([一二三四五六七八九])分)?", spoken
    )
    assert match is not None, spoken
    yuan, jiao, fen = match.groups()
    digits = "零一二三四五六七八九"
    total = cn2an.cn2an(yuan, "strict") * 100 if yuan else 0
    return int(total) + digits.index(jiao or "零") * 10 + digits.index(fen or "零")


def _cn2an_money(fen: int) -> str:
    """cn2an's cheque capitals in everyday characters, without 整, as we say them."""
    yuan, rest = divmod(fen, 100)
    capitals = cn2an.an2cn(f"{yuan}.{rest:02d}", "rmb")
    text = capitals.translate(str.maketrans("壹贰叁肆伍陆柒捌玖拾佰仟", "一二三四五六七八九十百千"))
    text = text.removesuffix("整")
    if text.startswith("一十"):
        text = text[1:]
    # The bank rules allow 零 before 角 when the yuan end in zero; cn2an leaves it out, we say it.
    if yuan and yuan % 10 == 0 and rest >= 10:
        text = text.replace("元", "元零", 1)
    return text


@given(amounts)
def test_every_amount_reads_back_to_itself(fen: int) -> None:
    assert _read_back(speak_amount_zh(fen)) == fen


@given(amounts)
def test_every_amount_reads_as_cn2an_writes_it(fen: int) -> None:
    assert speak_amount_zh(fen) == _cn2an_money(fen)


def test_every_amount_up_to_a_thousand_yuan_reads_as_cn2an_writes_it() -> None:
    wrong = [fen for fen in range(0, 100_001) if speak_amount_zh(fen) != _cn2an_money(fen)]
    assert wrong == []


@given(amounts)
def test_every_reading_has_the_shape_of_spoken_money(fen: int) -> None:
    spoken = speak_amount_zh(fen)
    assert set(spoken) <= set("零一二三四五六七八九十百千万元角分")
    assert "零零" not in spoken and "两" not in spoken and not spoken.endswith("零")
    assert spoken.count("元") <= 1 and ("元" in spoken or fen < 100)
    assert not spoken.startswith("一十")
    yuan, cents = divmod(fen, 100)
    assert speak_amount_en(fen) == " ".join(
        ([f"{yuan} yuan"] if yuan or not cents else []) + ([f"{cents} fen"] if cents else [])
    )


def test_every_phrase_has_a_chinese_and_an_english_text_with_the_same_amounts() -> None:
    for lang in ("zh_CN", "en"):
        for phrase in Phrase:
            text = catalog(lang).get(phrase.value, phrase.value)
            fields = sorted(f for _, f, _, _ in string.Formatter().parse(text) if f)
            assert fields == sorted(phrase.fields), (lang, phrase)
    chinese = catalog("zh_CN")
    assert all(phrase.value in chinese for phrase in Phrase)


def test_every_sentence_is_written_only_in_characters_its_voice_reads() -> None:
    for lang in ("zh_CN", "en"):
        sentences = list(every_sentence(lang))
        assert len(sentences) == (len(Phrase) + 1) * len(SAMPLE_FEN)
        for text in sentences:
            assert foreign_characters(text, lang) == "", text


def test_foreign_characters_are_found() -> None:
    assert foreign_characters("请投入 ¥12.30", "zh_CN") == "¥12.30"
    assert foreign_characters("请投入IC卡", "zh_CN") == "IC"
    assert foreign_characters("Please insert 二元", "en") == "二元"
    assert foreign_characters("收您 二元，缴费 二元", "zh_CN") == ""


def test_a_phrase_is_filled_only_with_its_own_amounts() -> None:
    assert clause(Phrase.PLEASE_INSERT, "zh_CN", amount=20256) == "请投入 二百零二元五角六分"
    assert clause(Phrase.PLEASE_INSERT, "en", amount=20256) == "Please insert 202 yuan 56 fen"
    assert (
        clause(Phrase.RECEIVED_STILL_DUE, "zh_CN", received=10000, due=1005)
        == "已收 一百元，还需 十元零五分"
    )
    with pytest.raises(ValueError, match="takes the amounts received, due"):
        clause(Phrase.RECEIVED_STILL_DUE, "zh_CN", amount=1)


def test_the_result_says_what_was_received_paid_returned_and_credited() -> None:
    assert (
        result_sentence("zh_CN", received_fen=5000, paid_fen=4750, voucher_fen=250)
        == "收您 五十元，缴费 四十七元五角，退款凭条 二元五角"
    )
    assert (
        result_sentence("en", received_fen=2000, voucher_fen=2000)
        == "Received 20 yuan, voucher 20 yuan"
    )
    assert (
        result_sentence("zh_CN", received_fen=10000, paid_fen=10000, credited_fen=10000)
        == "收您 一百元，缴费 一百元，预存入账 一百元"
    )
    assert sentence(["a", "b"], "en") == "a, b"
