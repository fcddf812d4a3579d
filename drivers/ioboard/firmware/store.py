"""The board's durable state on flash: its identity, event counters and unacknowledged events.

Owns the promise that counted cash survives anything short of a destroyed flash chip: every
change is written to a new file and renamed over the old one (an atomic replace on littlefs
and POSIX), so a power cut leaves either the old or the new state, never half of one.
Event numbers come from counters kept in the same file and are never reused; the board id is
random, made at first boot, so a board whose flash was wiped starts a new id space rather
than repeating old ids. It never decides what an event means.
"""

import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - MicroPython has no typing module; mypy reads this
    from collections.abc import Callable
    from typing import Any
else:
    # CPython evaluates signature annotations when a def runs; MicroPython ignores them.
    Any = object

# Board events are bounded (door events of a long outage are not worth the flash); counted
# cash is never dropped, the board closes its inlets long before this many wait.
BOARD_EVENT_LIMIT = 64
CASH_CLOSE_INLETS_AT = 200


def _exists(path: str) -> bool:
    try:
        os.stat(path)
        return True
    except OSError:
        return False


class EventStore:
    def __init__(self, path: str, random_bytes: "Callable[[int], bytes]") -> None:
        self.path = path
        self.tmp_path = path + ".new"
        self.lost_state = False
        state = self._load()
        if state is None:
            state = {
                "board_id": "".join(f"{b:02x}" for b in random_bytes(4)),
                "next_cash": 1,
                "next_board": 1,
                "cash": [],
                "board": [],
                "tamper_latched": False,
                "boots": 0,
            }
        self.state: dict[str, Any] = state
        self.state["boots"] += 1
        self._save()

    def _load(self) -> dict[str, Any] | None:
        # A leftover .new file is a write that a power cut interrupted before its rename:
        # the state file beside it is still the last complete one.
        if not _exists(self.path):
            return None
        try:
            with open(self.path) as handle:
                state: dict[str, Any] = json.load(handle)
            for key in ("board_id", "next_cash", "next_board", "cash", "board", "boots"):
                if key not in state:
                    raise ValueError(key)
            # Firmware 1.x kept [number, kind, value]; an upgraded board keeps its buffer.
            state["cash"] = [
                event if len(event) == 5 else [event[0], event[1], event[2], event[1], 0]
                for event in state["cash"]
            ]
            return state
        except (ValueError, KeyError, TypeError):
            # Unreadable state: keep it for a technician and start a NEW id space so that
            # no event id can repeat one the host already journaled.
            os.rename(self.path, self.path + ".bad")
            self.lost_state = True
            return None

    def _save(self) -> None:
        with open(self.tmp_path, "w") as handle:
            json.dump(self.state, handle)
        os.rename(self.tmp_path, self.path)

    @property
    def board_id(self) -> str:
        board_id: str = self.state["board_id"]
        return board_id

    @property
    def boots(self) -> int:
        boots: int = self.state["boots"]
        return boots

    # ------------------------------------------------------------ cash

    def add_cash(self, kind: str, value_fen: int, inlet: str = "", pulses: int = 0) -> int:
        """Number and keep a counted note or coin, or an unrecognised item (value 0).

        inlet defaults to the kind (a note comes in through the note inlet); pulses is the
        train length, recorded for unrecognised items.
        """
        number: int = self.state["next_cash"]
        self.state["next_cash"] = number + 1
        self.state["cash"].append([number, kind, value_fen, inlet or kind, pulses])
        self._save()
        return number

    def cash_after(self, after: int, limit: int) -> list[tuple[int, str, int, str, int]]:
        """(number, kind, value_fen, inlet, pulses) of the events after `after`, oldest first."""
        return [(n, k, v, i, p) for n, k, v, i, p in self.state["cash"] if n > after][:limit]

    def acknowledge_cash(self, number: int) -> bool:
        before = len(self.state["cash"])
        self.state["cash"] = [event for event in self.state["cash"] if event[0] != number]
        if len(self.state["cash"]) == before:
            return False
        self._save()
        return True

    def unacknowledged_cash(self) -> int:
        return len(self.state["cash"])

    # ------------------------------------------------------------ board events

    def add_board_event(
        self, kind: str, time_ms: int, clock_set: bool, detail: dict[str, Any]
    ) -> int:
        number: int = self.state["next_board"]
        self.state["next_board"] = number + 1
        events = self.state["board"]
        events.append([number, kind, time_ms, clock_set, detail])
        if len(events) > BOARD_EVENT_LIMIT:
            # Drop the oldest door event first; tamper and watchdog reports stay longest.
            for index, event in enumerate(events):
                if event[1] in ("door_open", "door_closed"):
                    events.pop(index)
                    break
            else:
                events.pop(0)
        self._save()
        return number

    def board_events_after(
        self, after: int, limit: int
    ) -> list[tuple[int, str, int, bool, dict[str, Any]]]:
        return [(n, k, t, c, d) for n, k, t, c, d in self.state["board"] if n > after][:limit]

    def acknowledge_board_event(self, number: int) -> bool:
        before = len(self.state["board"])
        self.state["board"] = [event for event in self.state["board"] if event[0] != number]
        if len(self.state["board"]) == before:
            return False
        self._save()
        return True

    def unacknowledged_board_events(self) -> int:
        return len(self.state["board"])

    # ------------------------------------------------------------ tamper latch

    @property
    def tamper_latched(self) -> bool:
        return bool(self.state["tamper_latched"])

    def set_tamper_latched(self, latched: bool) -> None:
        self.state["tamper_latched"] = latched
        self._save()
