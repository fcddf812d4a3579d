"""Payments by phone in the back office's books (issue #21 item 4), on SQLite and a real
PostgreSQL server: signed tx_close and day_close records as the simulated terminal journals
them (paid in cash, by each wallet, refunded to a wallet), through the real ingest; then the
daily reconciliation and activity reports split by method with their check against the day
close's `payment_methods`, revenue split by method, a commission that does not depend on the
method, the look-ups, the station page, and `kiosk-backoffice report` CSV/JSON."""

import csv
import datetime
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backoffice import commission, lookups, pay_methods, reports
from backoffice.cli import main
from backoffice.config import parse_config
from backoffice.store import Store
from kiosk.journal.record_types import RecordType
from kiosk.journal.totals import day_totals
from kiosk.payment_codes import PaymentScheme
from kiosk.settlement.pay_methods import method_of, payment_method_split
from simulators.fleet import SimulatedTerminal
from tests.fixtures.zones import machine_date_off_the_stations, stations_today
from tests.test_backoffice_operator_day import (
    STATION,
    dashboard,
    get,
    ingest,
    register,
)

DAY = datetime.date(2026, 11, 5)
WECHAT, ALIPAY, UNIONPAY = PaymentScheme.WECHAT, PaymentScheme.ALIPAY, PaymentScheme.UNIONPAY


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def terminal(tmp_path: Path, store: Store) -> SimulatedTerminal:
    # Never started: its signed records are handed to the ingestor directly.
    sim = SimulatedTerminal(tmp_path, station=STATION, terminal="T-01", host="127.0.0.1", port=1)
    sim.register_with(store)
    return sim


def closes_of(sim: SimulatedTerminal, day: datetime.date) -> list[dict[str, Any]]:
    return [
        r
        for r in sim.journal.of_type(RecordType.TX_CLOSE, 0)
        if r.get("business_day") == day.isoformat()
    ]


def close_day(
    sim: SimulatedTerminal, day: datetime.date, *, split: bool = True, **overrides: Any
) -> dict[str, object]:
    """The day_close as the terminal computes it (kiosk.journal.totals, kiosk.settlement.
    pay_methods) from the simulator's own closes, with whatever a test overrides. split
    False: as a terminal wrote it before payment methods existed."""
    closes = closes_of(sim, day)
    totals = day_totals(closes, day.isoformat())
    report = {
        "business_day": day.isoformat(),
        "services": totals["services"],
        "paid_count": sum(s["count"] for s in totals["services"].values()),
        "paid_fen": sum(s["amount_fen"] + s["fee_fen"] for s in totals["services"].values()),
        "report_version": 2,
        "balanced": True,
        "float_check": "checked",
        "closed_by": "cut-off",
        **(payment_method_split(closes, day.isoformat()) if split else {}),
        **overrides,
    }
    return sim.journal_record(RecordType.DAY_CLOSE, report)


def a_mixed_day(sim: SimulatedTerminal, day: datetime.date = DAY) -> list[dict[str, object]]:
    """Two cash payments, one by each wallet, and one by UnionPay refunded."""
    return [
        sim.pay(1_000, 100, service="water-bill", day=day),
        sim.pay(2_000, 100, service="water-bill", day=day),
        sim.pay(3_000, 200, service="water-bill", day=day, wallet=WECHAT),
        sim.pay(4_000, 0, service="gas-bill", day=day, wallet=ALIPAY),
        sim.pay(5_000, 100, service="gas-bill", day=day, wallet=UNIONPAY),
        sim.pay(6_000, 100, service="gas-bill", day=day, wallet=UNIONPAY, refunded=True),
    ]


def test_the_method_sql_reads_every_close_as_kiosk_does(
    store: Store, terminal: SimulatedTerminal
) -> None:
    records = a_mixed_day(terminal)
    older = dict(records[0])  # a close from before payment methods: cash
    del older["payment_method"]
    ingest(store, terminal, *records)
    rows = store.query(
        f"SELECT tx_id, {pay_methods.METHOD_SQL} AS pay_method FROM records WHERE type = ?",
        (RecordType.TX_CLOSE,),
    )
    assert {r["tx_id"]: r["pay_method"] for r in rows} == {
        str(r["tx_id"]): method_of(r) for r in records
    }
    assert method_of(older) == "cash"
    assert pay_methods.refunded_fen([json.dumps(r) for r in records]) == 6_100


