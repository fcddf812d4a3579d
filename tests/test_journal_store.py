"""The journal store: numbering, hash chain, signing, outages and append-only SQLite."""

import base64
import hashlib
import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import kiosk
from kiosk.clock import FixedClock
from kiosk.journal import Journal, JournalError, canonical_json, record_hash
from kiosk.storage import open_database, write_transaction
from tests.fixtures.journal_bench import (
    START,
    STATION,
    TERMINAL,
    JournalBench,
    make_signer,
    tx_close_fields,
)

ZERO = "0" * 64


def signature_verifies(record: dict[str, object], cert_pem: bytes) -> bool:
    """Check a record's signature with cryptography directly, not with kiosk.journal.verify."""
    unsigned = {key: value for key, value in record.items() if key != "sig"}
    data = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    data_bytes = data.encode()
    public_key = x509.load_pem_x509_certificate(cert_pem).public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    try:
        public_key.verify(
            base64.b64decode(str(record["sig"])), data_bytes, ec.ECDSA(hashes.SHA256())
        )
    except Exception:
        return False
    return True


def der_sha256(cert_pem: bytes) -> str:
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


# ------------------------------------------------------------------ canonical JSON


def test_canonical_json_sorts_keys_and_writes_no_spaces() -> None:
    record = {"b": 1, "a": [True, None, "x"], "c": {"z": "中", "y": -5}}
    assert canonical_json(record) == '{"a":[true,null,"x"],"b":1,"c":{"y":-5,"z":"中"}}'.encode()


def test_record_hash_is_the_sha256_of_the_canonical_json() -> None:
    record = {"seq": 1, "type": "x"}
    assert record_hash(record) == hashlib.sha256(b'{"seq":1,"type":"x"}').hexdigest()


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"amount": 1.5}, "amount"),
        ({"total": 2**53}, "total"),
        ({"total": -(2**53)}, "total"),
        ({"nested": {"deep": [1, 0.1]}}, "nested.deep[1]"),
        ({"nested": {1: "x"}}, "non-text key"),
        ({"nested": {"schlüssel": "x"}}, "non-ASCII key"),
        ({"money": Decimal("1.00")}, "money"),
        ({"text": "\ud800"}, "field text holds a lone surrogate"),
    ],
)
def test_canonical_json_refuses_what_the_journal_cannot_hold_in_one_line(
    fields: dict[object, object], named: str
) -> None:
    with pytest.raises(JournalError) as caught:
        canonical_json(fields)  # type: ignore[arg-type]
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_largest_safe_integers_are_accepted() -> None:
    assert canonical_json({"a": 2**53 - 1, "b": -(2**53 - 1)}) == (
        b'{"a":9007199254740991,"b":-9007199254740991}'
    )


# ------------------------------------------------------------------ starting


def test_a_new_journal_starts_with_a_signed_journal_start_record(
    journal_bench: JournalBench,
) -> None:
    start = journal_bench.journal.last_of_type("journal_start")
    assert start is not None
    assert start["seq"] == 1 and start["prev"] == ZERO
    assert start["software_version"] == kiosk.__version__
    assert start["cert_sha256"] == der_sha256(journal_bench.cert_pem)
    assert start["signer"] == "software"
    assert (start["station"], start["terminal"]) == (STATION, TERMINAL)
    assert start["time"] == "2025-03-01T09:30:00+08:00"
    assert signature_verifies(start, journal_bench.cert_pem)


def test_creating_a_journal_writes_no_record_until_it_is_opened(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "t.sqlite3")
    journal = Journal(
        conn, make_signer(tmp_path), station=STATION, terminal=TERMINAL, clock=_clock()
    )
    assert journal.head() == (0, ZERO)
    with pytest.raises(JournalError, match="call Journal.open"), write_transaction(conn):
        journal.append("cash_in", {"value_fen": 100})


