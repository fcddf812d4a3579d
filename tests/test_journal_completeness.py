"""The journal proves its own completeness: the expected head, the operator CA, the station
named by the certificate, the recomputed turnover and day totals, and text that cannot wedge
a transaction's commit (issue #16, item 10)."""

import io
import json
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from kiosk.journal import JournalError, export_jsonl, verify_jsonl
from kiosk.journal.canonical import TEXT_REPLACED_KEY, record_hash
from kiosk.journal.verify import VerifyReport, parse_head
from kiosk.receipts import receipt_document, receipt_from_record, verify_receipt
from kiosk.receipts.qr import qr_payload
from kiosk.transactions.outcomes import CloseReason
from kiosk.transactions.transitions import Transitions
from tests.fixtures.engine_hook import engine_of
from tests.fixtures.journal_bench import (
    START,
    STATION,
    JournalBench,
    OperatorCA,
    forge,
    make_bench,
    make_operator_ca,
)
from tests.fixtures.terminal import TerminalRig


def day(bench: JournalBench) -> list[str]:
    """Start (1), three payments (2-10), their day_close (11)."""
    for number in (1, 2, 3):
        bench.pay(number, numbered=True)
    bench.close_day()
    return bench.export_lines()


def records(lines: list[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines]


def unsound(report: VerifyReport, seq: int, problem: str) -> bool:
    assert not report.ok, "the problem went unnoticed"
    assert (report.first_bad_seq, report.problem) == (seq, problem), report
    return True


# ------------------------------------------------------------------ the expected head


def test_an_export_ending_at_the_expected_head_is_sound(journal_bench: JournalBench) -> None:
    lines = day(journal_bench)
    seq, digest = journal_bench.journal.head()  # what the terminal stores and heartbeats carry
    report = verify_jsonl(lines, journal_bench.cert_pem, expect_head=(seq, digest))
    assert report.ok and report.head == f"{seq}:{digest}"
    assert digest == record_hash(json.loads(lines[-1]))


def test_an_export_cut_short_is_refused_with_the_missing_records(
    journal_bench: JournalBench,
) -> None:
    lines = day(journal_bench)
    head = journal_bench.journal.head()
    assert verify_jsonl(lines[:-2], journal_bench.cert_pem).ok  # sound on its own
    assert unsound(
        verify_jsonl(lines[:-2], journal_bench.cert_pem, expect_head=head),
        10,
        "the export ends at record 9, but the expected head is record 11: records 10 to 11 "
        "are missing (the export was cut short, or an older copy of the database was restored)",
    )


def test_a_restored_older_database_is_refused_even_when_it_has_grown_back(
    journal_bench: JournalBench, tmp_path: Path
) -> None:
    journal_bench.pay(1, numbered=True)  # records 1-4
    backup = sqlite3.connect(tmp_path / "backup.sqlite3")
    journal_bench.conn.backup(backup)  # a copy taken now ...
    backup.close()
    journal_bench.pay(2, numbered=True)  # 5-7: acknowledged by the back office
    head = journal_bench.journal.head()
    # ... is restored over the database, and the terminal writes on from it.
    journal_bench.conn.close()
    shutil.copy(tmp_path / "backup.sqlite3", journal_bench.db_path)
    for suffix in ("-wal", "-shm"):
        Path(f"{journal_bench.db_path}{suffix}").unlink(missing_ok=True)
    journal_bench.reopen()
    journal_bench.pay(3, amount_fen=500, numbered=True)  # 5-7 again, other records
    lines = journal_bench.export_lines()
    assert len(lines) == 7 and verify_jsonl(lines, journal_bench.cert_pem).ok
    report = verify_jsonl(lines, journal_bench.cert_pem, expect_head=head)
    assert not report.ok and report.first_bad_seq == 7
    found = record_hash(json.loads(lines[-1]))
    assert report.problem == (
        f"record 7 is not the expected head: its hash is {found[:16]}..., the back office "
        f"acknowledged {head[1][:16]}... (the journal was rewritten, or another database "
        "restored)"
    )


def test_an_export_going_past_the_head_is_refused_and_export_upto_makes_it_fit(
    journal_bench: JournalBench,
) -> None:
    journal_bench.pay(1, numbered=True)
    head = journal_bench.journal.head()
    journal_bench.pay(2, numbered=True)
    assert unsound(
        verify_jsonl(journal_bench.export_lines(), journal_bench.cert_pem, expect_head=head),
        5,
        "the export goes on past the expected head, record 4, to record 7: export up to the "
        "head (kiosk-tool journal export --upto 4) or take a newer head from the back office",
    )
    out = io.StringIO()
    assert export_jsonl(journal_bench.conn, out, upto=4) == 4
    lines = out.getvalue().splitlines(keepends=True)
    assert verify_jsonl(lines, journal_bench.cert_pem, expect_head=head).ok
    with pytest.raises(JournalError, match="the journal ends at record 7, before record 9"):
        export_jsonl(journal_bench.conn, io.StringIO(), upto=9)


@pytest.mark.parametrize(
    "text", ["", "7", "7:", "0:" + "a" * 64, "7:" + "a" * 63, "x:" + "a" * 64, "7:" + "g" * 64]
)
def test_a_malformed_head_is_one_clear_error(text: str) -> None:
    with pytest.raises(JournalError, match="is not SEQ:HASH") as caught:
        parse_head(text)
    assert "\n" not in str(caught.value)


def test_a_head_may_be_written_in_capitals() -> None:
    assert parse_head(" 12:" + "AB" * 32 + "\n") == (12, "ab" * 32)


# ------------------------------------------------------------------ the operator CA


def test_a_certificate_the_operator_ca_issued_chains_to_it(
    ca_journal_bench: tuple[JournalBench, OperatorCA],
) -> None:
    bench, ca = ca_journal_bench
    report = verify_jsonl(day(bench), bench.cert_pem, ca_pem=ca.pem)
    assert report.ok, report


def test_a_certificate_of_another_ca_is_refused_at_its_first_record(
    ca_journal_bench: tuple[JournalBench, OperatorCA], tmp_path: Path
) -> None:
    bench, _ = ca_journal_bench
    stranger = make_operator_ca(tmp_path, "stranger-ca")
    report = verify_jsonl(day(bench), bench.cert_pem, ca_pem=stranger.pem)
    assert not report.ok and report.first_bad_seq == 1
    assert "does not chain to the operator CA at 2025-03-01T09:30:00+08:00" in report.problem


def test_a_self_signed_station_certificate_does_not_chain_to_the_operator_ca(
    journal_bench: JournalBench, tmp_path: Path
) -> None:
    ca = make_operator_ca(tmp_path)
    report = verify_jsonl(day(journal_bench), journal_bench.cert_pem, ca_pem=ca.pem)
    assert not report.ok and report.first_bad_seq == 1
    assert report.problem.startswith("record 1: the certificate ")


def test_records_signed_after_the_certificate_expired_are_refused_at_the_last_one(
    tmp_path: Path,
) -> None:
    ca = make_operator_ca(tmp_path)
    signer = ca.issue(tmp_path, "station", not_after=START + timedelta(seconds=30))
    bench = make_bench(tmp_path, signer)
    try:
        lines = day(bench)  # records every 7 seconds: the last ones after the 30 s
        assert verify_jsonl(lines, bench.cert_pem).ok  # without the CA nothing says so
        report = verify_jsonl(lines, bench.cert_pem, ca_pem=ca.pem)
        assert not report.ok and report.first_bad_seq == 11
        assert "cert is not valid at validation time" in report.problem
    finally:
        bench.conn.close()


def test_a_ca_file_without_a_certificate_is_one_clear_error(journal_bench: JournalBench) -> None:
    with pytest.raises(JournalError, match="the CA file holds no PEM certificate"):
        verify_jsonl(day(journal_bench), journal_bench.cert_pem, ca_pem=b"nothing")


# ------------------------------------------------------------------ the station


def test_a_certificate_of_another_station_may_not_sign_this_stations_records(
    tmp_path: Path,
) -> None:
    ca = make_operator_ca(tmp_path)
    bench = make_bench(tmp_path, ca.issue(tmp_path, "station", station="3701029999"))
    try:
        report = verify_jsonl(day(bench), bench.cert_pem, ca_pem=ca.pem)
        assert unsound(
            report,
            1,
            f"record 1: it may not be signed with its certificate: the certificate "
            f"{bench.journal.last_of_type('journal_start')['cert_sha256'][:16]}... is of "  # type: ignore[index]
            f"station 3701029999, not of station {STATION}",
        )
    finally:
        bench.conn.close()


# ------------------------------------------------------------------ recomputed figures


def test_a_real_terminals_day_recomputes_exactly(terminal_rig: TerminalRig) -> None:
    rig = terminal_rig
    for amount, notes in ((10_00, [10_00]), (20_00, [5_00, 20_00])):
        progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", amount)
        rig.insert(progress.tx_id, *notes)
        rig.terminal.finish(progress.tx_id)
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 50_00)
    rig.insert(progress.tx_id, 20_00)
    rig.terminal.cancel(progress.tx_id)
    rig.terminal.close_day()
    rig.clock.advance(timedelta(days=2))
    rig.terminal.close_due_days()  # a day without business too
    out = io.StringIO()
    conn = sqlite3.connect(rig.config.database_path)
    export_jsonl(conn, out)
    conn.close()
    report = verify_jsonl(out.getvalue().splitlines(keepends=True), rig.signer.certificate_pem())
    assert report.ok, report.problem


