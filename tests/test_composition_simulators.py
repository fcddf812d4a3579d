"""A terminal has no simulators: a configuration asking for one is refused in one line.

The simulators package never ships (deploy/release/build-bundle.sh leaves it out, and
tests/test_import_direction.py holds that nothing shipped imports it); the composition root
names a simulator's module only when the configuration asks for a simulated device. Here
the package is made unimportable, as on a terminal.
"""

import sys
from pathlib import Path

import pytest

from firmware_tools.tool_language import say_text
from kiosk.config import load_config
from kiosk.errors import ConfigError
from kiosk.i18n import translator
from kiosk.message_text import error_text
from station import composition
from station.composition import build_devices
from tests.test_scanner_config import _write


@pytest.mark.parametrize(
    ("devices", "kind"),
    [
        ('cash = "sim"\ncard_reader = "sim"\nprinter = "sim"', "cash"),
        ('ioboard = "sim"', "ioboard"),
    ],
)
def test_a_simulated_device_on_a_terminal_without_simulators_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, devices: str, kind: str
) -> None:
    config = load_config(_write(tmp_path, devices))
    for name in [m for m in sys.modules if m == "simulators" or m.startswith("simulators.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "simulators", None)  # as the bundle: not there at all
    with pytest.raises(ConfigError) as refused:
        build_devices(config)
    message = str(refused.value)
    assert message.startswith(
        f"config key 'devices.{kind}' is \"sim\": simulated devices are not installed"
    )
    assert message.endswith('set it to "real" for this terminal') and "\n" not in message
    # kiosk-tool says it in the technician's language (Chinese unless asked otherwise).
    said = say_text(translator("zh_CN"), error_text(refused.value))
    assert said.startswith(f"配置项 'devices.{kind}' 为 \"sim\"：本机没有安装模拟设备")


def test_a_simulator_missing_a_library_of_its_own_is_not_taken_for_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the simulators package being absent means "not installed here"; a library
    missing inside a development checkout is that library's error, not a config error."""
    config = load_config(_write(tmp_path, 'scanner = "sim"'))

    def missing_library(name: str) -> None:
        raise ModuleNotFoundError("No module named 'evdev'", name="evdev")

    monkeypatch.setattr(composition.importlib, "import_module", missing_library)
    with pytest.raises(ModuleNotFoundError, match="evdev"):
        build_devices(config)
