"""An auditor's check of a real exported journal, done as docs/journal-format.md says.

These tests use only the standard json module, hashlib and the openssl command line, never
kiosk.journal.verify: they show the documented procedure works without our code.
"""

import base64
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import base45
import cbor2
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from kiosk.journal import canonical_json
from kiosk.receipts import compact, qr_payload
from kiosk.signing import KeyType
from tests.fixtures.journal_bench import (
    JournalBench,
    OperatorCA,
    forge,
    make_bench,
    make_operator_ca,
    worst_case,
)

DOC = Path(__file__).parent.parent / "docs" / "journal-format.md"

# ------------------------------------------------------------------ the canonical form claim


def python_canonical(obj: object) -> bytes:
    """Section 3 of the document, verbatim."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


# Exactly the values section 3 says the journal holds.
journal_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(st.characters(max_codepoint=127)), children, max_size=5)
    ),
    max_leaves=30,
)
journal_records = st.dictionaries(
    st.text(st.characters(max_codepoint=127)), journal_values, max_size=8
)


@given(journal_records)
def test_rfc8785_equals_sorted_compact_json_dumps_for_every_journal_value(
    record: dict[str, object],
) -> None:
    assert rfc8785.dumps(record) == python_canonical(record)
    assert canonical_json(record) == python_canonical(record)


@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x40, exclude_categories=["Cs"])))
def test_control_characters_and_quotes_are_escaped_alike(text: str) -> None:
    assert rfc8785.dumps({"t": text}) == python_canonical({"t": text})


def test_the_claim_needs_the_journal_subset_non_ascii_keys_would_sort_differently() -> None:
    # RFC 8785 sorts keys by UTF-16 code units, Python by code points: they disagree on a
    # key above U+FFFF against one in U+E000-U+FFFF. This is why journal keys are ASCII.
    obj = {"\ue000": 1, "\U0001f600": 2}
    assert rfc8785.dumps(obj) != python_canonical(obj)


# ------------------------------------------------------------------ the procedure, literally


def openssl(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, check=False)


def audit_with_openssl(export: Path, cert: Path, work: Path) -> list[str]:
    """Section 4, step by step; returns the problems found (empty: sound)."""
    problems: list[str] = []
    pub = work / "pub.pem"
    pub.write_bytes(openssl("x509", "-in", cert, "-pubkey", "-noout").stdout)
    der = openssl("x509", "-in", cert, "-outform", "DER").stdout
    cert_sha256 = hashlib.sha256(der).hexdigest()
    prev = "0" * 64
    with export.open(encoding="utf-8", newline="") as lines:
        for n, line in enumerate(lines, start=1):
            # 1. parse: strip the LF, parse, and the line must be canonical
            assert line.endswith("\n")
            text = line[:-1]
            rec = json.loads(text)
            if python_canonical(rec) != text.encode("utf-8"):
                problems.append(f"line {n}: not canonical")
            # 2. number
            if rec["seq"] != n:
                problems.append(f"line {n}: seq {rec['seq']}")
            # 3. chain
            if rec["prev"] != prev:
                problems.append(f"record {n}: prev does not match record {n - 1}")
            # 4. start
            if (rec["type"] == "journal_start") != (n == 1):
                problems.append(f"record {n}: journal_start misplaced")
            # 5. signature
            if "sig" in rec:
                if rec["cert_sha256"] != cert_sha256:
                    problems.append(f"record {n}: other certificate")
                unsigned = {key: value for key, value in rec.items() if key != "sig"}
                (work / "data.bin").write_bytes(python_canonical(unsigned))
                (work / "sig.der").write_bytes(base64.b64decode(rec["sig"]))
                result = openssl(
                    "dgst",
                    "-sha256",
                    "-verify",
                    pub,
                    "-signature",
                    work / "sig.der",
                    work / "data.bin",
                )
                if result.returncode != 0 or result.stdout.strip() != b"Verified OK":
                    problems.append(f"record {n}: bad signature")
            prev = hashlib.sha256(python_canonical(rec)).hexdigest()
    return problems


def exported_journal(bench: JournalBench, path: Path) -> Path:
    bench.pay(1)
    bench.pay(2, amount_fen=9900, card_no_masked="37**********0042", card_credit="written")
    bench.signer.failing = True
    bench.pay(3)
    bench.signer.failing = False
    bench.journal.try_recover_signing()
    bench.close_day()
    path.write_text("".join(bench.export_lines()), encoding="utf-8", newline="")
    return path


def test_the_certificate_hash_from_openssl_is_what_signed_records_name(
    journal_bench: JournalBench, tmp_path: Path
) -> None:
    digest = subprocess.run(
        f"openssl x509 -in {journal_bench.cert_file} -outform DER | openssl dgst -sha256 -r",
        shell=True,
        capture_output=True,
        check=True,
        text=True,
    ).stdout.split()[0]
    start = journal_bench.journal.last_of_type("journal_start")
    assert start is not None and start["cert_sha256"] == digest


def test_an_exported_journal_passes_the_documented_openssl_audit(
    journal_bench: JournalBench, tmp_path: Path
) -> None:
    export = exported_journal(journal_bench, tmp_path / "journal.jsonl")
    lines = export.read_text(encoding="utf-8").splitlines()
    assert sum('"sig":' in line for line in lines) == 5  # start, 2 tx_close, recovery, day
    assert audit_with_openssl(export, journal_bench.cert_file, tmp_path) == []


def test_the_documented_openssl_audit_finds_an_altered_amount(
    journal_bench: JournalBench, tmp_path: Path
) -> None:
    export = exported_journal(journal_bench, tmp_path / "journal.jsonl")
    text = export.read_text(encoding="utf-8")
    assert text.count('"amount_fen":12345,') == 2
    export.write_text(text.replace('"amount_fen":12345,', '"amount_fen":345,', 1))
    # The first tx_close is record 4: its signature fails, and record 5's prev no longer fits.
    assert audit_with_openssl(export, journal_bench.cert_file, tmp_path) == [
        "record 4: bad signature",
        "record 5: prev does not match record 4",
    ]


def test_the_documented_openssl_audit_finds_a_deleted_record(
    journal_bench: JournalBench, tmp_path: Path
) -> None:
    export = exported_journal(journal_bench, tmp_path / "journal.jsonl")
    lines = export.read_text(encoding="utf-8").splitlines(keepends=True)
    export.write_text("".join(lines[:2] + lines[3:]), encoding="utf-8")
    problems = audit_with_openssl(export, journal_bench.cert_file, tmp_path)
    assert problems[:2] == ["line 3: seq 4", "record 3: prev does not match record 2"]


# ------------------------------------------------------------------ the reference script


def reference_script(name: str = "journal-audit.py") -> str:
    pattern = rf"```python\n(# {re.escape(name)}.*?)```"
    match = re.search(pattern, DOC.read_text(), re.DOTALL)
    assert match is not None, f"docs/journal-format.md lost its reference script {name}"
    return match.group(1)


def run_reference_script(
    export: Path | str, cert: Path, tmp_path: Path, *options: str, name: str = "journal-audit.py"
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / name
    script.write_text(reference_script(name))
    # A bare interpreter, isolated from this project: the script needs no code of ours (the
    # receipt script only the cbor2 and base45 libraries, which this interpreter has).
    return subprocess.run(
        [sys.executable, "-I", str(script), str(export), str(cert), *options],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )


def test_the_documents_reference_script_passes_a_sound_export(
    journal_bench: JournalBench, tmp_path: Path
) -> None:
    export = exported_journal(journal_bench, tmp_path / "journal.jsonl")
    result = run_reference_script(export, journal_bench.cert_file, tmp_path)
    assert result.returncode == 0, result.stderr
    seq, digest = journal_bench.journal.head()
    assert result.stdout.strip() == f"journal sound: 12 records, head {seq}:{digest}"


def test_the_documents_reference_script_rejects_a_forged_signature(
    journal_bench: JournalBench, tmp_path: Path
) -> None:
    export = exported_journal(journal_bench, tmp_path / "journal.jsonl")
    text = export.read_text(encoding="utf-8")
    export.write_text(text.replace('"outcome":"paid"', '"outcome":"PAID"', 1))
    result = run_reference_script(export, journal_bench.cert_file, tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "journal unsound: record 4: bad signature"


def test_the_documents_reference_script_rejects_an_uncovered_outage(
    journal_bench: JournalBench, tmp_path: Path
) -> None:
    export = exported_journal(journal_bench, tmp_path / "journal.jsonl")
    records = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()]
    kept = [record for record in records if record["type"] != "signature_recovered"]
    # Even a forger holding the key cannot hide the outage: the next signature exposes it.
    export.write_text("".join(forge(kept, journal_bench.signer)), encoding="utf-8")
    result = run_reference_script(export, journal_bench.cert_file, tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "journal unsound: outage from record 10 never recovered"


def test_the_reference_script_checks_the_operator_ca_and_the_expected_head(
    ca_journal_bench: tuple[JournalBench, OperatorCA], tmp_path: Path
) -> None:
    bench, ca = ca_journal_bench
    export = exported_journal(bench, tmp_path / "journal.jsonl")
    seq, digest = bench.journal.head()
    ca_file = bench.directory / "operator-ca.pem"
    sound = run_reference_script(
        export, bench.cert_file, tmp_path, "--ca", str(ca_file), "--expect-head", f"{seq}:{digest}"
    )
    assert sound.returncode == 0, sound.stderr
    stranger = make_operator_ca(tmp_path, "stranger")
    assert stranger.pem
    other_ca = run_reference_script(
        export, bench.cert_file, tmp_path, "--ca", str(tmp_path / "stranger.pem")
    )
    assert other_ca.returncode == 1
    assert other_ca.stderr.strip() == (
        "journal unsound: record 1: the certificate does not chain to the CA"
    )
    old_head = run_reference_script(
        export, bench.cert_file, tmp_path, "--expect-head", f"{seq + 1}:{digest}"
    )
    assert old_head.returncode == 1
    assert old_head.stderr.strip() == (
        f"journal unsound: the export's head {seq}:{digest} is not it"
    )


def test_the_reference_script_recomputes_turnover_and_day_totals(
    journal_bench: JournalBench, tmp_path: Path
) -> None:
    export = exported_journal(journal_bench, tmp_path / "journal.jsonl")
    records = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()]
    closing = records[-1]
    assert closing["type"] == "day_close" and closing["paid_count"] == 3
    # Someone holding the key re-signs a report that hides a payment ...
    hidden = [*records[:-1], {**closing, "paid_count": 2}]
    export.write_text("".join(forge(hidden, journal_bench.signer)), encoding="utf-8")
    result = run_reference_script(export, journal_bench.cert_file, tmp_path)
    assert result.stderr.strip() == "journal unsound: record 12: paid_count is not 3"
    # ... or a payment's amount, everything after it re-signed too.
    altered = [dict(record) for record in records]
    altered[3]["amount_fen"] = 1
    export.write_text("".join(forge(altered, journal_bench.signer)), encoding="utf-8")
    result = run_reference_script(export, journal_bench.cert_file, tmp_path)
    assert result.stderr.strip() == "journal unsound: record 4: turnover_fen is not 101"


def test_the_reference_script_refuses_a_certificate_of_another_station(
    tmp_path: Path,
) -> None:
    ca = make_operator_ca(tmp_path)
    bench = make_bench(tmp_path, ca.issue(tmp_path, "station", station="3701029999"))
    try:
        export = exported_journal(bench, tmp_path / "journal.jsonl")
        result = run_reference_script(export, bench.cert_file, tmp_path)
        assert result.stderr.strip() == ("journal unsound: record 1: not the certificate's station")
    finally:
        bench.conn.close()


# ------------------------------------------------------------------ the receipt script


def test_the_receipt_script_rebuilds_and_verifies_a_compact_code(
    journal_bench: JournalBench, tmp_path: Path
) -> None:
    record = journal_bench.pay(
        1, numbered=True, voucher_id="7K3M9QXR2T4W8Z6B", voucher_expires="2026-03-01"
    )
    payload = qr_payload(record)
    result = run_reference_script(
        payload, journal_bench.cert_file, tmp_path, name="receipt-audit.py"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == record
    assert (
        hashlib.sha256(canonical_json(json.loads(result.stdout))).hexdigest()
        == (journal_bench.journal.head()[1])
    )


def test_the_receipt_script_rebuilds_the_worst_case_and_refuses_an_altered_one(
    journal_bench: JournalBench, tmp_path: Path
) -> None:
    record = worst_case(journal_bench)
    payload = qr_payload(record)
    result = run_reference_script(
        payload, journal_bench.cert_file, tmp_path, name="receipt-audit.py"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == record
    code = compact.decode_code(payload)
    fields = {**code.fields, compact.Field.CASH_IN_FEN: 1}
    body = cbor2.dumps([1, code.prev + code.signature, fields], canonical=True)
    forged = compact.PREFIX + base45.b45encode(body).decode()
    result = run_reference_script(
        forged, journal_bench.cert_file, tmp_path, name="receipt-audit.py"
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"receipt {record['receipt_no']} is not genuine"


def test_the_receipt_script_says_an_outage_receipt_is_unsigned(
    journal_bench: JournalBench, tmp_path: Path
) -> None:
    journal_bench.signer.failing = True
    record = journal_bench.pay(1, numbered=True)
    result = run_reference_script(
        qr_payload(record), journal_bench.cert_file, tmp_path, name="receipt-audit.py"
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"receipt {record['receipt_no']} is unsigned (a signature device outage): the "
        "station checks it in its journal"
    )


# ------------------------------------------------------------------ RSA-2048 and SM2


def test_the_reference_script_passes_rsa_and_sm2_journals(
    other_key_journal_bench: JournalBench, tmp_path: Path
) -> None:
    bench = other_key_journal_bench
    export = exported_journal(bench, tmp_path / "journal.jsonl")
    result = run_reference_script(export, bench.cert_file, tmp_path)
    assert result.returncode == 0, result.stderr
    seq, digest = bench.journal.head()
    assert result.stdout.strip() == f"journal sound: 12 records, head {seq}:{digest}"
    # ... and it is OpenSSL that decides: an altered amount fails its signature.
    text = export.read_text(encoding="utf-8")
    export.write_text(text.replace('"outcome":"paid"', '"outcome":"PAID"', 1))
    result = run_reference_script(export, bench.cert_file, tmp_path)
    assert result.stderr.strip() == "journal unsound: record 4: bad signature"


def test_the_documented_sm2_command_needs_the_standard_user_id(
    tmp_path: Path,
) -> None:
    from tests.fixtures.journal_bench import make_signer

    signer = make_signer(tmp_path, key_type=KeyType.SM2)
    data = tmp_path / "data.bin"
    data.write_bytes(b'{"seq":1}')
    (tmp_path / "sig.der").write_bytes(signer.sign(data.read_bytes()))
    pub = tmp_path / "pub.pem"
    pub.write_bytes(
        openssl("x509", "-in", tmp_path / "station-cert.pem", "-pubkey", "-noout").stdout
    )
    documented = openssl(
        "dgst", "-sm3", "-verify", pub, "-signature", tmp_path / "sig.der",
        "-sigopt", "distid:1234567812345678", data,
    )  # fmt: skip
    assert documented.returncode == 0 and documented.stdout.strip() == b"Verified OK"
    without_id = openssl("dgst", "-sm3", "-verify", pub, "-signature", tmp_path / "sig.der", data)
    assert without_id.returncode == 1


def test_the_reference_script_refuses_an_alg_that_is_not_the_keys(
    other_key_journal_bench: JournalBench, tmp_path: Path
) -> None:
    bench = other_key_journal_bench
    export = exported_journal(bench, tmp_path / "journal.jsonl")
    records = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()]
    records[3]["alg"] = "ES256"
    unsigned = {key: value for key, value in records[3].items() if key != "sig"}
    records[3]["sig"] = base64.b64encode(bench.signer.sign(python_canonical(unsigned))).decode()
    prev = "0" * 64
    lines = []
    for record in records:
        record["prev"] = prev
        text = python_canonical(record)
        lines.append(text.decode() + "\n")
        prev = hashlib.sha256(text).hexdigest()
    export.write_text("".join(lines), encoding="utf-8")
    result = run_reference_script(export, bench.cert_file, tmp_path)
    assert (
        result.stderr.strip() == "journal unsound: record 4: alg ES256 is not the certificate key's"
    )


def test_the_reference_script_checks_an_sm2_chain_with_openssl_verify(tmp_path: Path) -> None:
    from tests.fixtures.journal_bench import make_sm2_operator_ca

    ca = make_sm2_operator_ca(tmp_path)
    bench = make_bench(tmp_path, ca.issue(tmp_path, "station"))
    try:
        export = exported_journal(bench, tmp_path / "journal.jsonl")
        sound = run_reference_script(export, bench.cert_file, tmp_path, "--ca", str(ca.cert_file))
        assert sound.returncode == 0, sound.stderr
        (tmp_path / "other").mkdir()
        stranger = make_sm2_operator_ca(tmp_path / "other", "sm2-ca")  # same name, other key
        refused = run_reference_script(
            export, bench.cert_file, tmp_path, "--ca", str(stranger.cert_file)
        )
        assert refused.stderr.strip() == (
            "journal unsound: record 1: the certificate does not chain to the CA"
        )
    finally:
        bench.conn.close()


def test_the_receipt_script_verifies_an_sm2_receipt_code(tmp_path: Path) -> None:
    from tests.fixtures.journal_bench import make_signer

    bench = make_bench(tmp_path, make_signer(tmp_path, key_type=KeyType.SM2))
    try:
        record = bench.pay(
            1, numbered=True, voucher_id="7K3M9QXR2T4W8Z6B", voucher_expires="2026-03-01"
        )
        payload = qr_payload(record)
        assert compact.decode_code(payload).algorithm is compact.Algorithm.SM2_SM3
        result = run_reference_script(payload, bench.cert_file, tmp_path, name="receipt-audit.py")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == record
    finally:
        bench.conn.close()
