"""RSA-2048 on SoftHSM2 end to end: the key and certificate on the token, signing, a
provisioned terminal's journal verified by `kiosk-tool journal verify` and by the
OpenSSL-only reference script of docs/journal-format.md."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from drivers.token.pkcs11_signer import Pkcs11Signer
from firmware_tools.cli import main
from kiosk.config import load_config
from kiosk.signing import KeyType, SignatureAlgorithm, SignerUnavailable
from kiosk.station_keys import station_key_of
from station.composition import build_terminal
from tests.fixtures.journal_bench import make_bench
from tests.fixtures.softhsm import SoftHsmToken
from tests.test_journal_audit_openssl import run_reference_script

pytestmark = pytest.mark.softhsm


def test_the_rsa_token_signs_rs256_on_the_token(rsa_softhsm_token: SoftHsmToken) -> None:
    signer = rsa_softhsm_token.signer()
    assert signer.algorithm is SignatureAlgorithm.RS256
    health = signer.health()
    assert (health["present"], health["logged_in"], health["key_type"]) == (True, True, "rsa2048")
    assert health["mechanism"] == "CKM_SHA256_RSA_PKCS"
    certificate = x509.load_pem_x509_certificate(signer.certificate_pem())
    key = station_key_of(certificate)
    assert key.key_type is KeyType.RSA2048
    signature = signer.sign(b"payment")
    assert len(signature) == 256 and key.verify(signature, b"payment")
    # The self-signed certificate was signed by the token too.
    assert key.verify(certificate.signature, certificate.tbs_certificate_bytes)


def test_a_token_key_of_another_type_than_configured_is_refused(
    rsa_softhsm_token: SoftHsmToken,
) -> None:
    token = rsa_softhsm_token
    signer = Pkcs11Signer(token.module, token.label, token.key_label, token.user_pin)  # p256
    with pytest.raises(SignerUnavailable) as raised:
        signer.sign(b"x")
    assert str(raised.value) == (
        f"key 'station' on USBKey token '{token.label}': it is not an ECDSA P-256 key, but"
        " token.key_type is 'p256': correct token.key_type or provision the token again"
    )


def test_a_journal_signed_on_the_rsa_token_passes_kiosk_tool_and_the_openssl_script(
    rsa_softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    signer = rsa_softhsm_token.signer()
    bench = make_bench(tmp_path, signer, station=rsa_softhsm_token.institution_no)
    try:
        cert = tmp_path / "station-cert.pem"
        cert.write_bytes(signer.certificate_pem())
        for number in (1, 2):
            bench.pay(number)
        bench.close_day()
        export = tmp_path / "journal.jsonl"
        export.write_text("".join(bench.export_lines()), encoding="utf-8")
        assert all('"alg":"RS256"' in line for line in export.read_text().splitlines()
                   if '"sig":' in line)  # fmt: skip
        tool = subprocess.run(
            [sys.executable, "-m", "firmware_tools.cli", "journal", "verify", str(export),
             "--cert", str(cert)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert tool.returncode == 0, tool.stderr
        assert tool.stdout.startswith("journal sound: 8 records")
        script = run_reference_script(export, cert, tmp_path)
        assert script.returncode == 0, script.stderr
        assert script.stdout.startswith("journal sound: 8 records")
    finally:
        bench.conn.close()


@pytest.fixture(autouse=True)
def _own_softhsm_conf(monkeypatch: pytest.MonkeyPatch) -> None:
    # provision --softhsm-dir points SOFTHSM2_CONF at its bench token for the rest of the
    # process; restore the session's value after each test.
    monkeypatch.setenv("SOFTHSM2_CONF", os.environ.get("SOFTHSM2_CONF", ""))


def test_provisioning_an_rsa_terminal_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform_sim: Any
) -> None:
    config = tmp_path / "kiosk.toml"
    platform_sim.fund("31010001")  # a station buys float before opening: no low_float record
    code = main(
        [
            "provision", "--config", str(config), "--data", str(tmp_path / "data"),
            "--institution-no", "31010001", "--terminal-id", "T-01",
            "--station-name", "西湖便民服务站",
            "--platform", platform_sim.url, "--devices", "sim", "--key-type", "rsa2048",
            "--label", "rsa-bench", "--softhsm-dir", str(tmp_path / "token"),
            "--dev-ca", str(tmp_path / "ca"), "--json",
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    steps = {step["id"]: step for step in summary["steps"]}
    assert steps["key"]["detail"].startswith("rsa2048 station key on the token")
    assert steps["register"]["status"] == "done"  # the platform took the RSA certificate
    loaded = load_config(config)
    assert loaded.token.key_type == "rsa2048"

    terminal, _sims = build_terminal(loaded)
    terminal.start()  # journal_start, signed RS256 on the token
    terminal.close()
    export = tmp_path / "journal.jsonl"
    cert = tmp_path / "station.pem"
    assert main(["journal", "export", "--config", str(config), "--out", str(export)]) == 0
    assert main(["token", "cert", "--config", str(config), "--out", str(cert)]) == 0
    capsys.readouterr()
    (start,) = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()][:1]
    assert start["alg"] == "RS256"
    ca = tmp_path / "ca" / "dev-ca.pem"
    code = main(["journal", "verify", str(export), "--cert", str(cert), "--ca", str(ca)])
    verified = capsys.readouterr()
    assert code == 0, verified.err
    assert verified.out.startswith("journal sound: 1 records")
    script = run_reference_script(export, cert, tmp_path, "--ca", str(ca))
    assert script.returncode == 0, script.stderr

    # Running it again changes nothing; diagnose signs and verifies with the token.
    code = main(
        ["diagnose", "--config", str(config), "--unattended", "--json", "--quiet",
         "--only", "token", "--only", "journal"]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    sign = next(item for item in report["results"] if item["id"] == "token.sign")
    assert sign["verdict"] == "pass", sign
    assert "RS256" in json.dumps(sign, ensure_ascii=False)
