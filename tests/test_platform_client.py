"""The platform client against the real simulator over loopback HTTP, and against a scripted
HTTP server for answers the simulator would never send: what each error proves, the echo of
the money in every answer, and the platform's clock read from the Date header."""

import base64
import json
import re
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from drivers.smartcard.prepaid_mac import check_credit_mac
from drivers.token.software import SoftwareSigner
from kiosk.i18n import translator
from kiosk.platform import (
    PAYMENT_SPECIFIC_REFUSALS,
    CardCredit,
    InsufficientFloat,
    MalformedAnswer,
    OutcomeUnknown,
    PlatformClient,
    PlatformError,
    PlatformRefused,
    PlatformUnavailable,
    Posting,
    Refusal,
    UnknownAccount,
    UnprovenRefusal,
    resident_notice,
)
from kiosk.platform.models import (
    NOTICE_REFUSED,
    NOTICE_UNAVAILABLE,
    REFUSAL_HTTP_STATUS,
    RESIDENT_NOTICES,
    SIGNATURE_HEADER,
)
from kiosk.signing import SignerUnavailable
from tests.fixtures.platform import STATION, TERMINAL, ThreadedPlatformSim, client_for

WATER = "3100000011"  # a named sample account with a bill of 123.45 yuan


@pytest.fixture(autouse=True)
def station_bought_float(request: pytest.FixtureRequest) -> None:
    """The credit line is zero: where a test has the simulator, the station deposited 2,000
    yuan at the postal outlet first (tests.fixtures.platform: FUNDING_FEN)."""
    if "platform_sim" in request.fixturenames:
        request.getfixturevalue("platform_sim").fund()


def post_water(
    client: PlatformClient,
    key: str,
    hold_id: str,
    amount_fen: int = 12_345,
    fee_fen: int = 0,
    bill_id: str | None = None,
) -> Posting:
    return client.post_payment(
        key,
        hold_id=hold_id,
        service="water-bill",
        biller="water",
        account=WATER,
        amount_fen=amount_fen,
        fee_fen=fee_fen,
        bill_id=bill_id,
    )


def pay_water(client: PlatformClient, key: str, hold_id: str, amount_fen: int = 12_345) -> None:
    client.hold_float(hold_id, amount_fen)
    post_water(client, key, hold_id, amount_fen)


# ---------------------------------------------------------------- bills


def test_a_named_account_has_its_bill_with_amount_period_and_masked_holder(
    platform_client: PlatformClient,
) -> None:
    bill = platform_client.lookup_bill("water", WATER)
    assert bill.amount_due_fen == 12_345
    assert bill.biller == "water" and bill.account == WATER
    assert bill.holder_masked == "王**"
    assert bill.bill_id.endswith(bill.period)


@pytest.mark.parametrize(
    ("biller", "account", "code"),
    [
        ("electricity", "6600000001", "unknown_account"),  # well-formed, unknown to the biller
        ("water", "3100000012", "unknown_account"),  # wrong check digit
        ("water", "3100000094", "no_bill_due"),
        ("mobile", "13800138000", "no_bill_due"),  # phone top-up has no bills
    ],
)
def test_an_unknown_account_or_one_without_a_bill_is_refused_as_unknown_account(
    platform_client: PlatformClient, biller: str, account: str, code: str
) -> None:
    with pytest.raises(UnknownAccount) as refused:
        platform_client.lookup_bill(biller, account)
    assert refused.value.code == code


def test_an_unknown_biller_is_a_plain_refusal(platform_client: PlatformClient) -> None:
    with pytest.raises(PlatformRefused) as refused:
        platform_client.lookup_bill("heating", "1234")
    assert refused.value.code == "unknown_biller"
    assert not isinstance(refused.value, UnknownAccount)


# ---------------------------------------------------------------- float and holds


def test_a_hold_reserves_float_and_its_release_gives_it_back(
    platform_client: PlatformClient,
) -> None:
    assert platform_client.float_state().available_fen == 200_000
    held = platform_client.hold_float("hold-1", 30_000)
    assert (held.balance_fen, held.held_fen, held.available_fen) == (200_000, 30_000, 170_000)
    released = platform_client.release_float("hold-1")
    assert released.available_fen == 200_000
    assert platform_client.release_float("hold-1") == released  # idempotent


def test_a_hold_beyond_the_available_float_is_refused_and_reserves_nothing(
    platform_client: PlatformClient,
) -> None:
    platform_client.hold_float("hold-1", 150_000)
    with pytest.raises(InsufficientFloat) as refused:
        platform_client.hold_float("hold-2", 50_001)
    assert refused.value.code == "insufficient_float"
    assert platform_client.float_state().held_fen == 150_000
    assert platform_client.hold_float("hold-3", 50_000).available_fen == 0


def test_the_same_hold_id_sent_twice_reserves_once(platform_client: PlatformClient) -> None:
    platform_client.hold_float("hold-1", 10_000)
    assert platform_client.hold_float("hold-1", 10_000).held_fen == 10_000


