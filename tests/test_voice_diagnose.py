"""kiosk-tool diagnose reports the voice: engine present, every phrase said in its language.

Runs the check on the real espeak-ng; its faults are real too: espeak-ng not on PATH, an
engine that cannot start, a voice that switches to English (Debian's plain cmn voice).
"""

import shutil
from pathlib import Path

import pytest

from kiosk.diagnostics import REGISTRY, DiagnosticContext, Verdict, render_html, run_diagnostics
from kiosk.diagnostics.voice import judge_voice
from tests.fixtures.terminal import rig_config

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed: apt-get install espeak-ng",
)


def context(tmp_path: Path) -> DiagnosticContext:
    return DiagnosticContext(config=rig_config(tmp_path / "data", "http://127.0.0.1:9"))


@needs_espeak
def test_diagnose_passes_the_voice_that_says_every_phrase(tmp_path: Path) -> None:
    report = run_diagnostics(context(tmp_path), only=("voice",))
    [result] = report.results
    assert (result.check_id, result.verdict) == ("voice.engine", Verdict.PASS)
    # 2 languages x (8 phrases + the result sentence) x 3 sample amounts.
    assert result.detail == "espeak-ng says all 54 sample sentences in Mandarin and English"
    assert result.facts["voices"] == "zh_CN=cmn-latn-pinyin, en=en"
    assert str(result.facts["version"]).startswith("eSpeak NG")
    assert "语音播报（唱收唱付） Voice announcements" in render_html(report)


def test_diagnose_warns_when_espeak_ng_is_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without espeak-ng, as on a bare Pi
    report = run_diagnostics(context(tmp_path), only=("voice",))
    [result] = report.results
    assert result.verdict == Verdict.WARN
    assert result.detail == "espeak-ng is not installed: amounts are shown but not spoken"
    assert result.next_action == "install it: apt-get install espeak-ng"
    assert report.may_return_to_service  # amounts are still shown and printed


@needs_espeak
def test_diagnose_warns_about_a_voice_that_switches_to_english() -> None:
    outcome = judge_voice(shutil.which("espeak-ng"), voices={"zh_CN": "cmn", "en": "en"})
    assert outcome.verdict == Verdict.WARN
    assert outcome.detail == (
        "the voice cannot say every phrase: voice cmn switches to en, cmn in "
        "'请投入 二百零二元五角六分'"
    )


def test_diagnose_warns_about_an_engine_that_cannot_run(tmp_path: Path) -> None:
    broken = tmp_path / "espeak-ng"
    broken.write_text("#!/bin/sh\necho 'espeak-ng: cannot open the sound data' >&2\nexit 3\n")
    broken.chmod(0o755)
    outcome = judge_voice(str(broken))
    assert outcome.verdict == Verdict.WARN
    assert outcome.detail == (
        f"{broken} failed while reporting its version (exit 3): "
        "espeak-ng: cannot open the sound data"
    )
    assert outcome.next_action.startswith("reinstall the voice: apt-get install --reinstall")


def test_the_voice_is_checked_last_after_the_devices() -> None:
    assert [c.check_id for c in REGISTRY.checks()][-1] == "voice.engine"
