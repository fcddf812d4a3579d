"""The platform simulator itself: sample billers and bills, request checks (signature,
certificate, freshness), the float invariant under concurrency and random operation
sequences, deposits, and the kiosk-platform-sim command line."""

import base64
import json
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.token.software import SoftwareSigner, create_software_identity
from kiosk.clock import iso
from kiosk.platform import InsufficientFloat, PlatformClient, PlatformRefused
from kiosk.platform.models import PATHS, SIGNATURE_HEADER, Operation
from platform_sim import sample_data
from platform_sim.ledger import Ledger
from tests.fixtures.platform import (
    STATION,
    TERMINAL,
    PlatformSimHandle,
    ThreadedPlatformSim,
    client_for,
)

# ---------------------------------------------------------------- sample data


def test_luhn_matches_known_vectors() -> None:
    assert sample_data.luhn_check_digit("7992739871") == "3"  # the classic 79927398713
    assert sample_data.luhn_check_digit("0") == "0"
    assert sample_data.NumberRule(11, "7", luhn=True).accepts("79927398713")
    assert not sample_data.NumberRule(11, "7", luhn=True).accepts("79927398710")


@given(st.text("0123456789", min_size=1, max_size=18), st.integers(0, 17), st.integers(1, 9))
def test_luhn_catches_every_single_digit_change(payload: str, position: int, shift: int) -> None:
    number = payload + sample_data.luhn_check_digit(payload)
    index = position % len(number)
    changed = number[:index] + str((int(number[index]) + shift) % 10) + number[index + 1 :]
    rule = sample_data.NumberRule(len(number), "", luhn=True)
    assert rule.accepts(number)
    assert not rule.accepts(changed)


def test_every_named_sample_account_is_well_formed_for_its_biller() -> None:
    named = [*sample_data.FIXED_BILLS, *sample_data.NO_BILL_DUE, *sample_data.UNKNOWN_ACCOUNTS]
    for biller, account in named:
        assert sample_data.BILLERS[biller].account_rule.accepts(account), (biller, account)


@given(
    st.sampled_from(["water", "electricity", "gas", "telecom", "catv"]),
    st.integers(min_value=0, max_value=10**12),
)
def test_every_well_formed_account_has_a_deterministic_bill_of_10_to_300_yuan(
    biller: str, seed: int
) -> None:
    rule = sample_data.BILLERS[biller].account_rule
    body = (rule.prefix + str(seed)).ljust(rule.length, "0")[: rule.length - 1]
    account = body + (sample_data.luhn_check_digit(body) if rule.luhn else str(seed % 10))
    if (biller, account) in sample_data.NO_BILL_DUE | sample_data.UNKNOWN_ACCOUNTS:
        return
    today = date(2026, 3, 14)
    bill = sample_data.find_bill(biller, account, today)
    assert bill == sample_data.find_bill(biller, account, today)
    if (biller, account) not in sample_data.FIXED_BILLS:
        assert 1_000 <= bill.amount_due_fen <= 30_000
    assert bill.period == "2026-02" and bill.holder_masked.endswith("**")


def test_some_derived_bills_have_fen_and_amounts_vary() -> None:
    amounts = {sample_data.derived_amount_fen("water", f"31{n:08d}") for n in range(200)}
    assert len(amounts) > 150
    assert any(amount % 100 for amount in amounts)


def test_a_bill_of_january_belongs_to_december_of_the_year_before() -> None:
    assert sample_data.billing_period(date(2027, 1, 5)) == "2026-12"
    january = sample_data.find_bill("water", "3100000011", date(2027, 1, 5))
    february = sample_data.find_bill("water", "3100000011", date(2027, 2, 5))
    assert january.bill_id != february.bill_id


# ---------------------------------------------------------------- request checks