def test_a_release_that_overtakes_its_hold_fences_the_hold_id(
    platform_client: PlatformClient,
) -> None:
    platform_client.release_float("late-hold")
    assert platform_client.hold_float("late-hold", 10_000).held_fen == 0


# ---------------------------------------------------------------- postings


def test_posting_the_same_key_twice_debits_the_float_once(
    platform_sim: ThreadedPlatformSim, platform_client: PlatformClient
) -> None:
    bill = platform_client.lookup_bill("water", WATER)
    platform_client.hold_float("hold-1", 12_445)
    first = post_water(platform_client, "pay-1", "hold-1", 12_345, 100, bill.bill_id)
    second = post_water(platform_client, "pay-1", "hold-1", 12_345, 100, bill.bill_id)
    assert first == second
    assert (first.amount_fen, first.fee_fen) == (12_345, 100)
    assert platform_sim.balance_fen() == 200_000 - 12_445
    assert [p["key"] for p in platform_sim.dump()["payments"]] == ["pay-1"]


def test_a_posting_takes_amount_and_fee_and_frees_the_rest_of_its_hold(
    platform_client: PlatformClient,
) -> None:
    pay_water(platform_client, "pay-1", "hold-1", amount_fen=10_000)
    platform_client.hold_float("hold-2", 20_000)
    post_water(platform_client, "pay-2", "hold-2", amount_fen=15_000, fee_fen=50)
    state = platform_client.float_state()
    assert (state.balance_fen, state.held_fen) == (200_000 - 10_000 - 15_050, 0)


def test_a_posting_needs_an_active_hold_that_covers_amount_and_fee(
    platform_client: PlatformClient,
) -> None:
    with pytest.raises(PlatformRefused) as missing:
        post_water(platform_client, "pay-1", "never-held", amount_fen=100)
    assert missing.value.code == "hold_missing"
    platform_client.hold_float("hold-1", 1_000)
    with pytest.raises(PlatformRefused) as small:
        post_water(platform_client, "pay-2", "hold-1", amount_fen=1_000, fee_fen=1)
    assert small.value.code == "hold_too_small"
    assert platform_client.float_state().balance_fen == 200_000


def test_a_key_reused_for_a_different_payment_is_refused(platform_client: PlatformClient) -> None:
    pay_water(platform_client, "pay-1", "hold-1", amount_fen=5_000)
    platform_client.hold_float("hold-2", 6_000)
    with pytest.raises(PlatformRefused) as refused:
        post_water(platform_client, "pay-1", "hold-2", amount_fen=6_000)
    assert refused.value.code == "key_reused"


def test_a_paid_bill_cannot_be_paid_again_with_another_key(
    platform_client: PlatformClient,
) -> None:
    bill = platform_client.lookup_bill("water", WATER)
    due = bill.amount_due_fen
    for key in ("pay-1", "pay-2"):
        platform_client.hold_float(f"hold-{key}", due)
    post_water(platform_client, "pay-1", "hold-pay-1", due, bill_id=bill.bill_id)
    with pytest.raises(PlatformRefused) as refused:
        post_water(platform_client, "pay-2", "hold-pay-2", due, bill_id=bill.bill_id)
    assert refused.value.code == "bill_already_paid"


# ---------------------------------------------------------------- prepaid card credits


def authorize(client: PlatformClient, key: str, counter: int) -> CardCredit:
    client.hold_float(f"hold-{key}", 10_000)
    return client.authorize_card_credit(
        key,
        hold_id=f"hold-{key}",
        service="power-card",
        biller="electricity",
        card_no="900000000001",
        counter=counter,
        amount_fen=10_000,
        fee_fen=0,
    )


def test_a_card_credit_carries_the_mac_the_card_checks_for_its_next_counter(
    platform_client: PlatformClient,
) -> None:
    first = authorize(platform_client, "card-1", counter=7)
    assert first.new_counter == 8
    assert check_credit_mac("900000000001", 8, 10_000, TERMINAL, "card-1", first.mac)
    assert not check_credit_mac("900000000001", 9, 10_000, TERMINAL, "card-1", first.mac)
    # Bound to the terminal that asked and the authorisation's key: not valid for any other.
    assert not check_credit_mac("900000000001", 8, 10_000, "OTHER-01", "card-1", first.mac)
    assert not check_credit_mac("900000000001", 8, 10_000, TERMINAL, "card-2", first.mac)
    assert authorize(platform_client, "card-1", counter=7) == first  # same key, same credit
    assert platform_client.float_state().balance_fen == 190_000


def test_a_second_credit_for_the_same_card_counter_is_refused_until_the_first_is_reversed(
    platform_client: PlatformClient,
) -> None:
    authorize(platform_client, "card-1", counter=3)
    with pytest.raises(PlatformRefused) as refused:
        authorize(platform_client, "card-2", counter=3)
    assert refused.value.code == "card_counter_used"
    platform_client.reverse_payment("card-1", "card refused the credit")
    assert authorize(platform_client, "card-3", counter=3)


