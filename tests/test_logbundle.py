"""kiosk-tool logs collect: the bundle holds logs, configuration and diagnostics, never a secret."""

import json
import tarfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.token.software import create_software_identity
from firmware_tools.cli import main
from kiosk.config_template import render_config
from kiosk.logbundle import REDACTED, Redactor

PIN = "731946"
SO_PIN = "so-pin-5820"
PASSWORD = "hunter2-Mosquitto"
MQTT_TOKEN = "eyJhbGciOiJFUzI1NiJ9.c2VjcmV0LXRva2Vu.c2ln"


def bundle_texts(path: Path) -> dict[str, str]:
    with tarfile.open(path, "r:gz") as tar:
        texts = {}
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            assert handle is not None
            texts[member.name] = handle.read().decode("utf-8")
    return texts


@pytest.fixture
def terminal_files(tmp_path: Path) -> tuple[Path, bytes]:
    data = tmp_path / "data"
    token_dir = data / "token"
    signer = create_software_identity(
        token_dir / "station-key.pem",
        token_dir / "station-cert.pem",
        institution_no="33078200001",
        terminal_id="T0001",
        station_name="青山社区便民服务站",
    )
    key_pem = (token_dir / "station-key.pem").read_bytes()
    (token_dir / "user.pin").write_text(PIN + "\n")
    (token_dir / "so.pin").write_text(SO_PIN + "\n")
    for pin_file in token_dir.glob("*.pin"):
        pin_file.chmod(0o600)
    config = tmp_path / "kiosk.toml"
    config.write_text(
        render_config(
            institution_no="33078200001",
            station_name="青山社区便民服务站",
            terminal_id="T0001",
            data_dir=str(data),
            platform_url="http://127.0.0.1:9",
            token={
                "kind": "software",
                "key_file": str(token_dir / "station-key.pem"),
                "cert_file": str(token_dir / "station-cert.pem"),
                "pin_source": f"file:{token_dir / 'user.pin'}",
            },
        )
        + f'\n# broker password = "{PASSWORD}"\n'
    )
    logs = data / "logs"
    logs.mkdir(parents=True)
    (logs / "terminal.log").write_text(
        "2025-03-01 10:00:00 INFO printer paper out on job R1/1\n"
        f"2025-03-01 10:00:01 DEBUG technician typed PIN {PIN} at the prompt\n"
        f"2025-03-01 10:00:02 DEBUG mqtt connect password={PASSWORD} user=kiosk\n"
        f'2025-03-01 10:00:03 DEBUG {{"user_pin": "{PIN}", "so_pin": "{SO_PIN}"}}\n'
        f"2025-03-01 10:00:04 DEBUG Authorization: Bearer {MQTT_TOKEN}\n"
        f"2025-03-01 10:00:05 DEBUG broker mqtts://kiosk:{PASSWORD}@broker.example:8883\n"
        "2025-03-01 10:00:06 ERROR dumped key:\n" + key_pem.decode("ascii")
    )
    (logs / "copied-key.pem").write_bytes(key_pem)
    (logs / "core.bin").write_bytes(b"\x7fELF\0\0\0binary")
    (data / "diagnostics").mkdir()
    (data / "diagnostics" / "diagnose-20250301T100000Z.json").write_text(
        json.dumps({"results": [{"id": "printer.status", "detail": "printer paper out"}]})
    )
    assert signer.kind == "software"
    return config, key_pem


def test_the_bundle_never_contains_a_pin_a_private_key_or_a_password(
    tmp_path: Path, terminal_files: tuple[Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    config, key_pem = terminal_files
    out = tmp_path / "bundle.tar.gz"
    assert main(["logs", "collect", "--config", str(config), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    texts = bundle_texts(out)
    everything = "\n".join(texts.values())
    key_body = "".join(key_pem.decode().splitlines()[1:-1])
    for secret in (PIN, SO_PIN, PASSWORD, MQTT_TOKEN, key_body[:40], "BEGIN PRIVATE KEY"):
        assert secret not in everything, secret
    # What support needs is still there.
    log = texts["kiosk-logs/logs/logs/terminal.log"]
    assert "printer paper out on job R1/1" in log
    assert f"PIN {REDACTED} at the prompt" in log
    assert "kiosk-logs/config/kiosk.toml" in texts
    assert 'institution_no = "33078200001"' in texts["kiosk-logs/config/kiosk.toml"]
    assert "kiosk-logs/diagnostics/diagnose-20250301T100000Z.json" in texts
    # Key files and binaries are left out, and the summary says so.
    assert not any(name.endswith(("copied-key.pem", "core.bin")) for name in texts)
    assert any("copied-key.pem" in item and "secret" in item for item in summary["left_out"])
    assert any("core.bin" in item for item in summary["left_out"])
    assert summary["redactions"] >= 7
    manifest = json.loads(texts["kiosk-logs/MANIFEST.json"])
    assert manifest["terminal"] == "T0001"


def test_a_fresh_unattended_diagnose_can_be_included(
    tmp_path: Path, terminal_files: tuple[Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _key = terminal_files
    out = tmp_path / "bundle.tar.gz"
    assert main(["logs", "collect", "--config", str(config), "--out", str(out), "--diagnose"]) == 0
    texts = bundle_texts(out)
    now = texts["kiosk-logs/diagnostics/now.txt"]
    # The platform at port 9 is down: the bundle's diagnose says so.
    assert "[FAIL] platform.reach: platform down" in now
    assert PIN not in "\n".join(texts.values())


def test_an_out_path_that_is_not_a_tar_gz_is_refused_in_one_line(
    tmp_path: Path, terminal_files: tuple[Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _key = terminal_files
    assert main(["logs", "collect", "--config", str(config), "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "must end in .tar.gz" in err


@given(
    before=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    pin=st.text(alphabet="0123456789", min_size=4, max_size=12),
    after=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
)
def test_a_known_pin_never_survives_redaction_wherever_it_appears(
    before: str, pin: str, after: str
) -> None:
    redactor = Redactor()
    redactor.add_literal(pin)
    assert pin not in redactor.redact(before + pin + after)


@pytest.mark.parametrize(
    "line",
    [
        'pin_source = "file:/etc/kiosk/token.pin"',
        'tls_key = "/etc/kiosk/mqtt/client.key"',
        'token_label = "kiosk"',
        "idempotency key T0001-20250301-0007 posted",
    ],
)
def test_pointers_to_secrets_are_kept_because_they_are_not_secrets(line: str) -> None:
    assert Redactor().redact(line) == line


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ('so_pin = "12345678"', "12345678"),
        ("MQTT_PASSWORD=s3cr3t-value", "s3cr3t-value"),
        ('{"api_key": "abcd-efgh-ijkl"}', "abcd-efgh-ijkl"),
        ("token: 9f8e7d6c5b4a", "9f8e7d6c5b4a"),
    ],
)
def test_values_of_secret_keys_are_redacted(line: str, secret: str) -> None:
    assert secret not in Redactor().redact(line)