def test_the_daily_reconciliation_splits_by_method_and_agrees_with_the_day_close(
    store: Store, terminal: SimulatedTerminal
) -> None:
    ingest(store, terminal, *a_mixed_day(terminal), close_day(terminal, DAY))
    (row,) = reports.reconciliation(store, DAY)
    assert (row["status"], row["methods_status"]) == ("ok", "ok")
    assert (row["received_count"], row["received_fen"]) == (5, 15_500)
    assert (row["cash_count"], row["cash_amount_fen"], row["cash_fee_fen"]) == (2, 3_000, 200)
    assert (row["wechat_count"], row["wechat_amount_fen"], row["wechat_fee_fen"]) == (1, 3_000, 200)
    assert (row["alipay_count"], row["alipay_amount_fen"]) == (1, 4_000)
    # The refunded one is not paid: only in the refunds to wallets.
    assert (row["unionpay_count"], row["unionpay_amount_fen"]) == (1, 5_000)
    assert row["qr_refunded_fen"] == row["reported_qr_refunded_fen"] == 6_100


def test_a_day_close_whose_split_disagrees_is_flagged_though_its_totals_agree(
    store: Store, terminal: SimulatedTerminal
) -> None:
    a_mixed_day(terminal)
    # The same totals, all reported as cash: the split is wrong, the totals right.
    wrong = {"cash": {"count": 5, "amount_fen": 15_000, "fee_fen": 500}}
    ingest(
        store,
        terminal,
        *closes_of(terminal, DAY),
        close_day(terminal, DAY, payment_methods=wrong),
    )
    (row,) = reports.reconciliation(store, DAY)
    assert (row["status"], row["methods_status"]) == ("ok", "mismatch")
    page = get(dashboard(store), f"/reports/daily?day={DAY.isoformat()}&lang=en")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'class="row mismatch"' in text and "Payment methods check" in text


def test_refunds_to_wallets_are_checked_too(store: Store, terminal: SimulatedTerminal) -> None:
    a_mixed_day(terminal)
    ingest(
        store,
        terminal,
        *closes_of(terminal, DAY),
        close_day(terminal, DAY, qr_refunded_fen=0),
    )
    (row,) = reports.reconciliation(store, DAY)
    assert (row["status"], row["methods_status"]) == ("ok", "mismatch")


def test_a_day_close_from_before_payment_methods_agrees_only_with_cash(
    store: Store, terminal: SimulatedTerminal
) -> None:
    day, other = DAY, DAY + datetime.timedelta(days=1)
    terminal.pay(1_000, 100, service="water-bill", day=day)
    terminal.pay(2_000, 0, service="water-bill", day=other, wallet=WECHAT)
    ingest(
        store,
        terminal,
        *closes_of(terminal, day),
        *closes_of(terminal, other),
        close_day(terminal, day, split=False),
        close_day(terminal, other, split=False),
    )
    assert reports.reconciliation(store, day)[0]["methods_status"] == "ok"
    assert reports.reconciliation(store, other)[0]["methods_status"] == "mismatch"
    # No day close at all: said so in both checks.
    next_day = other + datetime.timedelta(days=1)
    ingest(store, terminal, terminal.pay(500, 0, day=next_day, wallet=ALIPAY))
    (row,) = reports.reconciliation(store, next_day)
    assert (row["status"], row["methods_status"]) == ("no_day_close", "no_day_close")


def test_the_month_report_splits_by_method(store: Store, terminal: SimulatedTerminal) -> None:
    second = DAY + datetime.timedelta(days=1)
    ingest(store, terminal, *a_mixed_day(terminal), *a_mixed_day(terminal, second))
    (row,) = reports.activity(store, "month", DAY.replace(day=1), DAY.replace(day=30))
    assert (row["count"], row["amount_fen"], row["fee_fen"]) == (10, 30_000, 1_000)
    assert (row["cash_count"], row["wechat_count"], row["alipay_count"]) == (4, 2, 2)
    assert row["unionpay_amount_fen"] == 10_000 and row["qr_refunded_fen"] == 12_200
    methods = sum(row[f"{pay_methods.prefix(m)}_amount_fen"] for m in pay_methods.METHODS)
    assert methods == row["amount_fen"]


