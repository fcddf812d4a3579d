"""Injected platform faults: the spec syntax, the seeded plan, and what the client sees
when the real simulator errs, stalls, refuses, answers through a gateway, or commits and then
goes silent or refuses; and the client's rule that only proof voids a sent money request."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.token.software import SoftwareSigner
from kiosk.platform import (
    MalformedAnswer,
    OutcomeUnknown,
    PlatformClient,
    PlatformError,
    PlatformRefused,
    PlatformUnavailable,
    Posting,
    UnprovenRefusal,
)
from kiosk.platform.models import Operation
from simulators.platform.faults import (
    FaultKind,
    FaultPlan,
    FaultRule,
    FaultSpecError,
    parse_fault,
)
from tests.fixtures.platform import PlatformSimProcess, ThreadedPlatformSim, funded_client_for

WATER = "3100000011"
SimFactory = Callable[..., ThreadedPlatformSim]


def post_water(
    client: PlatformClient,
    key: str = "pay-1",
    hold_id: str = "hold-1",
    *,
    sent_before: bool = False,
) -> Posting:
    return client.post_payment(
        key,
        hold_id=hold_id,
        service="water-bill",
        biller="water",
        account=WATER,
        amount_fen=12_345,
        fee_fen=0,
        bill_id=None,
        sent_before=sent_before,
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
    refuse = parse_fault("hold:refuse:code=rate_limited")
    assert (refuse.kind, refuse.code, refuse.status, refuse.http_status()) == (
        FaultKind.REFUSE,
        "rate_limited",
        None,
        429,
    )
    assert parse_fault("post:refuse:code=stale_request").http_status() == 400
    assert parse_fault("post:refuse:code=quota_exceeded").http_status() == 400
    assert parse_fault("post:refuse:code=stale_request:status=403").http_status() == 403
    gateway = parse_fault("post:gateway_after_commit:status=502:count=1")
    assert (gateway.kind, gateway.http_status(), gateway.count) == (
        FaultKind.GATEWAY_AFTER_COMMIT,
        502,
        1,
    )
    after = parse_fault("voucher_redeem:refuse_after_commit:code=bad_signature")
    assert (after.kind, after.http_status()) == (FaultKind.REFUSE_AFTER_COMMIT, 401)


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
        ("post:refuse", "refuse needs code=CODE"),
        ("post:refuse_after_commit:status=409", "refuse_after_commit needs code=CODE"),
        ("post:gateway", "gateway needs status=N"),
        ("post:gateway:status=302", "status must be an HTTP error from 400 to 599"),
        ("post:gateway:status=4o4", "status must be a whole number"),
        ("post:gateway:status=403:code=x", "kind gateway takes no code"),
        ("post:error:status=500", "kind error takes no status"),
        ("post:refuse:code=Stale-Request", "code must be lower-case letters"),
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
    code=st.sampled_from(["stale_request", "rate_limited", "x", "quota_2"]),
    status=st.none() | st.integers(min_value=400, max_value=599),
).map(
    # Fields a kind does not use are not part of its spec; a gateway needs its status.
    lambda r: FaultRule(
        r.operation,
        r.kind,
        r.probability,
        r.count,
        r.delay_ms if r.kind is FaultKind.DELAY else 0,
        r.sleep_ms if r.kind.is_timeout else FaultRule.sleep_ms,
        r.code if r.kind.takes_code else None,
        (r.status if r.kind.takes_code else r.status or 503) if r.kind.takes_status else None,
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
    client = funded_client_for(sim, platform_signer, timeout_s=0.3, retries=2)
    client.hold_float("hold-1", 12_345)
    with pytest.raises(PlatformUnavailable, match="outcome is unknown"):
        post_water(client)
    assert sim.requests_seen()["post"] == 2
    status = client.payment_status("pay-1", amount_fen=12_345, fee_fen=0)
    assert status.state == "posted" and status.ref is not None
    sim.clear_faults()
    assert post_water(client).ref == status.ref
    assert sim.balance_fen() == 200_000 - 12_345  # debited once in spite of three posts


def test_timeout_before_does_nothing_on_the_platform(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_factory(faults=["post:timeout_before:sleep_ms=3000"])
    client = funded_client_for(sim, platform_signer, timeout_s=0.3, retries=1)
    client.hold_float("hold-1", 12_345)
    with pytest.raises(PlatformUnavailable):
        post_water(client)
    assert client.payment_status("pay-1", amount_fen=12_345, fee_fen=0).state == "not_found"
    assert client.float_state().held_fen == 12_345  # the hold is still there to release


def test_an_error_answer_is_not_retried_and_leaves_the_outcome_unknown(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_factory(faults=["hold:error"])
    client = funded_client_for(sim, platform_signer, retries=3)
    with pytest.raises(PlatformUnavailable, match="HTTP 503.*outcome is unknown"):
        client.hold_float("hold-1", 1_000)
    assert sim.requests_seen()["hold"] == 1


def test_a_lost_connection_is_retried_until_the_attempts_run_out(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_factory(faults=["hold:timeout_before:count=2:sleep_ms=3000"])
    client = funded_client_for(sim, platform_signer, timeout_s=0.3, retries=3)
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
    client = funded_client_for(sim, platform_signer, timeout_s=0.5, retries=1)
    assert client.lookup_bill("water", WATER).amount_due_fen == 12_345
    sim.set_faults(["lookup:delay_ms=1500"])
    with pytest.raises(PlatformUnavailable, match="try again later"):
        client.lookup_bill("water", WATER)


def test_faults_are_set_listed_and_cleared_at_run_time(
    platform_sim: ThreadedPlatformSim, platform_signer: SoftwareSigner
) -> None:
    client = funded_client_for(platform_sim, platform_signer, retries=1)
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
    client = funded_client_for(sim, platform_signer, timeout_s=0.3, retries=1)
    client.hold_float("hold-1", 12_345)
    sim.set_faults(["post:timeout_after_commit:sleep_ms=60000"])
    with pytest.raises(PlatformUnavailable):
        post_water(client)
    sim.kill()  # SIGKILL while the request still sleeps after its commit
    sim.start()
    assert client.payment_status("pay-1", amount_fen=12_345, fee_fen=0).state == "posted"
    assert sim.balance_fen() == 200_000 - 12_345


def test_faults_given_on_the_command_line_are_in_force_from_the_start(
    tmp_path: Path, platform_signer: SoftwareSigner
) -> None:
    sim = PlatformSimProcess(tmp_path / "p.sqlite3", "--fault", "lookup:error", "--seed", "1")
    try:
        client = funded_client_for(sim, platform_signer, retries=2)
        with pytest.raises(PlatformUnavailable):
            client.lookup_bill("water", WATER)
        assert sim.requests_seen()["lookup"] == 1
    finally:
        sim.stop()


# ---------------------------------------------------------------- every money operation


@dataclass(frozen=True)
class MoneyCase:
    """One money operation: what must exist first, the request, and its mark in the ledger."""

    operation: str
    prepare: Callable[[PlatformClient], object]
    act: Callable[[PlatformClient, bool], object]  # (client, sent_before)
    committed: Callable[[dict[str, Any]], bool]  # from the simulator's dump


EXPIRES = date(2099, 12, 31)


def _nothing(client: PlatformClient) -> None:
    pass


def _hold(client: PlatformClient) -> None:
    client.hold_float("hold-1", 12_345)


def _hold_and_post(client: PlatformClient) -> None:
    _hold(client)
    post_water(client)


def _issue(client: PlatformClient, sent_before: bool = False) -> object:
    return client.issue_voucher(
        "V-1", amount_fen=700, receipt_no="T-01-000009", expires=EXPIRES, sent_before=sent_before
    )


def _authorize(client: PlatformClient, sent_before: bool) -> object:
    return client.authorize_card_credit(
        "pay-1",
        hold_id="hold-1",
        service="power-card",
        biller="electricity",
        card_no="900000000001",
        counter=4,
        amount_fen=12_345,
        fee_fen=0,
        sent_before=sent_before,
    )


def _rows(dump: dict[str, Any], table: str, key: str, value: str) -> list[dict[str, Any]]:
    return [row for row in dump[table] if row[key] == value]


MONEY_CASES = [
    MoneyCase(
        "hold",
        _nothing,
        lambda c, again: c.hold_float("hold-1", 12_345, sent_before=again),
        lambda d: [h["state"] for h in _rows(d, "holds", "hold_id", "hold-1")] == ["active"],
    ),
    MoneyCase(
        "release",
        _hold,
        lambda c, again: c.release_float("hold-1", sent_before=again),
        lambda d: [h["state"] for h in _rows(d, "holds", "hold_id", "hold-1")] == ["released"],
    ),
    MoneyCase(
        "post",
        _hold,
        lambda c, again: c.post_payment(
            "pay-1",
            hold_id="hold-1",
            service="water-bill",
            biller="water",
            account=WATER,
            amount_fen=12_345,
            fee_fen=0,
            bill_id=None,
            sent_before=again,
        ),
        lambda d: [p["state"] for p in _rows(d, "payments", "key", "pay-1")] == ["posted"],
    ),
    MoneyCase(
        "authorize",
        _hold,
        _authorize,
        lambda d: [p["kind"] for p in _rows(d, "payments", "key", "pay-1")] == ["card_credit"],
    ),
    MoneyCase(
        "reverse",
        _hold_and_post,
        lambda c, again: c.reverse_payment("pay-1", "customer cancelled", sent_before=again),
        lambda d: [p["state"] for p in _rows(d, "payments", "key", "pay-1")] == ["reversed"],
    ),
    MoneyCase(
        "deposit",
        _nothing,
        lambda c, again: c.deposit("dep-1", 50_000, slip_no="SLIP-0001", sent_before=again),
        lambda d: [x["amount_fen"] for x in _rows(d, "deposits", "key", "dep-1")] == [50_000],
    ),
    MoneyCase(
        "voucher_issue",
        _nothing,
        _issue,
        lambda d: [v["state"] for v in _rows(d, "vouchers", "voucher_id", "V-1")] == ["issued"],
    ),
    MoneyCase(
        "voucher_redeem",
        _issue,
        lambda c, again: c.redeem_voucher(
            "redeem-1", voucher_id="V-1", amount_fen=700, sent_before=again
        ),
        lambda d: (
            [v["redeem_key"] for v in _rows(d, "vouchers", "voucher_id", "V-1")] == ["redeem-1"]
        ),
    ),
]


# ---- payment orders (docs/platform-api.md, "Payment orders")
WECHAT_CODE = "134567890123456789"
ORDER = {"amount_fen": 12_345, "service": "water-bill", "description": "water 3100000011"}


def _order_rows(dump: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [row for row in dump["payment_orders"]["orders"] if row["key"] == key]


def _pay_order(client: PlatformClient, sent_before: bool = False) -> object:
    return client.pay_order_by_code(
        "ord-1", auth_code=WECHAT_CODE, **ORDER, sent_before=sent_before
    )


MONEY_CASES += [
    MoneyCase(
        "order_create",
        _nothing,
        lambda c, again: c.create_order("ord-1", **ORDER, method=None, sent_before=again),
        lambda d: [o["state"] for o in _order_rows(d, "ord-1")] == ["created"],
    ),
    MoneyCase(
        "order_pay",
        _nothing,
        _pay_order,
        lambda d: [o["state"] for o in _order_rows(d, "ord-1")] == ["paid"],
    ),
    MoneyCase(
        "order_close",
        lambda c: c.create_order("ord-1", **ORDER, method=None),
        lambda c, again: c.close_order(
            "ord-1", "walked away", amount_fen=12_345, sent_before=again
        ),
        lambda d: [o["state"] for o in _order_rows(d, "ord-1")] == ["closed"],
    ),
    MoneyCase(
        "order_refund",
        _pay_order,
        lambda c, again: c.refund_order(
            "ref-1", order_key="ord-1", amount_fen=12_345, reason="x", sent_before=again
        ),
        lambda d: [o["state"] for o in _order_rows(d, "ord-1")] == ["refunded"],
    ),
]
MONEY_IDS = [case.operation for case in MONEY_CASES]


def test_the_cases_cover_every_money_operation() -> None:
    from kiosk.platform.models import MONEY_OPERATIONS

    assert set(MONEY_IDS) == {str(op) for op in MONEY_OPERATIONS}


def prepared(sim: ThreadedPlatformSim, signer: SoftwareSigner, case: MoneyCase) -> PlatformClient:
    client = funded_client_for(sim, signer, timeout_s=0.3, retries=1)
    case.prepare(client)
    assert not case.committed(sim.dump())
    return client


@pytest.mark.parametrize("case", MONEY_CASES, ids=MONEY_IDS)
def test_timeout_after_commit_works_for_every_money_operation(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner, case: MoneyCase
) -> None:
    sim = platform_sim_factory()
    client = prepared(sim, platform_signer, case)
    sim.set_faults([f"{case.operation}:timeout_after_commit:sleep_ms=2000"])
    with pytest.raises(PlatformUnavailable, match="outcome is unknown"):
        case.act(client, False)
    after_fault = sim.dump()
    assert case.committed(after_fault)  # the money moved although no answer came
    sim.clear_faults()
    first_answer = case.act(client, True)  # the same key again: the committed answer
    assert case.act(client, True) == first_answer
    again = sim.dump()
    assert again["stations"] == after_fault["stations"]  # and nothing moved twice
    assert case.committed(again)


@pytest.mark.parametrize("case", MONEY_CASES, ids=MONEY_IDS)
def test_a_gateway_page_after_commit_leaves_every_money_operation_in_doubt(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner, case: MoneyCase
) -> None:
    sim = platform_sim_factory()
    client = prepared(sim, platform_signer, case)
    sim.set_faults([f"{case.operation}:gateway_after_commit:status=403"])
    with pytest.raises(MalformedAnswer) as malformed:
        case.act(client, False)
    assert isinstance(malformed.value, OutcomeUnknown)
    assert "HTTP 403 without a JSON object" in str(malformed.value)
    assert case.committed(sim.dump())


@pytest.mark.parametrize("case", MONEY_CASES, ids=MONEY_IDS)
def test_a_refusal_after_a_lost_answer_proves_nothing_for_every_money_operation(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner, case: MoneyCase
) -> None:
    # Issue #16: attempt 1 is carried out but its answer is lost; attempt 2 is refused by
    # the gateway or the front (a skewed clock). The refusal must not void the request.
    sim = platform_sim_factory()
    client = funded_client_for(sim, platform_signer, timeout_s=0.3, retries=2)
    case.prepare(client)
    sim.set_faults(
        [
            f"{case.operation}:timeout_after_commit:count=1:sleep_ms=2000",
            f"{case.operation}:refuse:code=stale_request",
        ]
    )
    with pytest.raises(UnprovenRefusal) as unproven:
        case.act(client, False)
    assert (unproven.value.code, unproven.value.http_status) == ("stale_request", 400)
    assert not isinstance(unproven.value, PlatformRefused)
    assert "outcome is unknown" in str(unproven.value)
    assert case.committed(sim.dump())


@pytest.mark.parametrize("case", MONEY_CASES, ids=MONEY_IDS)
def test_a_refusal_before_the_platform_proves_nothing_was_done(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner, case: MoneyCase
) -> None:
    sim = platform_sim_factory()
    client = prepared(sim, platform_signer, case)
    before = sim.dump()
    sim.set_faults([f"{case.operation}:refuse:code=rate_limited"])
    with pytest.raises(PlatformRefused) as refused:
        case.act(client, False)
    assert (refused.value.code, refused.value.http_status) == ("rate_limited", 429)
    assert sim.dump() == before


# ---------------------------------------------------------------- the client's rule


def water_client(
    sim: ThreadedPlatformSim, signer: SoftwareSigner, *, retries: int = 2
) -> PlatformClient:
    client = funded_client_for(sim, signer, timeout_s=0.3, retries=retries)
    client.hold_float("hold-1", 12_345)
    return client


@pytest.mark.parametrize(
    ("refusal", "code", "status"),
    [
        ("refuse:code=stale_request", "stale_request", 400),
        ("refuse:code=bad_signature", "bad_signature", 401),
        ("refuse:code=not_registered", "not_registered", 403),
        ("refuse:code=key_reused", "key_reused", 409),
        ("refuse:code=rate_limited", "rate_limited", 429),
        ("refuse:code=bad_request", "bad_request", 400),
        ("refuse:code=waf_blocked:status=403", "waf_blocked", 403),  # a code we never heard of
    ],
)
def test_issue_16_a_post_committed_then_refused_on_retry_stays_in_doubt_until_status(
    platform_sim_factory: SimFactory,
    platform_signer: SoftwareSigner,
    refusal: str,
    code: str,
    status: int,
) -> None:
    sim = platform_sim_factory()
    client = water_client(sim, platform_signer)
    sim.set_faults(["post:timeout_after_commit:count=1:sleep_ms=2000", f"post:{refusal}"])
    with pytest.raises(UnprovenRefusal) as unproven:
        post_water(client)
    assert (unproven.value.code, unproven.value.http_status) == (code, status)
    assert sim.requests_seen()["post"] == 2
    resolved = client.payment_status("pay-1", amount_fen=12_345, fee_fen=0)
    assert (resolved.state, resolved.amount_fen, resolved.fee_fen) == ("posted", 12_345, 0)
    assert sim.balance_fen() == 200_000 - 12_345


def test_a_payment_specific_refusal_after_a_lost_attempt_is_proof(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_factory()
    client = funded_client_for(sim, platform_signer, timeout_s=0.3, retries=2)
    # Attempt 1 never reaches the ledger; attempt 2 is the ledger's own refusal: no hold.
    sim.set_faults(["post:timeout_before:count=1:sleep_ms=2000"])
    with pytest.raises(PlatformRefused) as refused:
        post_water(client, hold_id="never-held")
    assert (refused.value.code, refused.value.http_status) == ("hold_missing", 409)
    assert sim.requests_seen()["post"] == 2
    assert client.payment_status("pay-1", amount_fen=12_345, fee_fen=0).state == "not_found"


def test_without_an_earlier_unknown_attempt_any_refusal_is_proof(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_factory()
    client = water_client(sim, platform_signer)
    sim.set_faults(["post:refuse:code=stale_request"])
    with pytest.raises(PlatformRefused) as refused:
        post_water(client)
    assert (refused.value.code, refused.value.http_status) == ("stale_request", 400)
    assert sim.requests_seen()["post"] == 1
    assert sim.dump()["payments"] == []


def test_a_key_sent_in_an_earlier_call_is_judged_like_a_retry(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_factory()
    client = water_client(sim, platform_signer)
    sim.set_faults(["post:refuse:code=stale_request"])
    with pytest.raises(UnprovenRefusal):
        post_water(client, sent_before=True)
    sim.clear_faults()
    with pytest.raises(PlatformRefused) as refused:  # payment-specific: proof all the same
        post_water(client, hold_id="never-held", sent_before=True)
    assert refused.value.code == "hold_missing"


def test_a_refused_status_query_after_a_lost_attempt_is_a_plain_refusal(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner
) -> None:
    # A query changes nothing, so its refusal is proof about the query, never about a payment.
    sim = platform_sim_factory()
    client = funded_client_for(sim, platform_signer, timeout_s=0.3, retries=2)
    sim.set_faults(
        ["status:timeout_before:count=1:sleep_ms=2000", "status:refuse:code=rate_limited"]
    )
    with pytest.raises(PlatformRefused) as refused:
        client.payment_status("pay-1", amount_fen=1, fee_fen=0)
    assert refused.value.code == "rate_limited"


def test_a_platform_shaped_refusal_of_a_first_attempt_is_believed_even_after_commit(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner
) -> None:
    # The documented limit (docs/platform-api.md): a gateway that forwards a request and then
    # answers in the platform's own error format cannot be told from the platform. Only
    # answers lost or replaced by a page are caught; this pins what the client does.
    sim = platform_sim_factory()
    client = water_client(sim, platform_signer)
    sim.set_faults(["post:refuse_after_commit:code=rate_limited"])
    with pytest.raises(PlatformRefused):
        post_water(client)
    assert client.payment_status("pay-1", amount_fen=12_345, fee_fen=0).state == "posted"


# ---------------------------------------------------------------- refusals and gateways


OPERATION_CALLS: list[tuple[str, Callable[[PlatformClient], object]]] = [
    ("lookup", lambda c: c.lookup_bill("water", WATER)),
    ("float", lambda c: c.float_state()),
    ("hold", lambda c: c.hold_float("hold-9", 100)),
    ("status", lambda c: c.payment_status("pay-9", amount_fen=100, fee_fen=0)),
    ("deposit_status", lambda c: c.deposit_status("dep-9")),
    ("voucher_status", lambda c: c.voucher_status("V-9")),
    ("register", lambda c: c.register()),
]


@pytest.mark.parametrize(
    ("operation", "call"), OPERATION_CALLS, ids=[o for o, _ in OPERATION_CALLS]
)
@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("refuse:code=rate_limited", PlatformRefused, 429),
        ("refuse:code=stale_request", PlatformRefused, 400),
        ("refuse:code=not_registered:status=403", PlatformRefused, 403),
        ("gateway:status=401", MalformedAnswer, None),
        ("gateway:status=404", MalformedAnswer, None),
        ("gateway:status=502", PlatformUnavailable, None),
    ],
)
def test_refusal_and_gateway_faults_answer_any_operation_without_reaching_the_platform(
    platform_sim: ThreadedPlatformSim,
    platform_signer: SoftwareSigner,
    operation: str,
    call: Callable[[PlatformClient], object],
    fault: str,
    error: type[PlatformError],
    status: int | None,
) -> None:
    client = funded_client_for(platform_sim, platform_signer, retries=1)
    before = platform_sim.dump()
    platform_sim.set_faults([f"{operation}:{fault}"])
    with pytest.raises(error) as raised:
        call(client)
    if status is not None:
        assert isinstance(raised.value, PlatformRefused)
        assert raised.value.http_status == status
    assert platform_sim.dump() == before
    assert platform_sim.control("GET", "/sim/faults")["fired"] == {
        f"{operation}:{fault.split(':')[0]}": 1
    }


def test_a_gateway_error_after_commit_is_an_unknown_outcome(
    platform_sim_factory: SimFactory, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_factory()
    client = water_client(sim, platform_signer, retries=3)
    sim.set_faults(["post:gateway_after_commit:status=504"])
    with pytest.raises(PlatformUnavailable, match="HTTP 504.*outcome is unknown"):
        post_water(client)
    assert sim.requests_seen()["post"] == 1  # a 5xx is not retried
    assert client.payment_status("pay-1", amount_fen=12_345, fee_fen=0).state == "posted"
