"""The core's event bus: drivers' and the core's happenings pushed to observers.

The UI and telemetry observe the core through this bus; they never poll drivers. Observers
run synchronously on the publishing thread and must return quickly; an observer that
raises is logged and does not stop the others.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    kind: str  # e.g. "low_float", "signer_outage", "signer_recovered", "day_closed"
    data: dict[str, Any] = field(default_factory=dict)


Observer = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._observers: list[Observer] = []
        self.history: list[Event] = []  # the last events, for diagnostics
        self._history_limit = 200

    def subscribe(self, observer: Observer) -> None:
        self._observers.append(observer)

    def publish(self, kind: str, **data: Any) -> Event:
        event = Event(kind, data)
        self.history = [*self.history[-(self._history_limit - 1) :], event]
        for observer in list(self._observers):
            try:
                observer(event)
            except Exception:
                log.exception("event observer failed on %s", kind)
        return event