def test_a_re_signed_amount_is_caught_by_the_turnover_counter(
    journal_bench: JournalBench,
) -> None:
    """An insider holding the token alters a closed payment and re-signs the journal."""
    recs = records(day(journal_bench))
    recs[6] = {**recs[6], "amount_fen": 1}  # the second tx_close
    report = verify_jsonl(forge(recs, journal_bench.signer), journal_bench.cert_pem)
    assert unsound(
        report,
        7,
        "record 7: turnover_fen is 24890, but record 4's 12445 plus this record's amount and "
        "fee (101) is 12546",
    )


def test_a_record_that_moves_the_turnover_without_a_payment_is_caught(
    journal_bench: JournalBench,
) -> None:
    journal_bench.pay(1, numbered=True)
    journal_bench.append("cash_in", {"value_fen": 100}, turnover_add_fen=100)
    assert unsound(
        verify_jsonl(journal_bench.export_lines(), journal_bench.cert_pem),
        5,
        "record 5: turnover_fen is 12545, but record 4's 12445 plus this record's amount and "
        "fee (0) is 12445",
    )


def test_a_re_signed_day_report_is_caught_by_recomputing_it(
    journal_bench: JournalBench,
) -> None:
    recs = records(day(journal_bench))
    report_record = recs[10]
    assert report_record["type"] == "day_close" and report_record["paid_fen"] == 3 * 12445
    recs[10] = {**report_record, "paid_fen": 2 * 12445}
    report = verify_jsonl(forge(recs, journal_bench.signer), journal_bench.cert_pem)
    assert unsound(
        report,
        11,
        "record 11 (day_close of 2025-03-01): paid_fen is 24890, but its tx_close records "
        "(records 4 to 10) give 37335",
    )


