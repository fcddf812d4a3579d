"""Verification of exported journals: every kind of tampering is named by its record."""

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest

from kiosk.journal import JournalError, VerifyReport, verify_jsonl
from tests.fixtures.journal_bench import JournalBench, forge, make_signer


def day(bench: JournalBench) -> list[str]:
    """A business day: start, three payments (records 2-10), a signed day_close (11)."""
    for number in (1, 2, 3):
        bench.pay(number)
    bench.close_day()
    return bench.export_lines()


def records(lines: list[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines]


def line(record: dict[str, object]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def unsound(report: VerifyReport, seq: int, problem: str) -> bool:
    assert not report.ok, "the tampering went unnoticed"
    assert (report.first_bad_seq, report.problem) == (seq, problem), report
    return True


# ------------------------------------------------------------------ sound journals


def test_an_untouched_export_is_sound_with_its_count(journal_bench: JournalBench) -> None:
    report = verify_jsonl(day(journal_bench), journal_bench.cert_pem)
    assert report.ok and report.records == 11
    assert report.first_bad_seq is None and report.problem == ""


def test_records_signed_by_the_software_signer_are_reported_as_a_warning(
    journal_bench: JournalBench,
) -> None:
    report = verify_jsonl(day(journal_bench), journal_bench.cert_pem)
    assert "5 records were signed by the demo software signer, not a token" in report.warnings


def test_records_after_the_last_signature_are_pointed_out(journal_bench: JournalBench) -> None:
    lines = day(journal_bench)
    journal_bench.append("cash_in", {"value_fen": 100})
    report = verify_jsonl(journal_bench.export_lines(), journal_bench.cert_pem)
    assert report.ok
    assert (
        "records 12 to 12 follow the last signature and are protected by the hash chain "
        "only" in report.warnings
    )
    assert not any(
        "follow the last signature" in w
        for w in verify_jsonl(lines, journal_bench.cert_pem).warnings
    )


def test_a_clock_stepping_back_is_a_warning(journal_bench: JournalBench) -> None:
    journal_bench.pay(1)
    journal_bench.clock.advance(-timedelta(hours=1))
    journal_bench.pay(2)
    report = verify_jsonl(journal_bench.export_lines(), journal_bench.cert_pem)
    assert report.ok
    assert any("record 5's time" in warning for warning in report.warnings)


def test_a_certificate_bundle_verifies_records_of_either_certificate(
    journal_bench: JournalBench, tmp_path: Path
) -> None:
    lines = day(journal_bench)
    old = make_signer(tmp_path, "old")
    bundle = old.certificate_pem() + journal_bench.cert_pem
    assert verify_jsonl(lines, bundle).ok


# ------------------------------------------------------------------ tampering


def test_an_altered_signed_record_fails_its_signature(journal_bench: JournalBench) -> None:
    lines = day(journal_bench)
    tx_close = records(lines)[3]
    lines[3] = line({**tx_close, "amount_fen": 1})
    assert unsound(
        verify_jsonl(lines, journal_bench.cert_pem),
        4,
        "record 4: its signature does not match its content: it was altered after signing",
    )


def test_an_altered_unsigned_record_breaks_the_hash_chain_after_it(
    journal_bench: JournalBench,
) -> None:
    lines = day(journal_bench)
    lines[2] = line({**records(lines)[2], "value_fen": 99999})
    assert unsound(
        verify_jsonl(lines, journal_bench.cert_pem),
        3,
        "the hash chain breaks between records 3 and 4: record 3 was altered "
        "(or record 4's prev was)",
    )


def test_a_missing_record_is_named(journal_bench: JournalBench) -> None:
    lines = day(journal_bench)
    del lines[4]
    assert unsound(verify_jsonl(lines, journal_bench.cert_pem), 5, "record 5 is missing")


def test_several_missing_records_are_named_as_a_range(journal_bench: JournalBench) -> None:
    lines = day(journal_bench)
    del lines[4:7]
    assert unsound(verify_jsonl(lines, journal_bench.cert_pem), 5, "records 5 to 7 are missing")


def test_reordered_records_are_named(journal_bench: JournalBench) -> None:
    lines = day(journal_bench)
    lines[5], lines[6] = lines[6], lines[5]
    assert unsound(
        verify_jsonl(lines, journal_bench.cert_pem),
        6,
        "records are out of order: record 7 comes before record 6",
    )


def test_a_repeated_record_is_named(journal_bench: JournalBench) -> None:
    lines = day(journal_bench)
    lines.insert(6, lines[5])
    assert unsound(
        verify_jsonl(lines, journal_bench.cert_pem), 6, "record 6 appears again after record 6"
    )


def test_an_inserted_record_with_a_correct_chain_is_exposed_by_the_next_signature(
    journal_bench: JournalBench,
) -> None:
    """A forger without the key renumbers and rechains, but cannot re-sign tx_close."""
    recs = records(day(journal_bench))
    recs.insert(2, {**recs[2], "value_fen": 50000})  # a second cash_in, unsigned
    assert unsound(
        verify_jsonl(forge(recs, None), journal_bench.cert_pem),
        5,
        "record 5: its signature does not match its content: it was altered after signing",
    )


def test_a_bad_signature_is_named(journal_bench: JournalBench) -> None:
    lines = day(journal_bench)
    other = make_signer(journal_bench.directory, "other")
    record = records(lines)[6]
    stolen = other.sign(b"something else")
    record["sig"] = base64.b64encode(stolen).decode()
    lines[6] = line(record)
    assert unsound(
        verify_jsonl(lines, journal_bench.cert_pem),
        7,
        "record 7: its signature does not match its content: it was altered after signing",
    )


def test_a_record_signed_with_another_certificate_is_named(journal_bench: JournalBench) -> None:
    lines = day(journal_bench)
    other = make_signer(journal_bench.directory, "other")
    report = verify_jsonl(lines, other.certificate_pem())
    assert not report.ok and report.first_bad_seq == 1
    assert report.problem.startswith("record 1: it was signed with another certificate")


def test_a_journal_re_signed_by_another_key_is_refused(journal_bench: JournalBench) -> None:
    other = make_signer(journal_bench.directory, "other")
    forged = forge(records(day(journal_bench)), other)
    report = verify_jsonl(forged, journal_bench.cert_pem)
    assert report.first_bad_seq == 1 and "another certificate" in report.problem


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("{not json\n", "line 6 is not valid JSON"),
        ("[1, 2]\n", "line 6 is not a JSON object"),
        ("\n", "line 6 is empty; every line must hold one record"),
        ('{"seq": 6.0}\n', "line 6: journal field seq is a float"),
        ('{"seq":NaN}\n', "line 6 is not valid JSON (NaN is not JSON"),
    ],
)
def test_a_line_that_is_not_a_record_is_named(
    journal_bench: JournalBench, bad: str, problem: str
) -> None:
    lines = day(journal_bench)
    lines[5] = bad
    report = verify_jsonl(lines, journal_bench.cert_pem)
    assert not report.ok and report.first_bad_seq == 6
    assert report.problem.startswith(problem), report.problem


