"""The voice on the real engine: espeak-ng (Debian espeak-ng) says every phrase the app speaks.

For every phrase with representative amounts, in Mandarin and English: espeak-ng's phonemes
(`-x`) show no switch to another language, the Mandarin phonemes are those of the phrase's
pinyin (pypinyin's reading, read by the same voice), and a WAV of plausible length is
written (`-w`). Then the player, ui.voice.Voice: silent and logged once without espeak-ng,
never raising, recording what it says.
"""

import logging
import os
import shutil
import time
import wave
from pathlib import Path

import pytest
from pypinyin import Style, lazy_pinyin

from kiosk.speech import espeak
from kiosk.speech.phrases import every_sentence
from ui.voice import Voice

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed: apt-get install espeak-ng",
)
PROGRAM = "espeak-ng"


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_every_spoken_sentence_is_said_entirely_in_its_language_with_real_sound(
    lang: str, tmp_path: Path
) -> None:
    problems = []
    seconds = []
    for text in every_sentence(lang):
        rendering = espeak.render(PROGRAM, text, lang, tmp_path)
        assert rendering.phonemes.strip(), text
        seconds.append(rendering.seconds)
        if rendering.problem():
            problems.append(rendering.problem())
    assert problems == []
    assert min(seconds) > 0.5


def _pinyin(text: str) -> str:
    """pypinyin's reading with tone digits; 一 keeps its first tone, as espeak-ng says it."""
    syllables = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)
    return " ".join(
        "yi1" if char == "一" else syllable for char, syllable in zip(text, syllables, strict=True)
    )


def test_every_mandarin_sentence_is_said_with_the_syllables_and_tones_of_its_pinyin() -> None:
    wrong = []
    for text in every_sentence("zh_CN"):
        characters = "".join(c for c in text if c != " ")
        said = espeak.phonemes(PROGRAM, characters, "zh_CN").split()
        expected = espeak.phonemes(PROGRAM, _pinyin(characters), "zh_CN").split()
        if said != expected:
            wrong.append((text, said, expected))
    assert wrong == []


def test_the_pinyin_comparison_sees_a_character_read_with_its_other_reading() -> None:
    """银行 is yin2 hang2; espeak-ng's small dictionary says 行 as xing2 (a phrase with it
    would need other words)."""
    said = espeak.phonemes(PROGRAM, "银行", "zh_CN").split()
    assert said != espeak.phonemes(PROGRAM, _pinyin("银行"), "zh_CN").split()


def test_debians_plain_mandarin_voice_reads_missing_characters_as_english(tmp_path: Path) -> None:
    """The fault of issue #17, and the reason for the cmn-latn-pinyin voice: kept as a check
    that the switch detector sees it (if Debian ever ships the full dictionary, this fails
    and the plain voice can be reconsidered)."""
    text = next(iter(every_sentence("zh_CN")))  # 请投入 零元
    rendering = espeak.render(PROGRAM, text, "zh_CN", tmp_path, voice="cmn")
    assert "en" in rendering.switches
    assert "switches to en" in rendering.problem()


def test_a_sentence_that_is_not_all_chinese_characters_is_a_problem(tmp_path: Path) -> None:
    rendering = espeak.render(PROGRAM, "请投入 ¥12.30", "zh_CN", tmp_path)
    assert rendering.problem().endswith("cannot say: ¥12.30")


def test_an_unknown_voice_and_a_missing_engine_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(espeak.SpeechEngineError, match="failed while reading the text"):
        espeak.render(PROGRAM, "请", "zh_CN", tmp_path, voice="zzzz")
    with pytest.raises(espeak.SpeechEngineError, match="apt-get install espeak-ng"):
        espeak.engine_version(str(tmp_path / "espeak-ng"))
    assert espeak.engine_version(PROGRAM).startswith("eSpeak NG")