def test_opening_again_after_a_restart_does_not_start_a_second_journal(
    journal_bench: JournalBench,
) -> None:
    journal_bench.pay(1)
    head = journal_bench.journal.head()
    journal_bench.reopen().open()
    assert journal_bench.journal.head() == head
    assert [r["type"] for r in journal_bench.journal.records()].count("journal_start") == 1


def test_a_journal_of_another_terminal_is_refused_at_open(journal_bench: JournalBench) -> None:
    other = Journal(
        journal_bench.conn,
        journal_bench.signer,
        station=STATION,
        terminal="SD-JN-0002",
        clock=journal_bench.clock,
    )
    with pytest.raises(JournalError, match="belongs to station 3701020001 terminal SD-JN-0001"):
        other.open()


def test_open_notices_a_head_record_altered_behind_the_journals_back(
    journal_bench: JournalBench,
) -> None:
    journal_bench.pay(1)
    conn = journal_bench.conn
    conn.execute("DROP TRIGGER journal_no_update")  # what an attacker with the file can do
    conn.execute(
        "UPDATE journal SET record = replace(record, '\"amount_fen\":12345', '\"amount_fen\":1')"
        " WHERE seq = (SELECT MAX(seq) FROM journal)"
    )
    with pytest.raises(JournalError, match="record 4 does not match its stored hash"):
        journal_bench.reopen().open()


# ------------------------------------------------------------------ appending


def test_append_outside_a_write_transaction_is_refused(journal_bench: JournalBench) -> None:
    with pytest.raises(JournalError, match="inside write_transaction"):
        journal_bench.journal.append("cash_in", {"value_fen": 100})
    assert journal_bench.journal.head()[0] == 1


def test_records_are_numbered_without_gaps_and_each_names_the_hash_of_the_one_before(
    journal_bench: JournalBench,
) -> None:
    for number in range(1, 4):
        journal_bench.pay(number)
    records = list(journal_bench.journal.records())
    assert [r["seq"] for r in records] == list(range(1, 11))
    assert records[0]["prev"] == ZERO
    for before, after in zip(records, records[1:], strict=False):
        assert after["prev"] == record_hash(before)
    assert journal_bench.journal.head() == (10, record_hash(records[-1]))


def test_append_returns_the_complete_record_as_stored(journal_bench: JournalBench) -> None:
    record = journal_bench.append("cash_in", {"tx_id": "t1", "value_fen": 500})
    assert record == {
        "seq": 2,
        "prev": record_hash(journal_bench.journal.last_of_type("journal_start") or {}),
        "type": "cash_in",
        "time": "2025-03-01T09:30:07+08:00",
        "station": STATION,
        "terminal": TERMINAL,
        "tx_id": "t1",
        "value_fen": 500,
    }
    assert list(journal_bench.journal.records(2)) == [record]


def test_a_rolled_back_transaction_leaves_no_record_and_no_gap(
    journal_bench: JournalBench,
) -> None:
    class PowerCut(Exception):
        pass

    with pytest.raises(PowerCut), write_transaction(journal_bench.conn):
        journal_bench.journal.append("cash_in", {"value_fen": 100})
        raise PowerCut
    record = journal_bench.append("cash_in", {"value_fen": 200})
    assert record["seq"] == 2
    assert [r["seq"] for r in journal_bench.journal.records()] == [1, 2]


def test_the_turnover_counter_accumulates_only_where_a_turnover_is_added(
    journal_bench: JournalBench,
) -> None:
    assert journal_bench.journal.turnover_fen() == 0
    first = journal_bench.pay(1, amount_fen=1000)
    cash = journal_bench.append("cash_in", {"value_fen": 50})
    second = journal_bench.pay(2, amount_fen=2500)
    refund = journal_bench.append("tx_close", tx_close_fields(3), sign=True, turnover_add_fen=-500)
    assert first["turnover_fen"] == 1100
    assert "turnover_fen" not in cash
    assert second["turnover_fen"] == 1100 + 2600
    assert refund["turnover_fen"] == 3200
    assert journal_bench.journal.turnover_fen() == 3200
    assert journal_bench.reopen().turnover_fen() == 3200


