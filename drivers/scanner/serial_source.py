"""A scanner in serial mode (RS-232, or USB CDC-ACM "virtual COM"), read with pyserial.

Scanners in serial mode send each code as ASCII followed by their suffix, CR by factory
default on most models, CR LF or LF on others; all three end a code here. The baud rate
matters only on a real RS-232 line (USB CDC ignores it): 9600 is the common default.
"""

import serial

from drivers.scanner.line_driver import LinkError

DEFAULT_BAUDRATE = 9600
_READ_TIMEOUT_S = 0.05


class SerialLineSource:
    kind = "serial"

    def __init__(self, port: str, baudrate: int = DEFAULT_BAUDRATE) -> None:
        self.port = port
        self.baudrate = baudrate
        self._serial: serial.Serial | None = None

    def open(self) -> None:
        self.close()
        try:
            self._serial = serial.Serial(self.port, self.baudrate, timeout=_READ_TIMEOUT_S)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc

    def read(self, wait_s: float) -> str:
        port = self._serial
        if port is None:
            raise LinkError("not open")
        try:
            waiting = port.in_waiting
            data = port.read(waiting) if waiting else port.read(1) if wait_s > 0 else b""
        except (serial.SerialException, OSError) as exc:
            raise LinkError(str(exc) or type(exc).__name__) from exc
        # Scanners send ASCII; any other byte is line noise and must make the scan garbled.
        return bytes(data).decode("ascii", errors="replace")

    def close(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass
