"""The operator's actions from the back office: signed remote commands over real Mosquitto,
run on the terminal's own thread (kiosk/fleet_link.py, kiosk/telemetry/commands.py)."""

from tests.fixtures.terminal import STATION
from tests.test_fleet_link import LinkedTerminal, linked

__all__ = ["linked"]  # the fixture, shared with the fleet link's tests


def test_a_deposit_recorded_by_command_names_the_back_office_and_waits_for_confirmation(
    linked: LinkedTerminal,
) -> None:
    rig = linked.rig
    args = {"amount_fen": 80_000, "slip_no": "PS-CMD-0001", "by": "office:zhang"}
    result = linked.result_of(linked.command("record_deposit", args))
    assert result["ok"] is True, result
    assert result["result"]["state"] == "pending" and result["result"]["slip_no"] == "PS-CMD-0001"
    [record] = rig.records_of("float_deposit")
    assert (record["by"], record["role"], record["amount_fen"]) == (
        "office:zhang",
        "back_office",
        80_000,
    )
    before = rig.platform.balance_fen(STATION)
    rig.platform.confirm_deposit(result["result"]["deposit_key"])
    rig.terminal.operator.check_deposits()
    assert rig.platform.balance_fen(STATION) == before + 80_000


def test_a_deposit_command_under_500_yuan_or_without_its_slip_is_refused_with_the_reason(
    linked: LinkedTerminal,
) -> None:
    small = linked.result_of(
        linked.command("record_deposit", {"amount_fen": 100, "slip_no": "PS-1"})
    )
    assert small["ok"] is False and "at least ¥500.00" in small["error"]
    bare = linked.result_of(linked.command("record_deposit", {"amount_fen": 50_000}))
    assert bare["ok"] is False and "slip_no" in bare["error"]
    assert linked.rig.records_of("float_deposit") == []


def test_a_day_closed_by_command_says_whether_it_balances_and_who_closed_it(
    linked: LinkedTerminal,
) -> None:
    command_id = linked.command("close_day")
    result = linked.result_of(command_id)
    assert result["ok"] is True and result["result"]["balanced"] is True
    [day] = linked.rig.records_of("day_close")
    assert day["closed_by"] == f"back_office:{command_id}"
