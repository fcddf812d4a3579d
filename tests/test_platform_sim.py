"""The platform simulator itself: sample billers and bills, request checks (signature,
certificate, freshness), the float invariant under concurrency and random operation
sequences, hold expiry, its own clock, deposits, vouchers redeemed once centrally, and the
kiosk-platform-sim command line."""

import base64
import email.utils
import json
import sqlite3
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
from kiosk.clock import FixedClock, iso
from kiosk.platform import (
    FloatState,
    FloatStatement,
    InsufficientFloat,
    PlatformClient,
    PlatformRefused,
    Voucher,
    VoucherState,
)
from kiosk.platform.models import HOLD_LIFETIME, PATHS, SIGNATURE_HEADER, Operation
from simulators.platform import sample_data
from simulators.platform.ledger import Ledger
from tests.fixtures.platform import (
    STATION,
    TERMINAL,
    PlatformSimHandle,
    PlatformSimProcess,
    ThreadedPlatformSim,
    client_for,
    funded_client_for,
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


@pytest.fixture(autouse=True)
def station_bought_float(request: pytest.FixtureRequest) -> None:
    """The credit line is zero: where a test has the simulator, the station deposited 2,000
    yuan at the postal outlet first (tests.fixtures.platform: FUNDING_FEN)."""
    if "platform_sim" in request.fixturenames:
        request.getfixturevalue("platform_sim").fund()


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
    assert (
        platform_sim.dump()["terminals"] == []
    )  # nothing registered (the outlet opened the account)


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
    ledger = Ledger(folder / "ledger.sqlite3")
    now = datetime.now(UTC)
    ledger.register(STATION, TERMINAL, "certificate", now)
    ledger.outlet_deposit(STATION, 100_000, "FUND-0001", now)
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
                ledger.deposit(
                    STATION, TERMINAL, f"d{n}", amount + 50_000, now, slip_no=f"SLIP-{n:04d}"
                )
            else:
                ledger.confirm_deposit(f"d{n}", now)
        except PlatformRefused:
            pass
        state = ledger.float_state(STATION, now)
        assert state.available_fen >= 0
        # The statement always adds up (its reader refuses one that does not).
        statement = FloatStatement.from_json(ledger.statement(STATION, TERMINAL, now).to_json())
        assert statement.float_state == state
    dump = ledger.dump()
    confirmed = sum(d["amount_fen"] for d in dump["deposits"] if d["state"] == "confirmed")
    posted = sum(p["amount_fen"] + p["fee_fen"] for p in dump["payments"] if p["state"] == "posted")
    active = sum(h["amount_fen"] for h in dump["holds"] if h["state"] == "active")
    station = dump["stations"][0]
    assert station["balance_fen"] == confirmed - posted  # the opening balance is zero
    assert station["held_fen"] == active


# ---------------------------------------------------------------- deposits


def test_auto_confirmed_deposits_are_credited_at_once(
    platform_sim_factory: Any, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_factory(auto_confirm_deposits=True)
    client = client_for(sim, platform_signer)
    assert client.float_state().balance_fen == 0
    assert client.deposit("dep-1", 60_000, slip_no="PS-0001").state == "confirmed"
    assert client.float_state().balance_fen == 60_000


def test_a_new_station_opens_at_zero_and_sells_nothing_until_a_deposit_is_confirmed(
    platform_sim_factory: Any, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_factory()
    client = client_for(sim, platform_signer)
    assert client.float_state() == FloatState(0, 0)
    with pytest.raises(InsufficientFloat):
        client.hold_float("hold-1", 1)
    client.deposit("dep-1", 50_000, slip_no="PS-0001")
    with pytest.raises(InsufficientFloat):  # pending is not float
        client.hold_float("hold-2", 1)
    sim.confirm_deposit("dep-1")
    assert client.hold_float("hold-3", 50_000).available_fen == 0


def test_an_outlet_deposit_opens_the_account_and_is_confirmed_at_once(
    platform_sim_factory: Any, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_factory()
    recorded = sim.fund(STATION, 80_000, slip_no="PS-OUTLET-1")
    assert (recorded["state"], recorded["slip_no"]) == ("confirmed", "PS-OUTLET-1")
    client = client_for(sim, platform_signer)
    assert client.float_statement().deposits_fen == client.float_state().balance_fen == 80_000
    with pytest.raises(AssertionError, match="HTTP 409 .*slip_already_recorded"):
        sim.fund(STATION, 80_000, slip_no="PS-OUTLET-1")
    with pytest.raises(AssertionError, match="HTTP 422 .*deposit_too_small"):
        sim.fund(STATION, 49_999)


def test_a_ledger_from_before_slips_keeps_its_balance_as_an_opening_one(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE stations (station TEXT PRIMARY KEY, balance_fen INTEGER NOT NULL, "
            "created_at TEXT NOT NULL);"
            "CREATE TABLE deposits (key TEXT PRIMARY KEY, station TEXT NOT NULL, terminal TEXT "
            "NOT NULL, amount_fen INTEGER NOT NULL, state TEXT NOT NULL, created_at TEXT NOT "
            "NULL, confirmed_at TEXT);"
            "INSERT INTO stations VALUES ('31010001', 250000, '2026-01-01T00:00:00+08:00');"
            "INSERT INTO deposits VALUES ('d1', '31010001', 'T-01', 50000, 'confirmed', "
            "'2026-01-02T00:00:00+08:00', '2026-01-02T00:00:00+08:00');"
        )
    ledger = Ledger(path)
    now = datetime.now(UTC)
    statement = ledger.statement(STATION, TERMINAL, now)
    assert (statement.opening_fen, statement.deposits_fen) == (200_000, 50_000)
    assert [d["slip_no"] for d in ledger.dump()["deposits"]] == ["NOSLIP-1"]
    assert FloatStatement.from_json(statement.to_json()) == statement


def test_confirming_an_unknown_deposit_is_refused(platform_sim: ThreadedPlatformSim) -> None:
    with pytest.raises(AssertionError, match="HTTP 404"):
        platform_sim.confirm_deposit("no-such-deposit")


# ---------------------------------------------------------------- command line


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulators.platform.cli", *args],
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
    platform_client.deposit("dep-1", 80_000, slip_no="PS-0002")
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
        {
            "station": STATION,
            "opening_fen": 0,
            "balance_fen": 189_900,
            "held_fen": 0,
            "available_fen": 189_900,
        }
    ]
    assert sorted((d["terminal"], d["state"], d["slip_no"][:3]) for d in dump["deposits"]) == [
        (TERMINAL, "pending", "PS-"),
        ("outlet", "confirmed", "FUN"),
    ]
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
    assert "--clock-offset-s" in result.stdout and "--hold-lifetime-s" in result.stdout


def test_the_clock_offset_and_hold_lifetime_are_set_on_the_command_line(
    tmp_path: Path, platform_signer: SoftwareSigner
) -> None:
    sim = PlatformSimProcess(
        tmp_path / "p.sqlite3", "--clock-offset-s", "-300", "--hold-lifetime-s", "60"
    )
    try:
        assert sim.control("GET", "/sim/clock")["offset_s"] == -300
        client = funded_client_for(sim, platform_signer)
        skew = client.clock_skew()
        assert skew is not None and abs(skew + timedelta(seconds=300)) < timedelta(seconds=2)
        client.hold_float("hold-1", 1_000)
        (hold,) = sim.dump()["holds"]
        made = datetime.fromisoformat(hold["created_at"])
        assert datetime.fromisoformat(hold["expires_at"]) - made == timedelta(seconds=60)
    finally:
        sim.stop()


@pytest.mark.parametrize(
    ("option", "value"),
    [("--clock-offset-s", "soon"), ("--clock-offset-s", "1e12"), ("--hold-lifetime-s", "0")],
)
def test_a_bad_clock_offset_or_hold_lifetime_is_refused_naming_it(
    tmp_path: Path, option: str, value: str
) -> None:
    result = run_cli("--db", str(tmp_path / "p.sqlite3"), option, value)
    assert result.returncode == 2
    assert f"argument {option}: {value!r} is not" in result.stderr
    assert not (tmp_path / "p.sqlite3").exists()


# ---------------------------------------------------------------- the platform's clock


def test_every_answer_carries_the_platforms_clock_in_its_date_header(
    platform_sim_factory: Any,
) -> None:
    platform_time = datetime(2026, 5, 1, 10, 2, 3, tzinfo=UTC)
    sim = platform_sim_factory(clock=FixedClock(platform_time), clock_offset_s=90)
    with urllib.request.urlopen(sim.url + "/sim/health", timeout=5) as response:
        date = response.headers["Date"]
    assert email.utils.parsedate_to_datetime(date) == platform_time + timedelta(seconds=90)
    assert date.endswith(" GMT")


def test_the_clock_offset_is_read_and_set_at_run_time(platform_sim: ThreadedPlatformSim) -> None:
    assert platform_sim.control("GET", "/sim/clock")["offset_s"] == 0
    platform_sim.set_clock_offset(-42.5)
    clock = platform_sim.control("GET", "/sim/clock")
    assert clock["offset_s"] == -42.5
    platform_now = datetime.fromisoformat(clock["now"])
    assert abs(platform_now - datetime.now(UTC) + timedelta(seconds=42.5)) < timedelta(seconds=2)
    for bad in ({"offset_s": "soon"}, {"offset_s": True}, {"offset_s": 10**9}, {}):
        with pytest.raises(AssertionError, match="HTTP 400"):
            platform_sim.control("POST", "/sim/clock", bad)
    assert platform_sim.control("GET", "/sim/clock")["offset_s"] == -42.5


@pytest.mark.usefixtures("registered")
def test_staleness_is_judged_by_the_platforms_clock(
    platform_sim: ThreadedPlatformSim, platform_signer: SoftwareSigner
) -> None:
    platform_sim.set_clock_offset(16 * 60)  # the platform runs 16 minutes ahead
    answer = signed_post(platform_sim, platform_signer, Operation.FLOAT, {})
    assert refusal(answer) == (400, "stale_request")
    sixteen_ahead = datetime.now(UTC) + timedelta(minutes=16)
    answer = signed_post(
        platform_sim, platform_signer, Operation.FLOAT, {}, request_time=sixteen_ahead
    )
    assert answer[0] == 200


# ---------------------------------------------------------------- hold expiry


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(tmp_path / "ledger.sqlite3", opening_float_fen=100_000)
    ledger.register(STATION, TERMINAL, "certificate", T0)
    return ledger


T0 = datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC)


def post_on(ledger: Ledger, key: str, hold_id: str, now: datetime) -> object:
    return ledger.post_payment(
        STATION,
        TERMINAL,
        key,
        hold_id=hold_id,
        service="mobile-topup",
        biller="mobile",
        account="13800138000",
        amount_fen=10_000,
        fee_fen=0,
        bill_id=None,
        now=now,
    )


def test_a_hold_expires_after_its_documented_lifetime_and_frees_its_float(ledger: Ledger) -> None:
    assert HOLD_LIFETIME == timedelta(minutes=30)
    ledger.hold(STATION, TERMINAL, "h1", 10_000, T0)
    last_moment = T0 + HOLD_LIFETIME - timedelta(seconds=1)
    assert ledger.float_state(STATION, last_moment).held_fen == 10_000
    expired_at = T0 + HOLD_LIFETIME
    assert ledger.float_state(STATION, expired_at).held_fen == 0
    with pytest.raises(PlatformRefused) as refused:
        post_on(ledger, "p1", "h1", expired_at)
    assert refused.value.code == "hold_missing"
    # Releasing it is not an error, and its id never reserves again.
    assert ledger.release(STATION, TERMINAL, "h1", expired_at).held_fen == 0
    assert ledger.hold(STATION, TERMINAL, "h1", 10_000, expired_at).held_fen == 0
    (hold,) = ledger.dump()["holds"]
    assert (hold["state"], hold["expires_at"]) == ("expired", "2026-05-01T10:30:00+00:00")
    assert ledger.float_state(STATION, expired_at).balance_fen == 100_000


def test_a_hold_used_in_time_is_consumed_not_expired(ledger: Ledger) -> None:
    ledger.hold(STATION, TERMINAL, "h1", 10_000, T0)
    post_on(ledger, "p1", "h1", T0 + timedelta(minutes=29))
    later = T0 + timedelta(hours=2)
    assert [h["state"] for h in ledger.dump(later)["holds"]] == ["consumed"]
    assert ledger.float_state(STATION, later).balance_fen == 90_000


def test_the_hold_lifetime_is_judged_by_the_simulators_clock_over_http(
    platform_sim_factory: Any, platform_signer: SoftwareSigner
) -> None:
    sim = platform_sim_factory(hold_lifetime_s=600)
    client = funded_client_for(sim, platform_signer)
    client.hold_float("hold-1", 12_345)
    # Ten seconds either side of the lifetime: the real seconds this test takes on a busy
    # machine add to the offset (at 599 s, two slow seconds had already expired the hold).
    sim.set_clock_offset(590)
    assert client.float_state().held_fen == 12_345
    sim.set_clock_offset(610)  # past the lifetime, still within the 15 minutes of freshness
    assert client.float_state().held_fen == 0
    with pytest.raises(PlatformRefused) as refused:
        client.post_payment(
            "pay-1",
            hold_id="hold-1",
            service="water-bill",
            biller="water",
            account="3100000011",
            amount_fen=12_345,
            fee_fen=0,
            bill_id=None,
        )
    assert refused.value.code == "hold_missing"
    assert client.release_float("hold-1").held_fen == 0
    assert [h["state"] for h in sim.dump()["holds"]] == ["expired"]


def test_a_ledger_from_before_holds_expired_is_brought_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as old:
        old.executescript(
            "CREATE TABLE stations (station TEXT PRIMARY KEY, balance_fen INTEGER NOT NULL, "
            "created_at TEXT NOT NULL);"
            "CREATE TABLE holds (hold_id TEXT PRIMARY KEY, station TEXT NOT NULL, "
            "terminal TEXT NOT NULL, amount_fen INTEGER NOT NULL, state TEXT NOT NULL CHECK "
            "(state IN ('active', 'released', 'consumed')), payment_key TEXT, "
            "created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
            "CREATE INDEX holds_active ON holds(station) WHERE state = 'active';"
            f"INSERT INTO stations VALUES ('{STATION}', 50000, '2026-05-01T18:00:00+08:00');"
            f"INSERT INTO holds VALUES ('h1', '{STATION}', '{TERMINAL}', 2000, 'active', NULL, "
            "'2026-05-01T18:00:00+08:00', '2026-05-01T18:00:00+08:00');"
        )
    old.close()
    ledger = Ledger(path)
    assert ledger.float_state(STATION, T0 + timedelta(minutes=29)).held_fen == 2_000
    assert ledger.float_state(STATION, T0 + timedelta(minutes=30)).held_fen == 0
    Ledger(path)  # opening it again changes nothing
    assert [h["expires_at"] for h in ledger.dump()["holds"]] == ["2026-05-01T10:30:00+00:00"]


# ---------------------------------------------------------------- vouchers


def issue(client: PlatformClient, voucher_id: str = "V-1", **changes: Any) -> Voucher:
    details: dict[str, Any] = {
        "amount_fen": 1_250,
        "receipt_no": "T-01-000123",
        "expires": date.today() + timedelta(days=30),
    }
    details.update(changes)
    return client.issue_voucher(voucher_id, **details)


def other_terminal(
    sim: ThreadedPlatformSim, tmp_path: Path, terminal: str, station: str = STATION
) -> PlatformClient:
    signer = create_software_identity(
        tmp_path / f"{station}-{terminal}.key",
        tmp_path / f"{station}-{terminal}.pem",
        institution_no=station,
        terminal_id=terminal,
        station_name="Another",
    )
    client = PlatformClient(sim.url, station=station, terminal=terminal, signer=signer)
    client.register()
    return client


def test_a_voucher_is_issued_and_redeemed_once(
    platform_sim: ThreadedPlatformSim, platform_client: PlatformClient
) -> None:
    issued = issue(platform_client)
    assert (issued.state, issued.amount_fen, issued.receipt_no) == ("issued", 1_250, "T-01-000123")
    assert issued.redeemed_at is None and issued.redeemed_by is None
    assert issue(platform_client) == issued  # the same id, the same details: a retry
    redeemed = platform_client.redeem_voucher("redeem-1", voucher_id="V-1", amount_fen=1_250)
    assert redeemed.state is VoucherState.REDEEMED and redeemed.redeemed_by == TERMINAL
    assert redeemed.redeemed_at is not None
    assert abs(redeemed.redeemed_at - datetime.now(UTC)) < timedelta(seconds=5)
    # The same redemption again is a retry and answers the same; another one is refused.
    assert platform_client.redeem_voucher("redeem-1", voucher_id="V-1", amount_fen=1_250) == (
        redeemed
    )
    with pytest.raises(PlatformRefused) as refused:
        platform_client.redeem_voucher("redeem-2", voucher_id="V-1", amount_fen=1_250)
    assert (refused.value.code, refused.value.http_status) == ("voucher_already_redeemed", 409)
    assert platform_client.voucher_status("V-1") == redeemed
    (listed,) = platform_sim.vouchers()
    assert (listed["redeem_key"], listed["redeemed_by"], listed["state"]) == (
        "redeem-1",
        TERMINAL,
        "redeemed",
    )
    assert platform_sim.dump()["vouchers"] == [listed]
    assert platform_sim.balance_fen() == 200_000  # a voucher is paid from cash, not float


def test_a_voucher_is_redeemable_at_any_terminal_of_its_station_and_no_other(
    platform_sim: ThreadedPlatformSim, platform_client: PlatformClient, tmp_path: Path
) -> None:
    issue(platform_client)
    elsewhere = other_terminal(platform_sim, tmp_path, "T-01", station="31010002")
    with pytest.raises(PlatformRefused) as refused:
        elsewhere.redeem_voucher("redeem-x", voucher_id="V-1", amount_fen=1_250)
    assert refused.value.code == "voucher_not_found"
    with pytest.raises(PlatformRefused):
        elsewhere.voucher_status("V-1")
    neighbour = other_terminal(platform_sim, tmp_path, "T-02")
    redeemed = neighbour.redeem_voucher("redeem-2", voucher_id="V-1", amount_fen=1_250)
    assert redeemed.redeemed_by == "T-02"
    assert platform_client.voucher_status("V-1").redeemed_by == "T-02"


@pytest.mark.parametrize(
    ("voucher_id", "amount_fen", "code", "status"),
    [
        ("V-unknown", 1_250, "voucher_not_found", 404),
        ("V-1", 1_000, "voucher_amount_mismatch", 409),
    ],
)
def test_a_redemption_of_an_unknown_voucher_or_another_amount_is_refused(
    platform_sim: ThreadedPlatformSim,
    platform_client: PlatformClient,
    voucher_id: str,
    amount_fen: int,
    code: str,
    status: int,
) -> None:
    issue(platform_client)
    with pytest.raises(PlatformRefused) as refused:
        platform_client.redeem_voucher("redeem-1", voucher_id=voucher_id, amount_fen=amount_fen)
    assert (refused.value.code, refused.value.http_status) == (code, status)
    assert platform_client.voucher_status("V-1").state == "issued"


def test_an_expired_voucher_is_refused_and_shown_expired(
    platform_sim: ThreadedPlatformSim, platform_client: PlatformClient
) -> None:
    ledger = platform_sim.simulator.ledger
    yesterday = date.today() - timedelta(days=1)
    issued_then = datetime.now(UTC) - timedelta(days=10)
    ledger.issue_voucher(
        STATION,
        TERMINAL,
        "V-old",
        amount_fen=800,
        receipt_no="T-01-000042",
        expires=yesterday,
        now=issued_then,
    )
    with pytest.raises(PlatformRefused) as refused:
        platform_client.redeem_voucher("redeem-1", voucher_id="V-old", amount_fen=800)
    assert (refused.value.code, refused.value.http_status) == ("voucher_expired", 410)
    assert platform_client.voucher_status("V-old").state is VoucherState.EXPIRED
    assert [v["state"] for v in platform_sim.vouchers()] == ["expired"]


def test_a_voucher_is_valid_through_its_expiry_date(ledger: Ledger) -> None:
    last_day = T0.date()
    ledger.issue_voucher(
        STATION, TERMINAL, "V-1", amount_fen=500, receipt_no="R", expires=last_day, now=T0
    )
    end_of_day = datetime.combine(last_day, datetime.max.time(), tzinfo=UTC)
    assert ledger.voucher_status(STATION, "V-1", end_of_day).state == "issued"
    next_day = end_of_day + timedelta(microseconds=1)
    assert ledger.voucher_status(STATION, "V-1", next_day).state == "expired"
    with pytest.raises(PlatformRefused) as refused:
        ledger.redeem_voucher(
            STATION, TERMINAL, "r1", voucher_id="V-1", amount_fen=500, now=next_day
        )
    assert refused.value.code == "voucher_expired"


def test_a_redeemed_voucher_stays_redeemed_after_its_expiry(ledger: Ledger) -> None:
    ledger.issue_voucher(
        STATION, TERMINAL, "V-1", amount_fen=500, receipt_no="R", expires=T0.date(), now=T0
    )
    ledger.redeem_voucher(STATION, TERMINAL, "r1", voucher_id="V-1", amount_fen=500, now=T0)
    much_later = T0 + timedelta(days=400)
    assert ledger.voucher_status(STATION, "V-1", much_later).state == "redeemed"
    replay = ledger.redeem_voucher(
        STATION, TERMINAL, "r1", voucher_id="V-1", amount_fen=500, now=much_later
    )
    assert replay.redeemed_at == T0


@pytest.mark.parametrize(
    "changes",
    [
        {"amount_fen": 1_251},
        {"receipt_no": "T-01-000124"},
        {"expires": date.today() + timedelta(days=31)},
    ],
)
def test_a_voucher_id_issued_again_with_other_details_is_refused(
    platform_client: PlatformClient, changes: dict[str, Any]
) -> None:
    issue(platform_client)
    with pytest.raises(PlatformRefused) as refused:
        issue(platform_client, **changes)
    assert (refused.value.code, refused.value.http_status) == ("key_reused", 409)


def test_a_redemption_key_reused_for_another_voucher_is_refused(
    platform_client: PlatformClient,
) -> None:
    issue(platform_client, "V-1")
    issue(platform_client, "V-2")
    platform_client.redeem_voucher("redeem-1", voucher_id="V-1", amount_fen=1_250)
    with pytest.raises(PlatformRefused) as refused:
        platform_client.redeem_voucher("redeem-1", voucher_id="V-2", amount_fen=1_250)
    assert refused.value.code == "key_reused"
    assert platform_client.voucher_status("V-2").state == "issued"


def test_a_voucher_expiring_before_today_is_not_issued(
    platform_sim: ThreadedPlatformSim, platform_client: PlatformClient
) -> None:
    with pytest.raises(PlatformRefused) as refused:
        issue(platform_client, expires=date.today() - timedelta(days=2))
    assert refused.value.code == "bad_request"
    assert platform_sim.vouchers() == []


@pytest.mark.usefixtures("registered")
@pytest.mark.parametrize("expires", ["2026-13-01", "20260601", 20260601, None])
def test_a_voucher_expiry_that_is_not_a_date_is_refused(
    platform_sim: ThreadedPlatformSim, platform_signer: SoftwareSigner, expires: Any
) -> None:
    fields = {"key": "V-1", "amount_fen": 100, "receipt_no": "R", "expires": expires}
    answer = signed_post(platform_sim, platform_signer, Operation.VOUCHER_ISSUE, fields)
    assert refusal(answer) == (400, "bad_request")
    assert platform_sim.vouchers() == []