@pytest.mark.parametrize(
    "key",
    [
        "seq",
        "prev",
        "type",
        "time",
        "station",
        "terminal",
        "sig",
        "sig_failed",
        "signer",
        "cert_sha256",
        "turnover_fen",
    ],
)
def test_fields_may_not_set_what_the_journal_writes_itself(
    journal_bench: JournalBench, key: str
) -> None:
    with pytest.raises(JournalError, match=f"may not set {key}"):
        journal_bench.append("cash_in", {key: "forged"})
    assert journal_bench.journal.head()[0] == 1


@pytest.mark.parametrize("kind", ["journal_start", "signature_recovered"])
def test_callers_cannot_write_the_journals_own_record_types(
    journal_bench: JournalBench, kind: str
) -> None:
    with pytest.raises(JournalError, match="written by the journal itself"):
        journal_bench.append(kind, {})


@pytest.mark.parametrize("kind", ["", "Tx Close", "tx-close", 5])
def test_record_types_are_lower_case_identifiers(journal_bench: JournalBench, kind: object) -> None:
    with pytest.raises(JournalError, match="must be lower-case"):
        journal_bench.append(kind, {})  # type: ignore[arg-type]


def test_a_float_amount_is_refused_before_anything_is_signed(journal_bench: JournalBench) -> None:
    with pytest.raises(JournalError, match="amount_fen is a float"):
        journal_bench.append("tx_close", tx_close_fields(1, amount_fen=12.5), sign=True)  # type: ignore[arg-type]
    assert journal_bench.journal.head()[0] == 1


def test_a_signed_record_carries_its_signer_certificate_hash_and_a_valid_signature(
    journal_bench: JournalBench,
) -> None:
    record = journal_bench.pay(1)
    assert record["signer"] == "software"
    assert record["cert_sha256"] == der_sha256(journal_bench.cert_pem)
    assert signature_verifies(record, journal_bench.cert_pem)
    unsigned = journal_bench.journal.by_tx(str(record["tx_id"]))[0]
    assert "sig" not in unsigned and "signer" not in unsigned


def test_a_numbered_receipt_is_the_seq_of_its_record_and_is_found_by_primary_key(
    journal_bench: JournalBench,
) -> None:
    journal_bench.pay(1)
    fields = tx_close_fields(2)
    del fields["receipt_no"]
    record = journal_bench.append("tx_close", fields, sign=True, numbered_receipt=True)
    assert record["receipt_no"] == f"{TERMINAL}-{record['seq']:06d}"
    journal = journal_bench.journal
    assert journal.by_receipt(str(record["receipt_no"])) == record
    # One receipt number, one record: the number names the record's own seq.
    assert journal.by_receipt(f"{TERMINAL}-{int(str(record['seq'])) - 1:06d}") is None
    assert journal.by_receipt(f"OTHER-{record['seq']:06d}") is None
    assert journal.by_receipt("nonsense") is None
    queries: list[str] = []
    journal_bench.conn.set_trace_callback(queries.append)
    journal.by_receipt(str(record["receipt_no"]))
    journal_bench.conn.set_trace_callback(None)
    plan = journal_bench.conn.execute(f"EXPLAIN QUERY PLAN {queries[0]}").fetchall()
    assert "INTEGER PRIMARY KEY" in plan[0][3]


def test_a_receipt_number_from_before_numbering_by_seq_is_still_found(
    journal_bench: JournalBench,
) -> None:
    counted = journal_bench.pay(1)  # numbered 000001 by a counter, but at seq 4
    assert counted["receipt_no"] == f"{TERMINAL}-000001" and counted["seq"] != 1
    assert journal_bench.journal.by_receipt(f"{TERMINAL}-000001") == counted