def test_revenue_by_business_type_splits_by_method_and_still_checks_the_day_close(
    store: Store, terminal: SimulatedTerminal
) -> None:
    ingest(store, terminal, *a_mixed_day(terminal), close_day(terminal, DAY))
    plain = lookups.revenue(store, "day", DAY, DAY)
    assert "cash_count" not in plain[0]
    rows = {r["service"]: r for r in lookups.revenue(store, "day", DAY, DAY, by_method=True)}
    assert [r["status"] for r in rows.values()] == ["ok", "ok"]
    water, gas = rows["water-bill"], rows["gas-bill"]
    assert (water["cash_count"], water["wechat_count"], water["count"]) == (2, 1, 3)
    assert (gas["alipay_amount_fen"], gas["unionpay_amount_fen"], gas["cash_count"]) == (
        4_000,
        5_000,
        0,
    )
    assert gas["qr_refunded_fen"] == 6_100 and water["qr_refunded_fen"] == 0
    page = get(dashboard(store), f"/revenue?from={DAY}&to={DAY}&by=method")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "微信支付笔数" in text and "原路退款" in text
    csv_text = get(dashboard(store), f"/revenue?from={DAY}&to={DAY}&by=method&format=csv")
    header = next(csv.reader(io.StringIO(csv_text.get_data(as_text=True).lstrip("\ufeff"))))
    assert {"cash_amount_fen", "unionpay_fee_fen", "qr_refunded_fen"} <= set(header)


def test_commission_is_the_same_whatever_the_residents_paid_with(
    store: Store, tmp_path: Path
) -> None:
    """The same month of sales, one station partly by phone, the other all in cash."""
    mixed, cash = "31010001", "31010002"
    sims = {}
    for number in (mixed, cash):
        register(store, number, "2025-01-01")
        sims[number] = SimulatedTerminal(
            tmp_path, station=number, terminal="T-01", host="127.0.0.1", port=1
        )
        sims[number].register_with(store)
    for offset in range(3):
        day = DAY + datetime.timedelta(days=offset)
        for number, sim in sims.items():
            wallets = (WECHAT, ALIPAY, UNIONPAY) if number == mixed else (None,) * 3
            for n, wallet in enumerate(wallets, start=1):
                sim.pay(10_000 * n, 100, service="water-bill", day=day, wallet=wallet)
            sim.pay(30_000, 0, service="mobile-topup", day=day)
            if number == mixed:  # money back to a wallet is no sale: it earns nothing
                sim.pay(8_000, 0, service="mobile-topup", day=day, wallet=WECHAT, refunded=True)
            ingest(store, sim, *closes_of(sim, day), close_day(sim, day))
    config = parse_config({"store": "sqlite:////tmp/unused.db"})
    catalog = commission.load_commission_catalog(config.commission)
    by_phone = commission.statement(store, catalog, config, mixed, "2026-11")
    in_cash = commission.statement(store, catalog, config, cash, "2026-11")
    assert by_phone.total_fen > 0
    assert (by_phone.total_fen, by_phone.station_fen, by_phone.payable_fen) == (
        in_cash.total_fen,
        in_cash.station_fen,
        in_cash.payable_fen,
    )
    (split,) = reports.activity(store, "month", DAY.replace(day=1), DAY.replace(day=30))[:1]
    assert split["station"] == mixed and split["wechat_count"] == 3


