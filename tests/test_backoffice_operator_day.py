"""The back office's side of the station operator's day (issue #18, items 2-6), on SQLite and a
real PostgreSQL server: signed terminal records ingested as the worker does, then the
station registry and its actions, the exit report, the commission statement on the
carriers' terms with the 3:7 split and tax, ratings and their follow-up, a day that does
not balance, the look-ups. Pages through the WSGI application itself (werkzeug's test
client), signed in by the proxy's header, forms with CSRF tokens; one test through a real
Mosquitto with the whole service."""

import csv
import datetime
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from backoffice import commission, follow_up, lookups, stations
from backoffice.alerts import apply_health
from backoffice.commands import args_from_form
from backoffice.config import ReportConfig, Thresholds, parse_config
from backoffice.errors import BackofficeError, CommandRefused
from backoffice.ingest import Ingestor
from backoffice.roles import Action, Role
from backoffice.service import BackofficeService
from backoffice.staff import Staff
from backoffice.store import Store
from backoffice.web import Dashboard
from kiosk.catalog.commission import split_commission
from kiosk.errors import ConfigError
from kiosk.journal.record_types import RecordType, TerminalAlertKind
from kiosk.ledger.policy import LOW_FLOAT_THRESHOLD_FEN
from kiosk.ratings import RatingStore
from simulators.fleet import SimulatedTerminal
from tests.fixtures.backoffice import wait_for

STATION = "31010001"
ADMIN = Staff("zhao", Role.ADMIN)
# 2026-12-01 10:00 in Shanghai: the first day of a month.
NOW = datetime.datetime(2026, 12, 1, 2, 0, tzinfo=datetime.UTC).timestamp()
USERS = {"wang": "operator", "zhao": "admin", "li": "viewer"}


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


def ingest(store: Store, sim: SimulatedTerminal, *records: dict[str, object]) -> None:
    Ingestor(store, Thresholds(), lambda *_: None).handle_batch(
        [
            (
                f"kiosk/v1/{sim.station}/{sim.terminal}/outbox",
                sim.outbox_payload(int(str(r["seq"])), r),
            )
            for r in records
        ]
    )


def day_close(sim: SimulatedTerminal, day: str, services: dict[str, Any], **figures: Any) -> Any:
    """A report_version 2 day_close as the terminal journals it (kiosk.settlement.day_close),
    signed, with the figures a test sets."""
    paid = [s["count"] for s in services.values()]
    report = {
        "business_day": day,
        "services": services,
        "paid_count": sum(paid),
        "paid_fen": sum(s["amount_fen"] + s.get("fee_fen", 0) for s in services.values()),
        "report_version": 2,
        "balanced": True,
        "float_check": "checked",
        "closed_by": "cut-off",
        **figures,
    }
    return sim.journal_record(RecordType.DAY_CLOSE, report)


def register(store: Store, number: str, joined: str, **fields: str) -> None:
    details = stations.StationDetails.from_form(
        {"station": number, "name": f"便民服务站 {number}", "joined": joined}
        | {"agreement_months": "36"}
        | fields
    )
    with store.transaction() as cursor:
        stations.save_station(cursor, details, ADMIN, NOW, new=True)


def dashboard(store: Store, **sections: Any) -> Client:
    config = parse_config(
        {"store": "sqlite:////tmp/unused.db", "auth": {"users": USERS, "default_role": ""}}
        | sections
    )
    return Client(Dashboard(store, config, None, clock=lambda: NOW))


def get(client: Client, path: str, user: str = "li") -> Any:
    return client.get(
        path, headers={"X-Forwarded-User": user}, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )


def post(client: Client, path: str, user: str, form: dict[str, str], csrf: bool = True) -> Any:
    if csrf:  # the token the dashboard puts in this user's forms
        staff = Staff(user, Role.named(USERS[user]))
        form = {**form, "csrf": client.application.csrf.token(staff)}
    return client.post(
        path,
        data=form,
        headers={"X-Forwarded-User": user},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )


# ------------------------------------------------------------------ commission


