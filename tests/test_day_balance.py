"""日终轧帐 that balances: opening float + confirmed deposits - debits = closing float = the
platform's own figure (账账相符), with one float shared by every terminal of the station,
and a day that does not balance, or could not be checked, raising an alert.

The terminal core on simulated devices against the real platform simulator over HTTP; the
journal export is checked by the auditor's verifier.
"""

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

from drivers.token.software import create_software_identity
from kiosk.journal import verify_jsonl
from kiosk.operator import Actor, Role
from kiosk.platform import PlatformClient
from tests.fixtures.engine_hook import engine_of
from tests.fixtures.platform import FUNDING_FEN
from tests.fixtures.terminal import STATION, TERMINAL, TerminalRig

OPERATOR = Actor("OP-0007", Role.OPERATOR)
ISSUE_KEYS = (
    "business_day",
    "opening_float_fen",
    "deposits_fen",
    "debits_fen",
    "closing_float_fen",
    "platform_float_fen",
    "balanced",
    "cash_expected_fen",
    "vouchers_issued_fen",
    "vouchers_redeemed_fen",
)


def sell_topup(rig: TerminalRig, amount_fen: int, *notes: int) -> dict[str, Any]:
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", amount_fen)
    rig.insert(progress.tx_id, *notes)
    rig.terminal.finish(progress.tx_id)
    return rig.closes()[-1]


def not_balanced_alerts(rig: TerminalRig) -> list[dict[str, Any]]:
    return [r for r in rig.records_of("alert") if r["alert"] == "day_not_balanced"]


def journal_sound(rig: TerminalRig) -> None:
    out = io.StringIO()
    rig.terminal.export_journal(out)
    report = verify_jsonl(out.getvalue().splitlines(keepends=True), rig.signer.certificate_pem())
    assert report.ok, report.problem


def other_terminal(rig: TerminalRig, tmp_path: Path) -> PlatformClient:
    """The station's second kiosk, selling from the same float."""
    signer = create_software_identity(
        tmp_path / "t2-key.pem",
        tmp_path / "t2-cert.pem",
        institution_no=STATION,
        terminal_id="T0002",
        station_name="青山社区便民服务站",
    )
    client = PlatformClient(rig.platform.url, station=STATION, terminal="T0002", signer=signer)
    client.register()
    return client


def test_an_operator_day_balances_and_its_sheet_says_so(terminal_rig: TerminalRig) -> None:
    rig, desk = terminal_rig, terminal_rig.terminal.operator
    deposit = desk.record_deposit(1_000_00, "PS-20261123-01", actor=OPERATOR)
    rig.platform.confirm_deposit(deposit.key)
    desk.check_deposits()
    sell_topup(rig, 10_00, 10_00)
    close = sell_topup(rig, 30_00, 50_00)  # a 20-yuan voucher
    desk.pay_voucher(str(close["voucher_id"]), actor=OPERATOR)

    result = desk.close_day(actor=OPERATOR)
    day = result.record
    assert set(ISSUE_KEYS) <= set(day)
    assert day["business_day"] == "2026-11-23" and day["closed_by"] == "operator:OP-0007"
    assert day["opening_float_fen"] == 0  # a new station: the credit line is zero
    assert day["deposits_fen"] == FUNDING_FEN + 1_000_00  # the outlet's and the recorded one
    assert day["debits_fen"] == day["own_debits_fen"] == day["paid_fen"] == 40_00
    assert day["closing_float_fen"] == FUNDING_FEN + 1_000_00 - 40_00
    assert (
        day["platform_float_fen"] == day["closing_float_fen"] == rig.platform.balance_fen(STATION)
    )
    assert day["balanced"] is True and day["float_difference_fen"] == 0
    assert day["cash_expected_fen"] == 60_00 - 20_00
    assert (day["vouchers_issued_fen"], day["vouchers_redeemed_fen"]) == (20_00, 20_00)
    assert day["vouchers_outstanding_fen"] == 0
    assert [d["slip_no"] for d in day["deposits_recorded"]] == ["PS-20261123-01"] * 2
    assert not_balanced_alerts(rig) == []
    assert result.printed
    sheet = rig.last_paper()
    assert "日终轧帐单" in sheet and "账账相符" in sheet and "PS-20261123-01" in sheet

    sell_topup(rig, 20_00, 20_00)  # the next business day, after the early close
    rig.clock.advance(timedelta(days=1))
    next_day = desk.close_day(actor=OPERATOR, print_sheet=False).record
    assert next_day["opening_float_fen"] == day["platform_float_fen"]
    assert (next_day["deposits_fen"], next_day["debits_fen"]) == (0, 20_00)
    assert next_day["balanced"] is True
    journal_sound(rig)


