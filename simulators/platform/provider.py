"""How the simulated payment provider behaves for each payment order: the resident's and the
wallet's side of paying by phone.

A behaviour spec is one line, `KIND[:PARAM=VALUE...]`, for example `pay_after:s=30`,
`provider_timeout:s=5`, `refund_fail:times=1` or `notify_repeat:n=2`
(docs/platform-api.md, "Provider behaviours"). Each kind belongs to one stage of an order:

- pay (how the resident pays): pay_at_once, pay_after:s=N, provider_timeout:s=N,
  cancel_after:s=N, decline[:code=payment_declined|auth_code_invalid];
- refund (how the provider refunds): refund_after:s=N, refund_fail[:times=N];
- notify (how the platform's notifications go out): notify_repeat:n=N, notify_late:s=N.

A ProviderPlan holds the rules in force; when an order is made, it gets the first rule of
each stage that has count left (count=N: that many orders; default unlimited), and keeps
them for its life (the order book stores them with the order). Without a pay rule a
payment code is paid at once and a dynamic code waits for the resident (the
/sim/orders/KEY/pay control). This module only decides; the order book carries it out.
"""

import threading
from dataclasses import dataclass, replace
from enum import StrEnum

from kiosk.errors import KioskError
from kiosk.platform.models import Refusal


class BehaviourSpecError(KioskError):
    """A behaviour spec could not be read; the message shows the expected form."""


class Stage(StrEnum):
    PAY = "pay"
    REFUND = "refund"
    NOTIFY = "notify"


class BehaviourKind(StrEnum):
    # pay: the resident pays ...
    PAY_AT_ONCE = "pay_at_once"  # at once (a dynamic code: as soon as it is shown)
    PAY_AFTER = "pay_after"  # s seconds later (pending meanwhile); after a close: refunded
    # the provider took the money at once but the platform learns it only s seconds later
    PROVIDER_TIMEOUT = "provider_timeout"
    CANCEL_AFTER = "cancel_after"  # the resident cancels on the phone s seconds later
    DECLINE = "decline"  # the wallet declines a payment code (code=payment_declined)
    # refund: the provider refunds ...
    REFUND_AFTER = "refund_after"  # s seconds later (processing meanwhile)
    REFUND_FAIL = "refund_fail"  # not at all, the first `times` times (default: always)
    # notify: each notification goes out ...
    NOTIFY_REPEAT = "notify_repeat"  # n times (duplicates)
    NOTIFY_LATE = "notify_late"  # s seconds after the event

    @property
    def stage(self) -> Stage:
        if self in (BehaviourKind.REFUND_AFTER, BehaviourKind.REFUND_FAIL):
            return Stage.REFUND
        if self in (BehaviourKind.NOTIFY_REPEAT, BehaviourKind.NOTIFY_LATE):
            return Stage.NOTIFY
        return Stage.PAY


# The parameters each kind takes (count= is taken by every kind).
_PARAMS: dict[BehaviourKind, frozenset[str]] = {
    BehaviourKind.PAY_AT_ONCE: frozenset(),
    BehaviourKind.PAY_AFTER: frozenset({"s"}),
    BehaviourKind.PROVIDER_TIMEOUT: frozenset({"s"}),
    BehaviourKind.CANCEL_AFTER: frozenset({"s"}),
    BehaviourKind.DECLINE: frozenset({"code"}),
    BehaviourKind.REFUND_AFTER: frozenset({"s"}),
    BehaviourKind.REFUND_FAIL: frozenset({"times"}),
    BehaviourKind.NOTIFY_REPEAT: frozenset({"n"}),
    BehaviourKind.NOTIFY_LATE: frozenset({"s"}),
}
_REQUIRED: dict[BehaviourKind, frozenset[str]] = {
    BehaviourKind.PAY_AFTER: frozenset({"s"}),
    BehaviourKind.PROVIDER_TIMEOUT: frozenset({"s"}),
    BehaviourKind.CANCEL_AFTER: frozenset({"s"}),
    BehaviourKind.REFUND_AFTER: frozenset({"s"}),
    BehaviourKind.NOTIFY_REPEAT: frozenset({"n"}),
    BehaviourKind.NOTIFY_LATE: frozenset({"s"}),
}
DECLINE_CODES = frozenset({Refusal.PAYMENT_DECLINED, Refusal.AUTH_CODE_INVALID})
# Longer than a day is a typo; the simulator's clock can be moved instead of waited for.
MAX_SECONDS = 86_400

SPEC_FORM = (
    "write KIND[:PARAM=N][:count=N]: pay_at_once, pay_after:s=N, provider_timeout:s=N, "
    "cancel_after:s=N, decline[:code=payment_declined|auth_code_invalid], refund_after:s=N, "
    "refund_fail[:times=N], notify_repeat:n=N, notify_late:s=N"
)


