"""kiosk-tool journal export / verify and kiosk-tool receipt verify, as a technician runs them."""

import io
import json
import subprocess
import sys
from pathlib import Path

import base45
import cbor2
import pytest

from firmware_tools.cli import main
from kiosk.receipts import compact, qr_payload
from kiosk.storage import write_transaction
from tests.fixtures.journal_bench import (
    STATION,
    TERMINAL,
    JournalBench,
    OperatorCA,
    make_operator_ca,
    make_signer,
)

KIOSK_TOOL = Path(sys.executable).parent / "kiosk-tool"


def write_config(bench: JournalBench) -> Path:
    config = bench.directory / "terminal.toml"
    config.write_text(
        f"""
data_dir = "{bench.db_path.parent}"

[station]
institution_no = "{STATION}"
name = "历下区泉城路便民服务站"
terminal_id = "{TERMINAL}"

[platform]
url = "http://127.0.0.1:9/"

[token]
kind = "software"
key_file = "{bench.directory / "station-key.pem"}"
cert_file = "{bench.cert_file}"
""",
        encoding="utf-8",
    )
    return config


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def business(bench: JournalBench) -> None:
    bench.pay(1)
    bench.pay(2)
    bench.close_day()


# ------------------------------------------------------------------ export


def test_export_writes_every_record_as_stored(
    journal_bench: JournalBench, capsys: pytest.CaptureFixture[str]
) -> None:
    business(journal_bench)
    out = journal_bench.directory / "journal.jsonl"
    code, stdout, stderr = run(
        capsys,
        "journal",
        "export",
        "--config",
        str(write_config(journal_bench)),
        "--out",
        str(out),
    )
    assert (code, stderr) == (0, "")
    assert stdout == f"exported 8 records to {out}\n"
    assert out.read_text(encoding="utf-8") == "".join(journal_bench.export_lines())
    assert not out.with_name("journal.jsonl.partial").exists()


def test_export_to_stdout_with_a_dash(
    journal_bench: JournalBench, capsys: pytest.CaptureFixture[str]
) -> None:
    business(journal_bench)
    config = str(write_config(journal_bench))
    code, stdout, _ = run(capsys, "journal", "export", "--config", config, "--out", "-")
    assert code == 0 and stdout == "".join(journal_bench.export_lines())


def test_export_sees_only_committed_records_while_the_terminal_writes(
    journal_bench: JournalBench, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(journal_bench))
    out = journal_bench.directory / "journal.jsonl"
    with write_transaction(journal_bench.conn):
        journal_bench.journal.append("cash_in", {"value_fen": 100})
        code, stdout, _ = run(capsys, "journal", "export", "--config", config, "--out", str(out))
    assert code == 0 and stdout.startswith("exported 1 records")
    assert journal_bench.journal.head()[0] == 2


