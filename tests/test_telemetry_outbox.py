"""The durable outbox on a real SQLite journal: what is still owed to the back office."""

import json
import sqlite3
from pathlib import Path

import pytest

from kiosk.storage import open_database
from kiosk.telemetry import Outbox
from tests.fixtures.mosquitto import TelemetryStation


def test_the_outbox_holds_every_signed_close_in_journal_order_and_nothing_else(
    telemetry_station: TelemetryStation,
) -> None:
    seqs = telemetry_station.close_transactions(3)
    day = telemetry_station.close_day()
    outbox = Outbox(telemetry_station.conn)
    pending = outbox.pending(0, 100)
    assert [record.seq for record in pending] == [*seqs, day]
    assert [json.loads(r.text)["type"] for r in pending] == ["tx_close"] * 3 + ["day_close"]
    assert outbox.backlog() == 4


def test_pending_records_are_the_journals_stored_bytes(telemetry_station: TelemetryStation) -> None:
    (seq,) = telemetry_station.close_transactions(1)
    (record,) = [r for r in telemetry_station.journal.records() if r["seq"] == seq]
    (_, _, text), *_ = Outbox(telemetry_station.conn).pending(0, 10)
    stored = telemetry_station.conn.execute("SELECT record FROM journal WHERE seq = ?", (seq,))
    assert text == stored.fetchone()[0]
    assert json.loads(text) == record and "sig" in record


def test_each_pending_record_names_the_outbox_record_before_it_across_other_records(
    telemetry_station: TelemetryStation,
) -> None:
    # Every tx_close follows an unsigned tx_open, so outbox seqs are not consecutive.
    seqs = telemetry_station.close_transactions(3)
    day = telemetry_station.close_day()
    outbox = Outbox(telemetry_station.conn)
    chain = [(r.seq, r.prev_seq) for r in outbox.pending(0, 10)]
    assert chain == [(seqs[0], 0), (seqs[1], seqs[0]), (seqs[2], seqs[1]), (day, seqs[2])]
    assert all(seq - prev > 1 for seq, prev in chain[:3])
    # A page that starts after the cursor still names the record before it.
    outbox.acknowledge(seqs[1])
    assert [(r.seq, r.prev_seq) for r in outbox.pending(0, 1)] == [(seqs[2], seqs[1])]
    assert [(r.seq, r.prev_seq) for r in outbox.pending(seqs[2], 5)] == [(day, seqs[2])]


def test_pending_pages_by_limit_and_after_seq(telemetry_station: TelemetryStation) -> None:
    seqs = telemetry_station.close_transactions(5)
    outbox = Outbox(telemetry_station.conn)
    assert [r.seq for r in outbox.pending(0, 2)] == seqs[:2]
    assert [r.seq for r in outbox.pending(seqs[1], 2)] == seqs[2:4]


def test_an_acknowledgement_moves_the_cursor_and_shrinks_the_backlog(
    telemetry_station: TelemetryStation,
) -> None:
    seqs = telemetry_station.close_transactions(4)
    outbox = Outbox(telemetry_station.conn)
    assert outbox.acknowledge(seqs[1]) == seqs[1]
    assert outbox.backlog() == 2
    assert [r.seq for r in outbox.pending(0, 10)] == seqs[2:]


def test_the_cursor_never_moves_backwards(telemetry_station: TelemetryStation) -> None:
    seqs = telemetry_station.close_transactions(3)
    outbox = Outbox(telemetry_station.conn)
    outbox.acknowledge(seqs[2])
    assert outbox.acknowledge(seqs[0]) == seqs[2]
    assert outbox.backlog() == 0


def test_an_ack_beyond_the_journal_head_stops_at_the_head(
    telemetry_station: TelemetryStation,
) -> None:
    telemetry_station.close_transactions(1)
    outbox = Outbox(telemetry_station.conn)
    head = outbox.head()[0]
    assert outbox.acknowledge(head + 1000) == head
    # A record journaled later is still owed: the bogus ack did not swallow it.
    (later,) = telemetry_station.close_transactions(1)
    assert [r.seq for r in outbox.pending(0, 10)] == [later]


@pytest.mark.parametrize("bad", [-1, True, "7", 1.0])
def test_an_acknowledgement_must_be_a_whole_seq(
    telemetry_station: TelemetryStation, bad: object
) -> None:
    with pytest.raises(ValueError, match="whole seq"):
        Outbox(telemetry_station.conn).acknowledge(bad)  # type: ignore[arg-type]


def test_the_cursor_survives_a_restart_on_a_new_connection(
    telemetry_station: TelemetryStation,
) -> None:
    seqs = telemetry_station.close_transactions(3)
    Outbox(open_database(telemetry_station.db_path)).acknowledge(seqs[0])
    # What a kill -9 leaves: only the file.
    reopened = Outbox(open_database(telemetry_station.db_path))
    assert reopened.acked_seq() == seqs[0]
    assert [r.seq for r in reopened.pending(0, 10)] == seqs[1:]


def test_head_and_turnover_are_the_journals(telemetry_station: TelemetryStation) -> None:
    telemetry_station.close_transactions(2, amount_fen=500)
    outbox = Outbox(telemetry_station.conn)
    assert outbox.head() == telemetry_station.journal.head()
    assert outbox.turnover_fen() == telemetry_station.journal.turnover_fen() == 1000


def test_before_any_journal_the_outbox_is_empty_and_the_head_is_zero(tmp_path: Path) -> None:
    outbox = Outbox(open_database(tmp_path / "empty.sqlite3"))
    assert outbox.pending(0, 10) == [] and outbox.backlog() == 0
    assert outbox.head() == (0, "0" * 64) and outbox.turnover_fen() == 0


def test_the_cursor_table_refuses_a_negative_cursor(telemetry_station: TelemetryStation) -> None:
    Outbox(telemetry_station.conn)
    with pytest.raises(sqlite3.IntegrityError):
        telemetry_station.conn.execute("UPDATE telemetry_outbox SET acked_seq = -1")
