"""The same ingest, alerts and reports on SQLite and on a real PostgreSQL server."""

import datetime
import json
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from backoffice import pay_methods, reports, stations
from backoffice.alerts import acknowledge_alert, open_alerts
from backoffice.config import ReportConfig, Thresholds
from backoffice.errors import StoreError
from backoffice.ingest import Ingestor, ack_point
from backoffice.roles import Role
from backoffice.staff import Staff
from backoffice.store import Store
from simulators.fleet import SimulatedTerminal

STATION = "31010001"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


class Wire:
    """Captures what the ingestor publishes (acks) instead of a broker."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, object]]] = []

    def __call__(self, topic: str, payload: bytes, qos: int) -> None:
        self.sent.append((topic, json.loads(payload)))


def outbox_message(sim: SimulatedTerminal, record: dict[str, object]) -> tuple[str, bytes]:
    topic = f"kiosk/v1/{record['station']}/{record['terminal']}/outbox"
    return topic, sim.outbox_payload(int(str(record["seq"])), record)


@pytest.fixture
def terminal(tmp_path: Path, store: Store) -> Iterator[SimulatedTerminal]:
    # Never started: its records are handed to the ingestor directly.
    sim = SimulatedTerminal(tmp_path, station=STATION, terminal="T-01", host="127.0.0.1", port=1)
    sim.register_with(store)
    yield sim


def test_a_record_delivered_twice_is_stored_once_and_acknowledged_each_time(
    store: Store, terminal: SimulatedTerminal
) -> None:
    wire = Wire()
    ingestor = Ingestor(store, Thresholds(), wire)
    first, second = terminal.pay(1_000, 100), terminal.pay(2_000, 100)
    ingestor.handle_batch([outbox_message(terminal, first), outbox_message(terminal, second)])
    ingestor.handle_batch([outbox_message(terminal, first)])
    rows = store.query("SELECT seq, amount_fen, fee_fen FROM records ORDER BY seq")
    assert [(r["seq"], r["amount_fen"], r["fee_fen"]) for r in rows] == [
        (first["seq"], 1_000, 100),
        (second["seq"], 2_000, 100),
    ]
    assert wire.sent == [
        (f"kiosk/v1/{STATION}/T-01/ack", {"v": 1, "upto_seq": second["seq"]}),
        (f"kiosk/v1/{STATION}/T-01/ack", {"v": 1, "upto_seq": second["seq"]}),
    ]


def test_a_different_record_under_a_known_seq_raises_a_clone_alert(
    store: Store, terminal: SimulatedTerminal, tmp_path: Path
) -> None:
    ingestor = Ingestor(store, Thresholds(), Wire())
    ingestor.handle_batch([outbox_message(terminal, terminal.pay(1_000))])
    twin = SimulatedTerminal(
        tmp_path / "twin",
        station=STATION,
        terminal="T-01",
        host="127.0.0.1",
        port=1,
        signer=terminal.signer,
    )
    ingestor.handle_batch([outbox_message(twin, twin.pay(7_000))])
    with store.transaction() as cursor:
        assert [a["kind"] for a in open_alerts(cursor)] == ["clone"]
    assert store.query("SELECT amount_fen FROM records")[0]["amount_fen"] == 1_000


def heartbeat(boot: int, chain_seq: int, terminal: str = "T-01") -> tuple[str, bytes]:
    body = {
        "v": 1,
        "time": "2025-03-01T09:00:00+08:00",
        "seq_no": 1,
        "uptime_s": 60,
        "chain": {"seq": chain_seq, "hash": "ab" * 32},
        "turnover_fen": 0,
        "boot_id": f"{boot:032x}",
    }
    return f"kiosk/v1/{STATION}/{terminal}/heartbeat", json.dumps(body).encode()


def test_heartbeats_mark_the_terminal_online_and_catch_rollback_and_clone_in_one_batch(
    store: Store,
) -> None:
    ingestor = Ingestor(store, Thresholds(), Wire())
    with store.transaction() as cursor:
        cursor.execute(
            "INSERT INTO terminals (station, terminal, state, state_at) "
            "VALUES (?, 'T-01', 'offline', 1.0)",
            (STATION,),
        )
        cursor.execute(
            "INSERT INTO alerts (station, terminal, kind, detail, raised) "
            "VALUES (?, 'T-01', 'offline', 'lost', 1.0)",
            (STATION,),
        )
    ingestor.handle_batch([heartbeat(1, 7), heartbeat(1, 9), heartbeat(2, 4), heartbeat(1, 9)])
    with store.transaction() as cursor:
        assert sorted(a["kind"] for a in open_alerts(cursor)) == ["clone", "rollback"]
    [row] = store.query("SELECT state, boot_id, chain_seq, max_chain_seq FROM terminals")
    assert (row["state"], row["chain_seq"], row["max_chain_seq"]) == ("online", 9, 9)
    assert row["boot_id"] == f"{1:032x}"
    assert store.query("SELECT COUNT(*) AS n FROM boots")[0]["n"] == 2


def insert_record(store: Store, seq: int, prev_seq: int) -> None:
    with store.transaction() as cursor:
        cursor.execute(
            "INSERT INTO terminals (station, terminal, state) VALUES (?, 'T-01', 'online') "
            "ON CONFLICT (station, terminal) DO NOTHING",
            (STATION,),
        )
        cursor.execute(
            "INSERT INTO records (station, terminal, seq, type, time, business_day, record, "
            "record_hash, received, prev_seq) "
            "VALUES (?, 'T-01', ?, 'tx_close', 't', '2025-03-01', '{}', 'h', 0, ?)",
            (STATION, seq, prev_seq),
        )


def current_ack(store: Store) -> int:
    with store.transaction() as cursor:
        return ack_point(cursor, STATION, "T-01")


def test_the_ack_stops_below_an_outbox_record_another_worker_has_not_stored_yet(
    store: Store,
) -> None:
    # Journal seqs 3, 5, 9 are the terminal's outbox records (the others are tx steps).
    insert_record(store, 3, 0)
    insert_record(store, 9, 5)  # stored by one worker while 5 is still with another
    assert current_ack(store) == 3
    insert_record(store, 5, 3)
    assert current_ack(store) == 9
    assert store.query("SELECT acked_seq FROM terminals")[0]["acked_seq"] == 9


def test_the_ack_waits_for_the_first_outbox_record_and_never_goes_back(store: Store) -> None:
    insert_record(store, 8, 4)
    assert current_ack(store) == 0
    with store.transaction() as cursor:
        cursor.execute("UPDATE terminals SET acked_seq = 12")  # another worker went further
    assert current_ack(store) == 12


def test_a_missing_record_in_the_middle_holds_the_ack_back_until_it_comes(
    store: Store, terminal: SimulatedTerminal
) -> None:
    wire = Wire()
    ingestor = Ingestor(store, Thresholds(), wire)
    first, missing, third = (terminal.pay(1_000 * n) for n in (1, 2, 3))
    day = terminal.close_day(datetime.date(2025, 3, 3), paid_count=3, paid_fen=6_000)
    ingestor.handle_batch([outbox_message(terminal, r) for r in (first, third, day)])
    assert wire.sent[-1][1]["upto_seq"] == first["seq"]
    ingestor.handle_batch([outbox_message(terminal, third)])  # a resend changes nothing
    assert wire.sent[-1][1]["upto_seq"] == first["seq"]
    ingestor.handle_batch([outbox_message(terminal, missing)])
    assert wire.sent[-1][1]["upto_seq"] == day["seq"]
    assert len(store.query("SELECT seq FROM records")) == 4


def test_an_outbox_record_whose_prev_seq_is_not_below_its_seq_is_refused(
    store: Store, terminal: SimulatedTerminal
) -> None:
    wire = Wire()
    ingestor = Ingestor(store, Thresholds(), wire)
    record = terminal.pay(1_000)
    topic = f"kiosk/v1/{STATION}/T-01/outbox"
    for prev_seq in (record["seq"], -1, None):
        body = {"v": 1, "seq": record["seq"], "prev_seq": prev_seq, "record": record}
        ingestor.handle_batch([(topic, json.dumps(body).encode())])
    without = {"v": 1, "seq": record["seq"], "record": record}
    ingestor.handle_batch([(topic, json.dumps(without).encode())])
    assert ingestor.stats.rejected == 4 and wire.sent == []
    assert store.query("SELECT COUNT(*) AS n FROM records")[0]["n"] == 0
    reasons = [r["reason"] for r in store.query("SELECT reason FROM rejected ORDER BY id")]
    assert "is not below its seq" in reasons[0]
    assert "prev_seq" in reasons[1] and "prev_seq" in reasons[3]


def test_an_acknowledged_alert_is_closed_and_a_new_one_can_open(store: Store) -> None:
    ingestor = Ingestor(store, Thresholds(), Wire())
    topic = f"kiosk/v1/{STATION}/T-01/event"

    def tamper() -> tuple[str, bytes]:
        body = {"v": 1, "time": "2025-03-01T09:00:00+08:00", "kind": "tamper", "data": {}}
        return topic, json.dumps(body).encode()

    ingestor.handle_batch([tamper(), tamper()])
    with store.transaction() as cursor:
        alerts = open_alerts(cursor)
        assert len(alerts) == 1
        assert acknowledge_alert(cursor, alerts[0]["id"], "Wang Fang", 1.0)
        assert not acknowledge_alert(cursor, alerts[0]["id"], "Wang Fang", 2.0)
    ingestor.handle_batch([tamper()])
    with store.transaction() as cursor:
        assert len(open_alerts(cursor)) == 1
    assert store.query("SELECT COUNT(*) AS n FROM alerts")[0]["n"] == 2


def test_an_acknowledged_condition_stays_acknowledged_until_it_clears(
    store: Store, terminal: SimulatedTerminal
) -> None:
    # Before, the next report of a lasting condition raised a new alert at once (a gap:
    # within a second), so staff could never acknowledge one for good.
    ingestor = Ingestor(store, Thresholds(), Wire())
    topic = f"kiosk/v1/{STATION}/T-01/health"

    def report(paper: str) -> tuple[str, bytes]:
        return topic, json.dumps({**terminal.health_payload(), "paper": paper}).encode()

    ingestor.handle_batch([report("out")])
    with store.transaction() as cursor:
        [alert] = open_alerts(cursor)
        assert acknowledge_alert(cursor, alert["id"], "Wang Fang", 1.0)
    ingestor.handle_batch([report("out"), report("out")])  # it lasts
    with store.transaction() as cursor:
        assert open_alerts(cursor) == []
    ingestor.handle_batch([report("ok")])  # it clears: the acknowledged alert closes
    ingestor.handle_batch([report("out")])  # and comes back: a new alert
    rows = store.query("SELECT acked_by, cleared IS NULL AS uncleared FROM alerts ORDER BY id")
    assert rows == [
        {"acked_by": "Wang Fang", "uncleared": 0},
        {"acked_by": None, "uncleared": 1},
    ]


def test_a_database_of_the_old_alert_rules_is_moved_once(store_url: str) -> None:
    with closing(Store(store_url)) as store, store.transaction() as cursor:
        cursor.execute("DROP INDEX alerts_one_uncleared")
        cursor.execute(
            "CREATE UNIQUE INDEX alerts_one_open ON alerts (station, terminal, kind) "
            "WHERE cleared IS NULL AND acked IS NULL"
        )
        # Acknowledged then raised again, twice, as the old rules did; one open.
        for acked in (10.0, 20.0, None):
            cursor.execute(
                "INSERT INTO alerts (station, terminal, kind, detail, raised, acked) "
                "VALUES ('1', 'T-01', 'paper_out', 'paper out', 1.0, ?)",
                (acked,),
            )
    with closing(Store(store_url)) as store:
        rows = store.query("SELECT acked, cleared FROM alerts ORDER BY id")
        assert [(r["acked"], r["cleared"]) for r in rows] == [
            (10.0, 10.0),
            (20.0, 20.0),
            (None, None),
        ]
        with store.transaction() as cursor:  # acknowledged under the new rules
            cursor.execute("UPDATE alerts SET acked = 30.0 WHERE acked IS NULL")
    with closing(Store(store_url)) as store:  # opened again: nothing more is moved
        assert store.query("SELECT cleared FROM alerts WHERE acked = 30.0") == [{"cleared": None}]


def test_reports_reconcile_count_flag_and_split_commission(
    store: Store, terminal: SimulatedTerminal
) -> None:
    ingestor = Ingestor(store, Thresholds(), Wire())
    day = datetime.date(2025, 3, 3)
    records = [terminal.pay(10_000, 200, day=day) for _ in range(3)]
    records.append(terminal.close_day(day, paid_count=4, paid_fen=40_800))  # one too many
    ingestor.handle_batch([outbox_message(terminal, r) for r in records])
    [row] = reports.reconciliation(store, day)
    assert (row["reported_count"], row["received_count"], row["status"]) == (4, 3, "mismatch")
    assert row["received_fen"] == 30_600
    weekly = reports.activity(store, "week", datetime.date(2025, 3, 1), datetime.date(2025, 3, 31))
    assert weekly == [
        {"station": STATION, "week": "2025-03-03", "count": 3, "amount_fen": 30_000, "fee_fen": 600}
        | pay_methods.empty_columns()
        | {"cash_count": 3, "cash_amount_fen": 30_000, "cash_fee_fen": 600}
    ]
    config = ReportConfig()
    # An unregistered station counts from its first record's month: 2025-03.
    flagged = {
        r["month"]: r
        for r in [
            stations.exit_report(store, m, config, datetime.date(2025, 6, 1))[0]
            for m in ("2025-03", "2025-04", "2025-05")
        ]
    }
    assert flagged["2025-03"]["reason"] == ""  # one month in: not judged on low activity
    assert flagged["2025-04"]["reason"] == "no_business"
    assert flagged["2025-05"]["reason"] == "no_business"
    csv_text = reports.to_csv(reports.reconciliation(store, day))
    assert csv_text.splitlines()[0].startswith("station,terminal,day")


def test_a_station_busy_in_one_of_three_months_is_not_flagged(
    store: Store, terminal: SimulatedTerminal
) -> None:
    ingestor = Ingestor(store, Thresholds(), Wire())
    busy = [terminal.pay(1_000, day=datetime.date(2025, 2, 10)) for _ in range(20)]
    quiet = [terminal.pay(1_000, day=datetime.date(2025, 3, 10))]
    ingestor.handle_batch([outbox_message(terminal, r) for r in busy + quiet])
    registered = stations.StationDetails.from_form(
        {"station": STATION, "name": "S", "joined": "2024-06-01", "agreement_months": "36"}
    )
    with store.transaction() as cursor:
        stations.save_station(cursor, registered, Staff("zhao", Role.ADMIN), 0.0, new=True)
    [row] = stations.exit_report(store, "2025-03", ReportConfig(), datetime.date(2025, 4, 1))
    assert row["flagged"] is False
    assert (row["count_2025-03"], row["count_2025-02"], row["count_2025-01"]) == (1, 20, 0)


def test_an_unreachable_postgresql_server_is_one_clear_error() -> None:
    with pytest.raises(
        StoreError, match="cannot connect to PostgreSQL at postgresql://kiosk:\\*\\*\\*@"
    ):
        Store("postgresql://kiosk:secret@127.0.0.1:1/none")
