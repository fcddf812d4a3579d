"""The software SM2 signer end to end: configured as the terminal's [token], it starts the
journal; journals and receipt codes it signs pass `kiosk-tool journal verify`, `kiosk-tool
receipt verify` and the OpenSSL-only script, with an SM2 operator CA made by `openssl ca`.

It stands in for a 国密 USBKey, whose PKCS#11 SM2 mechanism SoftHSM2 does not have: the
bytes signed and the signature are the same (tests/test_token_algorithms.py checks the
PKCS#11 path with a stand-in key object)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drivers.token.software import create_software_identity
from firmware_tools.cli import main
from kiosk.config import load_config
from kiosk.errors import ConfigError
from kiosk.receipts import qr_payload
from kiosk.signing import KeyType
from station.composition import build_terminal
from tests.fixtures.journal_bench import make_bench, make_sm2_operator_ca
from tests.test_journal_audit_openssl import exported_journal, run_reference_script


def kiosk_tool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "firmware_tools.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_sm2_journal_and_receipt_pass_kiosk_tool_with_the_sm2_ca(tmp_path: Path) -> None:
    ca = make_sm2_operator_ca(tmp_path)
    bench = make_bench(tmp_path, ca.issue(tmp_path, "station"))
    try:
        export = exported_journal(bench, tmp_path / "journal.jsonl")
        cert = bench.cert_file
        verified = kiosk_tool("journal", "verify", export, "--cert", cert, "--ca", ca.cert_file)
        assert verified.returncode == 0, verified.stderr
        seq, digest = bench.journal.head()
        assert verified.stdout.startswith(f"journal sound: {seq} records, head {seq}:{digest}")
        script = run_reference_script(export, cert, tmp_path, "--ca", str(ca.cert_file))
        assert script.returncode == 0, script.stderr

        record = bench.pay(9, numbered=True)
        receipt = kiosk_tool(
            "receipt", "verify", qr_payload(record), "--cert", cert, "--ca", ca.cert_file, "--json"
        )
        assert receipt.returncode == 0, receipt.stderr
        assert json.loads(receipt.stdout)["record"]["alg"] == "SM2-SM3"
    finally:
        bench.conn.close()


def software_config(tmp_path: Path, key_type: str) -> Path:
    create_software_identity(
        tmp_path / "sm2-key.pem",
        tmp_path / "sm2-cert.pem",
        institution_no="33078200001",
        terminal_id="T0001",
        station_name="青山社区便民服务站",
        key_type=KeyType.SM2,
    )
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f"""
data_dir = "{tmp_path / "data"}"

[station]
institution_no = "33078200001"
name = "青山社区便民服务站"
terminal_id = "T0001"

[platform]
url = "http://127.0.0.1:9"

[token]
kind = "software"
key_type = "{key_type}"
key_file = "{tmp_path / "sm2-key.pem"}"
cert_file = "{tmp_path / "sm2-cert.pem"}"
""",
        encoding="utf-8",
    )
    return config


def test_a_terminal_configured_with_an_sm2_software_key_signs_its_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = software_config(tmp_path, "sm2")
    terminal, _sims = build_terminal(load_config(config))
    terminal.start()
    terminal.close()
    export = tmp_path / "journal.jsonl"
    assert main(["journal", "export", "--config", str(config), "--out", str(export)]) == 0
    (start,) = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()][:1]
    assert (start["type"], start["alg"], start["signer"]) == (
        "journal_start",
        "SM2-SM3",
        "software",
    )
    capsys.readouterr()
    code = main(["journal", "verify", str(export), "--cert", str(tmp_path / "sm2-cert.pem")])
    assert code == 0, capsys.readouterr().err
    script = run_reference_script(export, tmp_path / "sm2-cert.pem", tmp_path)
    assert script.returncode == 0, script.stderr


def test_a_key_file_of_another_type_than_token_key_type_is_named(tmp_path: Path) -> None:
    from drivers.token.factory import signer_from_config

    config = load_config(software_config(tmp_path, "p256"))
    with pytest.raises(ConfigError, match=r"'token.key_type' is 'p256', but .* holds a sm2 key"):
        signer_from_config(config.token)
