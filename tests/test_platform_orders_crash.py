"""Payment orders survive the platform simulator killed with SIGKILL (a power cut), and the
terminal's side of in-doubt orders works across it: ask the status before deciding, close
what nobody paid, refund to the original method what was paid after the terminal gave up.

`python -m simulators.platform.cli` runs as a real child process on one ledger file; the client
talks to it over HTTP as a terminal does."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.token.software import SoftwareSigner
from kiosk.platform import OrderState, PlatformUnavailable, RefundState
from simulators.scanner import sample_code
from tests.fixtures.payment_orders import OrderDesk
from tests.fixtures.platform import PlatformSimProcess, client_for

ORDER = {"amount_fen": 8800, "service": "water-bill", "description": "水费 3100000029"}
CODE = sample_code(serial=42)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[PlatformSimProcess]:
    sim = PlatformSimProcess(tmp_path / "platform.sqlite3", "--provider", "pay_after:s=30")
    yield sim
    sim.stop()


def test_a_payment_planned_before_the_kill_arrives_after_the_restart(
    platform: PlatformSimProcess, platform_signer: SoftwareSigner
) -> None:
    client = client_for(platform, platform_signer)
    assert client.pay_order_by_code("K1", auth_code=CODE, **ORDER).state is OrderState.PENDING

    platform.kill()
    platform.start()
    OrderDesk(platform).later(31)

    paid = client.order_status("K1", amount_fen=8800)
    assert paid.state is OrderState.PAID
    assert client.refund_order("R1", order_key="K1", amount_fen=8800, reason="x").state is (
        RefundState.SUCCEEDED
    )


def test_an_order_in_doubt_is_settled_by_status_then_close_then_refund(
    platform: PlatformSimProcess, platform_signer: SoftwareSigner
) -> None:
    # The terminal's recipe after a lost answer (docs/platform-api.md, "How the terminal
    # settles an order"): status first; an open order is closed; if the close finds the
    # money taken, the terminal that gave up refunds it to the resident's wallet.
    client = client_for(platform, platform_signer, retries=1)
    desk = OrderDesk(platform)
    desk.set_provider(["provider_timeout:s=600"])
    platform.set_faults(["order_pay:timeout_after_commit:sleep_ms=2500"])
    with pytest.raises(PlatformUnavailable):
        client.pay_order_by_code("K1", auth_code=CODE, **ORDER)

    platform.kill()  # and the platform's own power cut, for good measure
    platform.start()  # faults are not durable: the restarted platform answers

    assert client.order_status("K1", amount_fen=8800).state is OrderState.PENDING
    closed = client.close_order("K1", "terminal gave up", amount_fen=8800, sent_before=True)
    assert closed.state is OrderState.PAID  # the money was taken before the close
    refund = client.refund_order("R1", order_key="K1", amount_fen=8800, reason="gave up")
    assert (refund.state, refund.method) == (RefundState.SUCCEEDED, closed.paid_with)
    assert client.order_status("K1", amount_fen=8800).state is OrderState.REFUNDED


def test_dump_shows_the_payment_side_without_whole_codes(
    platform: PlatformSimProcess, platform_signer: SoftwareSigner, tmp_path: Path
) -> None:
    client = client_for(platform, platform_signer)
    client.pay_order_by_code("K1", auth_code=CODE, **ORDER)
    platform.stop()
    dump = subprocess.run(
        [sys.executable, "-m", "simulators.platform.cli", "dump", "--db", str(platform.db_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    orders = json.loads(dump)["payment_orders"]
    assert [o["key"] for o in orders["orders"]] == ["K1"]
    assert CODE not in dump and orders["attempts"][0]["code_masked"].startswith(CODE[:2])
