"""Payment orders end to end: the terminal's client against the platform simulator over HTTP,
with the provider's behaviours (docs/platform-api.md, "Payment orders")."""

from collections.abc import Callable
from typing import Any

import pytest

from drivers.token.software import SoftwareSigner
from kiosk.payment_codes import PaymentScheme
from kiosk.platform import (
    PAYMENT_SPECIFIC_REFUSALS,
    CloseReason,
    MalformedAnswer,
    Order,
    OrderState,
    PlatformClient,
    PlatformRefused,
    PlatformUnavailable,
    RefundState,
    UnprovenRefusal,
)
from simulators.scanner import sample_code
from tests.fixtures.payment_orders import OrderDesk
from tests.fixtures.platform import ThreadedPlatformSim, client_for

WECHAT = sample_code(PaymentScheme.WECHAT, 1)
WECHAT_2 = sample_code(PaymentScheme.WECHAT, 2)
ALIPAY = sample_code(PaymentScheme.ALIPAY, 3)
UNIONPAY = sample_code(PaymentScheme.UNIONPAY, 4)
AMOUNT = 12345
ORDER = {"amount_fen": AMOUNT, "service": "water-bill", "description": "水费 3100000011"}


class Bench:
    def __init__(self, sim: ThreadedPlatformSim, client: PlatformClient) -> None:
        self.sim = sim
        self.client = client
        self.desk = OrderDesk(sim)

    def create(self, key: str, method: PaymentScheme | None = None, **extra: Any) -> Order:
        return self.client.create_order(key, **{**ORDER, **extra}, method=method)

    def pay(self, key: str, code: str = WECHAT, **extra: Any) -> Order:
        return self.client.pay_order_by_code(key, auth_code=code, **{**ORDER, **extra})

    def status(self, key: str) -> Order:
        return self.client.order_status(key, amount_fen=AMOUNT)

    def close(self, key: str) -> Order:
        return self.client.close_order(key, "resident walked away", amount_fen=AMOUNT)


@pytest.fixture
def bench_factory(
    platform_sim_factory: Callable[..., ThreadedPlatformSim], platform_signer: SoftwareSigner
) -> Callable[..., Bench]:
    def make(**options: Any) -> Bench:
        sim = platform_sim_factory(**options)
        return Bench(sim, client_for(sim, platform_signer))

    return make


@pytest.fixture
def bench(bench_factory: Callable[..., Bench]) -> Bench:
    return bench_factory()


class _Refused:
    """pytest.raises(PlatformRefused) that also checks the code."""

    def __init__(self, code: str) -> None:
        self.code = code
        self._raises = pytest.raises(PlatformRefused)

    def __enter__(self) -> Any:
        self._info = self._raises.__enter__()
        return self._info

    def __exit__(self, *exc: Any) -> bool:
        handled = self._raises.__exit__(*exc)
        assert self._info.value.code == self.code, self._info.value
        return bool(handled)


# ---------------------------------------------------------------- the dynamic code


def test_an_order_shows_a_dynamic_code_and_is_paid_when_the_resident_scans_it(
    bench: Bench,
) -> None:
    order = bench.create("K1")
    assert (order.state, order.amount_fen, order.method) == (OrderState.CREATED, AMOUNT, None)
    assert order.code_url and order.code_url.startswith("https://")
    assert order.expires_at is not None
    assert bench.status("K1").state is OrderState.CREATED

    bench.desk.resident_pays("K1", wallet="alipay")

    paid = bench.status("K1")
    assert (paid.state, paid.paid_with) == (OrderState.PAID, PaymentScheme.ALIPAY)
    assert paid.provider_ref
    assert bench.desk.notifications("K1") == [("paid", 1)]


def test_paid_at_once_the_dynamic_code_is_paid_by_the_first_status(bench: Bench) -> None:
    bench.desk.set_provider(["pay_at_once:count=1"])
    order = bench.create("K1", PaymentScheme.UNIONPAY)
    assert (order.state, order.paid_with) == (OrderState.PAID, PaymentScheme.UNIONPAY)
    assert bench.create("K2").state is OrderState.CREATED  # the count is spent


def test_a_bad_behaviour_is_refused_in_one_line(bench: Bench) -> None:
    with pytest.raises(AssertionError, match="HTTP 400.*unknown kind .*pay_later"):
        bench.desk.set_provider(["pay_later"])
    with pytest.raises(AssertionError, match="HTTP 400.*needs s=N"):
        bench.desk.behaviour("K1", ["pay_after"])
    assert bench.sim.control("GET", "/sim/provider") == {"behaviours": []}