def test_commission_is_earned_on_the_carriers_terms_split_3_7_with_tax_withheld(
    store: Store, terminal: SimulatedTerminal
) -> None:
    register(store, STATION, "2025-01-01", payee_name="李四", payee_account="6217000012345678901")
    ingest(
        store,
        terminal,
        # The shipped catalog's sample terms: water ¥0.30 a payment, electricity 2 per
        # mille, mobile top-ups 5 per mille (never the residents' fees).
        day_close(
            terminal,
            "2026-11-03",
            {
                "water-bill": {"count": 10, "amount_fen": 500_000, "fee_fen": 0},
                "electricity-bill": {"count": 3, "amount_fen": 123_456, "fee_fen": 300},
            },
        ),
        day_close(
            terminal,
            "2026-11-04",
            {
                "mobile-topup": {"count": 2, "amount_fen": 10_000, "fee_fen": 0},
                "lottery": {"count": 1, "amount_fen": 200, "fee_fen": 0},
            },
        ),
        day_close(terminal, "2026-12-01", {"water-bill": {"count": 5, "amount_fen": 9}}),
        # Business on 5 November whose day close has not arrived: not paid on, but said.
        terminal.pay(2_000, service="water-bill", day=datetime.date(2026, 11, 5)),
    )
    config = parse_config(
        {"store": "sqlite:////tmp/unused.db", "commission": {"tax_rate_bp": 2000}}
    )
    catalog = commission.load_commission_catalog(config.commission)
    found = commission.statement(store, catalog, config, STATION, "2026-11")
    lines = {
        line.service: (line.count, line.amount_fen, line.commission_fen) for line in found.lines
    }
    # 123,456 fen x 2 per mille = 246.912 fen, rounded half up once on the month's total.
    assert lines == {
        "water-bill": (10, 500_000, 300),
        "electricity-bill": (3, 123_456, 247),
        "mobile-topup": (2, 10_000, 50),
    }
    assert found.uncovered == ("lottery",)
    assert found.day_closes == 2  # December's close is another month's
    assert found.days_without_close == (("T-01", "2026-11-05"),)
    assert (found.total_fen, found.post_fen, found.station_fen) == (597, 180, 417)
    assert (found.tax_fen, found.payable_fen) == (83, 334)  # 20 % of 417 = 83.4
    assert (found.listing_date, found.payment_date) == (
        datetime.date(2026, 12, 15),
        datetime.date(2026, 12, 20),
    )
    assert found.payee_account == "6217000012345678901"

    exported = commission.to_csv([found])
    assert exported.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel reads the Chinese
    table = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))
    assert table[0][:3] == ["网点编号", "网点名称", "结算月份"]
    assert table[1][:6] == [
        "31010001",
        "便民服务站 31010001",
        "2026-11",
        "电费",
        "electricity-bill",  # a line per service, in code order
        "交易额的 2‰",
    ]
    assert table[1][8:] == ["1234.56", "2.47"]  # 元 with two decimals
    totals = table[table.index(list(commission.CSV_TOTALS)) + 1]
    assert totals[:7] == ["5.97", "1.80", "4.17", "3:7", "20.00", "0.83", "3.34"]
    assert totals[7:] == ["2026-12-15", "2026-12-20", "李四", '="6217000012345678901"']

    client = dashboard(store, commission={"tax_rate_bp": 2000})
    page = get(client, f"/station/{STATION}/commission?month=2026-11")
    assert page.status_code == 200
    assert 'id="payable">¥3.34<' in page.text and "交易额的 2‰" in page.text
    assert "lottery" in page.text  # paid without commission terms: shown, not dropped
    assert 'id="unclosed"' in page.text and "T-01 2026-11-05" in page.text
    default = get(client, f"/station/{STATION}/commission").text  # on 1 December: November
    assert 'id="payable">¥3.34<' in default
    listing = get(client, "/commission?month=2026-11&format=csv")
    assert listing.headers["Content-Type"].startswith("text/csv")
    assert listing.data == exported
    assert get(client, "/commission?month=November").status_code == 400


