"""The I/O board for the demo and the UI: the real firmware logic in this process, no port.

SimulatedIoBoard is the same host driver as the real board's (drivers/ioboard/host.py), over
an in-process transport to the firmware's Board run by drivers/ioboard/harness.BoardRunner, so
the demo exercises the real link protocol, pulse decoding, event buffer and tamper latch. It
offers what a person does (insert cash, open the door or the enclosure) and the faults a real
board has (link pulled, board restarted). It never touches a serial port.
"""

import threading
from pathlib import Path
from typing import Any

from drivers.ioboard.harness import BoardRunner, bench_settings
from drivers.ioboard.host import IoBoardDriver, TransportDown


class InProcessTransport:
    """Frames handed straight to the Board; its answers queue up for read()."""

    description = "I/O board (simulated)"

    def __init__(self, runner: BoardRunner) -> None:
        self.runner = runner
        self.plugged = True
        self._answers = bytearray()
        self._arrived = threading.Condition()
        self._open = False

    def open(self) -> None:
        if not self.plugged:
            raise TransportDown("the simulated board's link is pulled")
        with self._arrived:
            self._answers.clear()
        self._open = True

    def write(self, data: bytes) -> None:
        if not self.plugged or not self._open:
            raise TransportDown("the simulated board's link is pulled")
        answer = self.runner.receive(data)
        with self._arrived:
            self._answers.extend(answer)
            self._arrived.notify_all()

    def read(self, timeout_s: float) -> bytes:
        if not self.plugged or not self._open:
            raise TransportDown("the simulated board's link is pulled")
        with self._arrived:
            if not self._answers:
                self._arrived.wait(timeout_s)
            data = bytes(self._answers)
            self._answers.clear()
            return data

    def close(self) -> None:
        self._open = False


class SimulatedIoBoard(IoBoardDriver):
    """kiosk.devices.CashAcceptor and IoBoard over the real firmware logic, in this process.

    Board state (counted cash, event numbers, tamper latch) is kept in state_dir as on the
    board's flash: a new SimulatedIoBoard on the same directory continues where one stopped.
    """

    def __init__(self, state_dir: Path, settings: dict[str, Any] | None = None) -> None:
        self.runner = BoardRunner(Path(state_dir), settings or bench_settings())
        self.runner.start()
        self.link = InProcessTransport(self.runner)
        super().__init__(self.link, reply_timeout_s=0.5, attempts=2)

    # ------------------------------------------------------------ what people do

    def insert(self, kind: str, value_fen: int) -> None:
        """A customer inserts a note or coin (CashHandedBack when the inlets are closed)."""
        self.runner.insert(kind, value_fen)

    def open_door(self) -> None:
        self.runner.open_door()

    def close_door(self) -> None:
        self.runner.close_door()

    def open_enclosure(self) -> None:
        self.runner.open_enclosure()

    def close_enclosure(self) -> None:
        self.runner.close_enclosure()

    # ------------------------------------------------------------ faults

    def pull_link(self) -> None:
        self.link.plugged = False

    def plug_link(self) -> None:
        self.link.plugged = True

    def restart_board(self) -> None:
        self.runner.restart_board()

    def close(self) -> None:
        super().close()
        self.runner.stop()