def test_creating_again_answers_the_order_as_it_is_now_and_other_details_are_refused(
    bench: Bench,
) -> None:
    first = bench.create("K1", PaymentScheme.WECHAT)
    bench.desk.resident_pays("K1")

    again = bench.create("K1", PaymentScheme.WECHAT)
    assert again.code_url == first.code_url and again.state is OrderState.PAID
    with _Refused("key_reused"):
        bench.create("K1", PaymentScheme.WECHAT, amount_fen=AMOUNT + 1)
    with _Refused("key_reused"):
        bench.create("K1", None)


def test_a_wallet_order_takes_only_that_wallets_payment(bench: Bench) -> None:
    bench.create("K1", PaymentScheme.WECHAT)
    with _Refused("method_mismatch") as refusal:
        bench.pay("K1", ALIPAY)
    assert refusal.value.code in PAYMENT_SPECIFIC_REFUSALS
    assert bench.pay("K1", WECHAT).state is OrderState.PAID


def test_a_payment_code_on_an_order_paid_by_its_dynamic_code_takes_nothing_more(
    bench: Bench,
) -> None:
    bench.create("K1")
    bench.desk.resident_pays("K1")

    answer = bench.pay("K1", WECHAT)

    assert answer.state is OrderState.PAID and answer.paid_with is PaymentScheme.WECHAT
    assert bench.desk.orders()["attempts"] == []  # the code was never charged
    assert bench.desk.notifications("K1") == [("paid", 1)]


# ---------------------------------------------------------------- the resident's payment code


@pytest.mark.parametrize(
    ("code", "scheme"),
    [(WECHAT, PaymentScheme.WECHAT), (ALIPAY, PaymentScheme.ALIPAY), (UNIONPAY, "unionpay")],
)
def test_a_payment_code_pays_at_once_with_its_wallet(bench: Bench, code: str, scheme: str) -> None:
    order = bench.pay("K1", code)
    assert (order.state, order.paid_with, order.method) == (OrderState.PAID, scheme, scheme)
    assert order.code_url is None
    assert bench.status("K1").state is OrderState.PAID


def test_the_same_payment_again_answers_the_same_and_charges_once(bench: Bench) -> None:
    first = bench.pay("K1", WECHAT)
    second = bench.client.pay_order_by_code("K1", auth_code=WECHAT, **ORDER, sent_before=True)
    assert second == first
    attempts = bench.desk.orders()["attempts"]
    assert [a["outcome"] for a in attempts] == ["charged"]
    assert WECHAT not in str(bench.desk.orders())  # the platform keeps no whole code


def test_a_payment_code_is_used_once_anywhere(bench: Bench) -> None:
    bench.pay("K1", WECHAT)
    with _Refused("auth_code_invalid"):
        bench.pay("K2", WECHAT)
    assert bench.status("K2").state is OrderState.CREATED  # made, nothing paid


def test_a_code_that_is_no_payment_code_is_refused_before_anything_is_sent(bench: Bench) -> None:
    with _Refused("auth_code_invalid") as refusal:
        bench.pay("K1", "6901234567892")
    assert refusal.value.http_status is None
    assert "order_pay" not in bench.sim.requests_seen()


def test_a_declined_code_is_refused_as_proven_and_refused_again_the_same(bench: Bench) -> None:
    bench.desk.set_provider(["decline:count=1"])
    with _Refused("payment_declined") as refusal:
        bench.pay("K1", WECHAT)
    assert refusal.value.code in PAYMENT_SPECIFIC_REFUSALS
    with _Refused("payment_declined"):  # the same request again: the same answer
        bench.client.pay_order_by_code("K1", auth_code=WECHAT, **ORDER, sent_before=True)
    # The order stays open; the wallet spent the code, so the resident shows a fresh one.
    assert bench.status("K1").state is OrderState.CREATED
    with _Refused("payment_declined"):
        bench.pay("K1", WECHAT_2)  # this order declines every code
    assert bench.pay("K2", sample_code(serial=5)).state is OrderState.PAID


def test_an_expired_code_is_refused(bench: Bench) -> None:
    bench.desk.set_provider(["decline:code=auth_code_invalid"])
    with _Refused("auth_code_invalid"):
        bench.pay("K1", WECHAT)


def test_paid_late_the_order_waits_pending_then_is_paid(bench: Bench) -> None:
    bench.desk.set_provider(["pay_after:s=30"])
    assert bench.pay("K1", WECHAT).state is OrderState.PENDING
    bench.desk.later(10)
    assert bench.status("K1").state is OrderState.PENDING
    bench.desk.later(25)
    paid = bench.status("K1")
    assert (paid.state, paid.paid_with) == (OrderState.PAID, PaymentScheme.WECHAT)


