"""The platform client against the real simulator over loopback HTTP, and against a scripted
HTTP server for answers the simulator would never send."""

import base64
import json
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from drivers.smartcard.prepaid_mac import check_credit_mac
from drivers.token.software import SoftwareSigner
from kiosk.i18n import translator
from kiosk.platform import (
    CardCredit,
    InsufficientFloat,
    MalformedAnswer,
    PlatformClient,
    PlatformError,
    PlatformRefused,
    PlatformUnavailable,
    Posting,
    UnknownAccount,
    resident_notice,
)
from kiosk.platform.models import (
    NOTICE_REFUSED,
    NOTICE_UNAVAILABLE,
    RESIDENT_NOTICES,
    SIGNATURE_HEADER,
)
from kiosk.signing import SignerUnavailable
from tests.fixtures.platform import STATION, TERMINAL, ThreadedPlatformSim, client_for

WATER = "3100000011"  # a named sample account with a bill of 123.45 yuan


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
    assert platform_client.payment_status("pay-1").state == "not_found"
    pay_water(platform_client, "pay-1", "hold-1")
    status = platform_client.payment_status("pay-1")
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
    assert platform_client.payment_status("pay-1").state == "reversed"


# ---------------------------------------------------------------- deposits


def test_a_deposit_under_500_yuan_is_refused_before_anything_is_sent(
    platform_sim: ThreadedPlatformSim, platform_client: PlatformClient
) -> None:
    with pytest.raises(PlatformRefused) as refused:
        platform_client.deposit("dep-1", 49_999)
    assert refused.value.code == "deposit_too_small"
    assert "¥500.00" in str(refused.value)
    assert "deposit" not in platform_sim.requests_seen()


def test_a_pending_deposit_is_credited_only_when_the_operator_confirms_it(
    platform_sim: ThreadedPlatformSim, platform_client: PlatformClient
) -> None:
    pending = platform_client.deposit("dep-1", 50_000)
    assert pending.state == "pending"
    assert platform_client.deposit("dep-1", 50_000) == pending
    assert platform_client.float_state().balance_fen == 200_000
    platform_sim.confirm_deposit("dep-1")
    platform_sim.confirm_deposit("dep-1")  # confirming twice credits once
    assert platform_client.deposit_status("dep-1").state == "confirmed"
    assert platform_client.float_state().balance_fen == 250_000


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
    status: int, body: bytes, received: list[tuple[str, bytes, str]] | None = None
) -> tuple[ThreadingHTTPServer, str]:
    """A loopback HTTP server giving one fixed answer; it records (path, body, signature)."""

    class Scripted(BaseHTTPRequestHandler):
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


MALFORMED: list[tuple[str, int, bytes, Callable[[PlatformClient], object]]] = [
    ("float amount", 200, b'{"balance_fen": 100.0, "held_fen": 0}', lambda c: c.float_state()),
    ("missing field", 200, b'{"balance_fen": 100}', lambda c: c.float_state()),
    ("bool amount", 200, b'{"balance_fen": true, "held_fen": 0}', lambda c: c.float_state()),
    ("holds over balance", 200, b'{"balance_fen": 1, "held_fen": 2}', lambda c: c.float_state()),
    ("not json", 200, b"<html>proxy error</html>", lambda c: c.float_state()),
    ("json list", 200, b"[1, 2]", lambda c: c.float_state()),
    ("NaN", 200, b'{"balance_fen": NaN, "held_fen": 0}', lambda c: c.float_state()),
    (
        "answer for another key",
        200,
        b'{"key": "other", "state": "posted", "ref": "R1"}',
        lambda c: c.payment_status("mine"),
    ),
    (
        "posted without a reference",
        200,
        b'{"key": "mine", "state": "posted", "ref": null}',
        lambda c: c.payment_status("mine"),
    ),
    (
        "unknown state",
        200,
        b'{"key": "mine", "state": "maybe", "ref": null}',
        lambda c: c.payment_status("mine"),
    ),
    ("refusal without error", 409, b'{"detail": "no"}', lambda c: c.float_state()),
    ("redirect", 302, b"{}", lambda c: c.float_state()),
]


@pytest.mark.parametrize(
    ("status", "body", "call"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_a_malformed_answer_is_rejected_in_one_line(
    platform_signer: SoftwareSigner,
    status: int,
    body: bytes,
    call: Callable[[PlatformClient], object],
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
    assert "\n" not in str(malformed.value)


def test_a_card_credit_for_another_counter_is_rejected(
    platform_signer: SoftwareSigner,
) -> None:
    body = (
        b'{"key": "card-1", "ref": "R1", "card_no": "900000000001", "new_counter": 9, '
        b'"amount_fen": 100, "mac": "00112233aabbccdd"}'
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
    answer = b'{"key": "hold-1", "state": "posted", "ref": "R1"}'
    server, url = scripted_server(200, answer, received)
    try:
        client = PlatformClient(
            url + "/operator", station=STATION, terminal=TERMINAL, signer=platform_signer
        )
        client.payment_status("hold-1")
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
