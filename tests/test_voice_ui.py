"""唱收唱付 on the real app: a resident's journeys with the voice on, heard through espeak-ng.

The app runs under Xvfb on simulated devices (tests/fixtures/xvfb.py) with the voice
enabled; it records each sentence into a WAV file instead of the sound card (there is none
here), and the test checks what was said, and that each recording is Mandarin (or English)
speech of plausible length.
"""

import shutil
from pathlib import Path
from typing import Any

import pytest

from kiosk.speech import espeak
from ui.voice import Voice

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed: apt-get install espeak-ng",
)


def insert(rig: Any, ui: Any, value_fen: int) -> None:
    before = ui.controller.resident.cash_inserted_fen
    rig.sims.cash.insert("note", value_fen)
    ui.wait_for(
        lambda: ui.controller.resident.cash_inserted_fen > before or ui.controller.screen != "cash",
        "the inserted note to show",
    )


def heard(ui: Any, voice: Voice, count: int) -> list[str]:
    ui.wait_for(lambda: len(voice.spoken) >= count, f"{count} sentences to be said")
    assert voice.wait(timeout_s=10)
    return voice.spoken


def check_recordings(voice: Voice, lang: str, tmp_path: Path) -> None:
    assert len(voice.recordings) == len(voice.spoken)
    for path, text in zip(voice.recordings, voice.spoken, strict=True):
        rendering = espeak.render(espeak.PROGRAM, text, lang, tmp_path)
        assert rendering.problem() == "", rendering.problem()
        low, high = espeak.plausible_seconds(text, lang)
        assert low <= espeak.wav_seconds(path) <= high, (text, espeak.wav_seconds(path))


def test_a_phone_top_up_is_announced_in_mandarin_before_and_after_paying(
    terminal_rig: Any, ui_harness: Any, tmp_path: Path
) -> None:
    ui = ui_harness(terminal_rig.terminal, voice=True)
    assert ui.controller.voice.available  # the app's own voice is on, to the sound card
    voice = ui.controller.voice = Voice(True, record_dir=tmp_path / "said")
    (tmp_path / "said").mkdir()
    ui.wait_screen("idle")
    ui.phone_topup_to_cash("13800138000", "amount-2000")
    assert heard(ui, voice, 1) == ["请投入 二十元"]
    insert(terminal_rig, ui, 5_00)
    assert heard(ui, voice, 2)[-1] == "已收 五元，还需 十五元"
    insert(terminal_rig, ui, 20_00)  # the largest note the inlets take for the 15 due
    ui.wait_screen("result")
    assert heard(ui, voice, 4)[-2:] == [
        "已收 二十五元，还需 零元",
        "收您 二十五元，缴费 二十元，退款凭条 五元",
    ]
    check_recordings(voice, "zh_CN", tmp_path)


def test_a_cancelled_payment_is_announced_in_english_for_the_english_screen(
    terminal_rig: Any, ui_harness: Any, tmp_path: Path
) -> None:
    ui = ui_harness(terminal_rig.terminal, voice=True)
    voice = ui.controller.voice = Voice(True, record_dir=tmp_path)
    ui.wait_screen("idle")
    ui.tap("language")
    ui.pump()
    ui.phone_topup_to_cash("13800138000", "amount-5000")
    insert(terminal_rig, ui, 20_00)
    ui.tap("cancel")
    ui.wait_screen("result")
    assert heard(ui, voice, 3) == [
        "Please insert 50 yuan",
        "Received 20 yuan, still due 30 yuan",
        "Received 20 yuan, voucher 20 yuan",
    ]
    check_recordings(voice, "en", tmp_path)
