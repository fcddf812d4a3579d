"""How bytes reach a receipt printer and come back: a serial port or a USB printer-class device.

Owns the link below the ESC/POS protocol: opening the device by path, writing bytes, reading
whatever the printer sent back within a bounded wait, and telling the caller that the link
failed (LinkError) so that it can reopen it. Like python-escpos's printer classes (which
implement only open/close/_raw/_read) a transport knows nothing of commands, replies or jobs;
the driver (escpos_driver.py) does.

- SerialTransport: pyserial, for RS-232 printers, USB-serial adapters (ttyUSB*, ttyACM*) and
  the Pi's UART.
- UsblpTransport: plain file I/O on the kernel usblp character device (/dev/usb/lp*), for
  printers on the USB printer class. Reads return what the printer sent on its bulk-in
  endpoint, so status replies work on bidirectional printers only (see docs/printer.md).
  Written by hand: python-escpos's File printer cannot read and pyusb would take the device
  away from the kernel's usblp driver, which the udev rules name.
"""

import os
import re
import select
import time
from enum import StrEnum
from typing import Protocol

import serial

READ_SLICE_S = 0.05  # one blocking read; the caller checks its deadlines between reads
WRITE_TIMEOUT_S = 10.0  # a printer that takes no bytes for this long has stopped reading
USBLP_DEVICE = re.compile(r"/dev/usb/lp\d+\Z")


class TransportKind(StrEnum):
    AUTO = "auto"  # usblp when the port (after its udev link) is /dev/usb/lp*, else serial
    SERIAL = "serial"
    USBLP = "usblp"


class LinkError(Exception):
    """The link to the printer failed or vanished (unplugged, I/O error, device gone)."""


class Transport(Protocol):
    kind: TransportKind
    path: str

    def open(self) -> None:
        """Open the device at path; LinkError when it cannot be opened now."""
        ...

    def close(self) -> None: ...

    def write(self, data: bytes) -> None:
        """Write every byte or raise LinkError."""
        ...

    def read(self, wait_s: float) -> bytes:
        """What the printer sent, waiting at most about wait_s for the first byte."""
        ...


def resolve_kind(path: str, kind: TransportKind) -> TransportKind:
    """The transport for a port: `auto` looks through udev's link at the device node."""
    if kind is not TransportKind.AUTO:
        return kind
    if USBLP_DEVICE.match(os.path.realpath(path)):
        return TransportKind.USBLP
    return TransportKind.SERIAL


def open_transport(path: str, kind: TransportKind, baudrate: int) -> Transport:
    """A (not yet opened) transport for the printer at path."""
    if resolve_kind(path, kind) is TransportKind.USBLP:
        return UsblpTransport(path)
    return SerialTransport(path, baudrate)


class SerialTransport:
    kind = TransportKind.SERIAL

    def __init__(self, path: str, baudrate: int = 115200) -> None:
        self.path = path
        self.baudrate = baudrate
        self._port: serial.Serial | None = None

    def open(self) -> None:
        self.close()
        try:
            self._port = serial.Serial(
                self.path, self.baudrate, timeout=READ_SLICE_S, write_timeout=WRITE_TIMEOUT_S
            )
        except (serial.SerialException, OSError) as exc:
            raise LinkError(str(exc)) from exc

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass

    def write(self, data: bytes) -> None:
        port = self._opened()
        try:
            port.write(data)
            port.flush()
        except (serial.SerialException, OSError) as exc:
            raise LinkError(str(exc)) from exc

    def read(self, wait_s: float) -> bytes:
        port = self._opened()
        try:
            waiting = port.in_waiting
            if waiting:
                return bytes(port.read(waiting))
            if wait_s <= 0:
                return b""
            return bytes(port.read(1))  # waits at most the port's read timeout (one slice)
        except (serial.SerialException, OSError) as exc:
            raise LinkError(str(exc)) from exc

    def _opened(self) -> serial.Serial:
        if self._port is None:
            raise LinkError(f"{self.path} is not open")
        return self._port


class UsblpTransport:
    """The kernel's USB printer-class device (/dev/usb/lp*): plain non-blocking file I/O.

    usblp reports an unplug as ENODEV and removes the node. Two end-of-file reads in a row
    while poll says "readable" also mean the device hung up (what a pseudo-terminal standing
    in for it does); a single zero-length read is a printer's empty USB packet.
    """

    kind = TransportKind.USBLP

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._empty_reads = 0

    def open(self) -> None:
        self.close()
        try:
            # O_NOCTTY: a tty standing in for the device must not become our terminal.
            self._fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise LinkError(f"cannot open {self.path}: {exc.strerror}") from exc
        self._empty_reads = 0

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def write(self, data: bytes) -> None:
        fd = self._opened()
        view = memoryview(data)
        deadline = time.monotonic() + WRITE_TIMEOUT_S
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LinkError(f"{self.path} took no bytes for {WRITE_TIMEOUT_S:g} s")
            try:
                _, writable, _ = select.select([], [fd], [], min(remaining, READ_SLICE_S))
                if not writable:
                    continue
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                continue
            except OSError as exc:
                raise LinkError(f"writing to {self.path}: {exc.strerror}") from exc

    def read(self, wait_s: float) -> bytes:
        fd = self._opened()
        try:
            readable, _, _ = select.select([fd], [], [], max(min(wait_s, READ_SLICE_S), 0.0))
            if not readable:
                return b""
            data = os.read(fd, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:  # usblp: ENODEV after an unplug; a pty: EIO once hung up
            raise LinkError(f"reading from {self.path}: {exc.strerror}") from exc
        if data:
            self._empty_reads = 0
            return data
        self._empty_reads += 1
        if self._empty_reads >= 2:
            raise LinkError(f"{self.path} hung up")
        return b""

    def _opened(self) -> int:
        if self._fd is None:
            raise LinkError(f"{self.path} is not open")
        return self._fd