def test_a_pending_order_takes_no_second_code_and_the_resident_confirms(bench: Bench) -> None:
    bench.desk.set_provider(["pay_after:s=300"])
    bench.pay("K1", WECHAT)
    with _Refused("order_pending"):
        bench.pay("K1", WECHAT_2)
    bench.desk.resident_confirms("K1")
    assert bench.status("K1").state is OrderState.PAID


def test_cancelled_by_the_resident_the_order_closes_for_good(bench: Bench) -> None:
    bench.desk.set_provider(["cancel_after:s=20"])
    assert bench.pay("K1", WECHAT).state is OrderState.PENDING
    bench.desk.later(21)

    cancelled = bench.status("K1")
    assert (cancelled.state, cancelled.closed_reason) == (OrderState.CLOSED, CloseReason.RESIDENT)
    with _Refused("order_closed"):
        bench.pay("K1", WECHAT_2)


def test_a_dynamic_code_cancelled_on_the_phone_closes(bench: Bench) -> None:
    bench.create("K1")
    bench.desk.resident_cancels("K1")
    assert bench.status("K1").closed_reason is CloseReason.RESIDENT


# ---------------------------------------------------------------- closing


def test_closing_an_unpaid_order_means_it_is_never_paid(bench: Bench) -> None:
    bench.create("K1")
    closed = bench.close("K1")
    assert (closed.state, closed.closed_reason) == (OrderState.CLOSED, CloseReason.TERMINAL)
    assert bench.close("K1") == closed  # idempotent
    with _Refused("order_closed"):
        bench.pay("K1", WECHAT)
    with pytest.raises(AssertionError, match="order_closed"):
        bench.desk.resident_pays("K1")
    assert bench.desk.notifications("K1") == [("closed", 1)]


def test_closing_a_key_never_seen_fences_it_against_a_late_request(bench: Bench) -> None:
    fenced = bench.close("K1")
    assert (fenced.state, fenced.amount_fen, fenced.known) == (OrderState.CLOSED, None, False)
    with _Refused("order_closed") as refusal:
        bench.pay("K1", WECHAT)  # the lost request arriving after the close
    assert refusal.value.code in PAYMENT_SPECIFIC_REFUSALS
    with _Refused("order_closed"):
        bench.create("K1")
    assert bench.status("K1").state is OrderState.CLOSED


def test_paid_just_before_the_close_the_close_answers_paid(bench: Bench) -> None:
    # The provider took the money, but its answer to the platform timed out: the platform
    # says pending until it learns, and a close in between finds the money taken.
    bench.desk.set_provider(["provider_timeout:s=60"])
    assert bench.pay("K1", WECHAT).state is OrderState.PENDING
    bench.desk.later(5)

    answer = bench.close("K1")

    assert (answer.state, answer.paid_with) == (OrderState.PAID, PaymentScheme.WECHAT)
    assert bench.status("K1").state is OrderState.PAID


def test_provider_timeout_after_paid_resolves_to_paid_by_status(bench: Bench) -> None:
    bench.desk.set_provider(["provider_timeout:s=15"])
    assert bench.pay("K1", WECHAT).state is OrderState.PENDING
    assert bench.status("K1").state is OrderState.PENDING
    bench.desk.later(16)
    assert bench.status("K1").state is OrderState.PAID


def test_money_arriving_after_the_close_is_refunded_and_the_order_stays_closed(
    bench: Bench,
) -> None:
    # Decided (docs/platform-api.md): a customer who pays after the kiosk gave up is refunded.
    bench.create("K1")
    bench.desk.behaviour("K1", ["pay_after:s=40"])
    bench.desk.later(1)
    bench.client.create_order("K2", **ORDER, method=None)  # not this order's behaviour
    bench.desk.later(9)
    assert bench.close("K1").state is OrderState.CLOSED
    bench.desk.later(35)

    after = bench.status("K1")
    assert (after.state, after.closed_reason) == (OrderState.CLOSED, CloseReason.TERMINAL)
    assert bench.desk.notifications("K1") == [
        ("closed", 1),
        ("paid_after_close", 1),
        ("late_payment_refunded", 1),
    ]
    late = bench.desk.order("K1")
    assert late["late_paid_at"] is not None
    refunds = bench.desk.orders()["refunds"]
    assert [(r["order_key"], r["state"], r["automatic"]) for r in refunds] == [
        ("K1", "succeeded", 1)
    ]
    with _Refused("order_not_paid"):  # nothing for the terminal to refund
        bench.client.refund_order("R1", order_key="K1", amount_fen=AMOUNT, reason="late")