def test_export_of_a_terminal_without_a_database_is_one_clear_line(
    tmp_path: Path, journal_bench: JournalBench, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(journal_bench)
    config.write_text(
        config.read_text().replace(str(journal_bench.db_path.parent), str(tmp_path / "nowhere"))
    )
    code, stdout, stderr = run(
        capsys, "journal", "export", "--config", str(config), "--out", str(tmp_path / "j")
    )
    assert code == 1 and stdout == ""
    assert stderr == (
        f"kiosk-tool: error: terminal database {tmp_path / 'nowhere' / 'terminal.sqlite3'} "
        "does not exist: check data_dir in the configuration\n"
    )
    assert not (tmp_path / "nowhere").exists()


# ------------------------------------------------------------------ verify


def exported(bench: JournalBench) -> Path:
    business(bench)
    path = bench.directory / "journal.jsonl"
    path.write_text("".join(bench.export_lines()), encoding="utf-8")
    return path


def test_verify_of_a_sound_export_prints_the_count_and_warnings(
    journal_bench: JournalBench, capsys: pytest.CaptureFixture[str]
) -> None:
    export = exported(journal_bench)
    code, stdout, stderr = run(
        capsys, "journal", "verify", str(export), "--cert", str(journal_bench.cert_file)
    )
    assert (code, stderr) == (0, "")
    seq, digest = journal_bench.journal.head()
    assert stdout.splitlines() == [
        f"journal sound: 8 records, head {seq}:{digest}",
        "warning: 4 records were signed by the demo software signer, not a token",
    ]


def test_verify_of_a_tampered_export_exits_1_with_one_line(
    journal_bench: JournalBench, capsys: pytest.CaptureFixture[str]
) -> None:
    export = exported(journal_bench)
    lines = export.read_text(encoding="utf-8").splitlines(keepends=True)
    export.write_text("".join(lines[:4] + lines[5:]), encoding="utf-8")
    code, stdout, stderr = run(
        capsys, "journal", "verify", str(export), "--cert", str(journal_bench.cert_file)
    )
    assert (code, stdout) == (1, "")
    assert stderr == (
        "kiosk-tool: error: journal unsound at record 5: record 5 is missing; keep the export "
        "and the terminal as they are and report it\n"
    )


def test_verify_json_reports_for_a_machine(
    journal_bench: JournalBench, capsys: pytest.CaptureFixture[str]
) -> None:
    export = exported(journal_bench)
    export.write_text(export.read_text().replace('"amount_fen":12345', '"amount_fen":1', 1))
    code, stdout, _ = run(
        capsys,
        "journal",
        "verify",
        str(export),
        "--cert",
        str(journal_bench.cert_file),
        "--json",
    )
    report = json.loads(stdout)
    assert code == 1
    assert report["ok"] is False and report["first_bad_seq"] == 4 and report["records"] == 3
    assert "signature does not match" in report["problem"]


def test_verify_against_another_stations_certificate_fails(
    journal_bench: JournalBench, capsys: pytest.CaptureFixture[str]
) -> None:
    export = exported(journal_bench)
    make_signer(journal_bench.directory, "other")
    other = journal_bench.directory / "other-cert.pem"
    code, _, stderr = run(capsys, "journal", "verify", str(export), "--cert", str(other))
    assert code == 1
    assert stderr.startswith(
        "kiosk-tool: error: journal unsound at record 1: record 1: it was signed with another"
    )


@pytest.mark.parametrize(
    ("content", "cert", "message"),
    [
        (b"", "missing.pem", "cannot read certificate"),
        (b"", "export", "holds no PEM certificate"),
        (b"\xff\xfe\n", "cert", "journal unsound at line 2: it is not UTF-8 text"),
    ],
)
def test_verify_problems_with_the_inputs_are_one_clear_line(
    journal_bench: JournalBench,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    cert: str,
    message: str,
) -> None:
    export = exported(journal_bench)
    if content:  # a damaged second line after a sound first one
        export.write_bytes(export.read_bytes().splitlines(keepends=True)[0] + content)
    cert_path = {
        "missing.pem": journal_bench.directory / "missing.pem",
        "export": export,
        "cert": journal_bench.cert_file,
    }[cert]
    code, _, stderr = run(capsys, "journal", "verify", str(export), "--cert", str(cert_path))
    assert code == 1 and message in stderr and stderr.count("\n") == 1


def test_the_installed_console_script_verifies_an_export(journal_bench: JournalBench) -> None:
    export = exported(journal_bench)
    sound = subprocess.run(
        [str(KIOSK_TOOL), "journal", "verify", str(export), "--cert", str(journal_bench.cert_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert sound.returncode == 0 and sound.stdout.startswith("journal sound: 8 records")
    export.write_text(export.read_text()[:-40] + "\n")
    unsound = subprocess.run(
        [str(KIOSK_TOOL), "journal", "verify", str(export), "--cert", str(journal_bench.cert_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert unsound.returncode == 1
    assert unsound.stderr.startswith("kiosk-tool: error: journal unsound at record 8: line 8")
    assert unsound.stderr.count("\n") == 1


def test_verify_against_the_back_offices_head_and_the_operator_ca(
    ca_journal_bench: tuple[JournalBench, OperatorCA], capsys: pytest.CaptureFixture[str]
) -> None:
    bench, _ = ca_journal_bench
    business(bench)
    seq, digest = bench.journal.head()
    bench.pay(3)  # written after the back office acknowledged the head
    config = str(write_config(bench))
    out = bench.directory / "journal.jsonl"
    code, stdout, _ = run(
        capsys, "journal", "export", "--config", config, "--out", str(out), "--upto", str(seq)
    )
    assert (code, stdout) == (0, f"exported {seq} records to {out}\n")
    argv = ["journal", "verify", str(out), "--cert", str(bench.cert_file)]
    argv += ["--ca", str(bench.directory / "operator-ca.pem")]
    code, stdout, stderr = run(capsys, *argv, "--expect-head", f"{seq}:{digest}")
    assert (code, stderr) == (0, "")
    assert stdout.startswith(f"journal sound: {seq} records, head {seq}:{digest}")
    other = "0" * 64
    code, stdout, stderr = run(capsys, *argv, "--expect-head", f"{seq}:{other}", "--json")
    report = json.loads(stdout)
    assert code == 1 and report["first_bad_seq"] == seq
    assert report["problem"].startswith(f"record {seq} is not the expected head")
    code, _, stderr = run(capsys, *argv, "--expect-head", f"{seq + 1}:{digest}")
    assert code == 1 and stderr == (
        f"kiosk-tool: error: journal unsound at record {seq + 1}: the export ends at record "
        f"{seq}, but the expected head is record {seq + 1}: record {seq + 1} is missing (the "
        "export was cut short, or an older copy of the database was restored); keep the export "
        "and the terminal as they are and report it\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--expect-head", "12"], "expected head '12' is not SEQ:HASH"),
        (["--ca", "missing-ca.pem"], "cannot read CA certificate missing-ca.pem"),
    ],
)
def test_verify_refuses_bad_head_and_ca_arguments_in_one_line(
    journal_bench: JournalBench,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    export = exported(journal_bench)
    code, _, stderr = run(
        capsys, "journal", "verify", str(export), "--cert", str(journal_bench.cert_file), *argv
    )
    assert code == 1 and message in stderr and stderr.count("\n") == 1


def test_export_upto_beyond_the_journal_is_refused_and_leaves_no_file(
    journal_bench: JournalBench, capsys: pytest.CaptureFixture[str]
) -> None:
    business(journal_bench)
    out = journal_bench.directory / "journal.jsonl"
    config = str(write_config(journal_bench))
    code, _, stderr = run(
        capsys, "journal", "export", "--config", config, "--out", str(out), "--upto", "99"
    )
    assert code == 1 and "the journal ends at record 8, before record 99" in stderr
    assert not out.exists() and not out.with_name("journal.jsonl.partial").exists()
    with pytest.raises(SystemExit):
        main(["journal", "export", "--config", config, "--out", str(out), "--upto", "0"])
    assert "is not a record number" in capsys.readouterr().err


# ------------------------------------------------------------------ receipt verify


def test_receipt_verify_confirms_a_genuine_receipt(
    journal_bench: JournalBench, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = qr_payload(
        journal_bench.pay(1, voucher_id="7K3M9QXR2T4W8Z6B", voucher_expires="2026-03-01")
    )
    code, stdout, stderr = run(
        capsys, "receipt", "verify", payload, "--cert", str(journal_bench.cert_file)
    )
    assert (code, stderr) == (0, "")
    assert stdout == (
        f"genuine receipt SD-JN-0001-000001 of station {STATION} terminal {TERMINAL}: paid, "
        "amount ¥123.45, fee ¥1.00, at 2025-03-01T09:30:21+08:00; voucher ¥9.00 no. "
        "7K3M-9QXR-2T4W-8Z6B, valid until 2026-03-01 "
        "(signed by the demo software signer, not a token)\n"
    )


def test_receipt_verify_reads_the_code_from_stdin(
    journal_bench: JournalBench,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payload = qr_payload(journal_bench.pay(1))
    monkeypatch.setattr(sys, "stdin", io.StringIO(payload + "\n"))
    code, stdout, _ = run(capsys, "receipt", "verify", "-", "--cert", str(journal_bench.cert_file))
    assert code == 0 and stdout.startswith("genuine receipt SD-JN-0001-000001")


def test_receipt_verify_refuses_an_altered_receipt_in_one_line(
    journal_bench: JournalBench, capsys: pytest.CaptureFixture[str]
) -> None:
    code = compact.decode_code(qr_payload(journal_bench.pay(1)))
    fields = {**code.fields, compact.Field.FEE_FEN: 0}
    body = cbor2.dumps([1, code.prev + code.signature, fields], canonical=True)
    altered = compact.PREFIX + base45.b45encode(body).decode()
    exit_code, stdout, stderr = run(
        capsys, "receipt", "verify", altered, "--cert", str(journal_bench.cert_file)
    )
    assert (exit_code, stdout) == (1, "")
    assert stderr == (
        "kiosk-tool: error: receipt SD-JN-0001-000001 is not genuine: its signature does not "
        "match the station certificate given: the code was altered, or it is another "
        "station's receipt; do not accept it, keep it and report it\n"
    )


def test_receipt_verify_checks_the_operator_ca_when_given(
    ca_journal_bench: tuple[JournalBench, OperatorCA],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    bench, ca = ca_journal_bench
    payload = qr_payload(bench.pay(1, numbered=True))
    ca_file = bench.directory / "operator-ca.pem"
    code, stdout, _ = run(
        capsys, "receipt", "verify", payload, "--cert", str(bench.cert_file), "--ca", str(ca_file)
    )
    assert code == 0 and stdout.startswith("genuine receipt")
    stranger = make_operator_ca(tmp_path, "stranger")
    code, _, stderr = run(
        capsys,
        "receipt",
        "verify",
        payload,
        "--cert",
        str(bench.cert_file),
        "--ca",
        str(tmp_path / "stranger.pem"),
    )
    assert code == 1 and "does not chain to the operator CA" in stderr
    assert stranger.pem and stderr.count("\n") == 1
    code, _, stderr = run(
        capsys, "receipt", "verify", payload, "--cert", str(bench.cert_file), "--ca", "nope.pem"
    )
    assert (code, stderr) == (
        1,
        "kiosk-tool: error: cannot read CA certificate nope.pem: No such file or directory\n",
    )


def test_receipt_verify_json_includes_the_record(
    journal_bench: JournalBench, capsys: pytest.CaptureFixture[str]
) -> None:
    record = journal_bench.pay(1)
    code, stdout, _ = run(
        capsys,
        "receipt",
        "verify",
        qr_payload(record),
        "--cert",
        str(journal_bench.cert_file),
        "--json",
    )
    result = json.loads(stdout)
    assert code == 0 and result["genuine"] is True and result["record"] == record
    code, stdout, _ = run(
        capsys, "receipt", "verify", "nonsense", "--cert", str(journal_bench.cert_file), "--json"
    )
    assert code == 1 and json.loads(stdout)["genuine"] is False


@pytest.mark.parametrize(
    "group", [["journal", "export"], ["journal", "verify"], ["receipt", "verify"]]
)
def test_every_command_explains_itself_with_help(
    group: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*group, "--help"])
    assert exited.value.code == 0
    assert "usage: kiosk-tool" in capsys.readouterr().out


def test_export_works_while_the_terminal_is_stopped(
    journal_bench: JournalBench, capsys: pytest.CaptureFixture[str]
) -> None:
    business(journal_bench)
    expected = "".join(journal_bench.export_lines())
    journal_bench.conn.close()  # the last connection: SQLite folds the WAL into the file
    config = str(write_config(journal_bench))
    code, stdout, _ = run(capsys, "journal", "export", "--config", config, "--out", "-")
    assert code == 0 and stdout == expected
    journal_bench.reopen()
