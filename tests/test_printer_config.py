"""The printer keys of the configuration and how the composition root builds the ESC/POS driver."""

import tomllib
from pathlib import Path

import pytest

from drivers.printer.escpos_driver import EscPosPrinter
from kiosk.config import Config, load_config, parse_config
from kiosk.config_template import render_config
from kiosk.errors import ConfigError
from station.composition import build_escpos_printer

BASE = {
    "data_dir": "/tmp/kiosk",
    "station": {"institution_no": "33078200001", "name": "站", "terminal_id": "T0001"},
    "platform": {"url": "http://127.0.0.1:8700"},
    "token": {"kind": "pkcs11"},
}


def config(tmp_path: Path, **devices: object) -> Config:
    table = dict(BASE, data_dir=str(tmp_path))
    table["devices"] = {"printer": "real", "printer_port": "/dev/kiosk-printer", **devices}
    return parse_config(table)


def test_the_printer_keys_default_to_auto(tmp_path: Path) -> None:
    devices = config(tmp_path).devices

    assert (devices.printer_model, devices.printer_confirm, devices.printer_transport) == (
        "auto",
        "auto",
        "auto",
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("printer_confirm", "poll", "'devices.printer_confirm' is 'poll'; it must be 'auto' or"),
        ("printer_transport", "usb", "'devices.printer_transport' is 'usb'; it must be 'auto'"),
        ("printer_model", "Clone 58", "'devices.printer_model' is 'Clone 58'; write \"auto\""),
        ("printer_model", 58, "'devices.printer_model' must be text in quotes"),
    ],
)
def test_a_bad_printer_key_is_one_line_naming_the_key(
    tmp_path: Path, key: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", "\\(")) as raised:
        config(tmp_path, **{key: value})

    assert "\n" not in str(raised.value)


def test_an_unknown_model_stops_the_build_naming_the_key_and_the_known_models(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as raised:
        build_escpos_printer(config(tmp_path, printer_model="tm-t88"))

    assert str(raised.value) == (
        "config key 'devices.printer_model': printer model 'tm-t88' is not known; "
        "known models: auto, clone-58, epson-compatible, kiosk-80"
    )


def test_a_model_that_does_not_take_the_paper_width_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'kiosk-80' takes 80 mm paper, not 58 mm"):
        build_escpos_printer(config(tmp_path, printer_model="kiosk-80"))


def test_the_driver_is_built_with_the_configured_model_confirmation_and_transport(
    tmp_path: Path,
) -> None:
    printer = build_escpos_printer(
        config(
            tmp_path,
            printer_model="kiosk-80",
            paper_width_mm=80,
            printer_confirm="status_poll",
            printer_transport="usblp",
        )
    )
    try:
        assert isinstance(printer, EscPosPrinter)
        health = printer.health()  # nothing at /dev/kiosk-printer here: unknown, not fine
        assert (health["model"], health["transport"], health["columns"]) == (
            "kiosk-80",
            "usblp",
            48,
        )
        assert printer.confirmation() == ("status_poll", "config")
        assert health["paper"] == "unknown"
    finally:
        printer.close()


def test_config_init_writes_the_printer_keys_and_they_load(tmp_path: Path) -> None:
    text = render_config(
        institution_no="33078200001",
        station_name="站",
        terminal_id="T0001",
        data_dir=str(tmp_path),
        platform_url="http://127.0.0.1:8700",
        token={"kind": "pkcs11"},
        devices="real",
    )
    devices = tomllib.loads(text)["devices"]
    assert {"printer_model", "printer_confirm", "printer_transport"} <= set(devices)
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")

    assert load_config(path).devices.printer_model == "auto"
