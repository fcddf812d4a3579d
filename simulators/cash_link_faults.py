"""Simulated link errors on the host's cash calls: which call fails, and how.

Owns the decision, call by call, of whether a host call to a simulated acceptor board
(set_accepting, pending, acknowledge) fails, for the next N calls or with a seeded
probability, and what the failure lost: the request (the board did nothing) or the answer
(the board did it, the host never heard). It is pure state, so the SQLite simulator can keep
it durable and the in-process I/O board keep it in memory; the simulators raise the errors.
A failure never touches the board's counting: cash inserted meanwhile stays buffered.
"""

import random
from dataclasses import dataclass
from enum import StrEnum

HOST_CALLS = ("set_accepting", "pending", "acknowledge")


class LostPart(StrEnum):
    """What a failing call lost on the link."""

    REQUEST = "request"  # it never reached the board: nothing happened there
    ANSWER = "answer"  # the board carried it out; its answer was lost
    EITHER = "either"  # drawn for each failing call (seeded)


@dataclass
class LinkFaultPlan:
    """The armed faults; next_call() decides one call and advances the state.

    Each decision draws from random.Random(f"{seed}:{draws}"), so a plan reloaded from disk
    after a killed process continues the same sequence, and a seed reproduces a soak.
    """

    remaining: int = 0  # the next `remaining` calls fail
    probability: float = 0.0  # after those, each call fails with this probability
    seed: int = 0
    draws: int = 0
    lose: LostPart = LostPart.REQUEST

    def next_call(self) -> LostPart | None:
        """None when this call goes through, else what it lost."""
        if self.remaining <= 0 and self.probability <= 0:
            return None
        rng = random.Random(f"{self.seed}:{self.draws}")
        self.draws += 1
        if self.remaining > 0:
            self.remaining -= 1
        elif rng.random() >= self.probability:
            return None
        if self.lose is LostPart.EITHER:
            return LostPart.REQUEST if rng.random() < 0.5 else LostPart.ANSWER
        return self.lose


def plan_next_calls(count: int, lose: LostPart | str = LostPart.REQUEST) -> LinkFaultPlan:
    """A plan failing the next `count` host calls; ValueError for a bad argument."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"cannot fail {count!r} calls: give a count of 0 or more")
    return LinkFaultPlan(remaining=count, lose=_lost_part(lose))


def plan_random_calls(
    probability: float, seed: int, lose: LostPart | str = LostPart.EITHER
) -> LinkFaultPlan:
    """A plan failing each host call with `probability`, reproducibly for `seed`."""
    if isinstance(probability, bool) or not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability {probability!r} is not between 0 and 1")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed {seed!r} is not a whole number")
    return LinkFaultPlan(probability=float(probability), seed=seed, lose=_lost_part(lose))


def _lost_part(lose: LostPart | str) -> LostPart:
    try:
        return LostPart(lose)
    except ValueError:
        choices = ", ".join(part.value for part in LostPart)
        raise ValueError(f"lose={lose!r} is unknown: use one of {choices}") from None


def link_error_text(lost: LostPart) -> str:
    """The one-line cause of a simulated link error (the simulators add what to do)."""
    if lost is LostPart.ANSWER:
        return "simulated link error: the board carried the request out, its answer was lost"
    return "simulated link error: the request was lost before the board saw it"
