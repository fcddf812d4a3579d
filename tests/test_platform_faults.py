"""Injected platform faults: the spec syntax, the seeded plan, and what the client sees
when the real simulator errs, stalls, or commits and then goes silent."""

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.token.software import SoftwareSigner
from kiosk.platform import PlatformClient, PlatformUnavailable, Posting
from kiosk.platform.models import Operation
from platform_sim.faults import (
    FaultKind,
    FaultPlan,
    FaultRule,
    FaultSpecError,
    parse_fault,
)
from tests.fixtures.platform import PlatformSimProcess, ThreadedPlatformSim, client_for

WATER = "3100000011"
SimFactory = Callable[..., ThreadedPlatformSim]


def post_water(client: PlatformClient, key: str = "pay-1", hold_id: str = "hold-1") -> Posting:
    return client.post_payment(
        key,
        hold_id=hold_id,
        service="water-bill",
        biller="water",
        account=WATER,
        amount_fen=12_345,
        fee_fen=0,
        bill_id=None,
    )


# ---------------------------------------------------------------- spec syntax


def test_the_documented_examples_parse() -> None:
    commit_lost = parse_fault("post:timeout_after_commit:p=0.2")
    assert (commit_lost.operation, commit_lost.kind) == ("post", FaultKind.TIMEOUT_AFTER_COMMIT)
    assert commit_lost.probability == 0.2 and commit_lost.count is None
    errors = parse_fault("post:error:count=3")
    assert (errors.kind, errors.count, errors.probability) == (FaultKind.ERROR, 3, 1.0)
    slow = parse_fault("lookup:delay_ms=300")
    assert (slow.kind, slow.delay_ms) == (FaultKind.DELAY, 300)
    assert parse_fault("*:timeout_before:sleep_ms=50").sleep_ms == 50


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("post", "it has no kind"),
        ("pay:error", "unknown operation 'pay'"),
        ("post:explode", "unknown kind 'explode'"),
        ("post:error:p=1.5", "p must be a number from 0 to 1"),
        ("post:error:count=-1", "count must be a whole number"),
        ("post:error:color=red", "unknown parameter 'color'"),
        ("post:error:count", "has no value"),
        ("post:delay_ms=soon", "delay_ms must be a whole number"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_problem_and_the_form(spec: str, complaint: str) -> None:
    with pytest.raises(FaultSpecError) as refused:
        parse_fault(spec)
    assert complaint in str(refused.value)
    assert str(refused.value).startswith(f"fault {spec!r}: ")


rules = st.builds(
    FaultRule,
    operation=st.sampled_from(["*", *(op.value for op in Operation)]),
    kind=st.sampled_from(list(FaultKind)),
    probability=st.sampled_from([1.0, 0.0, 0.5, 0.25, 0.125]),
    count=st.none() | st.integers(min_value=0, max_value=1000),
    delay_ms=st.integers(min_value=0, max_value=10_000),
    sleep_ms=st.integers(min_value=0, max_value=100_000),
).map(
    # Fields a kind does not use are not part of its spec.
    lambda r: FaultRule(
        r.operation,
        r.kind,
        r.probability,
        r.count,
        r.delay_ms if r.kind is FaultKind.DELAY else 0,
        r.sleep_ms
        if r.kind in (FaultKind.TIMEOUT_BEFORE, FaultKind.TIMEOUT_AFTER_COMMIT)
        else FaultRule.sleep_ms,
    )
)


@given(rules)
def test_a_rule_written_as_a_spec_reads_back_the_same(rule: FaultRule) -> None:
    assert parse_fault(rule.spec()) == rule


# ---------------------------------------------------------------- the plan


def test_a_counted_fault_fires_exactly_count_times() -> None:
    plan = FaultPlan([parse_fault("post:error:count=2")])
    fired = [plan.draw("post") for _ in range(5)]
    assert [rule is not None for rule in fired] == [True, True, False, False, False]
    assert plan.draw("lookup") is None
    assert plan.fired() == {"post:error": 2}


def test_the_same_seed_injects_the_same_faults() -> None:
    def run(seed: int) -> list[bool]:
        plan = FaultPlan([parse_fault("*:error:p=0.3")], seed=seed)
        return [plan.draw("hold") is not None for _ in range(200)]

    assert run(7) == run(7)
    assert run(7) != run(8)
    assert 30 < sum(run(7)) < 90  # about 30 % fire


# ---------------------------------------------------------------- faults over HTTP


def test_timeout_after_commit_leaves_the_outcome_unknown_until_a_status_query_finds_it_posted(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_factory(faults=["post:timeout_after_commit:sleep_ms=3000"])
    client = client_for(sim, platform_signer, timeout_s=0.3, retries=2)
    client.hold_float("hold-1", 12_345)
    with pytest.raises(PlatformUnavailable, match="outcome is unknown"):
        post_water(client)
    assert sim.requests_seen()["post"] == 2
    status = client.payment_status("pay-1")
    assert status.state == "posted" and status.ref is not None
    sim.clear_faults()
    assert post_water(client).ref == status.ref
    assert sim.balance_fen() == 200_000 - 12_345  # debited once in spite of three posts


def test_timeout_before_does_nothing_on_the_platform(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_factory(faults=["post:timeout_before:sleep_ms=3000"])
    client = client_for(sim, platform_signer, timeout_s=0.3, retries=1)
    client.hold_float("hold-1", 12_345)
    with pytest.raises(PlatformUnavailable):
        post_water(client)
    assert client.payment_status("pay-1").state == "not_found"
    assert client.float_state().held_fen == 12_345  # the hold is still there to release


def test_an_error_answer_is_not_retried_and_leaves_the_outcome_unknown(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_factory(faults=["hold:error"])
    client = client_for(sim, platform_signer, retries=3)
    with pytest.raises(PlatformUnavailable, match="HTTP 503.*outcome is unknown"):
        client.hold_float("hold-1", 1_000)
    assert sim.requests_seen()["hold"] == 1


def test_a_lost_connection_is_retried_until_the_attempts_run_out(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_factory(faults=["hold:timeout_before:count=2:sleep_ms=3000"])
    client = client_for(sim, platform_signer, timeout_s=0.3, retries=3)
    assert client.hold_float("hold-1", 1_000).held_fen == 1_000
    assert sim.requests_seen()["hold"] == 3
    sim.set_faults(["hold:timeout_before:sleep_ms=3000"])
    with pytest.raises(PlatformUnavailable, match="timed out after 3 attempts"):
        client.hold_float("hold-2", 1_000)
    assert sim.requests_seen()["hold"] == 6


def test_a_delay_within_the_timeout_is_only_slow_and_one_beyond_it_is_unavailable(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_factory(faults=["lookup:delay_ms=100"])
    client = client_for(sim, platform_signer, timeout_s=0.5, retries=1)
    assert client.lookup_bill("water", WATER).amount_due_fen == 12_345
    sim.set_faults(["lookup:delay_ms=1500"])
    with pytest.raises(PlatformUnavailable, match="try again later"):
        client.lookup_bill("water", WATER)


def test_faults_are_set_listed_and_cleared_at_run_time(
    platform_sim: ThreadedPlatformSim, platform_signer: SoftwareSigner
) -> None:
    client = client_for(platform_sim, platform_signer, retries=1)
    platform_sim.set_faults(["*:error:count=1", "float:delay_ms=10"])
    with pytest.raises(PlatformUnavailable):
        client.float_state()
    listed = platform_sim.control("GET", "/sim/faults")
    assert listed["faults"] == ["*:error:count=0", "float:delay_ms=10"]
    assert listed["fired"] == {"float:error": 1}
    platform_sim.clear_faults()
    assert platform_sim.control("GET", "/sim/faults")["faults"] == []
    assert client.float_state().balance_fen == 200_000


def test_a_bad_spec_sent_at_run_time_is_refused_and_changes_nothing(
    platform_sim: ThreadedPlatformSim,
) -> None:
    platform_sim.set_faults(["post:error"])
    with pytest.raises(AssertionError, match="HTTP 400"):
        platform_sim.set_faults(["post:explode"])
    assert platform_sim.control("GET", "/sim/faults")["faults"] == ["post:error"]


def test_a_committed_payment_survives_the_simulator_being_killed(
    platform_sim_process: PlatformSimProcess, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_process
    client = client_for(sim, platform_signer, timeout_s=0.3, retries=1)
    client.hold_float("hold-1", 12_345)
    sim.set_faults(["post:timeout_after_commit:sleep_ms=60000"])
    with pytest.raises(PlatformUnavailable):
        post_water(client)
    sim.kill()  # SIGKILL while the request still sleeps after its commit
    sim.start()
    assert client.payment_status("pay-1").state == "posted"
    assert sim.balance_fen() == 200_000 - 12_345


def test_faults_given_on_the_command_line_are_in_force_from_the_start(
    tmp_path: Path, platform_signer: SoftwareSigner
) -> None:
    sim = PlatformSimProcess(tmp_path / "p.sqlite3", "--fault", "lookup:error", "--seed", "1")
    try:
        client = client_for(sim, platform_signer, retries=2)
        with pytest.raises(PlatformUnavailable):
            client.lookup_bill("water", WATER)
        assert sim.requests_seen()["lookup"] == 1
    finally:
        sim.stop()
