"""Fault injection for the platform simulator: which operation fails, how, how often.

A fault spec is one line, `OPERATION:KIND[:PARAM=VALUE...]`, for example
`post:timeout_after_commit:p=0.2`, `post:error:count=3`, `hold:refuse:code=rate_limited`
or `post:gateway_after_commit:status=403` (docs/platform-api.md lists them all). The kinds
model a real platform behind a real gateway: answers that never reached the platform,
answers lost or replaced after the platform committed. A FaultPlan draws from a seeded RNG
so a run can be repeated exactly. This module only decides; the server carries it out.
"""

import random
import re
import threading
from dataclasses import dataclass, replace
from enum import StrEnum

from kiosk.errors import KioskError
from kiosk.platform.models import REFUSAL_HTTP_STATUS, Operation

ANY_OPERATION = "*"
# Long enough to outlast the client's default 5 s timeout.
DEFAULT_SLEEP_MS = 6_000
# A refusal code the platform has not defined (a gateway's own) defaults to this status.
DEFAULT_REFUSAL_STATUS = 400
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


class FaultSpecError(KioskError):
    """A fault spec could not be read; the message shows the expected form."""


class FaultKind(StrEnum):
    ERROR = "error"  # HTTP 503 before doing anything
    TIMEOUT_BEFORE = "timeout_before"  # no answer, nothing done
    TIMEOUT_AFTER_COMMIT = "timeout_after_commit"  # the change is committed, no answer
    DELAY = "delay_ms"  # answer normally, but only after delay_ms
    REFUSE = "refuse"  # a platform-shaped refusal, nothing done
    GATEWAY = "gateway"  # a gateway's HTML page with that status, nothing done
    REFUSE_AFTER_COMMIT = "refuse_after_commit"  # committed, then that refusal answered
    GATEWAY_AFTER_COMMIT = "gateway_after_commit"  # committed, then a gateway's page
    # Committed, then answered with one fen more than the amount: a platform (or something
    # between) answering other money than was sent.
    ALTER_AMOUNT = "alter_amount"

    @property
    def after_commit(self) -> bool:
        return self in _AFTER_COMMIT

    @property
    def takes_code(self) -> bool:
        return self in (FaultKind.REFUSE, FaultKind.REFUSE_AFTER_COMMIT)

    @property
    def takes_status(self) -> bool:
        return self.takes_code or self in (FaultKind.GATEWAY, FaultKind.GATEWAY_AFTER_COMMIT)

    @property
    def is_timeout(self) -> bool:
        return self in (FaultKind.TIMEOUT_BEFORE, FaultKind.TIMEOUT_AFTER_COMMIT)


_AFTER_COMMIT = frozenset(
    {
        FaultKind.TIMEOUT_AFTER_COMMIT,
        FaultKind.REFUSE_AFTER_COMMIT,
        FaultKind.GATEWAY_AFTER_COMMIT,
        FaultKind.ALTER_AMOUNT,
    }
)


@dataclass(frozen=True)
class FaultRule:
    operation: str  # an Operation value or "*"
    kind: FaultKind
    probability: float = 1.0
    count: int | None = None  # how many times it may still fire; None: no limit
    delay_ms: int = 0  # for delay_ms=N
    sleep_ms: int = DEFAULT_SLEEP_MS  # how long a timeout fault keeps the client waiting
    code: str | None = None  # the refusal code of a refuse kind
    status: int | None = None  # the HTTP status of a refuse or gateway kind, as given

    def matches(self, operation: str) -> bool:
        return self.operation in (ANY_OPERATION, operation)

    def http_status(self) -> int:
        """The status to answer: as given, else the platform's own for a known code."""
        if self.status is not None:
            return self.status
        if self.code is not None:
            return int(REFUSAL_HTTP_STATUS.get(self.code, DEFAULT_REFUSAL_STATUS))
        raise AssertionError(f"fault {self.spec()} answers no status")  # pragma: no cover

    def spec(self) -> str:
        kind = f"delay_ms={self.delay_ms}" if self.kind is FaultKind.DELAY else self.kind.value
        parts = [self.operation, kind]
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.probability != 1.0:
            parts.append(f"p={self.probability:g}")
        if self.count is not None:
            parts.append(f"count={self.count}")
        if self.kind.is_timeout and self.sleep_ms != DEFAULT_SLEEP_MS:
            parts.append(f"sleep_ms={self.sleep_ms}")
        return ":".join(parts)


SPEC_FORM = (
    "write OPERATION:KIND[:p=P][:count=N][:sleep_ms=N], KIND one of error, timeout_before, "
    "timeout_after_commit, delay_ms=N, refuse:code=CODE[:status=N], gateway:status=N, "
    "refuse_after_commit:code=CODE[:status=N], gateway_after_commit:status=N, alter_amount"
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
        elif name == "code" and kind.takes_code:
            if not _CODE.fullmatch(value):
                raise FaultSpecError(
                    f"fault {spec!r}: code must be lower-case letters, digits and _, "
                    f"as insufficient_float, not {value!r}"
                )
            rule = replace(rule, code=value)
        elif name == "status" and kind.takes_status:
            status = _whole(spec, "status", value)
            if not 400 <= status <= 599:
                raise FaultSpecError(
                    f"fault {spec!r}: status must be an HTTP error from 400 to 599, not {status}"
                )
            rule = replace(rule, status=status)
        elif name in ("code", "status"):
            raise FaultSpecError(f"fault {spec!r}: kind {kind_text} takes no {name}; {SPEC_FORM}")
        else:
            raise FaultSpecError(f"fault {spec!r}: unknown parameter {name!r}; {SPEC_FORM}")
    if kind.takes_code and rule.code is None:
        raise FaultSpecError(f"fault {spec!r}: {kind_text} needs code=CODE; {SPEC_FORM}")
    if kind.takes_status and not kind.takes_code and rule.status is None:
        raise FaultSpecError(f"fault {spec!r}: {kind_text} needs status=N; {SPEC_FORM}")
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