def test_a_reformatted_line_is_refused_as_edited(journal_bench: JournalBench) -> None:
    lines = day(journal_bench)
    lines[5] = json.dumps(records(lines)[5], indent=1).replace("\n", "") + "\n"
    report = verify_jsonl(lines, journal_bench.cert_pem)
    assert unsound(report, 6, "line 6 is not in canonical JSON form: the export was edited")


def test_a_stripped_signature_is_noticed(journal_bench: JournalBench) -> None:
    lines = day(journal_bench)
    stripped = {k: v for k, v in records(lines)[-1].items() if k not in ("sig",)}
    lines[-1] = line(stripped)
    assert unsound(
        verify_jsonl(lines, journal_bench.cert_pem),
        11,
        "record 11 (day_close) must be signed but carries no signature",
    )


def test_a_journal_must_start_with_journal_start(journal_bench: JournalBench) -> None:
    forged = forge(records(day(journal_bench))[1:], journal_bench.signer)
    assert unsound(
        verify_jsonl(forged, journal_bench.cert_pem),
        1,
        "the journal must start with journal_start, not 'tx_open'",
    )


def test_a_second_journal_start_is_refused(journal_bench: JournalBench) -> None:
    recs = records(day(journal_bench))
    forged = forge(recs + [recs[0]], journal_bench.signer)
    assert unsound(
        verify_jsonl(forged, journal_bench.cert_pem), 12, "record 12 is a second journal_start"
    )


def test_a_journal_cut_before_its_start_is_refused(journal_bench: JournalBench) -> None:
    lines = day(journal_bench)
    report = verify_jsonl(lines[3:], journal_bench.cert_pem)
    assert not report.ok and report.first_bad_seq == 1