def test_the_journal_numbers_a_receipt_itself_or_not_at_all(journal_bench: JournalBench) -> None:
    with pytest.raises(JournalError, match="may not set receipt_no"):
        journal_bench.append("tx_close", tx_close_fields(1), sign=True, numbered_receipt=True)


def test_lookups_find_records_by_transaction_receipt_and_type(
    journal_bench: JournalBench,
) -> None:
    first = journal_bench.pay(1)
    second = journal_bench.pay(2)
    tx_id = str(first["tx_id"])
    assert [r["type"] for r in journal_bench.journal.by_tx(tx_id)] == [
        "tx_open",
        "cash_in",
        "tx_close",
    ]
    assert journal_bench.journal.by_receipt("SD-JN-0001-000002") == second
    assert journal_bench.journal.by_receipt("SD-JN-0001-999999") is None
    assert list(journal_bench.journal.of_type("tx_close")) == [first, second]
    assert list(journal_bench.journal.of_type("tx_close", int(str(first["seq"])))) == [second]
    assert journal_bench.journal.last_of_type("tx_close") == second
    assert journal_bench.journal.last_of_type("day_close") is None
    assert journal_bench.journal.by_tx("nobody") == []


def test_records_iterates_from_a_given_seq_across_many_pages(journal_bench: JournalBench) -> None:
    with write_transaction(journal_bench.conn):
        for index in range(1200):
            journal_bench.journal.append("cash_in", {"value_fen": index})
    assert [r["seq"] for r in journal_bench.journal.records(555)] == list(range(555, 1202))


# ------------------------------------------------------------------ append-only


def test_sqlite_refuses_to_change_a_journal_record(journal_bench: JournalBench) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        journal_bench.conn.execute("UPDATE journal SET type = 'x' WHERE seq = 1")


def test_sqlite_refuses_to_delete_a_journal_record(journal_bench: JournalBench) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        journal_bench.conn.execute("DELETE FROM journal WHERE seq = 1")


def test_sqlite_refuses_a_record_that_would_leave_a_gap(journal_bench: JournalBench) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="without gaps"):
        journal_bench.conn.execute(
            "INSERT INTO journal (seq, type, record, hash, turnover_fen)"
            " VALUES (3, 'x', '{}', 'h', 0)"
        )


# ------------------------------------------------------------------ signature outages


def test_a_failed_signature_stores_the_record_unsigned_marked_and_starts_an_outage(
    journal_bench: JournalBench,
) -> None:
    assert journal_bench.journal.signing_available()
    journal_bench.signer.failing = True
    record = journal_bench.pay(1)
    assert record["sig_failed"] is True
    assert not {"sig", "signer"} & set(record)
    assert journal_bench.journal.by_receipt("SD-JN-0001-000001") == record
    assert not journal_bench.journal.signing_available()


def test_during_an_outage_nothing_is_signed_until_the_outage_is_recorded(
    journal_bench: JournalBench,
) -> None:
    journal_bench.signer.failing = True
    journal_bench.pay(1)
    journal_bench.signer.failing = False
    record = journal_bench.pay(2)
    assert record["sig_failed"] is True and "sig" not in record


def test_the_outage_survives_a_restart(journal_bench: JournalBench) -> None:
    journal_bench.signer.failing = True
    journal_bench.pay(1)
    assert not journal_bench.reopen().signing_available()


def test_recovery_writes_one_signed_record_covering_the_outage_span(
    journal_bench: JournalBench,
) -> None:
    journal_bench.pay(1)  # seq 2..4, signed
    journal_bench.signer.failing = True
    journal_bench.pay(2)  # seq 5..7, 7 unsigned
    journal_bench.pay(3)  # seq 8..10, 10 unsigned
    journal_bench.close_day()  # 11
    assert journal_bench.journal.try_recover_signing() is None
    journal_bench.signer.failing = False
    recovered = journal_bench.journal.try_recover_signing()
    assert recovered is not None
    assert recovered["type"] == "signature_recovered"
    assert (recovered["seq"], recovered["first_seq"], recovered["last_seq"]) == (12, 7, 11)
    assert recovered["count"] == 3
    assert signature_verifies(recovered, journal_bench.cert_pem)
    assert journal_bench.journal.signing_available()
    assert journal_bench.journal.try_recover_signing() is None
    assert "sig" in journal_bench.pay(4)


