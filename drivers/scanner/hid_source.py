"""A scanner in HID-keyboard mode, read as key events from its Linux input device (evdev).

The device is found by a stable name: a path (the udev link /dev/kiosk-scanner that
deploy/pi/90-kiosk.rules gives it, or /dev/input/eventN) or `name:TEXT`, the device name the
kernel reports (as `evtest` or `cat /proc/bus/input/devices` shows it). Once open it is
grabbed (EVIOCGRAB): its key presses reach this driver only, never the touchscreen app, so
a code scanned at the wrong moment cannot type into a form. The key events are decoded with
the US keymap (keymap.KeyDecoder); Enter ends a code.
"""

import errno
import os
import select
from collections.abc import Callable, Iterator
from typing import Protocol

from evdev import InputDevice, InputEvent, ecodes, list_devices

from drivers.scanner.factory import NAME_PREFIX
from drivers.scanner.keymap import KeyDecoder
from drivers.scanner.line_driver import LinkError


class InputDeviceLike(Protocol):
    """What the driver uses of evdev.InputDevice."""

    def fileno(self) -> int: ...

    def read(self) -> Iterator[InputEvent]: ...

    def grab(self) -> None: ...

    def ungrab(self) -> None: ...

    def close(self) -> None: ...


Opener = Callable[[str], InputDeviceLike]


def open_input_device(port: str) -> InputDeviceLike:
    """The input device named by port (a path, or name:TEXT); LinkError when it is not there."""
    try:
        if port.startswith(NAME_PREFIX):
            wanted = port.removeprefix(NAME_PREFIX)
            for path in list_devices():
                device = InputDevice(path)
                if device.name == wanted:
                    return device
                device.close()
            raise LinkError(f"no input device is named {wanted!r}")
        return InputDevice(os.path.realpath(port))
    except OSError as exc:
        raise LinkError(exc.strerror or str(exc)) from exc


class HidLineSource:
    kind = "hid"

    def __init__(self, port: str, *, opener: Opener = open_input_device) -> None:
        self.port = port
        self._opener = opener
        self._device: InputDeviceLike | None = None
        self._keys = KeyDecoder()

    def open(self) -> None:
        self.close()
        device = self._opener(self.port)
        try:
            device.grab()
        except OSError as exc:
            device.close()
            if exc.errno == errno.EBUSY:
                raise LinkError("another program has grabbed the scanner") from exc
            raise LinkError(exc.strerror or str(exc)) from exc
        self._keys.reset()
        self._device = device

    def read(self, wait_s: float) -> str:
        device = self._device
        if device is None:
            raise LinkError("not open")
        try:
            ready, _, _ = select.select([device], [], [], max(wait_s, 0.0))
            if not ready:
                return ""
            events = list(device.read())
        except BlockingIOError:
            return ""
        except OSError as exc:  # ENODEV: unplugged
            raise LinkError(exc.strerror or str(exc)) from exc
        if not events:
            # Readable with nothing to read: the device is gone (end of file).
            raise LinkError("the input device went away")
        return "".join(
            self._keys.key(event.code, event.value)
            for event in events
            if event.type == ecodes.EV_KEY
        )

    def close(self) -> None:
        device, self._device = self._device, None
        if device is None:
            return
        try:
            device.ungrab()
        except OSError:
            pass  # unplugged: nothing is grabbed any more
        try:
            device.close()
        except OSError:
            pass