def test_the_other_kiosks_of_the_station_share_the_float_and_the_day_still_balances(
    terminal_rig: TerminalRig, tmp_path: Path
) -> None:
    rig = terminal_rig
    other = other_terminal(rig, tmp_path)
    other.hold_float("T2-hold-1", 55_00)
    other.post_payment(
        "T2-pay-1",
        hold_id="T2-hold-1",
        service="mobile-topup",
        biller="mobile",
        account="13900139000",
        amount_fen=55_00,
        fee_fen=0,
        bill_id=None,
    )
    rig.platform.fund(STATION, 500_00, slip_no="PS-OUTLET-9")  # bought, never recorded here
    sell_topup(rig, 10_00, 10_00)
    day = rig.terminal.operator.close_day(actor=OPERATOR, print_sheet=False).record
    assert (day["own_debits_fen"], day["other_terminals_debits_fen"]) == (10_00, 55_00)
    assert day["debits_fen"] == 65_00
    assert day["deposits_fen"] == FUNDING_FEN + 500_00
    assert day["balanced"] is True and not_balanced_alerts(rig) == []


def test_a_payment_in_doubt_at_the_cut_off_leaves_the_day_unbalanced_and_alerted(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    sell_topup(rig, 10_00, 10_00)
    rig.platform.set_faults(["post:timeout_after_commit:sleep_ms=2000", "status:error"])
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 20_00)
    rig.insert(progress.tx_id, 20_00)
    assert rig.terminal.finish(progress.tx_id).outcome == "in_doubt"
    rig.clock.advance(timedelta(hours=13, minutes=45))  # 23:45: past the cut-off
    rig.terminal.tick()  # housekeeping closes the day; the status query still fails
    [day] = rig.records_of("day_close")
    assert day["closed_by"] == "cut-off" and day["open_transactions"] == [progress.tx_id]
    assert day["own_debits_fen"] == 10_00  # the journal knows one paid payment
    assert day["balanced"] is False and day["float_difference_fen"] == -20_00
    [alert] = not_balanced_alerts(rig)
    assert (alert["business_day"], alert["float_difference_fen"]) == ("2026-11-23", -20_00)
    assert alert["open_transactions"] == [progress.tx_id] and "sig" in alert

    rig.platform.clear_faults()
    rig.clock.advance(timedelta(minutes=30))
    rig.terminal.tick()  # the payment settles: paid, in the next business day
    assert rig.closes()[-1]["business_day"] == "2026-11-24"
    next_day = rig.terminal.close_day(closed_by="technician:T-1")
    assert next_day["balanced"] is False and next_day["float_difference_fen"] == 20_00
    journal_sound(rig)


def test_a_reversal_the_terminal_knows_nothing_of_does_not_balance(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    close = sell_topup(rig, 30_00, 50_00)
    post_key = engine_of(rig.terminal).store.get(str(close["tx_id"])).post_key
    assert post_key is not None
    # Someone reverses the posting at the platform behind the terminal's back.
    same_terminal = PlatformClient(
        rig.platform.url, station=STATION, terminal=TERMINAL, signer=rig.signer
    )
    same_terminal.reverse_payment(post_key, "reversed at the operator's office")
    day = rig.terminal.close_day()
    assert day["reversals_fen"] == 30_00 and day["own_debits_fen"] == 30_00
    assert day["debits_fen"] == 30_00 and day["other_terminals_debits_fen"] == 0
    assert day["balanced"] is False and day["float_difference_fen"] == 30_00
    assert len(not_balanced_alerts(rig)) == 1


def test_a_day_the_platform_could_not_check_is_alerted_and_covered_by_the_next(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    sell_topup(rig, 10_00, 10_00)
    rig.platform.set_faults(["statement:error"])
    day = rig.terminal.close_day()
    assert day["float_check"] == "platform_did_not_answer" and day["balanced"] is None
    assert day["platform_float_fen"] is None and day["own_debits_fen"] == 10_00
    [alert] = not_balanced_alerts(rig)
    assert alert["float_check"] == "platform_did_not_answer"

    rig.platform.clear_faults()
    sell_topup(rig, 20_00, 20_00)
    rig.clock.advance(timedelta(days=1))
    next_day = rig.terminal.close_day()
    assert next_day["float_check"] == "checked" and next_day["balanced"] is True
    assert next_day["own_debits_fen"] == 30_00  # both days, since the last check
    assert next_day["opening_float_fen"] == 0 and next_day["deposits_fen"] == FUNDING_FEN
    journal_sound(rig)


def test_days_caught_up_at_start_are_checked_once_by_the_last(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    sell_topup(rig, 10_00, 10_00)
    rig.clock.advance(timedelta(days=3))
    rig.crash_and_restart()
    days = rig.records_of("day_close")
    assert [d["float_check"] for d in days] == [
        "checked_with_next_day",
        "checked_with_next_day",
        "checked",
    ]
    assert days[-1]["balanced"] is True and days[-1]["own_debits_fen"] == 10_00
    assert not_balanced_alerts(rig) == []