def test_a_station_agreement_can_split_otherwise_and_shares_always_add_up(store: Store) -> None:
    for total in range(0, 2_000, 7):
        mine = commission.split(total, 3, 7)
        assert mine == (split_commission(total).post_fen, split_commission(total).station_fen)
        post, own = commission.split(total, 2, 8)
        assert post + own == total and own == total * 8 // 10
    assert commission.tax_of(417, 2000) == 83 and commission.tax_of(5, 1000) == 1  # half up


def test_a_wrong_commission_configuration_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="commission.tax_rate_bp"):
        parse_config({"store": "sqlite:////tmp/x.db", "commission": {"tax_rate_bp": 20_001}})
    with pytest.raises(ConfigError, match="listing_day"):
        parse_config({"store": "sqlite:////tmp/x.db", "commission": {"listing_day": 25}})
    forged = tmp_path / "catalog.json"
    forged.write_text("{}")
    (tmp_path / "catalog.json.sig").write_bytes(b"x")
    (tmp_path / "operator.pem").write_text("not a key")
    config = parse_config(
        {
            "store": "sqlite:////tmp/x.db",
            "commission": {
                "catalog_file": str(forged),
                "operator_public_key_file": str(tmp_path / "operator.pem"),
            },
        }
    )
    with pytest.raises(BackofficeError, match="the commission catalog is refused"):
        commission.load_commission_catalog(config.commission)


# ------------------------------------------------------------------ exit report


def test_the_exit_report_covers_completed_months_and_counts_a_station_from_its_join_month(
    store: Store, tmp_path: Path
) -> None:
    sims = {
        number: SimulatedTerminal(
            tmp_path, station=number, terminal="T-01", host="127.0.0.1", port=1
        )
        for number in ("31010001", "31010002", "31010003", "31010004", "31010005")
    }
    for sim in sims.values():
        sim.register_with(store)
    register(store, "31010001", "2024-01-01")  # busy: 25 a month
    register(store, "31010002", "2026-11-20")  # new in November: 5 so far
    register(store, "31010003", "2024-01-01")  # 3 a month for three months
    register(store, "31010004", "2026-12-01")  # joins today
    register(store, "31010005", "2024-01-01")  # exited
    plan = {
        "31010001": {"2026-09-10": 25, "2026-10-10": 25, "2026-11-10": 25},
        "31010002": {"2026-11-25": 5},
        "31010003": {"2026-09-10": 3, "2026-10-10": 3, "2026-11-10": 3},
        "31010005": {},
    }
    for number, days in plan.items():
        sim = sims[number]
        records = [
            sim.pay(1_000, day=datetime.date.fromisoformat(day))
            for day, count in days.items()
            for _ in range(count)
        ]
        if records:
            ingest(store, sim, *records)
    with store.transaction() as cursor:
        stations.change_status(cursor, "31010005", Action.EXIT_STATION, "合同到期", ADMIN, NOW)
    # Two unregistered stations only heard from: one first booted in October, one today.
    october = datetime.datetime(2026, 10, 20, tzinfo=datetime.UTC).timestamp()
    with store.transaction() as cursor:
        for number, first_seen in (("31010006", october), ("31010007", NOW)):
            cursor.execute(
                "INSERT INTO boots (station, terminal, boot_id, first_seen, last_seen) "
                "VALUES (?, 'T-01', 'b', ?, ?)",
                (number, first_seen, NOW),
            )
    today = datetime.date(2026, 12, 1)  # the start of a month
    rows = {r["station"]: r for r in stations.exit_report(store, None, ReportConfig(), today)}
    # Not the exited, nor those joining or first heard from after the month.
    assert set(rows) == {"31010001", "31010002", "31010003", "31010006"}
    assert (rows["31010006"]["reason"], rows["31010006"]["status"]) == (
        "no_business",
        "unregistered",
    )
    assert {r["month"] for r in rows.values()} == {"2026-11"}  # the last completed month
    assert rows["31010001"]["reason"] == ""
    assert rows["31010002"]["reason"] == ""  # new: not judged on months before it joined
    assert (rows["31010002"]["count_2026-09"], rows["31010002"]["count_2026-11"]) == (None, 5)
    assert rows["31010003"]["reason"] == "low_activity"
    with pytest.raises(BackofficeError, match="not a completed month"):
        stations.exit_report(store, "2026-12", ReportConfig(), today)
    client = dashboard(store)
    assert "not a completed month" in get(client, "/reports/exit?month=2026-12").text
    page = get(client, "/reports/exit").text
    assert "连续三个月月交易少于20笔" in page and "31010004" not in page


