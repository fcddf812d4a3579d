"""Pulse-train decoding for one cash inlet (coin acceptor or bill validator in pulse mode).

A validator reports a note or coin as N pulses on its output line; a pause longer than the
gap ends the train. This module owns debouncing the line, counting pulses, turning a train
into a value through the inlet's channel table (train length -> value in fen, one entry per
channel the validator is set up for), telling a train that matches no channel (unrecognised)
and noticing a line stuck active (a jammed inlet). It never reads a pin or a clock itself:
the run loop feeds it edges with their times in milliseconds.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - MicroPython has no typing module; mypy reads this
    from typing import Any
else:
    # CPython evaluates signature annotations when a def runs; MicroPython ignores them.
    Any = object


class PulseTrainDecoder:
    """Edges in, counted cash out.

    Results from poll() are tuples: ("cash", kind, value_fen), ("unrecognised", kind,
    pulses) for a train whose length is not in the table or that a jam cut short (something
    went in that cannot be valued), ("jammed", kind, active_ms) once when the line stays
    active too long.
    """

    def __init__(self, kind: str, settings: dict[str, Any]) -> None:
        self.kind = kind
        self.debounce_ms = int(settings.get("debounce_ms", 5))
        self.min_pulse_ms = int(settings.get("min_pulse_ms", 20))
        self.max_pulse_ms = int(settings.get("max_pulse_ms", 200))
        self.gap_ms = int(settings.get("gap_ms", 250))
        table = settings.get("train_values_fen") or {}
        # JSON object keys are text; the table maps a train length to its value in fen.
        self.train_values_fen = {int(pulses): int(value) for pulses, value in table.items()}
        if not self.train_values_fen:
            raise ValueError(kind + ": give train_values_fen (pulses -> fen per channel)")
        self.active = False
        self.active_since = 0
        self.release_at = -1  # a release not yet confirmed by debounce_ms of quiet
        self.pulses = 0
        self.last_pulse_end = 0
        self.jammed = False
        self.broken_train = False  # a jam struck while a train was being counted
        self.glitches = 0

    def channels_fen(self) -> list[int]:
        """The values of the validator's channels, smallest first."""
        return sorted(self.train_values_fen.values())

    def edge(self, active: bool, now_ms: int) -> None:
        if active:
            if self.release_at >= 0:
                if now_ms - self.release_at < self.debounce_ms:
                    # Contact bounce inside one pulse: the line never really went inactive.
                    self.release_at = -1
                    return
                self._finish_pulse()
            if not self.active:
                self.active = True
                self.active_since = now_ms
        elif self.active and self.release_at < 0:
            self.release_at = now_ms

    def poll(self, now_ms: int) -> list[tuple[str, str, int]]:
        results: list[tuple[str, str, int]] = []
        if self.release_at >= 0 and now_ms - self.release_at >= self.debounce_ms:
            self._finish_pulse()
        if self.active and self.release_at < 0 and not self.jammed:
            held = now_ms - self.active_since
            if held > self.max_pulse_ms:
                self.jammed = True
                # Pulses counted before the jam are a train cut short: never valued as cash.
                self.broken_train = self.pulses > 0
                results.append(("jammed", self.kind, held))
        if (
            self.pulses
            and not self.active
            and self.release_at < 0
            and now_ms - self.last_pulse_end >= self.gap_ms
        ):
            pulses = self.pulses
            self.pulses = 0
            results.append(self._train_result(pulses))
        return results

    def busy(self) -> bool:
        """A train is being received: closing the inlet now would cut a note in half."""
        return self.active or self.release_at >= 0 or self.pulses > 0

    def _finish_pulse(self) -> None:
        end = self.release_at
        held = end - self.active_since
        self.active = False
        self.release_at = -1
        if self.jammed:
            # The stuck line came free: that long pulse was no cash.
            self.jammed = False
            return
        if held < self.min_pulse_ms or held > self.max_pulse_ms:
            self.glitches += 1
            return
        self.pulses += 1
        self.last_pulse_end = end

    def _train_result(self, pulses: int) -> tuple[str, str, int]:
        value = self.train_values_fen.get(pulses)
        if value is None or self.broken_train:
            self.broken_train = False
            return ("unrecognised", self.kind, pulses)
        return ("cash", self.kind, value)


def pulse_train(
    pulses: int, start_ms: int, pulse_ms: int = 50, space_ms: int = 50
) -> list[tuple[bool, int]]:
    """The edges a validator sends for one note: (active, time_ms) pairs, for simulators."""
    edges = []
    t = start_ms
    for _ in range(pulses):
        edges.append((True, t))
        edges.append((False, t + pulse_ms))
        t += pulse_ms + space_ms
    return edges
