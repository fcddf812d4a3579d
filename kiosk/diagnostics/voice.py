"""The self-test of the voice (唱收唱付): espeak-ng says every phrase in the right language.

Owns judging the speech engine the touchscreen speaks through (kiosk.speech.espeak): it is
installed, has the voices, and says every phrase the app speaks, with sample amounts, in
Mandarin (or English) without a language switch and with sound of plausible length, written
to a temporary WAV file (nothing is played). A terminal without a voice still shows every
amount and prints the receipt, so a problem is a warning, not a failure.
"""

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from kiosk.diagnostics.checks import REGISTRY
from kiosk.diagnostics.model import DiagnosticContext, Outcome, passed, warned
from kiosk.i18n import LANGUAGES
from kiosk.speech import espeak
from kiosk.speech.phrases import every_sentence

# Amounts each phrase is tried with: every digit, a 零 inside the yuan, before 角 and 分.
DIAGNOSE_FEN = (20256, 100050, 1005)
_REINSTALL = "reinstall the voice: apt-get install --reinstall espeak-ng espeak-ng-data"


@REGISTRY.add("voice.engine", "Voice announcements")
def voice_engine(ctx: DiagnosticContext) -> Outcome:
    return judge_voice(shutil.which(espeak.PROGRAM))


def judge_voice(
    program: str | None,
    voices: Mapping[str, str] = espeak.VOICES,
    amounts_fen: tuple[int, ...] = DIAGNOSE_FEN,
) -> Outcome:
    """The verdict on the engine at `program` (None: not installed) with these voices."""
    if program is None:
        return warned(
            "espeak-ng is not installed: amounts are shown but not spoken",
            "install it: apt-get install espeak-ng",
        )
    said = 0
    try:
        version = espeak.engine_version(program)
        with tempfile.TemporaryDirectory(prefix="kiosk-voice-") as work:
            for lang in LANGUAGES:
                for text in every_sentence(lang, amounts_fen):
                    rendering = espeak.render(program, text, lang, Path(work), voice=voices[lang])
                    problem = rendering.problem()
                    if problem:
                        return warned(
                            f"the voice cannot say every phrase: {problem}",
                            _REINSTALL + "; if it persists, report the phrase to development",
                            version=version,
                        )
                    said += 1
    except espeak.SpeechEngineError as exc:
        return warned(str(exc), _REINSTALL)
    return passed(
        f"espeak-ng says all {said} sample sentences in Mandarin and English",
        version=version,
        voices=", ".join(f"{lang}={voices[lang]}" for lang in LANGUAGES),
    )
