"""End of day (日终轧帐): the signed report, and days missed while switched off."""

from datetime import date, timedelta

import pytest

from kiosk.errors import KioskError
from tests.fixtures.terminal import TerminalRig


def sell_topup(rig: TerminalRig, amount_fen: int, notes: list[int]) -> None:
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", amount_fen)
    rig.insert(progress.tx_id, *notes)
    rig.terminal.finish(progress.tx_id)


def test_the_day_report_totals_services_cash_and_vouchers(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    sell_topup(rig, 10_00, [10_00])
    sell_topup(rig, 20_00, [5_00, 20_00])  # 5 yuan over: a phone top-up gives a voucher
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 50_00)
    rig.insert(progress.tx_id, 20_00)
    rig.terminal.cancel(progress.tx_id)

    record = rig.terminal.close_day()
    assert "sig" in record and record["type"] == "day_close"
    assert record["services"] == {"mobile-topup": {"count": 2, "amount_fen": 30_00, "fee_fen": 0}}
    assert record["cash_expected_fen"] == 55_00  # nothing collected or paid out yet
    assert record["voucher_count"] == 2 and record["voucher_fen"] == 25_00
    assert record["paid_fen"] + record["voucher_fen"] == record["cash_in_fen"]
    assert rig.terminal.close_day()["seq"] == record["seq"]  # closing twice is the same report


def test_days_missed_while_switched_off_are_closed_at_start(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    sell_topup(rig, 10_00, [10_00])
    rig.clock.advance(timedelta(days=3))
    rig.crash_and_restart()
    closed = [r for r in rig.terminal.journal.records() if r["type"] == "day_close"]
    assert [r["business_day"] for r in closed] == ["2026-11-23", "2026-11-24", "2026-11-25"]
    assert closed[0]["paid_count"] == 1 and closed[1]["paid_count"] == 0


def test_a_sale_after_the_cutoff_belongs_to_the_next_business_day(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    rig.clock.advance(timedelta(hours=13, minutes=45))  # 23:45, after the 23:30 cut-off
    rig.terminal.tick()  # the housekeeping that closes the day at the cut-off
    sell_topup(rig, 10_00, [10_00])
    assert rig.closes()[-1]["business_day"] == "2026-11-24"


def test_a_sale_closed_before_the_day_is_closed_is_in_that_days_report(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    sell_topup(rig, 10_00, [10_00])
    rig.clock.advance(timedelta(hours=13, minutes=45))  # past the cut-off, day still open
    sell_topup(rig, 20_00, [20_00])
    assert [r["business_day"] for r in rig.closes()] == ["2026-11-23", "2026-11-23"]
    closed = rig.terminal.close_due_days()
    assert [r["business_day"] for r in closed] == ["2026-11-23"]
    assert closed[0]["paid_count"] == 2 and closed[0]["paid_fen"] == 30_00


def test_after_closing_today_early_the_next_sales_count_in_tomorrows_report(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    sell_topup(rig, 10_00, [10_00])
    today = rig.terminal.close_day()
    assert today["business_day"] == "2026-11-23" and today["paid_count"] == 1
    sell_topup(rig, 20_00, [20_00])  # same clock day, after the day was closed
    assert rig.closes()[-1]["business_day"] == "2026-11-24"
    rig.clock.advance(timedelta(days=1, hours=13, minutes=45))  # past the next cut-off
    tomorrow = rig.terminal.close_due_days()
    assert [r["business_day"] for r in tomorrow] == ["2026-11-24"]
    assert tomorrow[0]["paid_count"] == 1 and tomorrow[0]["paid_fen"] == 20_00


def test_every_closing_record_is_in_exactly_one_day_report(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    for hours in (1, 14, 3, 30, 2):
        sell_topup(rig, 10_00, [10_00])
        rig.clock.advance(timedelta(hours=hours))
        rig.terminal.tick()
    rig.terminal.close_day()  # the day still open
    reports = [r for r in rig.terminal.journal.records() if r["type"] == "day_close"]
    assert sum(int(str(r["paid_count"])) for r in reports) == len(rig.closes()) == 5
    assert len({r["business_day"] for r in reports}) == len(reports)


def test_a_day_that_has_not_begun_cannot_be_closed(terminal_rig: TerminalRig) -> None:
    with pytest.raises(KioskError, match="2026-11-25 has not begun"):
        terminal_rig.terminal.close_day(date(2026, 11, 25))


def test_a_day_close_that_rolls_back_leaves_the_day_open(
    terminal_rig: TerminalRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = terminal_rig
    calendar = rig.terminal.calendar
    mark_closed = calendar.mark_closed

    def mark_then_fail(day: date, journal_seq: int) -> None:
        mark_closed(day, journal_seq)
        raise OSError("disk full")  # after the day was written, before the commit

    monkeypatch.setattr(calendar, "mark_closed", mark_then_fail)
    with pytest.raises(OSError):
        rig.terminal.close_day()
    monkeypatch.undo()
    now = rig.clock.now()
    assert calendar.open_day(now) == date(2026, 11, 23) and calendar.last_closed() is None
    sell_topup(rig, 10_00, [10_00])
    assert rig.closes()[-1]["business_day"] == "2026-11-23"
    assert rig.terminal.close_day()["paid_count"] == 1


def test_a_day_closed_meanwhile_by_another_thread_is_answered_not_closed_twice(
    terminal_rig: TerminalRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = terminal_rig
    sell_topup(rig, 10_00, [10_00])
    days = rig.terminal.days
    statement = rig.terminal.float_account.statement
    first: list[dict[str, object]] = []
    screen_closing: list[bool] = []

    def statement_while_the_screen_closes_the_day() -> object:
        read = statement()
        if not screen_closing:  # the screen's close lands after this close chose its days
            screen_closing.append(True)
            first.append(days.close(date(2026, 11, 23), rig.clock.now()))
        return read

    monkeypatch.setattr(
        rig.terminal.float_account, "statement", statement_while_the_screen_closes_the_day
    )
    record = rig.terminal.close_day()
    assert record == first[0]
    closes = [r for r in rig.terminal.journal.records() if r["type"] == "day_close"]
    assert len(closes) == 1 and closes[0]["paid_count"] == 1
