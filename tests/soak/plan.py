"""What the fault soak injects between two kills (one "segment"), drawn from its seed.

Pure: no I/O. The driver applies a segment to the platform simulator and the cash
acceptor's state file before it starts the worker, and the worker reads its clock offset
and its card faults from the segment's numbers.
"""

import random
from dataclasses import dataclass
from enum import StrEnum

from kiosk.clock_guard import SKEW_ALERT, SKEW_BLOCK

# Every platform operation a terminal sends with an idempotency key (money moves).
MONEY_OPERATIONS = (
    "hold",
    "release",
    "post",
    "authorize",
    "reverse",
    "voucher_issue",
    "voucher_redeem",
    # Payment orders (residents paying by phone, issue #21).
    "order_create",
    "order_pay",
    "order_close",
    "order_refund",
)
# How the provider and the resident's phone behave for the orders of a segment (docs/
# platform-api.md, "Provider behaviours"): each drawn with a count, the first with count left
# of each stage applies to a new order. Times are short: the platform's clock runs in real
# time during a life. A refund fails a bounded number of times, so that it settles.
PROVIDER_MENU = (
    "pay_at_once:count={n}",
    "pay_after:s=1:count={n}",
    "provider_timeout:s=1:count={n}",
    "cancel_after:s=1:count={n}",
    "decline:count={n}",
    "decline:code=auth_code_invalid:count={n}",
    "refund_fail:times=1:count={n}",
    "refund_after:s=1:count={n}",
    "notify_repeat:n=3:count={n}",
    "notify_late:s=2:count={n}",
)
# Gateways answer their own pages with these statuses (docs/platform-api.md).
GATEWAY_STATUSES = (400, 403, 404, 429)
# The worker's platform timeout is shorter than this: a lost answer is a timeout to it.
LOST_ANSWER_SLEEP_MS = 450
MAX_SKEW_S = 20 * 60
# Lives (by number) whose clock is certainly blocked: +1 ahead, -1 behind the true time.
FORCED_WRONG_CLOCK = {1: +1, 2: -1}
# They run at least this long, so a resident meets the wrong clock before the kill.
FORCED_RUN_S = 2.5
# A right restart's clock is off by up to this (past SKEW_ALERT: alerted, money moves).
RIGHT_ERROR_S = 4 * 60


class SkewBand(StrEnum):
    """How far the terminal's clock is off in a segment, as the clock guard sees it."""

    RIGHT = "right"  # within SKEW_ALERT: money moves silently
    ALERTED = "alerted"  # over SKEW_ALERT, within SKEW_BLOCK: alerted, money moves
    BLOCKED = "blocked"  # over SKEW_BLOCK: no money moves (the platform refuses past 15 min)
    BEHIND = "behind"  # earlier than a time the terminal already trusted: no money moves


@dataclass(frozen=True)
class Intensity:
    """How often each fault strikes (probabilities per request, call or journey)."""

    lost_answer_p: float = 0.06  # every money operation: committed, then no answer
    gateway_p: float = 0.02  # every operation: a gateway's 4xx page, nothing done
    gateway_after_commit_p: float = 0.02  # every money operation: committed, then a 4xx page
    alter_amount_p: float = 0.02  # post and authorize: committed, answered with other money
    status_error_p: float = 0.08  # status queries: HTTP 503
    link_error_p: float = 0.04  # each host call to the cash acceptor board fails
    card_pull_p: float = 0.35  # a card top-up whose card is pulled during the credit
    elsewhere_p: float = 0.5  # a pulled card is topped up at another terminal before it returns
    payout_p: float = 0.1  # after a resident, the operator pays out some voucher
    qr_p: float = 0.35  # a resident pays by phone (the dynamic code or a payment code)
    wrong_clock_p: float = 0.25  # a restart with the clock off by up to MAX_SKEW_S
    min_run_s: float = 0.3  # the worker is killed after a time drawn between these
    max_run_s: float = 4.0


@dataclass(frozen=True)
class Segment:
    number: int
    clock_error_s: int  # the terminal's clock minus the platform's, as the platform sees it
    clock_offset_s: int  # the terminal's clock minus the machine's
    band: SkewBand
    platform_faults: tuple[str, ...]
    fault_seed: int
    link_error_p: float
    link_seed: int
    run_s: float  # the worker is killed after this many seconds (unless it finished)
    provider: tuple[str, ...] = ()  # the provider behaviours of the life's new orders