# ------------------------------------------------------------------ registry


def test_the_registry_and_its_actions_are_role_checked_csrf_protected_and_recorded(
    store: Store,
) -> None:
    client = dashboard(store)
    form = {
        "station": "31010009",
        "name": "城东便民服务站",
        "address": "城东路 1 号",
        "contact_name": "王芳",
        "contact_phone": "13800000000",
        "joined": "2026-03-15",
        "agreement_months": "24",
        "post_share": "2",
        "station_share": "8",
        "payee_account": "6217 0000 1111",
    }
    assert post(client, "/stations/new", "wang", form).status_code == 403  # an operator
    assert post(client, "/stations/new", "zhao", form, csrf=False).status_code == 403
    assert post(client, "/stations/new", "zhao", form).status_code == 303
    [entry] = stations.registry(store)
    assert (entry["agreement_expires"], entry["status"], entry["payee_account"]) == (
        "2028-03-14",
        "active",
        "621700001111",
    )
    again = post(client, "/stations/new", "zhao", form)
    assert again.status_code == 400 and "registered already" in again.text
    bad = post(client, "/stations/new", "zhao", {**form, "station": "31010010", "joined": "3/15"})
    assert bad.status_code == 400 and "the join date is a date like 2026-03-01" in bad.text
    assert "Traceback" not in bad.text
    no_reason = post(client, "/station/31010009/suspend", "zhao", {"reason": " "})
    assert no_reason.status_code == 400 and "the reason is required" in no_reason.text
    assert post(client, "/station/31010009/suspend", "wang", {"reason": "x"}).status_code == 403
    done = post(client, "/station/31010009/suspend", "zhao", {"reason": "设备整改"})
    assert done.status_code == 303
    assert stations.station(store, "31010009")["status"] == "suspended"
    post(client, "/station/31010009/exit", "zhao", {"reason": "协议终止"})
    refused = post(client, "/station/31010009/reactivate", "zhao", {"reason": "回来了"})
    assert refused.status_code == 400 and "is exited" in refused.text
    actions = store.query("SELECT staff, role, action, detail FROM staff_actions ORDER BY id")
    assert [(a["staff"], a["action"]) for a in actions] == [
        ("zhao", "register_station"),
        ("zhao", "suspend_station"),
        ("zhao", "exit_station"),
    ]
    assert json.loads(actions[1]["detail"]) == {
        "from": "active",
        "reason": "设备整改",
        "to": "suspended",
    }
    page = get(client, "/station/31010009").text
    assert "已退出" in page and "协议终止" in page and "2 : 8" in page
    assert "31010009" in get(client, "/stations?status=exited").text
    staff_page = get(client, "/staff").text
    assert 'href="/station/31010009"' in staff_page


# ------------------------------------------------------------------ ratings