def test_an_order_nobody_pays_expires_closed(bench_factory: Callable[..., Bench]) -> None:
    bench = bench_factory(order_lifetime_s=60)
    bench.create("K1")
    bench.desk.later(61)
    expired = bench.status("K1")
    assert (expired.state, expired.closed_reason) == (OrderState.CLOSED, CloseReason.EXPIRED)


def test_an_order_paid_late_after_it_expired_is_refunded(
    bench_factory: Callable[..., Bench],
) -> None:
    bench = bench_factory(order_lifetime_s=60, provider=["pay_after:s=90"])
    assert bench.pay("K1", WECHAT).state is OrderState.PENDING
    bench.desk.later(100)
    assert bench.status("K1").closed_reason is CloseReason.EXPIRED
    assert ("late_payment_refunded", 1) in bench.desk.notifications("K1")


# ---------------------------------------------------------------- refunds


def test_a_paid_order_is_refunded_in_full_to_its_wallet_once(bench: Bench) -> None:
    bench.pay("K1", ALIPAY)

    refund = bench.client.refund_order("R1", order_key="K1", amount_fen=AMOUNT, reason="no card")

    assert (refund.state, refund.method, refund.amount_fen) == (
        RefundState.SUCCEEDED,
        PaymentScheme.ALIPAY,
        AMOUNT,
    )
    assert bench.status("K1").state is OrderState.REFUNDED
    again = bench.client.refund_order(
        "R1", order_key="K1", amount_fen=AMOUNT, reason="no card", sent_before=True
    )
    assert again == refund
    with _Refused("order_already_refunded"):
        bench.client.refund_order("R2", order_key="K1", amount_fen=AMOUNT, reason="twice")
    assert bench.client.refund_status("R1", order_key="K1", amount_fen=AMOUNT) == refund
    assert bench.desk.notifications("K1") == [("paid", 1), ("refunded", 1)]


@pytest.mark.parametrize(
    ("order_key", "amount", "code"),
    [("K1", AMOUNT - 1, "refund_amount_mismatch"), ("K2", AMOUNT, "order_not_paid")],
)
def test_a_refund_is_of_a_paid_order_and_of_all_of_it(
    bench: Bench, order_key: str, amount: int, code: str
) -> None:
    bench.pay("K1", WECHAT)
    bench.create("K2")
    with _Refused(code) as refusal:
        bench.client.refund_order("R1", order_key=order_key, amount_fen=amount, reason="x")
    assert refusal.value.code in PAYMENT_SPECIFIC_REFUSALS


def test_unknown_orders_and_refunds_are_refused(bench: Bench) -> None:
    with _Refused("order_not_found"):
        bench.client.refund_order("R1", order_key="nope", amount_fen=AMOUNT, reason="x")
    with _Refused("refund_not_found"):
        bench.client.refund_status("R9", order_key="nope", amount_fen=AMOUNT)
    assert bench.status("never").state is OrderState.NOT_FOUND


def test_a_slow_refund_is_processing_until_the_provider_finishes(bench: Bench) -> None:
    bench.desk.set_provider(["refund_after:s=120"])
    bench.pay("K1", WECHAT)
    refund = bench.client.refund_order("R1", order_key="K1", amount_fen=AMOUNT, reason="x")
    assert refund.state is RefundState.PROCESSING
    assert bench.status("K1").state is OrderState.REFUNDING
    bench.desk.later(121)
    done = bench.client.refund_status("R1", order_key="K1", amount_fen=AMOUNT)
    assert done.state is RefundState.SUCCEEDED
    assert bench.status("K1").state is OrderState.REFUNDED


def test_a_failed_refund_says_why_and_a_new_refund_key_may_try_again(bench: Bench) -> None:
    bench.desk.set_provider(["refund_fail:times=1"])
    bench.pay("K1", WECHAT)

    failed = bench.client.refund_order("R1", order_key="K1", amount_fen=AMOUNT, reason="x")
    assert failed.state is RefundState.FAILED and failed.failure
    assert bench.status("K1").state is OrderState.REFUND_FAILED
    assert bench.client.refund_order("R1", order_key="K1", amount_fen=AMOUNT, reason="x") == failed

    retried = bench.client.refund_order("R2", order_key="K1", amount_fen=AMOUNT, reason="x")
    assert retried.state is RefundState.SUCCEEDED
    assert bench.status("K1").state is OrderState.REFUNDED
    assert bench.desk.notifications("K1") == [("paid", 1), ("refund_failed", 1), ("refunded", 1)]


