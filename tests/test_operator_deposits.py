"""Float deposits (续费) recorded at the terminal: the 500-yuan minimum, the slip, pending until
the platform confirms, and a new station that sells nothing until then (seed 002).

Real terminal core on simulated devices against the real platform simulator over HTTP.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.errors import TranslatedError
from kiosk.i18n import translator
from kiosk.ledger.deposits import DepositRefused, DepositState
from kiosk.operator import Actor, NotPermitted, Role
from kiosk.operator.session import NotLoggedIn
from kiosk.transactions.engine import PaymentRefused
from tests.fixtures.terminal import STATION, TerminalRig, started_rig

TECHNICIAN = Actor("T-0042", Role.TECHNICIAN)
OFFICE = Actor("cmd-7", Role.BACK_OFFICE)


@pytest.fixture
def new_station(tmp_path: Path, platform_sim: Any) -> Iterator[TerminalRig]:
    """A terminal of a station that has not bought any float yet."""
    with started_rig(tmp_path / "terminal", platform_sim, funded=False) as rig:
        yield rig


def records(rig: TerminalRig, type: str) -> list[dict[str, Any]]:
    return rig.records_of(type)


def test_a_new_station_sells_nothing_until_its_first_deposit_is_confirmed(
    new_station: TerminalRig,
) -> None:
    rig = new_station
    assert rig.terminal.float_account.last_known() is not None
    assert rig.terminal.float_account.last_known().balance_fen == 0  # type: ignore[union-attr]
    assert rig.terminal.service_state() == "attention"  # low float shows on the lamp
    with pytest.raises(PaymentRefused, match="float is too low"):
        rig.terminal.start_phone_topup("mobile-topup", "13800138000", 10_00)

    entry = rig.terminal.operator.record_deposit(1_000_00, "PS 2026 1123 0001", actor=TECHNICIAN)
    assert (entry.state, entry.slip_no) == (DepositState.PENDING, "PS202611230001")
    with pytest.raises(PaymentRefused, match="float is too low"):  # pending is not float
        rig.terminal.start_phone_topup("mobile-topup", "13800138000", 10_00)

    rig.platform.confirm_deposit(entry.key)
    rig.terminal.tick()  # housekeeping asks about pending deposits
    assert rig.terminal.operator.check_deposits() == []  # confirmed once, already
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 10_00)
    rig.insert(progress.tx_id, 10_00)
    assert rig.terminal.finish(progress.tx_id).outcome == "paid"
    states = [(r["state"], r["by"], r["role"]) for r in records(rig, "float_deposit")]
    assert states == [("pending", "T-0042", "technician"), ("confirmed", "T-0042", "technician")]
    assert all("sig" in r for r in records(rig, "float_deposit"))


@pytest.mark.parametrize("amount", [0, 1, 49_999])
def test_a_deposit_under_500_yuan_is_refused_in_one_line_and_nothing_is_recorded(
    terminal_rig: TerminalRig, amount: int
) -> None:
    rig = terminal_rig
    with pytest.raises(DepositRefused) as refused:
        rig.terminal.operator.record_deposit(amount, "PS-0001", actor=TECHNICIAN)
    message = str(refused.value)
    assert "\n" not in message and "at least ¥500.00" in message
    assert "至少¥500.00" in refused.value.translated(translator("zh_CN"))
    assert records(rig, "float_deposit") == []
    assert "deposit" not in rig.platform.requests_seen()


@pytest.mark.parametrize("slip", ["", "12", "slip no. 7", "-0001", "存款0001", "X" * 33])
def test_a_deposit_without_a_slip_number_is_refused_and_nothing_is_recorded(
    terminal_rig: TerminalRig, slip: str
) -> None:
    with pytest.raises(DepositRefused, match="is not a deposit slip number"):
        terminal_rig.terminal.operator.record_deposit(50_000, slip, actor=TECHNICIAN)
    assert records(terminal_rig, "float_deposit") == []


def test_a_deposit_counts_only_once_the_platform_confirms_it(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    before = rig.platform.balance_fen(STATION)
    entry = rig.terminal.operator.record_deposit(50_000, "PS-0002", actor=TECHNICIAN)
    assert rig.terminal.operator.check_deposits() == []
    assert rig.platform.balance_fen(STATION) == before
    overview = rig.terminal.operator.float_overview(actor=TECHNICIAN)
    assert overview.pending_deposits_fen == 50_000 and overview.balance_fen == before
    assert [d.slip_no for d in overview.deposits] == ["PS-0002"]

    rig.platform.confirm_deposit(entry.key)
    [confirmed] = rig.terminal.operator.check_deposits()
    assert confirmed.state is DepositState.CONFIRMED and confirmed.settled_at
    assert rig.platform.balance_fen(STATION) == before + 50_000
    assert rig.terminal.float_account.last_known().balance_fen == before + 50_000  # type: ignore[union-attr]
    assert rig.terminal.operator.float_overview(actor=TECHNICIAN).pending_deposits_fen == 0


def test_one_slip_is_one_deposit_here_and_on_the_platform(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    rig.terminal.operator.record_deposit(50_000, "PS-0003", actor=TECHNICIAN)
    with pytest.raises(DepositRefused, match="PS-0003 is already recorded"):
        rig.terminal.operator.record_deposit(60_000, "ps-0003", actor=TECHNICIAN)
    # The station recorded this slip at the outlet already: the platform refuses it.
    rig.platform.fund(STATION, 70_000, slip_no="PS-0004")
    with pytest.raises(DepositRefused, match="refused the deposit on slip PS-0004"):
        rig.terminal.operator.record_deposit(70_000, "PS-0004", actor=TECHNICIAN)
    refused = [r for r in records(rig, "float_deposit") if r["state"] == "refused"]
    assert [(r["slip_no"], r["refusal"]) for r in refused] == [("PS-0004", "slip_already_recorded")]
    alerts = [r for r in records(rig, "alert") if r["alert"] == "deposit_refused"]
    assert [a["slip_no"] for a in alerts] == ["PS-0004"]


def test_a_deposit_recorded_while_the_platform_is_silent_is_announced_later(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    rig.platform.set_faults(["deposit:timeout_before:sleep_ms=2000"])
    entry = rig.terminal.operator.record_deposit(80_000, "PS-0005", actor=OFFICE)
    assert (entry.state, entry.announced) == (DepositState.PENDING, False)
    assert rig.platform.dump()["deposits"][-1]["slip_no"] != "PS-0005"  # never arrived
    rig.platform.clear_faults()
    assert rig.terminal.operator.check_deposits() == []  # announced now, still pending
    assert rig.terminal.operator.float_overview(actor=OFFICE).deposits[0].announced
    rig.platform.confirm_deposit(entry.key)
    assert [d.slip_no for d in rig.terminal.operator.check_deposits()] == ["PS-0005"]


def test_an_answer_lost_after_the_platform_recorded_it_is_not_recorded_twice(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    rig.platform.set_faults(["deposit:timeout_after_commit:sleep_ms=2000:count=2"])
    entry = rig.terminal.operator.record_deposit(80_000, "PS-0006", actor=OFFICE)
    assert not entry.announced
    rig.terminal.operator.check_deposits()  # the same key again: idempotent
    deposits = [d for d in rig.platform.dump()["deposits"] if d["slip_no"] == "PS-0006"]
    assert [d["key"] for d in deposits] == [entry.key]


def test_operator_actions_need_a_session_or_a_permitted_actor(terminal_rig: TerminalRig) -> None:
    desk = terminal_rig.terminal.operator
    with pytest.raises(NotLoggedIn, match="insert the operator card"):
        desk.record_deposit(50_000, "PS-0007")
    with pytest.raises(NotLoggedIn):
        desk.float_overview()
    from kiosk.ledger.cash_box import CashCount

    with pytest.raises(NotPermitted) as refused:
        desk.collect_cash(CashCount({}), actor=TECHNICIAN)
    assert "T-0042 (technician) may not collect_cash" in str(refused.value)
    assert "无权清机" in refused.value.translated(translator("zh_CN"))
    with pytest.raises(NotPermitted):
        desk.pay_voucher("ABCD-EFGH-JKLM-NPQR", actor=OFFICE)
    with pytest.raises(NotPermitted):
        desk.reprint("T0001-000001", actor=OFFICE)
    assert records(terminal_rig, "cash_collection") == []
    assert isinstance(refused.value, TranslatedError)