def test_a_card_of_a_biller_without_prepaid_cards_is_refused(
    platform_client: PlatformClient,
) -> None:
    platform_client.hold_float("hold-1", 1_000)
    with pytest.raises(PlatformRefused) as refused:
        platform_client.authorize_card_credit(
            "card-1",
            hold_id="hold-1",
            service="water-card",
            biller="water",
            card_no="900000000001",
            counter=0,
            amount_fen=1_000,
            fee_fen=0,
        )
    assert refused.value.code == "unknown_biller"


# ---------------------------------------------------------------- status and reversal


def test_payment_status_tells_posted_from_not_found(platform_client: PlatformClient) -> None:
    assert (
        platform_client.payment_status("pay-1", amount_fen=12_345, fee_fen=0).state == "not_found"
    )
    pay_water(platform_client, "pay-1", "hold-1")
    status = platform_client.payment_status("pay-1", amount_fen=12_345, fee_fen=0)
    assert status.state == "posted" and status.ref is not None


def test_a_reversal_refunds_amount_and_fee_once(platform_client: PlatformClient) -> None:
    pay_water(platform_client, "pay-1", "hold-1", amount_fen=8_000)
    assert platform_client.float_state().balance_fen == 192_000
    first = platform_client.reverse_payment("pay-1", "customer cancelled")
    second = platform_client.reverse_payment("pay-1", "customer cancelled")
    assert first == second
    assert first.state == "reversed" and first.ref is not None
    assert platform_client.float_state().balance_fen == 200_000


def test_reversing_a_key_never_posted_fences_it_against_a_late_post(
    platform_client: PlatformClient,
) -> None:
    fenced = platform_client.reverse_payment("pay-1", "outcome unknown at restart")
    assert (fenced.state, fenced.ref) == ("reversed", None)
    with pytest.raises(PlatformRefused) as refused:
        pay_water(platform_client, "pay-1", "hold-1")
    assert refused.value.code == "payment_reversed"
    assert platform_client.payment_status("pay-1", amount_fen=12_345, fee_fen=0).state == "reversed"


# ---------------------------------------------------------------- deposits


def test_a_deposit_under_500_yuan_is_refused_before_anything_is_sent(
    platform_sim: ThreadedPlatformSim, platform_client: PlatformClient
) -> None:
    with pytest.raises(PlatformRefused) as refused:
        platform_client.deposit("dep-1", 49_999, slip_no="SLIP-0001")
    assert refused.value.code == "deposit_too_small"
    assert "¥500.00" in str(refused.value)
    assert "deposit" not in platform_sim.requests_seen()


@pytest.mark.parametrize("slip", ["", "12", "SLIP 0001", "-0001", "X" * 33, "存款0001"])
def test_a_deposit_without_a_slip_number_is_refused_before_anything_is_sent(
    platform_sim: ThreadedPlatformSim, platform_client: PlatformClient, slip: str
) -> None:
    with pytest.raises(PlatformRefused, match="slip number .* type it as printed"):
        platform_client.deposit("dep-1", 50_000, slip_no=slip)
    assert "deposit" not in platform_sim.requests_seen()


def test_a_pending_deposit_is_credited_only_when_the_operator_confirms_it(
    platform_sim: ThreadedPlatformSim, platform_client: PlatformClient
) -> None:
    pending = platform_client.deposit("dep-1", 50_000, slip_no="PS20261123-0007")
    assert (pending.state, pending.slip_no) == ("pending", "PS20261123-0007")
    assert platform_client.deposit("dep-1", 50_000, slip_no="PS20261123-0007") == pending
    assert platform_client.float_state().balance_fen == 200_000
    platform_sim.confirm_deposit("dep-1")
    platform_sim.confirm_deposit("dep-1")  # confirming twice credits once
    assert platform_client.deposit_status("dep-1").state == "confirmed"
    assert platform_client.float_state().balance_fen == 250_000


def test_one_slip_is_one_deposit_whatever_key_announces_it(
    platform_sim: ThreadedPlatformSim, platform_client: PlatformClient
) -> None:
    platform_client.deposit("dep-1", 50_000, slip_no="PS-0007")
    with pytest.raises(PlatformRefused) as refused:
        platform_client.deposit("dep-2", 50_000, slip_no="PS-0007")
    assert refused.value.code == "slip_already_recorded"
    with pytest.raises(PlatformRefused) as reused:  # the same key with another slip
        platform_client.deposit("dep-1", 50_000, slip_no="PS-0008")
    assert reused.value.code == "key_reused"
    assert [d["key"] for d in platform_sim.dump()["deposits"] if d["slip_no"] == "PS-0007"] == [
        "dep-1"
    ]