def platform_faults(intensity: Intensity, rng: random.Random) -> tuple[str, ...]:
    """Fault specs for the platform simulator: the first matching rule that fires wins."""
    status = rng.choice(GATEWAY_STATUSES)
    lost = f"timeout_after_commit:p={intensity.lost_answer_p}:sleep_ms={LOST_ANSWER_SLEEP_MS}"
    specs = [f"{op}:{lost}" for op in MONEY_OPERATIONS]
    specs += [
        f"{op}:gateway_after_commit:status={status}:p={intensity.gateway_after_commit_p}"
        for op in MONEY_OPERATIONS
    ]
    specs += [f"{op}:alter_amount:p={intensity.alter_amount_p}" for op in ("post", "authorize")]
    specs.append(f"status:error:p={intensity.status_error_p}")
    specs += [
        f"{query}:error:p={intensity.status_error_p}" for query in ("order_status", "refund_status")
    ]
    specs.append(f"*:gateway:status={status}:p={intensity.gateway_p}")
    return tuple(specs)


@dataclass
class SkewPlan:
    """The clock error of each restart, and the terminal clock's base that keeps a right
    restart from looking behind a time the guard once trusted.

    A restart's error X is what the platform sees (its clock is set X behind the machine's,
    and the client stamps requests with the machine's time). The terminal's own clock is
    base + X. Any restart may have trusted its clock before its first platform answer (the
    guard has nothing to compare with yet), so the largest terminal time so far is a time
    the terminal may have trusted: the base moves up to it, as true time moving on would.
    A right restart (X within SKEW_BLOCK, not negative) is then never behind; a negative X
    is a clock stepped back, which the guard must refuse as behind its journal.
    """

    base_s: int = 0
    # The furthest the platform's clock was set ahead of the machine's (a negative error).
    platform_ahead_s: int = 0

    def draw(
        self, rng: random.Random, wrong_clock_p: float, number: int
    ) -> tuple[int, int, SkewBand]:
        """(error X, the terminal clock's offset base + X, band) for restart `number`."""
        blocked_s = int(SKEW_BLOCK.total_seconds()) + 30
        if number in FORCED_WRONG_CLOCK:
            # Early in every soak, however short: once far ahead, once far behind.
            error = FORCED_WRONG_CLOCK[number] * rng.randint(blocked_s, MAX_SKEW_S)
        elif rng.random() < wrong_clock_p:
            error = rng.randint(-MAX_SKEW_S, MAX_SKEW_S)
        else:
            error = rng.randint(0, RIGHT_ERROR_S)
        offset = self.base_s + error
        self.base_s = max(self.base_s, offset)
        self.platform_ahead_s = max(self.platform_ahead_s, -error)
        if abs(error) > SKEW_BLOCK.total_seconds():
            band = SkewBand.BLOCKED
        elif error < -5:
            band = SkewBand.BEHIND
        elif error > SKEW_ALERT.total_seconds():
            band = SkewBand.ALERTED
        else:
            band = SkewBand.RIGHT
        return error, offset, band


def provider_behaviours(rng: random.Random) -> tuple[str, ...]:
    """A few provider behaviours, each for a few orders, in a drawn order."""
    chosen = rng.sample(PROVIDER_MENU, rng.randint(1, 5))
    return tuple(spec.format(n=rng.randint(1, 3)) for spec in chosen)


def segment(seed: int, number: int, skew: SkewPlan, intensity: Intensity) -> Segment:
    """The faults of segment `number` of the soak with this seed."""
    rng = random.Random(f"soak-segment:{seed}:{number}")
    error, offset, band = skew.draw(rng, intensity.wrong_clock_p, number)
    run_s = rng.uniform(intensity.min_run_s, intensity.max_run_s)
    if number in FORCED_WRONG_CLOCK:
        run_s = max(run_s, FORCED_RUN_S)
    return Segment(
        number=number,
        clock_error_s=error,
        clock_offset_s=offset,
        band=band,
        platform_faults=platform_faults(intensity, rng),
        fault_seed=rng.randrange(2**31),
        link_error_p=intensity.link_error_p,
        link_seed=rng.randrange(2**31),
        run_s=run_s,
        provider=provider_behaviours(rng),
    )