def signed_post(
    sim: PlatformSimHandle,
    signer: SoftwareSigner,
    operation: Operation,
    fields: dict[str, Any],
    *,
    terminal: str = TERMINAL,
    request_time: datetime | None = None,
    tamper: bool = False,
    signature: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """A request made by hand, so that it can be wrong in ways the client never is."""
    envelope = {
        "station": STATION,
        "terminal": terminal,
        "request_time": iso(request_time or datetime.now(UTC)),
        **fields,
    }
    body = json.dumps(envelope).encode()
    if signature is None:
        signature = base64.b64encode(signer.sign(body)).decode()
    if tamper:
        body = body.replace(b'"amount_fen": 1000', b'"amount_fen": 9000')
    request = urllib.request.Request(sim.url + PATHS[operation], data=body, method="POST")
    if signature:
        request.add_header(SIGNATURE_HEADER, signature)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def registered(platform_sim: ThreadedPlatformSim, platform_signer: SoftwareSigner) -> None:
    client_for(platform_sim, platform_signer)


def refusal(answer: tuple[int, dict[str, Any]]) -> tuple[int, str]:
    status, body = answer
    return status, body["error"]["code"]


@pytest.mark.usefixtures("registered")
def test_a_correctly_signed_request_is_served(
    platform_sim: ThreadedPlatformSim, platform_signer: SoftwareSigner
) -> None:
    status, body = signed_post(platform_sim, platform_signer, Operation.FLOAT, {})
    assert (status, body) == (200, {"balance_fen": 200_000, "held_fen": 0})


@pytest.mark.usefixtures("registered")
def test_an_unsigned_or_badly_signed_or_tampered_request_is_refused(
    platform_sim: ThreadedPlatformSim, platform_signer: SoftwareSigner, tmp_path: Path
) -> None:
    hold = {"key": "hold-1", "amount_fen": 1000}
    unsigned = signed_post(platform_sim, platform_signer, Operation.HOLD, hold, signature="")
    assert refusal(unsigned) == (401, "bad_signature")
    garbage = signed_post(platform_sim, platform_signer, Operation.HOLD, hold, signature="!!")
    assert refusal(garbage) == (401, "bad_signature")
    tampered = signed_post(platform_sim, platform_signer, Operation.HOLD, hold, tamper=True)
    assert refusal(tampered) == (401, "bad_signature")
    impostor = create_software_identity(
        tmp_path / "k2.pem",
        tmp_path / "c2.pem",
        institution_no=STATION,
        terminal_id=TERMINAL,
        station_name="Impostor",
    )
    assert refusal(signed_post(platform_sim, impostor, Operation.HOLD, hold)) == (
        401,
        "bad_signature",
    )
    assert platform_sim.dump()["holds"] == []


@pytest.mark.usefixtures("registered")
def test_a_terminal_that_never_registered_is_refused(
    platform_sim: ThreadedPlatformSim, platform_signer: SoftwareSigner
) -> None:
    answer = signed_post(platform_sim, platform_signer, Operation.FLOAT, {}, terminal="T-99")
    assert refusal(answer) == (403, "not_registered")


def test_registration_needs_a_certificate_issued_to_that_terminal(
    platform_sim: ThreadedPlatformSim, platform_signer: SoftwareSigner
) -> None:
    certificate = platform_signer.certificate_pem().decode()
    other_terminal = signed_post(
        platform_sim,
        platform_signer,
        Operation.REGISTER,
        {"certificate": certificate},
        terminal="T-02",
    )
    assert refusal(other_terminal) == (400, "bad_certificate")
    not_pem = signed_post(
        platform_sim, platform_signer, Operation.REGISTER, {"certificate": "hello"}
    )
    assert refusal(not_pem) == (400, "bad_certificate")
    assert platform_sim.dump()["stations"] == []


def test_registering_again_is_harmless_but_another_certificate_is_refused(
    platform_sim: ThreadedPlatformSim, platform_signer: SoftwareSigner, tmp_path: Path
) -> None:
    client = client_for(platform_sim, platform_signer)
    client.register()
    replacement = create_software_identity(
        tmp_path / "k2.pem",
        tmp_path / "c2.pem",
        institution_no=STATION,
        terminal_id=TERMINAL,
        station_name="Replacement",
    )
    with pytest.raises(PlatformRefused) as refused:
        client_for(platform_sim, replacement)
    assert refused.value.code == "certificate_conflict"
    assert len(platform_sim.dump()["terminals"]) == 1


@pytest.mark.usefixtures("registered")
def test_a_request_from_a_terminal_with_a_wrong_clock_is_refused(
    platform_sim: ThreadedPlatformSim, platform_signer: SoftwareSigner
) -> None:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    answer = signed_post(platform_sim, platform_signer, Operation.FLOAT, {}, request_time=yesterday)
    assert refusal(answer) == (400, "stale_request")
    assert "set the terminal's clock" in answer[1]["error"]["message"]


@pytest.mark.usefixtures("registered")
@pytest.mark.parametrize(
    "fields",
    [
        {"key": "hold-1", "amount_fen": 10.5},
        {"key": "hold-1", "amount_fen": True},
        {"key": "hold-1", "amount_fen": -5},
        {"key": "hold-1", "amount_fen": 0},
        {"key": "hold-1"},
        {"amount_fen": 100},
    ],
)
def test_an_amount_that_is_not_positive_whole_fen_is_refused(
    platform_sim: ThreadedPlatformSim, platform_signer: SoftwareSigner, fields: dict[str, Any]
) -> None:
    answer = signed_post(platform_sim, platform_signer, Operation.HOLD, fields)
    assert refusal(answer) == (400, "bad_request")
    assert platform_sim.dump()["holds"] == []


# ---------------------------------------------------------------- the float invariant


def test_concurrent_holds_never_take_the_float_below_zero(
    platform_sim: ThreadedPlatformSim, platform_signer: SoftwareSigner
) -> None:
    client_for(platform_sim, platform_signer)
    outcomes: list[str] = []

    def hold(n: int) -> None:
        client = PlatformClient(
            platform_sim.url, station=STATION, terminal=TERMINAL, signer=platform_signer
        )
        try:
            client.hold_float(f"hold-{n}", 15_000)
            outcomes.append("held")
        except InsufficientFloat:
            outcomes.append("refused")

    threads = [threading.Thread(target=hold, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("held") == 13  # 13 x 150 yuan fit in 2000 yuan; the 14th does not
    assert outcomes.count("refused") == 7
    station = platform_sim.dump()["stations"][0]
    assert station["available_fen"] == 200_000 - 13 * 15_000


ledger_steps = st.lists(
    st.tuples(
        st.sampled_from(["hold", "release", "post", "reverse", "deposit", "confirm"]),
        st.integers(min_value=0, max_value=5),  # which key
        st.integers(min_value=1, max_value=120_000),  # amount in fen
    ),
    max_size=25,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=ledger_steps)
def test_no_sequence_of_requests_takes_the_float_below_zero_or_loses_a_fen(
    tmp_path: Path, steps: list[tuple[str, int, int]]
) -> None:
    # One fresh ledger per example: hypothesis runs many examples in one tmp_path.
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    ledger = Ledger(folder / "ledger.sqlite3", opening_float_fen=100_000)
    now = datetime.now(UTC)
    ledger.register(STATION, TERMINAL, "certificate", now)
    for action, n, amount in steps:
        try:
            if action == "hold":
                ledger.hold(STATION, TERMINAL, f"h{n}", amount, now)
            elif action == "release":
                ledger.release(STATION, TERMINAL, f"h{n}", now)
            elif action == "post":
                ledger.post_payment(
                    STATION,
                    TERMINAL,
                    f"p{n}",
                    hold_id=f"h{n}",
                    service="mobile-topup",
                    biller="mobile",
                    account="13800138000",
                    amount_fen=amount,
                    fee_fen=n,
                    bill_id=None,
                    now=now,
                )
            elif action == "reverse":
                ledger.reverse_payment(STATION, TERMINAL, f"p{n}", "test", now)
            elif action == "deposit":
                ledger.deposit(STATION, TERMINAL, f"d{n}", amount + 50_000, now)
            else:
                ledger.confirm_deposit(f"d{n}", now)
        except PlatformRefused:
            pass
        state = ledger.float_state(STATION)
        assert state.available_fen >= 0
    dump = ledger.dump()
    confirmed = sum(d["amount_fen"] for d in dump["deposits"] if d["state"] == "confirmed")
    posted = sum(p["amount_fen"] + p["fee_fen"] for p in dump["payments"] if p["state"] == "posted")
    active = sum(h["amount_fen"] for h in dump["holds"] if h["state"] == "active")
    station = dump["stations"][0]
    assert station["balance_fen"] == 100_000 + confirmed - posted
    assert station["held_fen"] == active


# ---------------------------------------------------------------- deposits


def test_auto_confirmed_deposits_are_credited_at_once(
    platform_sim_factory: Any, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_factory(auto_confirm_deposits=True, opening_float_fen=0)
    client = client_for(sim, platform_signer)
    assert client.float_state().balance_fen == 0
    assert client.deposit("dep-1", 60_000).state == "confirmed"
    assert client.float_state().balance_fen == 60_000


def test_confirming_an_unknown_deposit_is_refused(platform_sim: ThreadedPlatformSim) -> None:
    with pytest.raises(AssertionError, match="HTTP 404"):
        platform_sim.confirm_deposit("no-such-deposit")


# ---------------------------------------------------------------- command line


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "platform_sim.cli", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_dump_prints_every_payment_float_deposit_and_hold_as_json(
    platform_sim: ThreadedPlatformSim, platform_client: PlatformClient
) -> None:
    platform_client.hold_float("hold-1", 10_100)
    platform_client.post_payment(
        "pay-1",
        hold_id="hold-1",
        service="catv-bill",
        biller="catv",
        account="05000000017",
        amount_fen=10_000,
        fee_fen=100,
        bill_id=None,
    )
    platform_client.deposit("dep-1", 80_000)
    result = run_cli("dump", "--db", str(platform_sim.db_path))
    assert result.returncode == 0, result.stderr
    dump = json.loads(result.stdout)
    (payment,) = dump["payments"]
    expected = {
        "key": "pay-1",
        "station": STATION,
        "terminal": TERMINAL,
        "service": "catv-bill",
        "account": "05000000017",
        "amount_fen": 10_000,
        "fee_fen": 100,
        "state": "posted",
    }
    assert expected.items() <= payment.items()
    assert payment["reference"].startswith("SIM")
    assert dump["stations"] == [
        {"station": STATION, "balance_fen": 189_900, "held_fen": 0, "available_fen": 189_900}
    ]
    assert [(d["key"], d["state"]) for d in dump["deposits"]] == [("dep-1", "pending")]
    assert [(h["hold_id"], h["state"]) for h in dump["holds"]] == [("hold-1", "consumed")]


def test_dump_of_a_missing_ledger_fails_in_one_line(tmp_path: Path) -> None:
    result = run_cli("dump", "--db", str(tmp_path / "nothing.sqlite3"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "no simulator ledger" in result.stderr
    assert not (tmp_path / "nothing.sqlite3").exists()


def test_a_bad_fault_on_the_command_line_fails_in_one_line(tmp_path: Path) -> None:
    result = run_cli("--db", str(tmp_path / "p.sqlite3"), "--fault", "post:explode")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "unknown kind 'explode'" in result.stderr


def test_the_command_line_has_help() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "--fault" in result.stdout and "dump" in result.stdout