@dataclass(frozen=True)
class Behaviour:
    kind: BehaviourKind
    seconds: int = 0  # s=
    times: int | None = None  # refund_fail: how many refunds fail (None: all)
    repeat: int = 1  # notify_repeat: n=
    code: str = Refusal.PAYMENT_DECLINED  # decline: the refusal
    count: int | None = None  # how many more orders get it (None: no limit)

    @property
    def stage(self) -> Stage:
        return self.kind.stage

    def spec(self, *, with_count: bool = True) -> str:
        parts = [self.kind.value]
        if "s" in _PARAMS[self.kind]:
            parts.append(f"s={self.seconds}")
        if self.kind is BehaviourKind.DECLINE:
            parts.append(f"code={self.code}")
        if self.times is not None:
            parts.append(f"times={self.times}")
        if self.kind is BehaviourKind.NOTIFY_REPEAT:
            parts.append(f"n={self.repeat}")
        if with_count and self.count is not None:
            parts.append(f"count={self.count}")
        return ":".join(parts)


def parse_behaviour(spec: str) -> Behaviour:
    """Read one behaviour spec; BehaviourSpecError names what is wrong and shows the form."""
    kind_text, *params = spec.strip().split(":")
    try:
        kind = BehaviourKind(kind_text)
    except ValueError:
        raise BehaviourSpecError(
            f"behaviour {spec!r}: unknown kind {kind_text!r}; {SPEC_FORM}"
        ) from None
    behaviour = Behaviour(kind)
    given: set[str] = set()
    for param in params:
        name, equals, value = param.partition("=")
        if not equals:
            raise BehaviourSpecError(f"behaviour {spec!r}: {param!r} has no value; {SPEC_FORM}")
        if name != "count" and name not in _PARAMS[kind]:
            raise BehaviourSpecError(
                f"behaviour {spec!r}: {kind_text} takes no {name}; {SPEC_FORM}"
            )
        given.add(name)
        if name == "code":
            if value not in DECLINE_CODES:
                raise BehaviourSpecError(
                    f"behaviour {spec!r}: code must be payment_declined or auth_code_invalid"
                )
            behaviour = replace(behaviour, code=value)
            continue
        number = _whole(spec, name, value)
        if name == "s":
            if number > MAX_SECONDS:
                raise BehaviourSpecError(
                    f"behaviour {spec!r}: s must be at most {MAX_SECONDS} (a day); "
                    "move the simulator's clock (/sim/clock) rather than wait longer"
                )
            behaviour = replace(behaviour, seconds=number)
        elif name == "times":
            behaviour = replace(behaviour, times=number)
        elif name == "n":
            if not 1 <= number <= 10:
                raise BehaviourSpecError(f"behaviour {spec!r}: n must be from 1 to 10")
            behaviour = replace(behaviour, repeat=number)
        else:
            behaviour = replace(behaviour, count=number)
    missing = _REQUIRED.get(kind, frozenset()) - given
    if missing:
        raise BehaviourSpecError(
            f"behaviour {spec!r}: {kind_text} needs {', '.join(sorted(missing))}=N; {SPEC_FORM}"
        )
    return behaviour


def _whole(spec: str, name: str, value: str) -> int:
    if not value.isdigit():
        raise BehaviourSpecError(
            f"behaviour {spec!r}: {name} must be a whole number, not {value!r}"
        )
    return int(value)


def one_per_stage(behaviours: list[Behaviour]) -> list[Behaviour]:
    """The behaviours an order keeps: the first of each stage, without counts."""
    chosen: dict[Stage, Behaviour] = {}
    for behaviour in behaviours:
        chosen.setdefault(behaviour.stage, replace(behaviour, count=None))
    return list(chosen.values())


class ProviderPlan:
    """The behaviour rules in force; thread-safe, since every request runs in its own thread."""

    def __init__(self, rules: list[Behaviour] | None = None) -> None:
        self._lock = threading.Lock()
        self._rules = list(rules or [])

    def replace_rules(self, rules: list[Behaviour]) -> None:
        with self._lock:
            self._rules = list(rules)

    def rules(self) -> list[Behaviour]:
        with self._lock:
            return list(self._rules)

    def draw(self) -> list[Behaviour]:
        """The behaviours of a new order: one per stage at most; spends one of each count."""
        chosen: list[Behaviour] = []
        stages: set[Stage] = set()
        with self._lock:
            for index, rule in enumerate(self._rules):
                if rule.stage in stages or rule.count == 0:
                    continue
                stages.add(rule.stage)
                if rule.count is not None:
                    self._rules[index] = replace(rule, count=rule.count - 1)
                chosen.append(replace(rule, count=None))
        return chosen