def test_ratings_after_a_failed_journey_reach_the_back_office_through_the_outbox(
    backoffice_service: BackofficeService, make_sim_terminal: Callable[..., SimulatedTerminal]
) -> None:
    sim = make_sim_terminal()
    sim.start()
    failed = sim.journal_record(
        RecordType.TX_CLOSE,
        {
            "receipt_no": "T-01-000001",
            "tx_id": "tx-failed",
            "service": "water-bill",
            "amount_fen": 5_000,
            "fee_fen": 0,
            "outcome": "failed",
            "business_day": "2026-11-30",
        },
    )
    # The terminal's own rating store journals them, signed, in its commit (kiosk/ratings.py);
    # the outbox then carries them like every other outbox record.
    ratings = RatingStore(sim.conn, sim.journal)
    ratings.record(service="water-bill", satisfied=False, reason="too_slow", tx_id="tx-failed")
    ratings.complain(
        service="water-bill", reasons=["cash_problem"], callback_phone="13900001111", tx_id=None
    )
    ratings.record(service="gas-bill", satisfied=True, reason=None, tx_id=None)
    for record in sim.journal.records(int(str(failed["seq"])) + 1):
        sim._queue(record)  # what kiosk.telemetry.outbox sends
    wait_for(lambda: sim.backlog() == 0, "the back office to acknowledge the ratings")
    store = backoffice_service.store
    queue = follow_up.queue(store)
    assert [(f["kind"], f["state"]) for f in queue] == [("rating", "open"), ("complaint", "open")]
    assert queue[0]["tx_id"] == "tx-failed" and queue[0]["reasons"] == ["too_slow"]
    assert queue[1]["callback_phone"] == "13900001111"
    first, last = follow_up.months_back(sim.today(), 1)
    [month] = follow_up.satisfaction(store, first, last)
    assert (month["ratings"], month["satisfied"], month["complaints"]) == (2, 1, 1)
    assert (month["satisfaction"], month["meets_target"]) == ("50.0%", False)

    client = dashboard(store)
    headers = {"X-Forwarded-User": "wang"}  # an operator
    environ = {"REMOTE_ADDR": "127.0.0.1"}
    page = client.get("/follow-ups", headers=headers, environ_base=environ).text
    assert "办理时间太长" in page and "13900001111" in page and "50.0%" in page
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    path = f"/follow-ups/{STATION}/T-01/{queue[0]['seq']}"
    assert (
        client.post(
            path + "/handle", data={"csrf": token}, headers=headers, environ_base=environ
        ).status_code
        == 303
    )
    empty = client.post(
        path + "/close", data={"csrf": token, "note": ""}, headers=headers, environ_base=environ
    )
    assert empty.status_code == 400 and "closed with a note" in empty.text
    closed = client.post(
        path + "/close",
        data={"csrf": token, "note": "已回电致歉"},
        headers=headers,
        environ_base=environ,
    )
    assert closed.status_code == 303
    [done] = follow_up.queue(store, state="closed")
    assert (done["handler"], done["closed_by"], done["note"]) == ("wang", "wang", "已回电致歉")
    viewer = get(client, "/follow-ups")  # li, a viewer: sees, but has no forms
    assert "已回电致歉" in viewer.text and 'name="note"' not in viewer.text


def test_a_rating_is_followed_up_once_whatever_the_batches(
    store: Store, terminal: SimulatedTerminal
) -> None:
    bad = terminal.journal_record(
        RecordType.RATING,
        {"service": "water-bill", "satisfied": False, "reason": "other", "tx_id": None},
    )
    ingest(store, terminal, bad)
    ingest(store, terminal, bad)  # delivered again
    assert len(follow_up.queue(store)) == 1
    with store.transaction() as cursor:
        follow_up.close(cursor, STATION, "T-01", int(str(bad["seq"])), "done", ADMIN, NOW)
        with pytest.raises(BackofficeError, match="closed already"):
            follow_up.handle(cursor, STATION, "T-01", int(str(bad["seq"])), ADMIN, NOW)


# ------------------------------------------------------------------ the day's balance


def test_a_day_that_does_not_balance_raises_an_alert_shown_on_the_station(
    store: Store, terminal: SimulatedTerminal
) -> None:
    register(store, STATION, "2025-01-01")
    good = day_close(terminal, "2026-11-29", {}, platform_float_fen=400_000)
    ingest(store, terminal, good)
    assert store.query("SELECT kind FROM alerts") == []
    unbalanced = day_close(
        terminal,
        "2026-11-30",
        {"water-bill": {"count": 1, "amount_fen": 1_000, "fee_fen": 0}},
        balanced=False,
        closing_float_fen=399_000,
        platform_float_fen=398_000,
        float_difference_fen=-1_000,
    )
    # The terminal journals its day_not_balanced alert with the report (kiosk/settlement).
    alert = terminal.journal_record(
        RecordType.ALERT,
        {
            "alert": TerminalAlertKind.DAY_NOT_BALANCED,
            "business_day": "2026-11-30",
            "day_close_seq": unbalanced["seq"],
            "float_check": "checked",
            "float_difference_fen": -1_000,
        },
    )
    ingest(store, terminal, unbalanced, alert)
    [raised] = store.query("SELECT kind, cleared FROM alerts")
    assert raised == {"kind": "day_not_balanced", "cleared": None}
    page = get(dashboard(store), f"/station/{STATION}").text
    assert 'data-kind="day_not_balanced"' in page and "日终轧帐不平" in page
    assert "-¥10.00" in page  # the difference, in the day closes' table


