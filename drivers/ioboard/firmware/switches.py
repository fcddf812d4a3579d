"""Debounced door and tamper switches.

Owns turning a bouncing contact into clean open/closed changes: a level counts only once it
has been stable for `stable_ms`. It never latches anything (tamper latching is the board's
rule) and never reads a pin itself.
"""


class DebouncedSwitch:
    def __init__(self, stable_ms: int) -> None:
        self.stable_ms = stable_ms
        self.level: bool | None = None  # None until the first stable reading
        self._candidate: bool | None = None
        self._candidate_since = 0

    def sample(self, level: bool, now_ms: int) -> bool | None:
        """Feed the raw level; returns the new stable level when it changed, else None."""
        if level != self._candidate:
            self._candidate = level
            self._candidate_since = now_ms
        if level != self.level and now_ms - self._candidate_since >= self.stable_ms:
            self.level = level
            return level
        return None
