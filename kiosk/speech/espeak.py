"""The speech engine, espeak-ng: its command line, its voice per language, and checks.

Owns how espeak-ng is called (the touchscreen's player in ui/voice.py and the diagnose check
build the command here) and how to tell that it says a sentence entirely in the sentence's
language: `espeak-ng -q -x` prints the phonemes it would say, with `(en)` where it switched
to another language's rules and `(cmn)` where it switched back; `-w` writes the sound to a
WAV file instead of the sound card.

Mandarin uses Debian's `cmn-latn-pinyin` voice, not `cmn`: Debian builds espeak-ng without
the extended Mandarin dictionary, so a character missing from the small one (请, 百, 零, 元,
缴费, 凭条...) falls back to its pinyin, and the `cmn` voice reads Latin text as English,
letter by letter; `cmn-latn-pinyin` reads that pinyin as Mandarin (docs/ui.md, Voice).
"""

import re
import subprocess
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import KioskError
from kiosk.speech.phrases import foreign_characters

PROGRAM = "espeak-ng"
VOICES = {"zh_CN": "cmn-latn-pinyin", "en": "en"}
RATE_WPM = 140  # slower than espeak-ng's 175: many residents are elderly
TIMEOUT_S = 20.0
_SWITCH = re.compile(r"\(([A-Za-z][A-Za-z0-9-]*)\)")

# Bounds of a plausible length of speech, in seconds a Chinese character (one syllable) or
# an English character, at RATE_WPM: outside them the engine said something else (nothing,
# a spelled-out word) or the sound was cut.
_SECONDS_PER_UNIT = {"zh_CN": (0.15, 0.8), "en": (0.02, 0.25)}


class SpeechEngineError(KioskError):
    """espeak-ng is missing, refused the voice, or wrote no sound."""


def voice_for(lang: str) -> str:
    return VOICES.get(lang, VOICES["en"])


def speak_command(
    program: str, text: str, lang: str, *, wav: Path | None = None, voice: str | None = None
) -> list[str]:
    """The command that says text (to the sound card, or into a WAV file)."""
    command = [program, "-v", voice or voice_for(lang), "-s", str(RATE_WPM)]
    if wav is not None:
        command += ["-w", str(wav)]
    return [*command, "--", text]


def _run(command: Sequence[str], what: str) -> str:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except FileNotFoundError as exc:
        raise SpeechEngineError(
            f"{command[0]} is not installed: install it with apt-get install espeak-ng"
        ) from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpeechEngineError(f"{command[0]} failed while {what}: {exc}") from exc
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise SpeechEngineError(
            f"{command[0]} failed while {what} (exit {done.returncode}): "
            f"{reason[-1] if reason else 'no message'}"
        )
    return done.stdout


def engine_version(program: str = PROGRAM) -> str:
    """espeak-ng's version line, e.g. 'eSpeak NG text-to-speech: 1.51  Data at: ...'."""
    return _run([program, "--version"], "reporting its version").strip()


def phonemes(program: str, text: str, lang: str, *, voice: str | None = None) -> str:
    """The phoneme mnemonics espeak-ng would say for text, language switches included."""
    return _run(
        [program, "-q", "-x", "-v", voice or voice_for(lang), "--", text], "reading the text"
    )


def language_switches(phoneme_text: str) -> list[str]:
    """The languages espeak-ng switched to, in order: ['en', 'cmn'] for '(en)kI55N(cmn)'."""
    return _SWITCH.findall(phoneme_text)


def wav_seconds(path: Path) -> float:
    """How long the speech in a WAV file lasts; 0 for a file without sound."""
    try:
        with wave.open(str(path), "rb") as sound:
            rate = sound.getframerate()
            return sound.getnframes() / rate if rate else 0.0
    except (OSError, EOFError, wave.Error):
        return 0.0


def plausible_seconds(text: str, lang: str) -> tuple[float, float]:
    """The range of lengths the speech of text may have."""
    low, high = _SECONDS_PER_UNIT.get(lang, _SECONDS_PER_UNIT["en"])
    units = sum(1 for c in text if "\u4e00" <= c <= "\u9fff") if lang == "zh_CN" else len(text)
    return low * units, high * units + 0.5


@dataclass(frozen=True)
class Rendering:
    """What the engine made of one sentence."""

    text: str
    lang: str
    voice: str
    phonemes: str
    switches: tuple[str, ...]
    seconds: float

    def problem(self) -> str:
        """'' when the sentence is said entirely in its language at a plausible length."""
        foreign = foreign_characters(self.text, self.lang)
        if foreign:
            return f"{self.text!r} holds characters the {self.voice} voice cannot say: {foreign}"
        if self.switches:
            return (
                f"voice {self.voice} switches to {', '.join(dict.fromkeys(self.switches))} "
                f"in {self.text!r}"
            )
        low, high = plausible_seconds(self.text, self.lang)
        if not low <= self.seconds <= high:
            return (
                f"{self.seconds:.1f} s of sound for {self.text!r}, "
                f"expected {low:.1f} to {high:.1f} s"
            )
        return ""


def render(
    program: str, text: str, lang: str, workdir: Path, *, voice: str | None = None
) -> Rendering:
    """Read text to phonemes and to a WAV file in workdir; raises SpeechEngineError."""
    chosen = voice or voice_for(lang)
    heard = phonemes(program, text, lang, voice=chosen)
    path = workdir / "sentence.wav"
    path.unlink(missing_ok=True)
    _run(speak_command(program, text, lang, wav=path, voice=chosen), "writing a WAV file")
    return Rendering(text, lang, chosen, heard, tuple(language_switches(heard)), wav_seconds(path))
