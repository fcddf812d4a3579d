"""kiosk-tool journal export / verify and kiosk-tool receipt verify, as a technician runs them."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_tools.cli import main
from kiosk.receipts import qr_payload
from kiosk.storage import write_transaction
from tests.fixtures.journal_bench import STATION, TERMINAL, JournalBench, make_signer

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
    assert stdout.splitlines() == [
        "journal sound: 8 records",
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
    assert stderr == "kiosk-tool: error: journal unsound at record 5: record 5 is missing\n"


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


# ------------------------------------------------------------------ receipt verify


def test_receipt_verify_confirms_a_genuine_receipt(
    journal_bench: JournalBench, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = qr_payload(journal_bench.pay(1))
    code, stdout, stderr = run(
        capsys, "receipt", "verify", payload, "--cert", str(journal_bench.cert_file)
    )
    assert (code, stderr) == (0, "")
    assert stdout == (
        f"genuine receipt SD-JN-0001-000001 of station {STATION} terminal {TERMINAL}: paid, "
        "amount ¥123.45, fee ¥1.00, at 2025-03-01T09:30:21+08:00 "
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
    payload = qr_payload(journal_bench.pay(1)).replace('"fee_fen":100', '"fee_fen":0')
    code, stdout, stderr = run(
        capsys, "receipt", "verify", payload, "--cert", str(journal_bench.cert_file)
    )
    assert (code, stdout) == (1, "")
    assert stderr == (
        "kiosk-tool: error: receipt SD-JN-0001-000001 is not genuine: its signature does not "
        "match its content: it was altered after signing\n"
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