def test_recovery_while_the_signer_still_fails_writes_nothing(journal_bench: JournalBench) -> None:
    journal_bench.signer.failing = True
    journal_bench.pay(1)
    head = journal_bench.journal.head()
    assert journal_bench.journal.try_recover_signing() is None
    assert journal_bench.journal.head() == head
    assert not journal_bench.conn.in_transaction


def test_without_an_outage_there_is_nothing_to_recover(journal_bench: JournalBench) -> None:
    assert journal_bench.journal.try_recover_signing() is None
    assert journal_bench.journal.head()[0] == 1


def test_opening_after_a_restart_ends_an_outage_once_the_token_is_back(
    journal_bench: JournalBench,
) -> None:
    journal_bench.signer.failing = True
    journal_bench.pay(1)
    journal_bench.signer.failing = False
    journal = journal_bench.reopen()
    journal.open()
    recovered = journal.last_of_type("signature_recovered")
    assert recovered is not None and (recovered["first_seq"], recovered["count"]) == (4, 1)
    assert journal.signing_available()


def test_a_journal_started_while_the_token_fails_is_in_an_outage_from_record_one(
    tmp_path: Path,
) -> None:
    signer = make_signer(tmp_path)
    signer.failing = True
    conn = open_database(tmp_path / "t.sqlite3")
    journal = Journal(conn, signer, station=STATION, terminal=TERMINAL, clock=_clock())
    journal.open()
    start = journal.last_of_type("journal_start")
    assert start is not None and start["sig_failed"] is True
    assert start["cert_sha256"] == der_sha256(signer.certificate_pem())
    assert not journal.signing_available()
    signer.failing = False
    journal.open()
    recovered = journal.last_of_type("signature_recovered")
    assert recovered is not None and (recovered["first_seq"], recovered["last_seq"]) == (1, 1)


def _clock() -> FixedClock:
    return FixedClock(START)


def test_a_journal_not_yet_started_refuses_records(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "terminal.sqlite3")
    journal = Journal(
        conn, make_signer(tmp_path), station=STATION, terminal=TERMINAL, clock=FixedClock(START)
    )
    with pytest.raises(JournalError, match="not started: call Journal.open"):
        with write_transaction(conn):
            journal.append("tx_open", {"tx_id": "T0001-1"})
    assert journal.head()[0] == 0
    conn.close()


def test_ordinary_records_enter_no_index_and_every_lookup_is_by_seq_or_a_partial_index(
    journal_bench: JournalBench,
) -> None:
    # Each index entry is a page written on the commit of every note and every payment, and
    # a lookup that lost its index would scan every record ever written.
    conn = journal_bench.conn
    indexes = {
        row[0]: row[1]
        # The journal's own: every module's constructor makes the whole terminal schema.
        for row in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'journal'"
        )
    }
    assert sorted(indexes) == ["journal_recovered", "journal_sig_failed"]
    assert all("WHERE" in str(sql) for sql in indexes.values())
    journal_bench.pay(1)
    queries: list[str] = []
    conn.set_trace_callback(queries.append)
    journal_bench.pay(2)
    conn.set_trace_callback(None)
    selects = [query for query in queries if query.startswith("SELECT")]
    assert selects
    for query in selects:
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}")]
        scans = [line for line in plan if line.startswith("SCAN")]
        # Only the tail may walk the table: from its end, for one row.
        assert not scans or query.endswith("ORDER BY seq DESC LIMIT 1"), (query, plan)