def test_look_ups_show_the_method_wallet_and_reference_and_a_refund_as_refunded(
    store: Store, terminal: SimulatedTerminal
) -> None:
    records = a_mixed_day(terminal)
    ingest(store, terminal, *records)
    paid, refunded = records[2], records[5]
    (found,) = lookups.transactions(store, receipt_no=str(paid["receipt_no"]))
    assert (found["payment_method"], found["paid_with"]) == ("qr", "wechat")
    assert found["provider_ref"] == paid["provider_ref"] and found["refunded_fen"] == 0
    (found,) = lookups.transactions(store, receipt_no=str(refunded["receipt_no"]))
    assert (found["outcome"], found["refunded_fen"]) == ("refunded", 6_100)
    (cash,) = lookups.transactions(store, receipt_no=str(records[0]["receipt_no"]))
    assert (cash["payment_method"], cash["paid_with"]) == ("cash", None)
    page = get(dashboard(store), f"/lookup?receipt={refunded['receipt_no']}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "已原路退款" in text and "云闪付" in text and str(refunded["provider_ref"]) in text
    english = get(dashboard(store), f"/lookup?receipt={paid['receipt_no']}&lang=en")
    assert "WeChat Pay" in english.get_data(as_text=True)


def test_the_station_page_shows_each_day_closes_split(
    store: Store, terminal: SimulatedTerminal
) -> None:
    ingest(store, terminal, *a_mixed_day(terminal), close_day(terminal, DAY))
    (row,) = lookups.day_closes(store, STATION)
    assert (row["cash_paid_fen"], row["wechat_paid_fen"], row["unionpay_paid_fen"]) == (
        3_200,
        3_200,
        5_100,
    )
    assert row["qr_refunded_fen"] == 6_100
    text = get(dashboard(store), f"/station/{STATION}?lang=en").get_data(as_text=True)
    assert "Paid by Alipay" in text and "¥40.00" in text and "Refunded to wallets" in text


def test_report_daily_and_month_print_the_method_columns(
    store: Store,
    store_url: str,
    terminal: SimulatedTerminal,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ingest(store, terminal, *a_mixed_day(terminal), close_day(terminal, DAY))
    config = tmp_path / "bo.toml"
    config.write_text(f'store = "{store_url}"\n')
    assert main(["report", "daily", "--config", str(config), "--day", DAY.isoformat()]) == 0
    (row,) = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert (row["wechat_amount_fen"], row["qr_refunded_fen"], row["methods_status"]) == (
        "3000",
        "6100",
        "ok",
    )
    args = ["--from", DAY.isoformat(), "--to", DAY.isoformat(), "--json"]
    assert main(["report", "month", "--config", str(config), *args]) == 0
    (month,) = json.loads(capsys.readouterr().out)
    assert month["alipay_count"] == 1 and month["cash_fee_fen"] == 200
    revenue = ["report", "revenue", "--config", str(config), "--by-method", *args]
    assert main(revenue) == 0
    assert {r["service"] for r in json.loads(capsys.readouterr().out)} == {
        "water-bill",
        "gas-bill",
    }


def test_report_daily_defaults_to_yesterday_at_the_stations_whatever_zone_the_server_keeps(
    store: Store,
    store_url: str,
    terminal: SimulatedTerminal,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A server keeping another zone than the stations' (UTC on most hosts) has another
    date for part of every day; `report daily` without --day still means the stations'
    yesterday."""
    yesterday = stations_today() - datetime.timedelta(days=1)
    with machine_date_off_the_stations(monkeypatch):
        ingest(store, terminal, *a_mixed_day(terminal, yesterday), close_day(terminal, yesterday))
        config = tmp_path / "bo.toml"
        config.write_text(f'store = "{store_url}"\n')
        assert main(["report", "daily", "--config", str(config), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["day"], row["received_count"], row["reported_count"]) == (
        yesterday.isoformat(),
        5,
        5,
    )


def test_report_csv_text_is_kept_from_running_as_a_formula() -> None:
    rows = [{"station": "=HYPERLINK(1)", "terminal": "T-01", "count": -1}]
    line = reports.to_csv(rows).splitlines()[1]
    assert line == "'=HYPERLINK(1),T-01,-1"


def test_the_fleet_simulators_day_close_carries_the_split_of_its_own_closes(
    store: Store, terminal: SimulatedTerminal
) -> None:
    records = a_mixed_day(terminal)
    report = terminal.close_day(DAY, paid_count=5, paid_fen=15_500)
    assert (
        report["payment_methods"]
        == payment_method_split(records, DAY.isoformat())["payment_methods"]
    )
    ingest(store, terminal, *records, report)
    (row,) = reports.reconciliation(store, DAY)
    assert (row["status"], row["methods_status"], row["alipay_count"]) == ("ok", "ok", 1)
    # Paid by phone, the float paid nothing: only the cash sales' amounts left it.
    assert terminal.float_balance_fen == 500_000 - 3_000
