"""kiosk-tool provision on a SoftHSM2 bench: key on the token, CA-issued certificate, config,
registration with the platform simulator; twice is safe; renewal keeps the journal verifiable."""

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from drivers.token.csr import TokenEnrolment, build_csr
from firmware_tools.cli import main
from kiosk.config import load_config
from kiosk.provisioning.archive import archived_certificates, certificate_sha256
from station.composition import build_signer, build_terminal

pytestmark = pytest.mark.softhsm


@pytest.fixture(autouse=True)
def _own_softhsm_conf(monkeypatch: pytest.MonkeyPatch) -> None:
    # provision --softhsm-dir points SOFTHSM2_CONF at its bench token for the rest of the
    # process (as a one-shot CLI should); restore the session's value after each test.
    monkeypatch.setenv("SOFTHSM2_CONF", os.environ.get("SOFTHSM2_CONF", ""))


def provision(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main(["provision", *args, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else None, captured.err


def test_generated_station_keys_are_sensitive_and_never_extractable(
    fresh_softhsm_token: Any,
) -> None:
    token = fresh_softhsm_token
    enrolment = TokenEnrolment(token.module, token.label, "station-new", token.user_pin)
    assert enrolment.key_facts() is None
    enrolment.generate_key()
    facts = enrolment.key_facts()
    assert facts is not None
    assert facts["sensitive"] is True and facts["extractable"] is False
    assert facts["never_extractable"] is True


def test_the_csr_carries_the_institution_number_and_terminal_id_and_openssl_verifies_it(
    tmp_path: Path, softhsm_token: Any
) -> None:
    token = softhsm_token
    enrolment = TokenEnrolment(token.module, token.label, token.key_label, token.user_pin)
    csr_pem = enrolment.make_csr(
        institution_no="33078200001", terminal_id="T0001", station_name="青山社区便民服务站"
    )
    request = x509.load_pem_x509_csr(csr_pem)
    assert request.is_signature_valid
    (number,) = request.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    (name,) = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert (number.value, name.value) == ("33078200001", "33078200001-T0001")
    path = tmp_path / "station.csr.pem"
    path.write_bytes(csr_pem)
    done = subprocess.run(
        ["openssl", "req", "-in", str(path), "-noout", "-verify"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "verify OK" in (done.stdout + done.stderr)


def test_a_csr_whose_signature_does_not_match_its_key_is_refused(softhsm_token: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    info = other.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    signer = softhsm_token.signer()
    from kiosk.signing import SignerUnavailable

    with pytest.raises(SignerUnavailable, match="does not verify"):
        build_csr(info, signer.sign, institution_no="1", terminal_id="T", station_name="S")


def test_provision_sets_up_a_bench_terminal_and_running_it_again_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform_sim: Any
) -> None:
    config = tmp_path / "kiosk.toml"
    args = [
        "--config", str(config), "--data", str(tmp_path / "data"),
        "--institution-no", "31010001", "--terminal-id", "T-01", "--station-name", "西湖便民服务站",
        "--platform", platform_sim.url, "--devices", "sim",
        "--label", "bench", "--softhsm-dir", str(tmp_path / "token"),
        "--dev-ca", str(tmp_path / "ca"),
    ]  # fmt: skip
    code, summary, err = provision(capsys, *args)
    assert code == 0, err
    statuses = {step["id"]: step["status"] for step in summary["steps"]}
    assert statuses == {
        "initialise": "already done",  # the bench token was made by --softhsm-dir
        "token": "already done",
        "key": "already done",
        "certificate": "done",  # the self-signed bench certificate is replaced by a CA one
        "config": "done",
        "register": "done",
    }
    assert summary["cert_issuer"] == "CN=Kiosk development CA"
    assert "2.5.4.5=31010001" in summary["cert_subject"]  # serialNumber: the 机构号
    loaded = load_config(config)
    assert loaded.station.terminal_id == "T-01"
    # The MQTT client files are named where the fleet CA's issue goes; no broker: telemetry off.
    assert not loaded.telemetry.enabled
    assert loaded.telemetry.cert_file.endswith("mqtt/terminal.pem")
    signer = build_signer(loaded)
    assert x509.load_pem_x509_certificate(signer.certificate_pem()).issuer.rfc4514_string() == (
        "CN=Kiosk development CA"
    )
    stations = {entry["station"] for entry in platform_sim.dump()["stations"]}
    assert "31010001" in stations

    before = config.read_bytes()
    code, again, err = provision(capsys, *args)
    assert code == 0, err
    statuses = {step["id"]: step["status"] for step in again["steps"]}
    assert statuses["certificate"] == "already done"
    assert statuses["config"] == "already done"
    assert again["cert_sha256"] == summary["cert_sha256"]
    assert config.read_bytes() == before


def test_renewal_keeps_records_signed_with_the_old_certificate_verifiable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform_sim: Any
) -> None:
    config = tmp_path / "kiosk.toml"
    code, first, err = provision(
        capsys,
        "--config", str(config), "--data", str(tmp_path / "data"),
        "--institution-no", "31010001", "--terminal-id", "T-01", "--station-name", "西湖便民服务站",
        "--platform", platform_sim.url, "--devices", "sim",
        "--label", "bench", "--softhsm-dir", str(tmp_path / "token"),
        "--dev-ca", str(tmp_path / "ca"),
    )  # fmt: skip
    assert code == 0, err
    loaded = load_config(config)
    terminal, _sims = build_terminal(loaded)
    terminal.start()  # journal_start signed with the first certificate
    terminal.close()

    code, renewed, err = provision(
        capsys, "renew", "--config", str(config), "--dev-ca", str(tmp_path / "ca")
    )
    assert code == 0, err
    assert renewed["cert_sha256"] != first["cert_sha256"]
    archived = {certificate_sha256(pem) for pem in archived_certificates(loaded.data_path)}
    assert {first["cert_sha256"], renewed["cert_sha256"]} <= archived

    # diagnose verifies the journal with the archive: the old record still verifies.
    code = main(
        ["diagnose", "--config", str(config), "--unattended", "--json", "--quiet",
         "--only", "journal", "--only", "token"]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    journal = next(item for item in report["results"] if item["id"] == "journal.verify")
    assert journal["verdict"] == "pass"


def test_provision_without_an_issuer_writes_the_csr_and_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform_sim: Any
) -> None:
    config = tmp_path / "kiosk.toml"
    code = main(
        [
            "provision", "--config", str(config), "--data", str(tmp_path / "data"),
            "--institution-no", "31010002", "--terminal-id", "T-02", "--station-name", "东湖站",
            "--platform", platform_sim.url, "--label", "bench",
            "--softhsm-dir", str(tmp_path / "token"),
        ]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1
    assert "station.csr.pem" in err and "--cert FILE" in err
    assert (tmp_path / "data" / "provisioning" / "station.csr.pem").is_file()
    assert not config.exists()
