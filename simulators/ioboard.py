"""The I/O board for the demo and the UI: the real firmware logic in this process, no port.

SimulatedIoBoard is the same host driver as the real board's (drivers/ioboard/host.py), over
an in-process transport to the firmware's Board run by simulators/ioboard_board.BoardRunner, so
the demo exercises the real link protocol, pulse decoding, event buffer and tamper latch. It
offers what a person does (insert cash or something the validator cannot value, open the door
or the enclosure) and the faults a real board has (link pulled, link errors on the next or on
random cash calls, board restarted). It never touches a serial port.
"""

import threading
from pathlib import Path
from typing import Any

from drivers.ioboard.firmware import link
from drivers.ioboard.host import IoBoardDriver, TransportDown
from kiosk.devices import CashEvent
from simulators.cash_link_faults import (
    LinkFaultPlan,
    LostPart,
    link_error_text,
    plan_next_calls,
    plan_random_calls,
)
from simulators.ioboard_board import BoardRunner, bench_settings


class InProcessTransport:
    """Frames handed straight to the Board; its answers queue up for read()."""

    description = "I/O board (simulated)"

    def __init__(self, runner: BoardRunner) -> None:
        self.runner = runner
        self.plugged = True
        # One armed link error: the next frame of this request type loses this part.
        self.strike: tuple[int, LostPart] | None = None
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
        lost = self._struck(data)
        if lost is LostPart.REQUEST:
            raise TransportDown(link_error_text(lost))
        answer = self.runner.receive(data)
        if lost is LostPart.ANSWER:
            raise TransportDown(link_error_text(lost))
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

    def _struck(self, data: bytes) -> LostPart | None:
        """What the armed link error takes from these bytes, if they carry its request."""
        if self.strike is None:
            return None
        msg_type, lost = self.strike
        if any(frame[1] == msg_type for frame in link.Deframer().feed(data)):
            self.strike = None
            return lost
        return None


# The host calls a link fault strikes: the CashAcceptor's, by their request type.
_FAULTED_REQUESTS = {
    "set_accepting": link.SET_ACCEPTING,
    "pending": link.CASH_PENDING,
    "acknowledge": link.CASH_ACK,
}


class SimulatedIoBoard(IoBoardDriver):
    """kiosk.devices.CashAcceptor and IoBoard over the real firmware logic, in this process.

    Board state (counted cash, event numbers, tamper latch) is kept in state_dir as on the
    board's flash: a new SimulatedIoBoard on the same directory continues where one stopped.
    """

    def __init__(self, state_dir: Path, settings: dict[str, Any] | None = None) -> None:
        self.runner = BoardRunner(Path(state_dir), settings or bench_settings())
        self.runner.start()
        self.link = InProcessTransport(self.runner)
        self.link_faults = LinkFaultPlan()
        super().__init__(self.link, reply_timeout_s=0.5, attempts=2)

    # ------------------------------------------------------------ CashAcceptor, with faults

    def set_accepting(self, accepting: bool, largest_fen: int | None = None) -> None:
        with self._lock:
            self._arm("set_accepting")
            try:
                super().set_accepting(accepting, largest_fen)
            finally:
                self.link.strike = None

    def pending(self) -> list[CashEvent]:
        with self._lock:
            self._arm("pending")
            try:
                return super().pending()
            finally:
                self.link.strike = None

    def acknowledge(self, event_id: str) -> None:
        with self._lock:
            self._arm("acknowledge")
            try:
                super().acknowledge(event_id)
            finally:
                self.link.strike = None

    def _arm(self, call: str) -> None:
        lost = self.link_faults.next_call()
        if lost is not None:
            self.link.strike = (_FAULTED_REQUESTS[call], lost)

    # ------------------------------------------------------------ what people do

    def insert(self, kind: str, value_fen: int) -> None:
        """A customer inserts a note or coin; CashHandedBack when its channel is inhibited."""
        self.runner.insert(kind, value_fen)

    def insert_unrecognised(self, inlet: str, pulses: int = 3) -> None:
        """The validator takes something and sends a train matching none of its channels."""
        self.runner.insert_unrecognised(inlet, pulses)

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

    def fail_next_host_calls(self, count: int, lose: LostPart | str = LostPart.REQUEST) -> None:
        """The next `count` cash calls (set_accepting, pending, acknowledge) hit a link error.

        The link drops the call's request (the board does nothing) or, with lose="answer",
        the board's answer (the board did it); the driver raises IoBoardNotAnswering and
        reconnects on the next call. Kept in memory (the simulated board's RAM).
        """
        self.link_faults = plan_next_calls(count, lose)

    def fail_host_calls_randomly(
        self, probability: float, seed: int, lose: LostPart | str = LostPart.EITHER
    ) -> None:
        """Every later cash call hits a link error with `probability`, reproducibly."""
        self.link_faults = plan_random_calls(probability, seed, lose)

    def stop_failing_host_calls(self) -> None:
        self.link_faults = LinkFaultPlan()

    def close(self) -> None:
        super().close()
        self.runner.stop()