def test_no_sound_is_zero_seconds_and_implausible(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(22050)
    assert espeak.wav_seconds(empty) == 0.0
    assert espeak.wav_seconds(tmp_path / "missing.wav") == 0.0
    silent = espeak.Rendering("请投入 二元", "zh_CN", "cmn-latn-pinyin", "x", (), 0.0)
    assert silent.problem().startswith("0.0 s of sound")


def test_the_voice_records_each_sentence_it_says(tmp_path: Path) -> None:
    voice = Voice(True, record_dir=tmp_path)
    voice.say("请投入 二百零二元五角六分", "zh_CN")
    voice.say("Please insert 202 yuan 56 fen", "en")  # the first is finished, not cut
    assert voice.wait(timeout_s=10)
    assert voice.spoken == ["请投入 二百零二元五角六分", "Please insert 202 yuan 56 fen"]
    assert [p.name for p in voice.recordings] == ["0000-zh_CN.wav", "0001-en.wav"]
    for path, text, lang in zip(voice.recordings, voice.spoken, ["zh_CN", "en"], strict=True):
        low, high = espeak.plausible_seconds(text, lang)
        assert low <= espeak.wav_seconds(path) <= high


def test_without_espeak_ng_the_voice_is_silent_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    voice = Voice(True, command=str(tmp_path / "no-espeak-ng"))
    assert not voice.available
    with caplog.at_level(logging.WARNING, logger="ui.voice"):
        voice.say("请投入 二元", "zh_CN")
        voice.say("已收 二元，还需 零元", "zh_CN")
    assert [r.getMessage() for r in caplog.records] == [
        "espeak-ng is not installed: amounts are shown but not spoken"
    ]
    assert voice.spoken == ["请投入 二元", "已收 二元，还需 零元"]  # still kept for the checks
    voice.stop()


def test_an_engine_that_cannot_start_is_logged_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "espeak-ng"
    broken.write_text("#!/nonexistent/interpreter\n")
    broken.chmod(0o755)
    voice = Voice(True, command=str(broken))
    assert voice.available
    with caplog.at_level(logging.WARNING, logger="ui.voice"):
        voice.say("请投入 二元", "zh_CN")
        voice.say("请投入 三元", "zh_CN")
    [record] = caplog.records
    assert record.getMessage().startswith("espeak-ng cannot run (")
    assert voice.wait(timeout_s=1)


def test_a_voice_switched_off_says_nothing() -> None:
    voice = Voice(False)
    voice.say("请投入 二元", "zh_CN")
    assert voice.spoken == [] and not voice.available and voice.wait(timeout_s=0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def until_talking(pids: Path, count: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if pids.exists() and len(pids.read_text().splitlines()) >= count:
            return
        time.sleep(0.01)


def test_a_newer_sentence_cuts_the_one_being_said_short(tmp_path: Path) -> None:
    # A stand-in for espeak-ng saying a long sentence to the sound card (there is none here):
    # it notes its pid and its arguments, then talks for 30 s.
    pids = tmp_path / "pids"
    talker = tmp_path / "espeak-ng"
    talker.write_text(f'#!/bin/sh\necho "$$ $*" >> {pids}\nexec sleep 30\n')
    talker.chmod(0o755)
    voice = Voice(True, command=str(talker))
    voice.say("收您 一百万元，缴费 一百万元", "zh_CN")
    until_talking(pids, 1)
    voice.say("Please insert 2 yuan", "en")
    until_talking(pids, 2)
    assert not voice.wait(timeout_s=0.1)  # the second sentence is still being said
    voice.stop()
    assert voice.wait(timeout_s=0)
    started = [line.split(" ", 1) for line in pids.read_text().splitlines()]
    assert [args for _, args in started] == [
        "-v cmn-latn-pinyin -s 140 -- 收您 一百万元，缴费 一百万元",
        "-v en -s 140 -- Please insert 2 yuan",
    ]
    assert not any(_alive(int(pid)) for pid, _ in started)
