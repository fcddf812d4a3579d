"""[devices] scanner and scanner_port: checked at start, and the scanner the terminal gets."""

import tomllib
from pathlib import Path

import pytest

from drivers.scanner.line_driver import LineScanner
from kiosk.config import load_config, parse_config
from kiosk.config_template import render_config
from kiosk.errors import ConfigError
from simulators.scanner import SimulatedScanner, sample_code
from simulators.scanner_pty import PtyScannerSimulator
from station.composition import build_devices
from tests.fixtures.scanner import wait_for


def config_text(data_dir: Path, devices: str = "") -> str:
    return f"""
data_dir = "{data_dir}"
[station]
institution_no = "33078200001"
name = "青山社区便民服务站"
terminal_id = "T0001"
[platform]
url = "http://127.0.0.1:8700"
[token]
kind = "pkcs11"
[devices]
{devices}
"""


def test_a_terminal_has_no_scanner_unless_configured(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, ""))
    assert (config.devices.scanner, config.devices.scanner_port) == ("none", "")
    assert build_devices(config).scanner is None


def test_a_simulated_scanner_is_built_and_kept_for_the_demo(tmp_path: Path) -> None:
    devices = build_devices(load_config(_write(tmp_path, 'scanner = "sim"')))
    assert isinstance(devices.scanner, SimulatedScanner)
    assert devices.sims.scanner is devices.scanner


def test_a_real_scanner_reads_from_its_port(tmp_path: Path) -> None:
    simulator = PtyScannerSimulator(tmp_path / "kiosk-scanner").start()
    config = load_config(_write(tmp_path, f'scanner = "real"\nscanner_port = "{simulator.link}"'))
    scanner = build_devices(config).scanner
    try:
        assert isinstance(scanner, LineScanner) and scanner.kind == "serial"
        wait_for("the scanner to open", lambda: scanner.health()["connected"] is True)
        scanner.arm()
        simulator.scan(sample_code(serial=3))
        code = scanner.read(5)
        assert code is not None and code.code == sample_code(serial=3)
    finally:
        if isinstance(scanner, LineScanner):
            scanner.close()
        simulator.stop()


@pytest.mark.parametrize(
    ("devices", "message"),
    [
        ('scanner = "real"', r"'devices.scanner_port' is needed when devices.scanner is 'real'"),
        ('scanner = "yes"', r"'devices.scanner' is 'yes'; it must be 'real' or 'sim' or 'none'"),
        ('scanner_port = "/dev/x\\n"', r"'devices.scanner_port' must be one line"),
        ("scanner_port = 3", r"'devices.scanner_port' must be text"),
    ],
)
def test_a_wrong_scanner_setting_is_named(tmp_path: Path, devices: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, devices))


@pytest.mark.parametrize(("devices", "scanner"), [("sim", "sim"), ("real", "none")])
def test_config_init_writes_the_scanner_keys(devices: str, scanner: str) -> None:
    text = render_config(
        institution_no="33078200001",
        station_name="站",
        terminal_id="T0001",
        data_dir="/tmp/kiosk",
        platform_url="http://127.0.0.1:8700",
        token={"kind": "pkcs11"},
        devices=devices,
    )
    config = parse_config(tomllib.loads(text))
    # A real terminal gets "none" until a scanner is fitted and its port set.
    assert (config.devices.scanner, config.devices.scanner_port) == (scanner, "")


def _write(tmp_path: Path, devices: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(config_text(tmp_path / "data", devices), encoding="utf-8")
    return path
