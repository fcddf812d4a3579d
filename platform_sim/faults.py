"""Fault injection for the platform simulator: which operation fails, how, how often.

A fault spec is one line, `OPERATION:KIND[:PARAM=VALUE...]`, for example
`post:timeout_after_commit:p=0.2` or `post:error:count=3` (docs/platform-api.md lists
them all). A FaultPlan draws from a seeded RNG so a run can be repeated exactly. This
module only decides; the server carries the fault out.
"""

import random
import threading
from dataclasses import dataclass, replace
from enum import StrEnum

from kiosk.errors import KioskError
from kiosk.platform.models import Operation

ANY_OPERATION = "*"
# Long enough to outlast the client's default 5 s timeout.
DEFAULT_SLEEP_MS = 6_000


class FaultSpecError(KioskError):
    """A fault spec could not be read; the message shows the expected form."""


class FaultKind(StrEnum):
    ERROR = "error"  # HTTP 503 before doing anything
    TIMEOUT_BEFORE = "timeout_before"  # no answer, nothing done
    TIMEOUT_AFTER_COMMIT = "timeout_after_commit"  # the change is committed, no answer
    DELAY = "delay_ms"  # answer normally, but only after delay_ms


@dataclass(frozen=True)
class FaultRule:
    operation: str  # an Operation value or "*"
    kind: FaultKind
    probability: float = 1.0
    count: int | None = None  # how many times it may still fire; None: no limit
    delay_ms: int = 0  # for delay_ms=N
    sleep_ms: int = DEFAULT_SLEEP_MS  # how long a timeout fault keeps the client waiting

    def matches(self, operation: str) -> bool:
        return self.operation in (ANY_OPERATION, operation)

    def spec(self) -> str:
        kind = f"delay_ms={self.delay_ms}" if self.kind is FaultKind.DELAY else self.kind.value
        parts = [self.operation, kind]
        if self.probability != 1.0:
            parts.append(f"p={self.probability:g}")
        if self.count is not None:
            parts.append(f"count={self.count}")
        if self.kind in (FaultKind.TIMEOUT_BEFORE, FaultKind.TIMEOUT_AFTER_COMMIT) and (
            self.sleep_ms != DEFAULT_SLEEP_MS
        ):
            parts.append(f"sleep_ms={self.sleep_ms}")
        return ":".join(parts)


SPEC_FORM = (
    "write OPERATION:KIND[:p=P][:count=N][:sleep_ms=N], KIND one of error, timeout_before, "
    "timeout_after_commit, delay_ms=N"
)


def parse_fault(spec: str) -> FaultRule:
    """Read one fault spec; FaultSpecError names what is wrong and shows the form."""
    parts = spec.strip().split(":")
    if len(parts) < 2:
        raise FaultSpecError(f"fault {spec!r}: it has no kind; {SPEC_FORM}")
    operation, kind_text, params = parts[0], parts[1], parts[2:]
    known = {op.value for op in Operation}
    if operation != ANY_OPERATION and operation not in known:
        raise FaultSpecError(
            f"fault {spec!r}: unknown operation {operation!r}; "
            f"use * or one of {', '.join(sorted(known))}"
        )
    delay_ms = 0
    if kind_text.startswith("delay_ms="):
        kind = FaultKind.DELAY
        delay_ms = _whole(spec, "delay_ms", kind_text.partition("=")[2])
    else:
        try:
            kind = FaultKind(kind_text)
        except ValueError:
            raise FaultSpecError(
                f"fault {spec!r}: unknown kind {kind_text!r}; {SPEC_FORM}"
            ) from None
        if kind is FaultKind.DELAY:
            raise FaultSpecError(f"fault {spec!r}: delay needs a value, as delay_ms=300")
    rule = FaultRule(operation, kind, delay_ms=delay_ms)
    for param in params:
        name, equals, value = param.partition("=")
        if not equals:
            raise FaultSpecError(f"fault {spec!r}: parameter {param!r} has no value; {SPEC_FORM}")
        if name == "p":
            rule = replace(rule, probability=_probability(spec, value))
        elif name == "count":
            rule = replace(rule, count=_whole(spec, "count", value))
        elif name == "sleep_ms":
            rule = replace(rule, sleep_ms=_whole(spec, "sleep_ms", value))
        else:
            raise FaultSpecError(f"fault {spec!r}: unknown parameter {name!r}; {SPEC_FORM}")
    return rule


def _whole(spec: str, name: str, value: str) -> int:
    if not value.isdigit():
        raise FaultSpecError(f"fault {spec!r}: {name} must be a whole number, not {value!r}")
    return int(value)


def _probability(spec: str, value: str) -> float:
    try:
        probability = float(value)
    except ValueError:
        probability = -1.0
    if not 0.0 <= probability <= 1.0:
        raise FaultSpecError(f"fault {spec!r}: p must be a number from 0 to 1, not {value!r}")
    return probability


class FaultPlan:
    """The faults in force; thread-safe, since every request runs in its own thread."""

    def __init__(self, rules: list[FaultRule] | None = None, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rules = list(rules or [])
        self._rng = random.Random(seed)
        self._fired: dict[str, int] = {}

    def replace_rules(self, rules: list[FaultRule], seed: int | None = None) -> None:
        with self._lock:
            self._rules = list(rules)
            if seed is not None:
                self._rng = random.Random(seed)

    def clear(self) -> None:
        self.replace_rules([])

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def fired(self) -> dict[str, int]:
        """How often each kind of fault fired, by `operation:kind`."""
        with self._lock:
            return dict(self._fired)

    def draw(self, operation: str) -> FaultRule | None:
        """The fault to inject into this request, if any; spends one of its count."""
        with self._lock:
            for index, rule in enumerate(self._rules):
                if not rule.matches(operation) or rule.count == 0:
                    continue
                if self._rng.random() >= rule.probability:
                    continue
                if rule.count is not None:
                    self._rules[index] = replace(rule, count=rule.count - 1)
                label = f"{operation}:{rule.kind.value}"
                self._fired[label] = self._fired.get(label, 0) + 1
                return rule
            return None