def test_an_empty_export_is_unsound(journal_bench: JournalBench) -> None:
    assert unsound(
        verify_jsonl([], journal_bench.cert_pem),
        1,
        "the journal is empty: it must start with journal_start",
    )


def test_a_record_of_another_terminal_is_refused(journal_bench: JournalBench) -> None:
    recs = records(day(journal_bench))
    recs[4] = {**recs[4], "terminal": "SD-JN-0099"}
    report = verify_jsonl(forge(recs, journal_bench.signer), journal_bench.cert_pem)
    assert report.first_bad_seq == 5 and "terminal SD-JN-0099" in report.problem


def test_a_certificate_file_without_a_certificate_is_a_clear_error(
    journal_bench: JournalBench,
) -> None:
    with pytest.raises(JournalError, match="holds no PEM certificate"):
        verify_jsonl(day(journal_bench), b"not a certificate")


# ------------------------------------------------------------------ signature outages


def outage_day(bench: JournalBench, *, recover: bool) -> list[str]:
    bench.pay(1)  # 2-4
    bench.signer.failing = True
    bench.pay(2)  # 5-7, 7 sig_failed
    bench.close_day()  # 8 sig_failed
    bench.signer.failing = False
    if recover:
        bench.journal.try_recover_signing()  # 9
    return bench.export_lines()


def test_a_recovered_outage_is_sound(journal_bench: JournalBench) -> None:
    report = verify_jsonl(outage_day(journal_bench, recover=True), journal_bench.cert_pem)
    assert report.ok and report.records == 9
    assert not any("outage" in warning for warning in report.warnings)


def test_a_journal_ending_in_an_outage_is_sound_with_a_warning(
    journal_bench: JournalBench,
) -> None:
    report = verify_jsonl(outage_day(journal_bench, recover=False), journal_bench.cert_pem)
    assert report.ok
    assert (
        "records 7 to 8 (2 unsigned) were written during a signature device outage that is "
        "not over yet: no signature_recovered record covers them"
    ) in report.warnings


def test_an_outage_never_covered_before_the_next_signature_is_a_failure(
    journal_bench: JournalBench,
) -> None:
    recs = records(outage_day(journal_bench, recover=True))
    recs[8] = {**recs[8], "type": "tx_close", "receipt_no": "X"}  # not the recovery record
    assert unsound(
        verify_jsonl(forge(recs, journal_bench.signer), journal_bench.cert_pem),
        7,
        "the signature outage from record 7 to 8 is never covered by a signature_recovered "
        "record (record 9 is signed)",
    )


def test_a_recovery_record_must_name_the_exact_outage_span(journal_bench: JournalBench) -> None:
    recs = records(outage_day(journal_bench, recover=True))
    recs[8] = {**recs[8], "first_seq": 8, "count": 1}
    assert unsound(
        verify_jsonl(forge(recs, journal_bench.signer), journal_bench.cert_pem),
        9,
        "record 9 covers records 8 to 8 (1 unsigned), but the outage was 7 to 8 (2)",
    )


def test_a_recovery_without_an_outage_is_a_failure(journal_bench: JournalBench) -> None:
    recs = records(outage_day(journal_bench, recover=True))
    for index in (6, 7):
        recs[index] = {k: v for k, v in recs[index].items() if k != "sig_failed"}
        recs[index]["sig"] = "x"  # re-signed by forge()
        recs[index]["signer"] = "software"
        recs[index]["cert_sha256"] = recs[0]["cert_sha256"]
    assert unsound(
        verify_jsonl(forge(recs, journal_bench.signer), journal_bench.cert_pem),
        9,
        "record 9 ends a signature outage that never happened",
    )


def test_an_unsigned_recovery_record_is_a_failure(journal_bench: JournalBench) -> None:
    recs = records(outage_day(journal_bench, recover=True))
    recs[8] = {k: v for k, v in recs[8].items() if k not in ("sig", "signer")}
    recs[8]["sig_failed"] = True
    assert unsound(
        verify_jsonl(forge(recs, journal_bench.signer), journal_bench.cert_pem),
        9,
        "record 9: signature_recovered must be signed",
    )


def test_a_record_both_signed_and_marked_failed_is_refused(journal_bench: JournalBench) -> None:
    recs = records(day(journal_bench))
    recs[3] = {**recs[3], "sig_failed": True}
    assert unsound(
        verify_jsonl(forge(recs, journal_bench.signer), journal_bench.cert_pem),
        4,
        "record 4 has both a signature and sig_failed",
    )