def test_the_day_close_alone_raises_the_alert_when_its_alert_record_is_missing(
    store: Store, terminal: SimulatedTerminal
) -> None:
    ingest(store, terminal, day_close(terminal, "2026-11-30", {}, balanced=False))
    assert [r["kind"] for r in store.query("SELECT kind FROM alerts")] == ["day_not_balanced"]


# ------------------------------------------------------------------ look-ups


def test_transactions_are_found_by_receipt_masked_account_and_time_range(
    store: Store, terminal: SimulatedTerminal
) -> None:
    day = datetime.date(2026, 11, 30)
    paid = [terminal.pay(1_000 * n, 100, service="water-bill", day=day) for n in (1, 2, 3)]
    ingest(store, terminal, *paid)
    [one] = lookups.transactions(store, receipt_no=str(paid[1]["receipt_no"]))
    assert one["amount_fen"] == 2_000 and one["account_masked"] == paid[1]["account_masked"]
    tail = str(paid[2]["account_masked"])[-4:]
    assert paid[2]["seq"] in [r["seq"] for r in lookups.transactions(store, account=tail)]
    moment = datetime.datetime.fromisoformat(str(paid[0]["time"]))
    window = lookups.transactions(
        store,
        start=moment - datetime.timedelta(minutes=1),
        end=moment + datetime.timedelta(minutes=1),
    )
    assert {r["seq"] for r in window} == {r["seq"] for r in paid}
    assert (
        lookups.transactions(
            store,
            start=moment + datetime.timedelta(hours=1),
            end=moment + datetime.timedelta(hours=2),
        )
        == []
    )
    with pytest.raises(BackofficeError, match="give a receipt number"):
        lookups.transactions(store)
    with pytest.raises(BackofficeError, match="masked form"):
        lookups.transactions(store, account="31%")
    client = dashboard(store)
    page = get(client, f"/lookup?receipt={paid[0]['receipt_no']}").text
    assert "¥10.00" in page
    assert get(client, "/lookup?from=yesterday&to=today").status_code == 400


def test_revenue_by_business_type_is_set_against_the_terminals_day_closes(
    store: Store, terminal: SimulatedTerminal
) -> None:
    first, second = datetime.date(2026, 11, 2), datetime.date(2026, 11, 3)
    records = [terminal.pay(1_000, 100, service="water-bill", day=first) for _ in range(2)]
    records.append(terminal.pay(5_000, 0, service="gas-bill", day=second))
    records.append(
        day_close(
            terminal,
            first.isoformat(),
            {"water-bill": {"count": 2, "amount_fen": 2_000, "fee_fen": 200}},
        )
    )
    records.append(
        day_close(  # the terminal reports one gas payment more than arrived
            terminal,
            second.isoformat(),
            {"gas-bill": {"count": 2, "amount_fen": 10_000, "fee_fen": 0}},
        )
    )
    records.append(terminal.pay(700, 0, service="water-bill", day=datetime.date(2026, 11, 4)))
    ingest(store, terminal, *records)
    daily = {
        (r["day"], r["service"]): r["status"]
        for r in lookups.revenue(store, "day", first, datetime.date(2026, 11, 30))
    }
    assert daily == {
        ("2026-11-02", "water-bill"): "ok",
        ("2026-11-03", "gas-bill"): "mismatch",
        ("2026-11-04", "water-bill"): "no_day_close",
    }
    monthly = lookups.revenue(store, "month", first, datetime.date(2026, 11, 30))
    water = next(r for r in monthly if r["service"] == "water-bill")
    assert (water["month"], water["count"], water["amount_fen"], water["reported_count"]) == (
        "2026-11",
        3,
        2_700,
        2,
    )
    csv_page = get(
        dashboard(store), "/revenue?period=week&from=2026-11-01&to=2026-11-30&format=csv"
    )
    assert csv_page.data.startswith(b"\xef\xbb\xbf") and b"2026-11-02" in csv_page.data