def test_the_statement_adds_up_and_splits_this_terminal_from_the_station(
    platform_sim: ThreadedPlatformSim,
    platform_client: PlatformClient,
    platform_signer: SoftwareSigner,
) -> None:
    pay_water(platform_client, "pay-1", "hold-1")
    platform_client.hold_float("hold-2", 5_000)
    platform_client.reverse_payment("pay-1", "customer cancelled")
    pay_water(platform_client, "pay-2", "hold-3", amount_fen=1_000)
    platform_client.deposit("dep-1", 50_000, slip_no="PS-0009")
    platform_sim.confirm_deposit("dep-1")
    statement = platform_client.float_statement()
    assert statement.opening_fen == 0  # a new station: the credit line is zero
    assert statement.deposits_fen == 200_000 + 50_000
    assert (statement.debits_fen, statement.refunds_fen) == (12_345 + 1_000, 12_345)
    assert (statement.terminal_debits_fen, statement.terminal_refunds_fen) == (13_345, 12_345)
    assert statement.balance_fen == 250_000 - 1_000 == platform_client.float_state().balance_fen
    assert statement.held_fen == 5_000
    assert platform_sim.requests_seen()["statement"] == 1


def test_a_statement_that_does_not_add_up_is_malformed() -> None:
    from kiosk.platform import FloatStatement

    good = {
        "balance_fen": 900,
        "held_fen": 0,
        "opening_fen": 0,
        "deposits_fen": 1_000,
        "debits_fen": 200,
        "refunds_fen": 100,
        "terminal_debits_fen": 200,
        "terminal_refunds_fen": 100,
        "vouchers_outstanding_fen": 0,
    }
    assert FloatStatement.from_json(good).available_fen == 900
    with pytest.raises(MalformedAnswer, match="not opening \\+ deposits - debits"):
        FloatStatement.from_json({**good, "balance_fen": 901})
    with pytest.raises(MalformedAnswer, match="part is larger than its whole"):
        FloatStatement.from_json({**good, "terminal_debits_fen": 300})
    with pytest.raises(MalformedAnswer, match="'vouchers_outstanding_fen'"):
        FloatStatement.from_json({k: v for k, v in good.items() if k != "vouchers_outstanding_fen"})


def test_the_status_of_an_unknown_deposit_is_refused(platform_client: PlatformClient) -> None:
    with pytest.raises(PlatformRefused) as refused:
        platform_client.deposit_status("dep-unknown")
    assert refused.value.code == "deposit_not_found"


# ---------------------------------------------------------------- transport and retries


def test_a_refusal_is_never_retried(
    platform_sim: ThreadedPlatformSim, platform_client: PlatformClient
) -> None:
    with pytest.raises(UnknownAccount):
        platform_client.lookup_bill("electricity", "6600000001")
    assert platform_sim.requests_seen()["lookup"] == 1


