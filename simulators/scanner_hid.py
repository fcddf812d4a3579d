"""A HID-keyboard payment-code scanner typing key events, for tests and a technician's bench.

Where the kernel offers uinput (/dev/uinput writable: a Raspberry Pi, a desktop), it creates
a real input device named SIMULATED_NAME, which the real driver opens as `name:` + that name
and grabs like any scanner. Where it does not (containers, this project's CI machine: no
uinput module), a pipe stands in for the kernel's event device: the simulator writes the
same `struct input_event` records a kernel device gives, and PipeInputDevice hands them to
the driver through evdev's own reader (EventIO.read), so the driver's select, read, key
decoding, grab and unplug handling run unchanged; only the device node is not the kernel's.

Faults: a garbled scan (keys outside the keymap), a partial one (no Enter), a code scanned
twice, another program holding the grab, and unplugging and plugging back in.
"""

import errno
import os
import struct
import threading
import time

from evdev import UInput, ecodes
from evdev.eventio import EventIO

from drivers.scanner.factory import NAME_PREFIX
from drivers.scanner.hid_source import InputDeviceLike
from drivers.scanner.keymap import ENTER, keys_for
from drivers.scanner.line_driver import LinkError

SIMULATED_NAME = "Kiosk simulated payment-code scanner"
# struct input_event on 64-bit Linux: struct timeval (two longs), u16 type, u16 code, s32 value.
_EVENT = struct.Struct("llHHi")
# A key that is not in the US keymap table: what a misconfigured scanner's garbage looks like.
_UNKNOWN_KEY = ecodes.KEY_F13


def uinput_usable() -> bool:
    return os.access("/dev/uinput", os.W_OK)


class PipeInputDevice(EventIO):
    """Stands in for evdev.InputDevice on the read end of a pipe (see the module docstring)."""

    def __init__(self, fd: int, simulator: "HidScannerSimulator") -> None:
        self.fd = fd
        self.path = f"pipe:{fd}"
        self.name = SIMULATED_NAME
        self._simulator = simulator

    def grab(self) -> None:
        if self._simulator.grabbed_elsewhere:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        self._simulator.grabbed = True

    def ungrab(self) -> None:
        self._simulator.grabbed = False

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class HidScannerSimulator:
    """Types scans as key events into a uinput device, or into a pipe (use_uinput=False)."""

    def __init__(self, *, use_uinput: bool | None = None) -> None:
        self.use_uinput = uinput_usable() if use_uinput is None else use_uinput
        self.grabbed = False  # the driver holds the grab (pipe stand-in only)
        self.grabbed_elsewhere = False  # another program holds it: the driver's grab fails
        self._lock = threading.Lock()
        self._uinput: UInput | None = None
        self._pipe: tuple[int, int] | None = None
        self.replug()

    @property
    def port(self) -> str:
        """What to configure as devices.scanner_port (with the pipe, pass opener too)."""
        return NAME_PREFIX + SIMULATED_NAME

    def opener(self, port: str) -> InputDeviceLike:
        """For HidLineSource(opener=...) with the pipe: the device while plugged in."""
        with self._lock:
            if self._pipe is None:
                raise LinkError(f"no input device is named {SIMULATED_NAME!r}")
            return PipeInputDevice(os.dup(self._pipe[0]), self)

    # ------------------------------------------------------------ scans

    def scan(self, code: str) -> None:
        self.type_keys(keys_for(code + ENTER))

    def scan_twice(self, code: str) -> None:
        self.type_keys(keys_for(code + ENTER) * 2)

    def scan_garbled(self, code: str) -> None:
        """Keys the US keymap does not know in place of some digits."""
        keys = keys_for(code)
        for position in range(2, len(keys), 5):
            keys[position] = (_UNKNOWN_KEY, False)
        self.type_keys([*keys, *keys_for(ENTER)])

    def scan_partial(self, code: str, keep: int | None = None) -> None:
        keep = len(code) // 2 if keep is None else keep
        self.type_keys(keys_for(code[:keep]))

    def type_keys(self, keys: list[tuple[int, bool]]) -> None:
        """Press and release each key (with Shift held where asked), as a scanner types."""
        events: list[tuple[int, int, int]] = []
        for code, shifted in keys:
            if shifted:
                events += [(ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 1), (ecodes.EV_SYN, 0, 0)]
            events += [(ecodes.EV_KEY, code, 1), (ecodes.EV_SYN, 0, 0)]
            events += [(ecodes.EV_KEY, code, 0), (ecodes.EV_SYN, 0, 0)]
            if shifted:
                events += [(ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 0), (ecodes.EV_SYN, 0, 0)]
        self._write(events)

    def _write(self, events: list[tuple[int, int, int]]) -> None:
        with self._lock:
            if self._uinput is not None:
                for kind, code, value in events:
                    self._uinput.write(kind, code, value)
                return
            if self._pipe is None:
                raise ConnectionError("the simulated HID scanner is unplugged")
            now = time.time()
            seconds, micros = int(now), int((now % 1) * 1_000_000)
            data = b"".join(_EVENT.pack(seconds, micros, *event) for event in events)
            os.write(self._pipe[1], data)

    # ------------------------------------------------------------ the cable

    def unplug(self) -> None:
        with self._lock:
            if self._uinput is not None:
                self._uinput.close()
                self._uinput = None
            if self._pipe is not None:
                for fd in self._pipe:
                    os.close(fd)
                self._pipe = None
            self.grabbed = False

    def replug(self) -> None:
        with self._lock:
            if self._uinput is not None or self._pipe is not None:
                return
            if self.use_uinput:
                keys = sorted({code for code, _ in keys_for("0123456789")} | _TYPED_KEYS)
                self._uinput = UInput({ecodes.EV_KEY: keys}, name=SIMULATED_NAME)
                return
            read_end, write_end = os.pipe()
            os.set_blocking(read_end, False)
            self._pipe = (read_end, write_end)


_TYPED_KEYS = {ecodes.KEY_ENTER, ecodes.KEY_LEFTSHIFT, _UNKNOWN_KEY} | {
    code for code, _ in keys_for("abcdefghijklmnopqrstuvwxyz")
}