def test_deposits_collections_and_sessions_show_on_the_station_page(
    store: Store, terminal: SimulatedTerminal
) -> None:
    records = [
        terminal.journal_record(
            RecordType.FLOAT_DEPOSIT,
            {"deposit_key": "d1", "amount_fen": 80_000, "slip_no": "PS-0007", "state": state}
            | {"by": "operator:op1", "role": "operator"},
        )
        for state in ("pending", "confirmed")
    ]
    records.append(
        terminal.journal_record(
            RecordType.CASH_COLLECTION,
            {"expected_fen": 10_000, "counted_fen": 9_900, "discrepancy_fen": -100}
            | {"count": {}, "suspense_items": 0, "by": "op1", "role": "operator"},
        )
    )
    records.append(
        terminal.journal_record(
            RecordType.ALERT,
            {"alert": TerminalAlertKind.CASH_COUNT_DISCREPANCY, "discrepancy_fen": -100},
        )
    )
    records.append(
        terminal.journal_record(
            RecordType.OPERATOR_SESSION, {"action": "login", "by": "op1", "role": "operator"}
        )
    )
    ingest(store, terminal, *records)
    with store.transaction() as cursor:  # a health report of the float, as ingest stores it
        cursor.execute(
            "INSERT INTO health_history (station, terminal, received, time, float_balance_fen, "
            "payload) VALUES (?, 'T-01', ?, 't', 87600, '{}')",
            (STATION, NOW - 3600),
        )
    assert [d["state"] for d in lookups.deposits(store, STATION)] == ["confirmed", "pending"]
    page = get(dashboard(store), f"/station/{STATION}").text
    assert "PS-0007" in page and "¥800.00" in page and "-¥1.00" in page
    assert 'data-kind="cash_count_discrepancy"' in page and "登录" in page and "已核对" not in page
    assert "该网点尚未登记。" in page
    chart = page[page.index('id="chart-float"') :]
    assert "¥876" in chart[: chart.index("</svg>")]  # the float history, per terminal


# ------------------------------------------------------------------ low float


def test_one_low_float_threshold_for_terminal_and_back_office() -> None:
    assert Thresholds().low_float_fen == LOW_FLOAT_THRESHOLD_FEN

    class Sink:
        raised: list[str] = []

        def raise_alert(self, station: str, terminal: str, kind: str, *_: Any) -> None:
            self.raised.append(kind)

        def clear_alerts(self, *_: Any) -> None:
            pass

    sink = Sink()
    apply_health(
        sink, STATION, "T-01", {"float_balance_fen": LOW_FLOAT_THRESHOLD_FEN - 1}, Thresholds(), NOW
    )
    apply_health(
        sink, STATION, "T-01", {"float_balance_fen": LOW_FLOAT_THRESHOLD_FEN}, Thresholds(), NOW
    )
    assert sink.raised == ["low_float"]  # 999.99 yuan is low (it was 500 yuan here)
    with pytest.raises(ConfigError, match="low_float_fen"):
        parse_config({"store": "sqlite:////tmp/x.db", "thresholds": {"low_float_fen": 50_000}})


def test_a_float_deposit_is_sent_from_a_typed_form_in_yuan() -> None:
    args = args_from_form("record_deposit", {"amount_fen": "800.5", "slip_no": "PS-0007"}, {})
    assert args == {"amount_fen": 80_050, "slip_no": "PS-0007"}
    for wrong in ("800.505", "-5", "八百", "0"):
        with pytest.raises(CommandRefused, match="not an amount in yuan"):
            args_from_form("record_deposit", {"amount_fen": wrong, "slip_no": "PS-1"}, {})