@pytest.fixture
def dropping_server() -> Iterator[tuple[str, list[int]]]:
    """A loopback TCP server that accepts each connection and closes it unanswered."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.02)  # so the thread notices the end of the test
    accepted: list[int] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    done.set()
    thread.join(timeout=5)
    listener.close()


def test_retries_are_bounded_and_the_last_failure_says_the_outcome_is_unknown(
    dropping_server: tuple[str, list[int]], platform_signer: SoftwareSigner
) -> None:
    url, accepted = dropping_server
    client = PlatformClient(
        url, station=STATION, terminal=TERMINAL, signer=platform_signer, retries=4
    )
    with pytest.raises(PlatformUnavailable) as unavailable:
        client.hold_float("hold-1", 1_000)
    assert len(accepted) == 4
    assert "outcome is unknown" in str(unavailable.value)
    assert "\n" not in str(unavailable.value)


def test_a_platform_that_is_not_listening_is_unavailable(
    tmp_path: Path, platform_signer: SoftwareSigner
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    client = PlatformClient(
        f"http://127.0.0.1:{port}", station=STATION, terminal=TERMINAL, signer=platform_signer
    )
    with pytest.raises(PlatformUnavailable) as unavailable:
        client.float_state()
    assert "try again later" in str(unavailable.value)


def test_a_url_that_is_not_http_is_refused_at_once(platform_signer: SoftwareSigner) -> None:
    with pytest.raises(PlatformError, match="platform.url"):
        PlatformClient("ftp://x", station=STATION, terminal=TERMINAL, signer=platform_signer)


def scripted_server(
    status: int,
    body: bytes,
    received: list[tuple[str, bytes, str]] | None = None,
    date_headers: list[str] | None = None,
) -> tuple[ThreadingHTTPServer, str]:
    """A loopback HTTP server giving one fixed answer; it records (path, body, signature).

    date_headers replace, one answer after the other, the Date the standard library sends
    (its machine's clock); the last one stays."""

    class Scripted(BaseHTTPRequestHandler):
        def date_time_string(self, timestamp: float | None = None) -> str:
            if not date_headers:
                return super().date_time_string(timestamp)
            return date_headers.pop(0) if len(date_headers) > 1 else date_headers[0]

        def do_POST(self) -> None:
            request = self.rfile.read(int(self.headers["Content-Length"]))
            if received is not None:
                received.append((self.path, request, self.headers[SIGNATURE_HEADER]))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def post_100(client: PlatformClient) -> object:
    return client.post_payment(
        "pay",
        hold_id="h",
        service="water-bill",
        biller="water",
        account=WATER,
        amount_fen=100,
        fee_fen=0,
        bill_id=None,
    )


def credit_100(client: PlatformClient) -> object:
    return client.authorize_card_credit(
        "card-1",
        hold_id="h",
        service="power-card",
        biller="electricity",
        card_no="900000000001",
        counter=7,
        amount_fen=100,
        fee_fen=0,
    )


def status_100(client: PlatformClient) -> object:
    return client.payment_status("mine", amount_fen=100, fee_fen=0)


def issue_v1(client: PlatformClient) -> object:
    return client.issue_voucher("V1", amount_fen=500, receipt_no="T-01-000007", expires=EXPIRES)


def redeem_v1(client: PlatformClient) -> object:
    return client.redeem_voucher("R1", voucher_id="V1", amount_fen=500)


EXPIRES = date(2026, 6, 30)
CARD = b'"key": "card-1", "ref": "R1", "card_no": "900000000001", "new_counter": 8, '
VOUCHER = b'"voucher_id": "V1", "receipt_no": "T-01-000007", "expires": "2026-06-30", '
REDEEMED = b'"redeemed_at": "2026-05-01T10:00:00+08:00", "redeemed_by": "T-01"'
UNREDEEMED = b'"redeemed_at": null, "redeemed_by": null'

# (name, HTTP status, body, call, what the one-line message must name)
MALFORMED: list[tuple[str, int, bytes, Callable[[PlatformClient], object], str]] = [
    (
        "float amount",
        200,
        b'{"balance_fen": 100.0, "held_fen": 0}',
        lambda c: c.float_state(),
        "'balance_fen' is 100.0",
    ),
    ("missing field", 200, b'{"balance_fen": 100}', lambda c: c.float_state(), "'held_fen'"),
    (
        "bool amount",
        200,
        b'{"balance_fen": true, "held_fen": 0}',
        lambda c: c.float_state(),
        "'balance_fen' is True",
    ),
    (
        "holds over balance",
        200,
        b'{"balance_fen": 1, "held_fen": 2}',
        lambda c: c.float_state(),
        "holds exceed the balance",
    ),
    ("not json", 200, b"<html>proxy error</html>", lambda c: c.float_state(), "JSON object"),
    ("json list", 200, b"[1, 2]", lambda c: c.float_state(), "JSON object"),
    ("NaN", 200, b'{"balance_fen": NaN, "held_fen": 0}', lambda c: c.float_state(), "JSON"),
    (
        "answer for another key",
        200,
        b'{"key": "other", "state": "posted", "ref": "R1", "amount_fen": 100, "fee_fen": 0}',
        status_100,
        "instead of 'mine'",
    ),
    (
        "posted without a reference",
        200,
        b'{"key": "mine", "state": "posted", "ref": null, "amount_fen": null, "fee_fen": null}',
        status_100,
        "has no reference",
    ),
    (
        "unknown state",
        200,
        b'{"key": "mine", "state": "maybe", "ref": null, "amount_fen": null, "fee_fen": null}',
        status_100,
        "'maybe'",
    ),
    ("refusal without error", 409, b'{"detail": "no"}', lambda c: c.float_state(), "error object"),
    ("redirect", 302, b"{}", lambda c: c.float_state(), "unexpected HTTP 302"),
    # A gateway's page instead of the platform's refusal: for a money request, in doubt.
    ("gateway page on a hold", 403, b"<html>403</html>", lambda c: c.hold_float("h", 1), "403"),
    # Item 11: answers must echo the money sent.
    (
        "posting of another amount",
        200,
        b'{"key": "pay", "ref": "R1", "amount_fen": 101, "fee_fen": 0}',
        post_100,
        "posting of 101 fen with a fee of 0 fen, not the 100 fen with a fee of 0 fen sent",
    ),
    (
        "posting with another fee",
        200,
        b'{"key": "pay", "ref": "R1", "amount_fen": 100, "fee_fen": 1}',
        post_100,
        "a fee of 1 fen, not",
    ),
    (
        "card credit of another amount",
        200,
        b"{" + CARD + b'"amount_fen": 99, "fee_fen": 0, "mac": "00112233aabbccdd"}',
        credit_100,
        "card credit of 99 fen",
    ),
    (
        "card credit with another fee",
        200,
        b"{" + CARD + b'"amount_fen": 100, "fee_fen": 3, "mac": "00112233aabbccdd"}',
        credit_100,
        "a fee of 3 fen",
    ),
    (
        "card credit without its fee",
        200,
        b"{" + CARD + b'"amount_fen": 100, "mac": "00112233aabbccdd"}',
        credit_100,
        "'fee_fen' is None",
    ),
    (
        "status posted with another amount",
        200,
        b'{"key": "mine", "state": "posted", "ref": "R1", "amount_fen": 200, "fee_fen": 0}',
        status_100,
        "payment posted of 200 fen",
    ),
    (
        "status reversed with another fee",
        200,
        b'{"key": "mine", "state": "reversed", "ref": "R1", "amount_fen": 100, "fee_fen": 9}',
        status_100,
        "payment reversed of 100 fen with a fee of 9 fen",
    ),
    (
        "status posted without amounts",
        200,
        b'{"key": "mine", "state": "posted", "ref": "R1", "amount_fen": null, "fee_fen": null}',
        status_100,
        "exactly when it was posted",
    ),
    (
        "status not found with amounts",
        200,
        b'{"key": "mine", "state": "not_found", "ref": null, "amount_fen": 100, "fee_fen": 0}',
        status_100,
        "exactly when it was posted",
    ),
    (
        "status not found with a reference",
        200,
        b'{"key": "mine", "state": "not_found", "ref": "R1", "amount_fen": 100, "fee_fen": 0}',
        status_100,
        "not found has the reference 'R1'",
    ),
    (
        "status without its amount fields",
        200,
        b'{"key": "mine", "state": "not_found", "ref": null}',
        status_100,
        "'amount_fen' is missing",
    ),
    (
        "reversal answered as posted",
        200,
        b'{"key": "mine", "state": "posted", "ref": "R1", "amount_fen": 100, "fee_fen": 0}',
        lambda c: c.reverse_payment("mine", "cancelled"),
        "reversal with the state posted",
    ),
    (
        "deposit of another amount",
        200,
        b'{"key": "dep", "state": "pending", "amount_fen": 60000, "slip_no": "PS-1"}',
        lambda c: c.deposit("dep", 50_000, slip_no="PS-1"),
        "deposit of 60000 fen on slip PS-1, not the 50000 on slip PS-1",
    ),
    (
        "deposit on another slip",
        200,
        b'{"key": "dep", "state": "pending", "amount_fen": 50000, "slip_no": "PS-2"}',
        lambda c: c.deposit("dep", 50_000, slip_no="PS-1"),
        "on slip PS-2, not the 50000 on slip PS-1",
    ),
    (
        "voucher issued for another amount",
        200,
        b'{"state": "issued", "amount_fen": 600, ' + VOUCHER + UNREDEEMED + b"}",
        issue_v1,
        "'V1' of 600 fen, not 'V1' of 500 fen",
    ),
    (
        "voucher issued with another expiry",
        200,
        b'{"voucher_id": "V1", "receipt_no": "T-01-000007", "expires": "2026-07-30", '
        b'"state": "issued", "amount_fen": 500, ' + UNREDEEMED + b"}",
        issue_v1,
        "until 2026-07-30, not receipt T-01-000007 until 2026-06-30",
    ),
    (
        "voucher expiry not a date",
        200,
        b'{"voucher_id": "V1", "receipt_no": "T-01-000007", "expires": "20260630", '
        b'"state": "issued", "amount_fen": 500, ' + UNREDEEMED + b"}",
        issue_v1,
        "not a date YYYY-MM-DD",
    ),
    (
        "redemption answered as still issued",
        200,
        b'{"state": "issued", "amount_fen": 500, ' + VOUCHER + UNREDEEMED + b"}",
        redeem_v1,
        "with state issued by None, not redeemed by T-01",
    ),
    (
        "redemption by another terminal",
        200,
        b'{"state": "redeemed", "amount_fen": 500, '
        + VOUCHER
        + REDEEMED.replace(b"T-01", b"T-09")
        + b"}",
        redeem_v1,
        "by T-09, not redeemed by T-01",
    ),
    (
        "redeemed voucher without its time",
        200,
        b'{"state": "redeemed", "amount_fen": 500, '
        + VOUCHER
        + b'"redeemed_at": null, "redeemed_by": "T-01"}',
        redeem_v1,
        "exactly when redeemed",
    ),
    (
        "redemption time without an offset",
        200,
        b'{"state": "redeemed", "amount_fen": 500, '
        + VOUCHER
        + b'"redeemed_at": "2026-05-01T10:00:00", "redeemed_by": "T-01"}',
        redeem_v1,
        "not an ISO 8601 time with offset",
    ),
    (
        "status of another voucher",
        200,
        b'{"state": "issued", "amount_fen": 500, ' + VOUCHER + UNREDEEMED + b"}",
        lambda c: c.voucher_status("V2"),
        "voucher 'V1' instead of 'V2'",
    ),
]


@pytest.mark.parametrize(
    ("status", "body", "call", "why"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_a_malformed_answer_is_rejected_in_one_line_as_outcome_unknown(
    platform_signer: SoftwareSigner,
    status: int,
    body: bytes,
    call: Callable[[PlatformClient], object],
    why: str,
) -> None:
    server, url = scripted_server(status, body)
    try:
        client = PlatformClient(url, station=STATION, terminal=TERMINAL, signer=platform_signer)
        with pytest.raises(MalformedAnswer) as malformed:
            call(client)
    finally:
        server.shutdown()
        server.server_close()
    assert str(malformed.value).startswith("malformed answer from the operator platform")
    assert why in str(malformed.value)
    assert "\n" not in str(malformed.value)
    assert isinstance(malformed.value, OutcomeUnknown)


@pytest.mark.parametrize(
    ("body", "call"),
    [
        (b'{"key": "pay", "ref": "R1", "amount_fen": 100, "fee_fen": 0}', post_100),
        (b"{" + CARD + b'"amount_fen": 100, "fee_fen": 0, "mac": "00112233aabbccdd"}', credit_100),
        (
            b'{"key": "mine", "state": "posted", "ref": "R1", "amount_fen": 100, "fee_fen": 0}',
            status_100,
        ),
        (b'{"state": "issued", "amount_fen": 500, ' + VOUCHER + UNREDEEMED + b"}", issue_v1),
        (b'{"state": "redeemed", "amount_fen": 500, ' + VOUCHER + REDEEMED + b"}", redeem_v1),
    ],
    ids=["posting", "card credit", "status", "voucher issued", "voucher redeemed"],
)
def test_an_answer_that_echoes_the_money_is_accepted(
    platform_signer: SoftwareSigner, body: bytes, call: Callable[[PlatformClient], object]
) -> None:
    # The counterpart of the echo cases above: the same answers with the amounts sent.
    server, url = scripted_server(200, body)
    try:
        client = PlatformClient(url, station=STATION, terminal=TERMINAL, signer=platform_signer)
        assert call(client) is not None
    finally:
        server.shutdown()
        server.server_close()


def test_a_card_credit_for_another_counter_is_rejected(
    platform_signer: SoftwareSigner,
) -> None:
    body = (
        b'{"key": "card-1", "ref": "R1", "card_no": "900000000001", "new_counter": 9, '
        b'"amount_fen": 100, "fee_fen": 0, "mac": "00112233aabbccdd"}'
    )
    server, url = scripted_server(200, body)
    try:
        client = PlatformClient(url, station=STATION, terminal=TERMINAL, signer=platform_signer)
        with pytest.raises(MalformedAnswer, match="counter"):
            client.authorize_card_credit(
                "card-1",
                hold_id="h",
                service="power-card",
                biller="electricity",
                card_no="900000000001",
                counter=7,
                amount_fen=100,
                fee_fen=0,
            )
    finally:
        server.shutdown()
        server.server_close()


def test_a_request_the_token_cannot_sign_is_never_sent(
    platform_sim: ThreadedPlatformSim, platform_signer: SoftwareSigner
) -> None:
    client = client_for(platform_sim, platform_signer)
    platform_signer.failing = True  # the token was pulled out
    with pytest.raises(SignerUnavailable):
        client.float_state()
    assert "float" not in platform_sim.requests_seen()


def test_a_request_carries_its_envelope_and_a_signature_openssl_verifies(
    platform_signer: SoftwareSigner, tmp_path: Path
) -> None:
    received: list[tuple[str, bytes, str]] = []
    answer = b'{"key": "hold-1", "state": "posted", "ref": "R1", "amount_fen": 100, "fee_fen": 0}'
    server, url = scripted_server(200, answer, received)
    try:
        client = PlatformClient(
            url + "/operator", station=STATION, terminal=TERMINAL, signer=platform_signer
        )
        client.payment_status("hold-1", amount_fen=100, fee_fen=0)
    finally:
        server.shutdown()
        server.server_close()
    ((path, body, signature),) = received
    assert path == "/operator/v1/payments/status"
    sent = json.loads(body)
    assert (sent["station"], sent["terminal"], sent["key"]) == (STATION, TERMINAL, "hold-1")
    assert datetime.fromisoformat(sent["request_time"]).tzinfo is not None
    (tmp_path / "body.json").write_bytes(body)
    (tmp_path / "sig.der").write_bytes(base64.b64decode(signature))
    (tmp_path / "cert.pem").write_bytes(platform_signer.certificate_pem())
    pubkey = subprocess.run(
        ["openssl", "x509", "-in", tmp_path / "cert.pem", "-pubkey", "-noout"],
        check=True,
        capture_output=True,
    ).stdout
    (tmp_path / "pub.pem").write_bytes(pubkey)
    verify = ["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem")]
    verify += ["-signature", str(tmp_path / "sig.der"), str(tmp_path / "body.json")]
    assert subprocess.run(verify, capture_output=True).returncode == 0
    (tmp_path / "body.json").write_bytes(body.replace(b"hold-1", b"hold-2"))
    assert subprocess.run(verify, capture_output=True).returncode != 0


# ---------------------------------------------------------------- what residents see


def test_every_resident_notice_has_a_chinese_translation() -> None:
    chinese = translator("zh_CN")
    for message in [*RESIDENT_NOTICES.values(), NOTICE_REFUSED, NOTICE_UNAVAILABLE]:
        assert chinese(message) != message, message


def test_a_resident_is_told_about_a_missing_bill_not_about_http() -> None:
    notice = resident_notice(UnknownAccount("no_bill_due", "water account x has no bill due"))
    assert notice == "There is no bill due for this account."
    assert resident_notice(PlatformUnavailable("timed out")) == NOTICE_UNAVAILABLE
    assert resident_notice(PlatformRefused("key_reused", "x")) == NOTICE_REFUSED


# ---------------------------------------------------------------- what an error proves


def test_errors_are_grouped_by_what_they_prove() -> None:
    for unknown in (PlatformUnavailable, MalformedAnswer, UnprovenRefusal):
        assert issubclass(unknown, OutcomeUnknown)
        assert not issubclass(unknown, PlatformRefused)
    for refused in (InsufficientFloat, UnknownAccount):
        assert issubclass(refused, PlatformRefused)
        assert not issubclass(refused, OutcomeUnknown)
    unproven = UnprovenRefusal("stale_request", "x", 400)
    assert (unproven.code, unproven.http_status) == ("stale_request", 400)
    assert resident_notice(unproven) == NOTICE_UNAVAILABLE


def refusal_table() -> dict[str, tuple[int, str]]:
    """code -> (HTTP status, what it proves) from the refusal table of docs/platform-api.md."""
    text = (Path(__file__).parent.parent / "docs" / "platform-api.md").read_text()
    rows = re.findall(r"^\| `([a-z_]+)` +\| (\d{3}) +\| ([a-z ]+?) +\|", text, re.MULTILINE)
    return {code: (int(status), proves) for code, status, proves in rows}


def test_the_documented_refusal_table_matches_the_contract() -> None:
    documented = refusal_table()
    assert set(documented) == {str(code) for code in Refusal}
    for code, (status, proves) in documented.items():
        assert status == REFUSAL_HTTP_STATUS[code], code
        expected = "not carried out" if code in PAYMENT_SPECIFIC_REFUSALS else "nothing"
        assert proves == expected, code


def test_the_payment_specific_refusals_leave_out_envelope_and_gateway_codes() -> None:
    for code in ("bad_request", "bad_signature", "not_registered", "stale_request"):
        assert code not in PAYMENT_SPECIFIC_REFUSALS
    assert {"key_reused", "rate_limited"}.isdisjoint(PAYMENT_SPECIFIC_REFUSALS)
    assert {"insufficient_float", "hold_missing", "payment_reversed"} <= (PAYMENT_SPECIFIC_REFUSALS)
    assert PAYMENT_SPECIFIC_REFUSALS <= {str(code) for code in Refusal}


# ---------------------------------------------------------------- the platform's clock


def test_the_clock_skew_is_unknown_until_an_answer_carries_a_date(
    platform_sim: ThreadedPlatformSim, platform_signer: SoftwareSigner
) -> None:
    client = PlatformClient(
        platform_sim.url, station=STATION, terminal=TERMINAL, signer=platform_signer
    )
    assert client.clock_skew() is None and client.last_answer_at is None
    before = datetime.now(UTC)
    client.register()
    skew = client.clock_skew()
    assert skew is not None and abs(skew) < timedelta(seconds=2)
    assert client.last_answer_at is not None
    assert before <= client.last_answer_at <= datetime.now(UTC)


def test_the_clock_skew_follows_the_platforms_clock(
    platform_sim: ThreadedPlatformSim, platform_signer: SoftwareSigner
) -> None:
    client = client_for(platform_sim, platform_signer)
    platform_sim.set_clock_offset(600)  # ten minutes ahead: still within the 15 allowed
    client.float_state()
    skew = client.clock_skew()
    assert skew is not None
    assert timedelta(seconds=598) <= skew <= timedelta(seconds=601)
    platform_sim.set_clock_offset(-1200)  # twenty minutes behind: requests are stale
    with pytest.raises(PlatformRefused) as stale:
        client.float_state()
    assert (stale.value.code, stale.value.http_status) == ("stale_request", 400)
    skew = client.clock_skew()  # a refusal carries the platform's clock too
    assert skew is not None
    assert timedelta(seconds=-1202) <= skew <= timedelta(seconds=-1199)


def test_the_clock_skew_is_read_from_the_date_header_of_any_answer(
    platform_signer: SoftwareSigner,
) -> None:
    refusal = b'{"error": {"code": "rate_limited", "message": "slow down"}}'
    server, url = scripted_server(429, refusal, date_headers=["Wed, 01 Jan 2020 00:00:00 GMT"])
    try:
        client = PlatformClient(url, station=STATION, terminal=TERMINAL, signer=platform_signer)
        with pytest.raises(PlatformRefused):
            client.float_state()
    finally:
        server.shutdown()
        server.server_close()
    skew, at = client.clock_skew(), client.last_answer_at
    assert skew is not None and at is not None
    assert at + skew == datetime(2020, 1, 1, tzinfo=UTC)


def test_an_answer_without_a_readable_date_keeps_the_last_reading(
    platform_signer: SoftwareSigner,
) -> None:
    answer = b'{"balance_fen": 1, "held_fen": 0}'
    dates = ["Wed, 01 Jan 2020 00:00:00 GMT", "yesterday, about noon"]
    server, url = scripted_server(200, answer, date_headers=dates)
    try:
        client = PlatformClient(url, station=STATION, terminal=TERMINAL, signer=platform_signer)
        client.float_state()
        reading = (client.clock_skew(), client.last_answer_at)
        assert reading[0] is not None
        client.float_state()  # its Date is not a date
    finally:
        server.shutdown()
        server.server_close()
    assert (client.clock_skew(), client.last_answer_at) == reading
