"""A posting funded by a paid payment order instead of a float hold (issue #21): the
platform contract's `order_key` on post and authorize, against the simulator over HTTP
(docs/platform-api.md, "POST /v1/payments": "Funded by a payment order")."""

from collections.abc import Callable
from typing import Any

import pytest

from drivers.token.software import SoftwareSigner
from kiosk.payment_codes import PaymentScheme
from kiosk.platform import PAYMENT_SPECIFIC_REFUSALS, PlatformClient, PlatformError
from kiosk.platform import PlatformRefused as Refused
from kiosk.platform.models import Refusal
from simulators.scanner import sample_code
from tests.fixtures.payment_orders import OrderDesk
from tests.fixtures.platform import ThreadedPlatformSim, client_for

AMOUNT, FEE = 50_00, 1_00
PHONE = "13800138000"
ORDER = {"amount_fen": AMOUNT + FEE, "service": "mobile-topup", "description": "话费 13*****8000"}


class Desk:
    def __init__(self, sim: ThreadedPlatformSim, client: PlatformClient) -> None:
        self.sim, self.client, self.orders = sim, client, OrderDesk(sim)

    def paid_order(self, key: str, n: int = 1) -> None:
        code = sample_code(PaymentScheme.ALIPAY, n)
        assert self.client.pay_order_by_code(key, auth_code=code, **ORDER).money_taken

    def post(self, key: str, order_key: str, amount: int = AMOUNT, **extra: Any) -> Any:
        return self.client.post_payment(
            key,
            order_key=order_key,
            service="mobile-topup",
            biller="mobile",
            account=PHONE,
            amount_fen=amount,
            fee_fen=FEE,
            bill_id=None,
            **extra,
        )


@pytest.fixture
def desk(
    platform_sim_factory: Callable[..., ThreadedPlatformSim], platform_signer: SoftwareSigner
) -> Desk:
    sim = platform_sim_factory()
    return Desk(sim, client_for(sim, platform_signer))


class _Code:
    def __init__(self, code: str) -> None:
        self.code = code

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        assert isinstance(exc, Refused), f"expected refusal {self.code}, got {exc!r}"
        assert exc.code == self.code, exc.code
        return True


def test_a_paid_order_funds_one_posting_and_no_float_moves(desk: Desk) -> None:
    balance = desk.client.float_statement()
    desk.paid_order("o1")
    posting = desk.post("p1", "o1")
    assert (posting.amount_fen, posting.fee_fen) == (AMOUNT, FEE)
    assert desk.post("p1", "o1").ref == posting.ref  # idempotent by key
    after = desk.client.float_statement()
    assert after.balance_fen == balance.balance_fen and after.debits_fen == balance.debits_fen
    assert desk.orders.order("o1")["used_by"] == "p1"
    [row] = [p for p in desk.sim.dump()["payments"] if p["key"] == "p1"]
    assert row["order_key"] == "o1" and row["state"] == "posted"


def test_an_order_funds_at_most_one_posting(desk: Desk) -> None:
    desk.paid_order("o1")
    desk.post("p1", "o1")
    with _Code(Refusal.ORDER_USED):
        desk.post("p2", "o1")


def test_an_unpaid_unknown_or_other_amount_order_funds_nothing(desk: Desk) -> None:
    desk.client.create_order("open", method=None, **ORDER)
    with _Code(Refusal.ORDER_NOT_PAID):
        desk.post("p1", "open")
    with _Code(Refusal.ORDER_NOT_FOUND):
        desk.post("p2", "never-made")
    desk.paid_order("o3")
    with _Code(Refusal.ORDER_AMOUNT_MISMATCH):
        desk.post("p3", "o3", amount=AMOUNT - 1)
    for code in (Refusal.ORDER_USED, Refusal.ORDER_NOT_PAID, Refusal.ORDER_AMOUNT_MISMATCH):
        assert code in PAYMENT_SPECIFIC_REFUSALS


def test_a_used_order_is_refunded_only_after_its_posting_is_reversed(desk: Desk) -> None:
    desk.paid_order("o1")
    desk.post("p1", "o1")
    with _Code(Refusal.ORDER_USED):
        desk.client.refund_order("r1", order_key="o1", amount_fen=AMOUNT + FEE, reason="test")
    before = desk.client.float_statement()
    assert desk.client.reverse_payment("p1", "not completed").state == "reversed"
    after = desk.client.float_statement()
    assert after.balance_fen == before.balance_fen  # nothing goes back to the float
    assert after.refunds_fen == before.refunds_fen
    refund = desk.client.refund_order("r2", order_key="o1", amount_fen=AMOUNT + FEE, reason="t")
    assert refund.state == "succeeded" and refund.method == PaymentScheme.ALIPAY


def test_a_posting_is_funded_by_exactly_one_of_a_hold_and_an_order(desk: Desk) -> None:
    with pytest.raises(PlatformError, match="exactly one"):
        desk.client.post_payment(
            "p1",
            service="mobile-topup",
            biller="mobile",
            account=PHONE,
            amount_fen=AMOUNT,
            fee_fen=FEE,
            bill_id=None,
        )
    with pytest.raises(PlatformError, match="exactly one"):
        desk.post("p2", "o1", hold_id="h1")
    assert "p1" not in {p["key"] for p in desk.sim.dump()["payments"]}
