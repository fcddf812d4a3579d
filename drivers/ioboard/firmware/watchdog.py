"""The hardware watchdog of the host: power-cycle it through a relay when heartbeats stop.

Owns the timing: armed by the first heartbeat, fires when no heartbeat came for timeout_ms
(boot_grace_ms after a power-cycle, so a host that hangs while booting is cycled again),
keeps the host's power off for relay_off_ms, gives up after max_resets cycles in a row
(someone must come), and is suspended in maintenance mode. It never switches the relay
itself: poll() says what the relay should be, and the board records the events.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - MicroPython has no typing module; mypy reads this
    from typing import Any
else:
    # CPython evaluates signature annotations when a def runs; MicroPython ignores them.
    Any = object


class HostWatchdog:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.timeout_ms = int(settings.get("timeout_ms", 120000))
        self.relay_off_ms = int(settings.get("relay_off_ms", 5000))
        self.boot_grace_ms = int(settings.get("boot_grace_ms", 180000))
        self.max_resets = int(settings.get("max_resets", 3))
        self.armed = False
        self.maintenance = False
        self.last_heartbeat = 0
        self.waiting_for_boot = False
        self.cut_since = -1  # >= 0 while the host's power is off
        self.in_a_row = 0
        self.total_resets = 0
        self.gave_up = False

    def heartbeat(self, now_ms: int) -> None:
        self.armed = True
        self.last_heartbeat = now_ms
        self.waiting_for_boot = False
        self.in_a_row = 0
        self.gave_up = False

    def set_maintenance(self, on: bool, now_ms: int) -> None:
        self.maintenance = on
        if not on:
            # The technician's time does not count as silence.
            self.last_heartbeat = now_ms

    @property
    def host_powered(self) -> bool:
        return self.cut_since < 0

    def poll(self, now_ms: int) -> dict[str, Any] | None:
        """Advance time; returns {"fired": ...} when it cut the host's power, else None."""
        if self.cut_since >= 0:
            if now_ms - self.cut_since >= self.relay_off_ms:
                self.cut_since = -1
                self.last_heartbeat = now_ms
                self.waiting_for_boot = True
            return None
        if not self.armed or self.maintenance or self.gave_up:
            return None
        limit = self.boot_grace_ms if self.waiting_for_boot else self.timeout_ms
        silent = now_ms - self.last_heartbeat
        if silent < limit:
            return None
        if self.in_a_row >= self.max_resets:
            self.gave_up = True
            return {"gave_up": True, "silent_ms": silent, "resets_in_a_row": self.in_a_row}
        self.in_a_row += 1
        self.total_resets += 1
        self.cut_since = now_ms
        return {"fired": True, "silent_ms": silent, "resets_in_a_row": self.in_a_row}
