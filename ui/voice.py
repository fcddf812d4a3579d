"""唱收唱付 spoken aloud: amounts received, paid and returned as a voucher, via espeak-ng.

Owns running espeak-ng, one sentence at a time, without blocking the screen. What is said
comes from kiosk.speech (the controller builds it there); how espeak-ng is called, and with
which voice per language, is kiosk.speech.espeak. Voice is off by a setting; when espeak-ng
is absent the terminal stays silent and says so once in the log (`kiosk-tool diagnose`
reports it too). It never raises.

With `record_dir`, each sentence goes into a numbered WAV file there instead of the sound
card (the tests listen that way).
"""

import logging
import shutil
import subprocess
from pathlib import Path

from kiosk.speech import espeak
from ui import child_process

log = logging.getLogger(__name__)


class Voice:
    def __init__(
        self, enabled: bool, command: str = espeak.PROGRAM, *, record_dir: Path | None = None
    ) -> None:
        self.enabled = enabled
        self._program = shutil.which(command) if enabled else None
        self._record_dir = record_dir
        self._warned = False
        self._current: subprocess.Popen[bytes] | None = None
        self.spoken: list[str] = []  # what was said, newest last (for tests and the bench)
        self.recordings: list[Path] = []  # with record_dir: the WAV of each sentence said

    @property
    def available(self) -> bool:
        return self.enabled and self._program is not None

    def say(self, text: str, lang: str) -> None:
        """Say text in the language's voice, cutting short the sentence being said."""
        if not self.enabled:
            return
        self.spoken = [*self.spoken[-49:], text]
        if self._program is None:
            self._warn_once("espeak-ng is not installed: amounts are shown but not spoken")
            return
        self.stop()
        wav = None
        if self._record_dir is not None:
            wav = self._record_dir / f"{len(self.recordings):04d}-{lang}.wav"
            self.recordings.append(wav)
        command = espeak.speak_command(self._program, text, lang, wav=wav)
        try:
            self._current = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        except OSError as exc:
            self._warn_once(f"espeak-ng cannot run ({exc}): amounts are shown but not spoken")

    def wait(self, timeout_s: float) -> bool:
        """Wait until the sentence being said is finished; False if it still runs."""
        current = self._current
        if current is None:
            return True
        try:
            current.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self) -> None:
        """Cut the sentence being spoken short (a newer amount replaces it).

        A sentence being recorded is finished instead: writing it takes milliseconds.
        """
        if self._record_dir is not None:
            self.wait(timeout_s=5)
        if self._current is not None and self._current.poll() is None:
            child_process.stop(self._current, timeout_s=2)
        self._current = None

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            log.warning(message)
            self._warned = True
