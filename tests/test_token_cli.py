"""kiosk-tool token cert / status, run as a technician runs them, against a SoftHSM2 token."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.softhsm import SoftHsmToken

pytestmark = pytest.mark.softhsm


def write_config(tmp_path: Path, token: SoftHsmToken, *, label: str | None = None) -> Path:
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f"""
data_dir = "{tmp_path / "data"}"

[station]
institution_no = "{token.institution_no}"
name = "{token.station_name}"
terminal_id = "{token.terminal_id}"

[platform]
url = "http://127.0.0.1:8700"

[token]
kind = "pkcs11"
module = "{token.module}"
label = "{label or token.label}"
key_label = "{token.key_label}"
pin_source = "env:KIOSK_TEST_TOKEN_PIN"
softhsm_conf = "{token.conf}"
""",
        encoding="utf-8",
    )
    return config


def kiosk_tool(*args: str | Path, pin: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SOFTHSM2_CONF",)}
    env.pop("KIOSK_TEST_TOKEN_PIN", None)
    if pin is not None:
        env["KIOSK_TEST_TOKEN_PIN"] = pin
    # SOFTHSM2_CONF is left out on purpose: the tool must take it from token.softhsm_conf.
    return subprocess.run(
        [sys.executable, "-m", "firmware_tools.cli", "token", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_token_cert_writes_the_station_certificate_from_the_token(
    softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "station.pem"
    result = kiosk_tool(
        "cert", "--config", write_config(tmp_path, softhsm_token), "--out", out,
        pin=softhsm_token.user_pin,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == softhsm_token.signer().certificate_pem()
    assert str(out) in result.stdout and "CN=33078200001-T0001" in result.stdout
    subject = subprocess.run(
        ["openssl", "x509", "-in", out, "-noout", "-subject"], capture_output=True, text=True
    )
    assert "33078200001-T0001" in subject.stdout


def test_token_status_json_reports_a_ready_token_and_never_the_pin(
    softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    result = kiosk_tool(
        "status", "--config", write_config(tmp_path, softhsm_token), "--json",
        pin=softhsm_token.user_pin,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    health = json.loads(result.stdout)
    assert health["present"] is True and health["logged_in"] is True
    assert health["token_label"] == softhsm_token.label
    assert health["cert_days_left"] >= 729
    assert health["last_error"] is None
    assert softhsm_token.user_pin not in result.stdout + result.stderr


def test_token_status_as_text_lists_one_fact_per_line(
    softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    result = kiosk_tool(
        "status", "--config", write_config(tmp_path, softhsm_token), pin=softhsm_token.user_pin
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split() == ["present", "True"] for line in lines)
    assert any(line.startswith("cert_subject") and "T0001" in line for line in lines)


def test_a_wrong_pin_fails_with_one_line_and_does_not_show_the_pin(
    softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    result = kiosk_tool(
        "status", "--config", write_config(tmp_path, softhsm_token), pin="777-wrong-777"
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("kiosk-tool: error: ")
    assert "refused the user PIN" in result.stderr
    assert "777-wrong-777" not in result.stdout + result.stderr


def test_status_of_an_absent_token_prints_its_state_and_exits_1(
    softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    config = write_config(tmp_path, softhsm_token, label="not-plugged")
    result = kiosk_tool("status", "--config", config, "--json", pin=softhsm_token.user_pin)
    assert result.returncode == 1
    assert json.loads(result.stdout)["present"] is False
    assert result.stderr.count("\n") == 1
    assert "'not-plugged' is not present: plug it in" in result.stderr


def test_cert_of_an_absent_token_fails_with_one_line_and_writes_nothing(
    softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    config = write_config(tmp_path, softhsm_token, label="not-plugged")
    out = tmp_path / "station.pem"
    result = kiosk_tool("cert", "--config", config, "--out", out, pin=softhsm_token.user_pin)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "is not present" in result.stderr
    assert not out.exists()


def test_a_missing_pin_variable_is_named(softhsm_token: SoftHsmToken, tmp_path: Path) -> None:
    result = kiosk_tool("status", "--config", write_config(tmp_path, softhsm_token), pin=None)
    assert result.returncode == 1
    assert "KIOSK_TEST_TOKEN_PIN is not set" in result.stderr
    assert result.stderr.count("\n") == 1


def test_the_commands_explain_themselves() -> None:
    result = kiosk_tool("status", "--help", pin=None)
    assert result.returncode == 0
    assert "--config" in result.stdout and "--json" in result.stdout
    result = kiosk_tool("cert", "--help", pin=None)
    assert result.returncode == 0 and "--out" in result.stdout
