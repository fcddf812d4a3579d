"""The udev rules give a payment-code scanner its stable name, in either mode, and keep a
HID scanner's digits away from the screen (deploy/pi/90-kiosk.rules)."""

from tests.test_deploy_files import PI, _udev_links, _udev_rules

ANY_PORT = "platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.2:1.0"
HID_NODE = {
    "SUBSYSTEM": "input",
    "KERNEL": "event3",
    "ATTRS{idVendor}": "1eab",
    "ENV{ID_INPUT_KEYBOARD}": "1",
}


def test_a_hid_scanners_keyboard_node_is_the_scanner() -> None:
    assert _udev_links(HID_NODE, ANY_PORT) == {"kiosk-scanner"}
    for vendor in ("0c2e", "05e0"):
        assert _udev_links(dict(HID_NODE, **{"ATTRS{idVendor}": vendor}), ANY_PORT) == {
            "kiosk-scanner"
        }


def test_only_the_keyboard_event_node_of_a_scanner_gets_the_link() -> None:
    consumer_keys = dict(HID_NODE, **{"ENV{ID_INPUT_KEYBOARD}": ""})
    assert _udev_links(consumer_keys, ANY_PORT) == set()
    assert _udev_links(dict(HID_NODE, KERNEL="mouse0"), ANY_PORT) == set()
    assert _udev_links(dict(HID_NODE, **{"ATTRS{idVendor}": "046d"}), ANY_PORT) == set()


def test_a_serial_scanner_is_the_scanner_and_the_printers_adapter_is_not() -> None:
    tty = {"SUBSYSTEM": "tty", "KERNEL": "ttyACM1", "ATTRS{idVendor}": "0c2e"}
    assert _udev_links(tty, ANY_PORT) == {"kiosk-scanner"}
    ch340 = {"SUBSYSTEM": "tty", "KERNEL": "ttyUSB0", "ATTRS{idVendor}": "1a86"}
    assert "kiosk-scanner" not in _udev_links(ch340, ANY_PORT)


def test_libinput_ignores_the_hid_scanner_and_modem_manager_the_serial_one() -> None:
    rules = _udev_rules()
    hid = [rule for rule in rules if ("SUBSYSTEM", "==", "input") in rule]
    assert hid and all(("ENV{LIBINPUT_IGNORE_DEVICE}", "=", "1") in rule for rule in hid)
    text = (PI / "90-kiosk.rules").read_text()
    # The modem rule reads DEVLINKS, so it must come after every rule giving a kiosk- link.
    modem_rule = text.index('ENV{DEVLINKS}=="*kiosk-*", ENV{ID_MM_DEVICE_IGNORE}="1"')
    assert text.rindex('SYMLINK+="kiosk-scanner"') < modem_rule
