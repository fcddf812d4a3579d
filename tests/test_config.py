from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.errors import ConfigError

GOOD = """
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


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_minimal_file_gets_typed_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.station.terminal_id == "T0001"
    assert config.platform.timeout_s == 5.0
    assert config.devices.printer == "sim"
    assert config.business.cutoff_time().hour == 23


def test_a_missing_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'station.terminal_id' is missing"):
        load_config(write(tmp_path, GOOD.replace('terminal_id = "T0001"', "")))


def test_an_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'platform.timeout'"):
        load_config(write(tmp_path, GOOD.replace('url = "http', 'timeout = 3\nurl = "http')))


def test_a_wrong_choice_lists_the_allowed_values(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"'token.kind' is 'usb'; it must be 'pkcs11' or 'software'"
    ):
        load_config(write(tmp_path, GOOD.replace('kind = "pkcs11"', 'kind = "usb"')))


def test_a_wrong_type_is_named(tmp_path: Path) -> None:
    text = GOOD + '\n[business]\nlow_float_threshold_fen = "lots"\n'
    with pytest.raises(ConfigError, match=r"'business.low_float_threshold_fen' must be a whole"):
        load_config(write(tmp_path, text))


def test_a_bad_cutoff_is_refused(tmp_path: Path) -> None:
    text = GOOD + '\n[business]\nday_cutoff = "25:00"\n'
    with pytest.raises(ConfigError, match=r"'business.day_cutoff'.*HH:MM"):
        load_config(write(tmp_path, text))


def test_a_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kiosk-tool config init"):
        load_config(tmp_path / "absent.toml")


def test_broken_toml_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[station\n"))


@pytest.mark.parametrize(
    ("devices", "message"),
    [
        ('cash = "real"\nioboard = "sim"', r"'devices.ioboard' must be 'real' when devices.cash"),
        ('printer = "real"', r"'devices.printer_port' is needed when devices.printer is 'real'"),
        ('ioboard = "real"', r"'devices.ioboard_port' is needed when devices.ioboard is 'real'"),
    ],
)
def test_real_devices_need_their_port_and_cash_needs_the_real_board(
    tmp_path: Path, devices: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, GOOD + f"\n[devices]\n{devices}\n"))


def test_a_switch_must_be_true_or_false(tmp_path: Path) -> None:
    from dataclasses import dataclass

    from kiosk.config import build_table

    @dataclass(frozen=True)
    class Table:
        enabled: bool = False

    assert build_table(Table, {"enabled": True}).enabled is True
    with pytest.raises(ConfigError, match=r"'enabled' must be true or false, not 'yes'"):
        build_table(Table, {"enabled": "yes"})
