"""唱收唱付 spoken aloud: amounts received, paid and returned as a voucher, via espeak-ng.

Owns finding espeak-ng and speaking one sentence at a time without blocking the screen.
Voice is off by a setting; when espeak-ng is absent the terminal stays silent and says so
once in the log. It never decides what is said (the controller does) and never raises.
"""

import logging
import shutil
import subprocess
from collections.abc import Sequence

from ui import child_process

log = logging.getLogger(__name__)

VOICES = {"zh_CN": "cmn", "en": "en"}


class Voice:
    def __init__(self, enabled: bool, command: str = "espeak-ng") -> None:
        self.enabled = enabled
        self._program = shutil.which(command) if enabled else None
        self._warned = False
        self._current: subprocess.Popen[bytes] | None = None
        self.spoken: list[str] = []  # what was said, newest last (for tests and the bench)

    @property
    def available(self) -> bool:
        return self.enabled and self._program is not None

    def say(self, text: str, lang: str) -> None:
        if not self.enabled:
            return
        self.spoken = [*self.spoken[-49:], text]
        if self._program is None:
            if not self._warned:
                log.warning("espeak-ng is not installed: amounts are shown but not spoken")
                self._warned = True
            return
        self.stop()
        command: Sequence[str] = [self._program, "-v", VOICES.get(lang, "en"), "-s", "140", text]
        try:
            self._current = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        except OSError as exc:
            if not self._warned:
                log.warning("espeak-ng cannot run (%s): amounts are shown but not spoken", exc)
                self._warned = True

    def stop(self) -> None:
        """Cut the sentence being spoken short (a newer amount replaces it)."""
        if self._current is not None and self._current.poll() is None:
            child_process.stop(self._current, timeout_s=2)
        self._current = None
