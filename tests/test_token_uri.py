"""PKCS#11 URIs (RFC 7512) in [token]: parsed, mapped onto the separate keys, bad ones named.

The last tests run `kiosk-tool token status` against a SoftHSM2 token configured by URI only.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.errors import ConfigError
from kiosk.pkcs11_uri import Pkcs11Uri, parse_pkcs11_uri
from tests.fixtures.softhsm import SoftHsmToken

BASE = """
data_dir = "/tmp/kiosk"

[station]
institution_no = "33078200001"
name = "青山社区便民服务站"
terminal_id = "T0001"

[platform]
url = "http://127.0.0.1:8700"

[token]
kind = "pkcs11"
"""


def config_with(tmp_path: Path, token_lines: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(BASE + token_lines, encoding="utf-8")
    return path


def test_the_issue_s_example_gives_every_attribute() -> None:
    uri = (
        "pkcs11:token=Kiosk;object=station;type=private"
        "?module-path=/usr/lib/vendor/libp11.so&pin-source=file:/etc/kiosk/pin"
    )
    assert parse_pkcs11_uri(uri) == Pkcs11Uri(
        token="Kiosk",
        object="station",
        module_path="/usr/lib/vendor/libp11.so",
        pin_source="file:/etc/kiosk/pin",
    )


def test_percent_escapes_and_utf8_labels_are_decoded() -> None:
    parsed = parse_pkcs11_uri("pkcs11:token=%E4%BE%BF%E6%B0%91%20Key;object=st%3Bation")
    assert (parsed.token, parsed.object) == ("便民 Key", "st;ation")
    assert parse_pkcs11_uri("pkcs11:").token is None  # the empty URI names nothing


def test_a_file_uri_pin_source_becomes_a_file_path() -> None:
    parsed = parse_pkcs11_uri("pkcs11:token=k?pin-source=file:///etc/kiosk/pin")
    assert parsed.pin_source == "file:/etc/kiosk/pin"
    assert parse_pkcs11_uri("pkcs11:?pin-source=env:KIOSK_PIN").pin_source == "env:KIOSK_PIN"


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("token=k", "it must start with 'pkcs11:'"),
        ("pkcs11:token=a;token=b", "'token' is given twice"),
        ("pkcs11:serial=123;token=k", "remove 'serial'"),
        ("pkcs11:id=%01", "remove 'id'"),
        ("pkcs11:token=k;type=cert", "type is 'cert', but the URI must name the private key"),
        ("pkcs11:token=k?pin-value=1234", "pin-value puts the PIN in the file"),
        ("pkcs11:token=k?module-name=softhsm2", "'module-name' is not used"),
        ("pkcs11:token=k?module-path=lib.so", "module-path must be an absolute path"),
        ("pkcs11:token=k?pin-source=|/bin/echo", "pin-source must be file:/path"),
        ("pkcs11:token=k?pin-source=file://host/pin", "pin-source must be a local file"),
        ("pkcs11:token=a b", "must be percent-encoded"),
        ("pkcs11:token", "'token' in its path is not NAME=VALUE"),
        ("pkcs11:token=" + "k" * 33, "token must be 1 to 32 bytes long"),
        ("pkcs11:token=%FF", "the value of 'token' is not UTF-8 text"),
        ("pkcs11:object=", "object is empty"),
    ],
)
def test_a_uri_the_terminal_cannot_use_is_one_clear_error(uri: str, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_pkcs11_uri(uri)
    message = str(raised.value)
    assert message.startswith("config key 'token.uri' is not a usable PKCS#11 URI (RFC 7512): ")
    assert problem in message
    assert "\n" not in message


def test_the_uri_fills_the_token_keys(tmp_path: Path) -> None:
    path = config_with(
        tmp_path,
        'uri = "pkcs11:token=bench;object=key1?module-path=/opt/p11.so'
        '&pin-source=env:PIN"\nkey_type = "rsa2048"\n',
    )
    token = load_config(path).token
    assert (token.module, token.label, token.key_label, token.pin_source, token.key_type) == (
        "/opt/p11.so",
        "bench",
        "key1",
        "env:PIN",
        "rsa2048",
    )


def test_attributes_the_uri_leaves_out_keep_their_defaults(tmp_path: Path) -> None:
    token = load_config(config_with(tmp_path, 'uri = "pkcs11:token=bench"\n')).token
    assert (token.label, token.key_label, token.module) == (
        "bench",
        "station",
        "/usr/lib/softhsm/libsofthsm2.so",
    )


def test_a_uri_and_a_separate_key_together_are_refused(tmp_path: Path) -> None:
    path = config_with(tmp_path, 'uri = "pkcs11:token=bench"\nlabel = "kiosk"\n')
    with pytest.raises(ConfigError, match=r"'token.uri' and 'token.label' are both given"):
        load_config(path)


def test_an_sm2_token_needs_its_vendor_mechanism(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'token.sm2_mechanism' is needed"):
        load_config(config_with(tmp_path, 'key_type = "sm2"\n'))
    token = load_config(
        config_with(tmp_path, 'key_type = "sm2"\nsm2_mechanism = 0x80000301\n')
    ).token
    assert (token.key_type, token.sm2_mechanism, token.sm2_hash_on_host) == (
        "sm2",
        0x80000301,
        False,
    )
    with pytest.raises(ConfigError, match=r"'token.key_type' is 'ecc'"):
        load_config(config_with(tmp_path, 'key_type = "ecc"\n'))


def test_config_check_names_a_bad_uri_in_one_line(tmp_path: Path) -> None:
    path = config_with(tmp_path, 'uri = "pkcs11:token=k?pin-value=1234"\n')
    done = subprocess.run(
        [sys.executable, "-m", "firmware_tools.cli", "config", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "pin-value puts the PIN in the file" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.softhsm
def test_a_softhsm_token_configured_by_uri_alone_signs(
    softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text(
        BASE.replace("/tmp/kiosk", str(tmp_path / "data"))
        + f'uri = "pkcs11:token={softhsm_token.label};object={softhsm_token.key_label};'
        f'type=private?module-path={softhsm_token.module}&pin-source=env:KIOSK_TEST_TOKEN_PIN"\n'
        f'softhsm_conf = "{softhsm_token.conf}"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    env["KIOSK_TEST_TOKEN_PIN"] = softhsm_token.user_pin
    done = subprocess.run(
        [sys.executable, "-m", "firmware_tools.cli", "token", "status", "--config", str(config)]
        + ["--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    health = json.loads(done.stdout)
    assert (health["token_label"], health["logged_in"], health["algorithm"]) == (
        softhsm_token.label,
        True,
        "ES256",
    )
