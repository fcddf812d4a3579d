"""The payment-order wire records read strictly, and the provider behaviour grammar."""

from typing import Any

import pytest

from kiosk.payment_codes import PaymentScheme
from kiosk.platform import MalformedAnswer, Order, OrderState, Refund, RefundState
from simulators.platform.provider import (
    Behaviour,
    BehaviourKind,
    BehaviourSpecError,
    ProviderPlan,
    parse_behaviour,
)

PAID: dict[str, Any] = {
    "key": "K1",
    "state": "paid",
    "amount_fen": 100,
    "method": "any",
    "expires_at": "2026-05-01T10:05:00+08:00",
    "code_url": "https://pay.sim.invalid/q/x",
    "paid_with": "wechat",
    "provider_ref": "SIMPAY1",
    "closed_reason": None,
}


def test_an_order_reads_back_what_was_written() -> None:
    order = Order.from_json(PAID)
    assert (order.state, order.method, order.paid_with) == (
        OrderState.PAID,
        None,
        PaymentScheme.WECHAT,
    )
    assert Order.from_json(order.to_json()) == order


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"paid_with": None}, "paid_with and provider_ref"),
        ({"state": "created"}, "paid_with and provider_ref"),
        ({"state": "closed", "paid_with": None, "provider_ref": None}, "closed_reason"),
        ({"closed_reason": "terminal"}, "closed_reason"),
        ({"amount_fen": 100.0}, "not a whole number"),
        ({"amount_fen": True}, "not a whole number"),
        ({"amount_fen": 0}, "0 fen"),
        ({"method": "cash"}, "not one of"),
        ({"expires_at": None}, "no expiry"),
        ({"expires_at": "2026-05-01T10:05:00"}, "with offset"),
        ({"state": "lost"}, "not one of"),
        ({"amount_fen": None}, "method or an expiry"),
    ],
)
def test_an_order_that_breaks_the_contract_is_malformed(change: dict[str, Any], why: str) -> None:
    with pytest.raises(MalformedAnswer, match=why):
        Order.from_json({**PAID, **change})


def test_an_order_not_found_has_no_details_and_a_fenced_one_only_its_closing() -> None:
    nothing = {**PAID, "state": "not_found", "amount_fen": None, "method": None}
    nothing |= {"expires_at": None, "code_url": None, "paid_with": None, "provider_ref": None}
    assert Order.from_json(nothing).known is False
    fenced = Order.from_json({**nothing, "state": "closed", "closed_reason": "terminal"})
    assert (fenced.state, fenced.amount_fen) == (OrderState.CLOSED, None)
    with pytest.raises(MalformedAnswer):
        Order.from_json({**nothing, "state": "paid"})
    with pytest.raises(MalformedAnswer):
        Order.from_json({**nothing, "code_url": "https://x"})


def test_a_refund_names_its_failure_exactly_when_it_failed() -> None:
    refund = {"key": "R1", "order_key": "K1", "state": "failed", "amount_fen": 5}
    refund |= {"method": "alipay", "failure": "account closed"}
    assert Refund.from_json(refund).state is RefundState.FAILED
    with pytest.raises(MalformedAnswer, match="failure"):
        Refund.from_json({**refund, "failure": None})
    with pytest.raises(MalformedAnswer, match="failure"):
        Refund.from_json({**refund, "state": "succeeded"})
    with pytest.raises(MalformedAnswer):
        Refund.from_json({**refund, "method": "any"})


# ---------------------------------------------------------------- provider behaviours


@pytest.mark.parametrize(
    ("spec", "behaviour"),
    [
        ("pay_at_once", Behaviour(BehaviourKind.PAY_AT_ONCE)),
        ("pay_after:s=30", Behaviour(BehaviourKind.PAY_AFTER, seconds=30)),
        ("provider_timeout:s=5:count=2", Behaviour(BehaviourKind.PROVIDER_TIMEOUT, 5, count=2)),
        (
            "decline:code=auth_code_invalid",
            Behaviour(BehaviourKind.DECLINE, code="auth_code_invalid"),
        ),
        ("refund_fail:times=1", Behaviour(BehaviourKind.REFUND_FAIL, times=1)),
        ("notify_repeat:n=2", Behaviour(BehaviourKind.NOTIFY_REPEAT, repeat=2)),
    ],
)
def test_behaviour_specs_read_and_write_back(spec: str, behaviour: Behaviour) -> None:
    assert parse_behaviour(spec) == behaviour
    assert parse_behaviour(behaviour.spec()) == behaviour


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("pay_later", "unknown kind 'pay_later'"),
        ("pay_after", "needs s=N"),
        ("pay_after:s=x", "whole number"),
        ("pay_after:s=100000", "at most 86400"),
        ("pay_at_once:s=3", "takes no s"),
        ("decline:code=rate_limited", "payment_declined or auth_code_invalid"),
        ("notify_repeat:n=0", "from 1 to 10"),
        ("refund_fail:times", "has no value"),
    ],
)
def test_a_bad_behaviour_spec_names_the_problem_and_the_form(spec: str, problem: str) -> None:
    with pytest.raises(BehaviourSpecError, match=problem) as raised:
        parse_behaviour(spec)
    assert "write KIND" in str(raised.value) or "must" in str(raised.value)


def test_each_order_gets_the_first_rule_of_each_stage_with_count_left() -> None:
    plan = ProviderPlan(
        [parse_behaviour(s) for s in ("decline:count=1", "pay_after:s=9", "notify_late:s=3")]
    )
    first, second = plan.draw(), plan.draw()
    assert [b.spec() for b in first] == ["decline:code=payment_declined", "notify_late:s=3"]
    assert [b.spec() for b in second] == ["pay_after:s=9", "notify_late:s=3"]
