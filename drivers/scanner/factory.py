"""The real scanner driver for a configured port: HID keyboard or serial, told by the port.

`name:TEXT`, or a path leading (through udev's link) to /dev/input/event*, is a scanner in
HID-keyboard mode; any other path is a serial port (ttyACM*, ttyUSB*, ttyAMA*). The driver
starts reading at once and keeps trying to open a scanner that is not plugged in yet.
"""

import os
import re

from drivers.scanner.line_driver import LineScanner, LineSource
from drivers.scanner.serial_source import SerialLineSource

# A HID scanner named by its input device's name (hid_source reads the rest of the port).
NAME_PREFIX = "name:"
_EVENT_DEVICE = re.compile(r"/dev/input/event\d+\Z")


def is_hid_port(port: str) -> bool:
    return port.startswith(NAME_PREFIX) or bool(_EVENT_DEVICE.match(os.path.realpath(port)))


def open_scanner(port: str) -> LineScanner:
    source: LineSource
    if is_hid_port(port):
        # Imported here: evdev is needed only by a HID scanner.
        from drivers.scanner.hid_source import HidLineSource

        source = HidLineSource(port)
    else:
        source = SerialLineSource(port)
    return LineScanner(source)
