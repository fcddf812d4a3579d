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


# ------------------------------------------------------------------ signature algorithms


def test_rsa_and_sm2_journals_are_sound_and_every_signed_record_names_its_alg(
    other_key_journal_bench: JournalBench,
) -> None:
    bench = other_key_journal_bench
    lines = day(bench)
    report = verify_jsonl(lines, bench.cert_pem)
    assert report.ok and report.records == 11, report
    signed = [record for record in records(lines) if "sig" in record]
    assert {record["alg"] for record in signed} == {bench.signer.algorithm.value}
    assert bench.signer.algorithm.value in ("RS256", "SM2-SM3")


def test_an_altered_rsa_or_sm2_signed_record_fails_its_signature(
    other_key_journal_bench: JournalBench,
) -> None:
    bench = other_key_journal_bench
    lines = day(bench)
    altered = [*lines[:3], lines[3].replace('"amount_fen":12345', '"amount_fen":12346'), *lines[4:]]
    report = verify_jsonl(altered, bench.cert_pem)
    assert unsound(
        report,
        4,
        "record 4: its signature does not match its content: it was altered after signing",
    )


def test_alg_is_signed_so_changing_it_breaks_the_signature(journal_bench: JournalBench) -> None:
    lines = day(journal_bench)
    # An ES256 record without alg would still be ES256: but alg was signed, so dropping it
    # (or changing it) changes the signed bytes.
    stripped = records(lines)
    del stripped[3]["alg"]
    report = verify_jsonl(forge(stripped, None), journal_bench.cert_pem)
    assert unsound(
        report,
        4,
        "record 4: its signature does not match its content: it was altered after signing",
    )


def test_an_alg_that_does_not_fit_the_certificate_key_is_refused(
    other_key_journal_bench: JournalBench,
) -> None:
    bench = other_key_journal_bench
    forged = records(day(bench))
    forged[3]["alg"] = "ES256"
    # Re-signed by the station's own key: only the alg rule can catch it.
    unsigned = {key: value for key, value in forged[3].items() if key != "sig"}
    signature = bench.signer.sign(line(unsigned)[:-1].encode())
    forged[3] = {**unsigned, "sig": base64.b64encode(signature).decode()}
    lines = forge(forged, None)
    key = bench.signer.key_type.value
    report = verify_jsonl(lines, bench.cert_pem)
    assert unsound(
        report,
        4,
        f"record 4: its alg is ES256, but its certificate holds a {key} key, which signs "
        f"{bench.signer.algorithm.value}",
    )


def test_an_unknown_alg_is_refused(journal_bench: JournalBench) -> None:
    forged = records(day(journal_bench))
    forged[3]["alg"] = "PS256"
    report = verify_jsonl(forge(forged, None), journal_bench.cert_pem)
    assert unsound(report, 4, "record 4: its alg is 'PS256', not one of ES256, RS256, SM2-SM3")


def test_records_written_before_alg_existed_verify_as_es256(journal_bench: JournalBench) -> None:
    import hashlib

    lines = []
    prev = "0" * 64
    for record in records(day(journal_bench)):
        # Written as the terminal did before alg: no alg key, signed, chained.
        record = {key: value for key, value in record.items() if key not in ("alg", "sig")}
        record["prev"] = prev
        if "signer" in record:
            signature = journal_bench.signer.sign(line(record)[:-1].encode())
            record["sig"] = base64.b64encode(signature).decode()
        lines.append(line(record))
        prev = hashlib.sha256(line(record)[:-1].encode()).hexdigest()
    assert not any('"alg"' in text for text in lines)
    report = verify_jsonl(lines, journal_bench.cert_pem)
    assert report.ok, report


def test_a_record_without_alg_is_not_accepted_from_an_rsa_or_sm2_certificate(
    other_key_journal_bench: JournalBench,
) -> None:
    bench = other_key_journal_bench
    forged = records(day(bench))
    unsigned = {key: value for key, value in forged[0].items() if key not in ("alg", "sig")}
    forged[0] = {
        **unsigned,
        "sig": base64.b64encode(bench.signer.sign(line(unsigned)[:-1].encode())).decode(),
    }
    report = verify_jsonl(forge(forged, None), bench.cert_pem)
    key = bench.signer.key_type.value
    assert unsound(
        report,
        1,
        f"record 1: it names no alg (so ES256), but its certificate holds a {key} key, which "
        f"signs {bench.signer.algorithm.value}",
    )


def test_an_sm2_journal_chains_to_an_sm2_operator_ca(tmp_path: Path) -> None:
    from tests.fixtures.journal_bench import make_bench, make_sm2_operator_ca

    ca = make_sm2_operator_ca(tmp_path)
    bench = make_bench(tmp_path, ca.issue(tmp_path, "station"))
    try:
        lines = day(bench)
        assert verify_jsonl(lines, bench.cert_pem, ca_pem=ca.pem).ok
        stranger = make_sm2_operator_ca(tmp_path, "stranger")
        report = verify_jsonl(lines, bench.cert_pem, ca_pem=stranger.pem)
        assert not report.ok and report.first_bad_seq == 1
        assert report.problem.endswith("no CA certificate given is its issuer")
        # Same name, other key: the SM2 signature over the certificate decides.
        (tmp_path / "impostor").mkdir()
        impostor = make_sm2_operator_ca(tmp_path / "impostor", "sm2-ca")
        report = verify_jsonl(lines, bench.cert_pem, ca_pem=impostor.pem)
        assert not report.ok
        assert report.problem.endswith("its signature does not verify with the CA's key")
    finally:
        bench.conn.close()


def test_an_sm2_certificate_outside_its_validity_does_not_chain(tmp_path: Path) -> None:
    from tests.fixtures.journal_bench import START, make_bench, make_sm2_operator_ca

    ca = make_sm2_operator_ca(tmp_path)
    # Valid from the day after the bench's records were signed.
    later = START + timedelta(days=1)
    bench = make_bench(
        tmp_path, ca.issue(tmp_path, "station", not_before=later, not_after=later + timedelta(1))
    )
    try:
        report = verify_jsonl(day(bench), bench.cert_pem, ca_pem=ca.pem)
        assert not report.ok and report.first_bad_seq == 1
        assert report.problem.endswith("it or the CA certificate is not valid at that time")
    finally:
        bench.conn.close()


def test_a_certificate_with_a_key_no_station_has_is_a_clear_error(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from kiosk.journal.certificates import load_certificates

    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.SERIAL_NUMBER, "1")])
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(JournalError, match="curve secp384r1, not P-256"):
        load_certificates(certificate.public_bytes(serialization.Encoding.PEM))