def test_a_day_report_hiding_a_service_is_caught(journal_bench: JournalBench) -> None:
    journal_bench.pay(1, numbered=True)
    journal_bench.pay(2, numbered=True, service="water-bill")
    journal_bench.close_day(services={"electricity": {"count": 1, "amount_fen": 12345}})
    report = verify_jsonl(journal_bench.export_lines(), journal_bench.cert_pem)
    assert not report.ok and report.first_bad_seq == 8
    assert report.problem.startswith("record 8 (day_close of 2025-03-01): services is ")


def test_each_day_counts_only_the_closes_since_the_previous_day_close(
    journal_bench: JournalBench,
) -> None:
    journal_bench.pay(1, numbered=True)
    journal_bench.close_day("2025-03-01")
    journal_bench.pay(2, numbered=True, business_day="2025-03-02")
    journal_bench.close_day("2025-03-02")
    journal_bench.close_day("2025-03-03")  # no business
    report = verify_jsonl(journal_bench.export_lines(), journal_bench.cert_pem)
    assert report.ok, report.problem


# ------------------------------------------------------------------ text that is no text


def test_a_lone_surrogate_is_journaled_as_u_fffd_and_named(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(
        1, numbered=True, outcome="failed", reason="平台拒绝：\ud800 bad \udcff", platform_ref=None
    )
    assert record["reason"] == "平台拒绝：\ufffd bad \ufffd"
    assert record[TEXT_REPLACED_KEY] == ["reason"]
    assert journal_bench.journal.by_receipt(str(record["receipt_no"])) == record
    assert verify_jsonl(journal_bench.export_lines(), journal_bench.cert_pem).ok
    receipt = receipt_from_record(record, station_name="站", service_name="电费")
    assert receipt_document(receipt, record, columns=32).lines
    assert verify_receipt(qr_payload(record), journal_bench.cert_pem).genuine


def test_a_valid_surrogate_pair_becomes_its_character(journal_bench: JournalBench) -> None:
    record = journal_bench.append("note", {"text": "\ud83d\ude00 ok", "nested": ["\ud800"]})
    assert record["text"] == "😀 ok" and record["nested"] == ["\ufffd"]
    assert record[TEXT_REPLACED_KEY] == ["nested[0]", "text"]


def test_the_journal_names_the_repaired_fields_itself(journal_bench: JournalBench) -> None:
    with pytest.raises(JournalError, match="may not set text_replaced"):
        journal_bench.append("note", {TEXT_REPLACED_KEY: []})


def test_a_lone_surrogate_in_a_refusal_code_cannot_wedge_a_transaction(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    engine = engine_of(rig.terminal)
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 50_00)
    rig.insert(progress.tx_id, 20_00)
    # A refusal code as it comes from outside (a platform's JSON "\ud800"): only codes of
    # the platform's form are kept.
    code = json.loads('"refused_\\ud800"')
    # White-box: the engine's own transitions on its own connection (test hook, no public
    # way: a refusal code as only a platform's answer could bring it).
    transitions = Transitions(engine._conn, engine.store, rig.terminal.journal, rig.clock)
    row = transitions.to_voiding(
        engine.store.get(progress.tx_id), CloseReason.PLATFORM_REFUSED, refusal=code
    )
    assert row.refusal == "unreadable_code"
    rig.terminal.tick()
    close = rig.closes()[-1]
    assert close["tx_id"] == progress.tx_id and close["refusal"] == "unreadable_code"
    assert close["voucher_fen"] == 20_00 and "sig" in close
    again = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 10_00)  # not wedged
    rig.insert(again.tx_id, 10_00)
    assert rig.terminal.finish(again.tx_id).outcome == "paid"