def test_a_refund_that_always_fails_keeps_failing(bench: Bench) -> None:
    bench.desk.set_provider(["refund_fail"])
    bench.pay("K1", WECHAT)
    for key in ("R1", "R2"):
        refund = bench.client.refund_order(key, order_key="K1", amount_fen=AMOUNT, reason="x")
        assert refund.state is RefundState.FAILED


# ---------------------------------------------------------------- notifications


def test_duplicate_notifications_go_out_twice(bench: Bench) -> None:
    bench.desk.set_provider(["notify_repeat:n=2"])
    bench.pay("K1", WECHAT)
    assert bench.desk.notifications("K1") == [("paid", 1), ("paid", 2)]


def test_late_notifications_go_out_after_the_state_changed(bench: Bench) -> None:
    bench.desk.set_provider(["notify_late:s=30"])
    bench.pay("K1", WECHAT)
    # The terminal knows the order is paid from the answer and from status, not from them.
    assert bench.status("K1").state is OrderState.PAID
    assert bench.desk.notifications("K1") == []
    bench.desk.later(31)
    assert bench.desk.notifications("K1") == [("paid", 1)]


# ---------------------------------------------------------------- lost and altered answers


def test_a_payment_whose_answer_was_lost_is_retried_and_charged_once(bench: Bench) -> None:
    bench.sim.set_faults(["order_pay:timeout_after_commit:count=1:sleep_ms=2500"])

    order = bench.pay("K1", WECHAT)

    assert order.state is OrderState.PAID
    assert bench.sim.requests_seen()["order_pay"] == 2
    assert [a["outcome"] for a in bench.desk.orders()["attempts"]] == ["charged"]


def test_a_payment_with_no_answer_at_all_is_an_unknown_outcome_resolved_by_status(
    bench_factory: Callable[..., Bench], platform_signer: SoftwareSigner
) -> None:
    bench = bench_factory()
    client = client_for(bench.sim, platform_signer, retries=1)
    bench.sim.set_faults(["order_pay:timeout_after_commit:sleep_ms=2500"])
    with pytest.raises(PlatformUnavailable):
        client.pay_order_by_code("K1", auth_code=WECHAT, **ORDER)
    bench.sim.clear_faults()
    assert client.order_status("K1", amount_fen=AMOUNT).state is OrderState.PAID


def test_a_front_door_refusal_after_a_lost_answer_proves_nothing(bench: Bench) -> None:
    bench.sim.set_faults(
        [
            "order_pay:timeout_after_commit:count=1:sleep_ms=2500",
            "order_pay:refuse:code=stale_request",
        ]
    )
    with pytest.raises(UnprovenRefusal):
        bench.pay("K1", WECHAT)
    bench.sim.clear_faults()
    assert bench.status("K1").state is OrderState.PAID


@pytest.mark.parametrize("operation", ["order_create", "order_pay", "order_status"])
def test_an_answer_for_other_money_is_malformed(bench: Bench, operation: str) -> None:
    bench.create("K0")
    bench.sim.set_faults([f"{operation}:alter_amount"])
    with pytest.raises(MalformedAnswer, match="malformed answer"):
        if operation == "order_create":
            bench.create("K1")
        elif operation == "order_pay":
            bench.pay("K1", WECHAT)
        else:
            bench.status("K0")


def test_a_status_for_another_amount_than_asked_is_malformed(bench: Bench) -> None:
    bench.pay("K1", WECHAT)
    with pytest.raises(MalformedAnswer):
        bench.client.order_status("K1", amount_fen=AMOUNT + 100)


# ---------------------------------------------------------------- behaviours per order


def test_a_behaviour_set_for_a_key_before_the_order_applies_to_that_order_only(
    bench: Bench,
) -> None:
    assert bench.desk.behaviour("K1", ["pay_after:s=50", "notify_repeat:n=3"]) == [
        "pay_after:s=50",
        "notify_repeat:n=3",
    ]
    assert bench.pay("K1", WECHAT).state is OrderState.PENDING
    assert bench.pay("K2", WECHAT_2).state is OrderState.PAID
    bench.desk.later(51)
    assert bench.status("K1").state is OrderState.PAID
    assert bench.desk.notifications("K1") == [("paid", 1), ("paid", 2), ("paid", 3)]


def test_counted_behaviours_apply_to_that_many_new_orders(bench: Bench) -> None:
    bench.desk.set_provider(["decline:count=1", "refund_fail:count=2"])
    with _Refused("payment_declined"):
        bench.pay("K1", WECHAT)
    assert bench.pay("K2", WECHAT_2).state is OrderState.PAID
    assert bench.sim.control("GET", "/sim/provider")["behaviours"] == [
        "decline:code=payment_declined:count=0",
        "refund_fail:count=0",
    ]
