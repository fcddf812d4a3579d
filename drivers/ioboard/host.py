"""The host's driver for the MicroPython I/O board on a USB serial port (pyserial).

IoBoardDriver is both the terminal's kiosk.devices.CashAcceptor (the note and coin inlets) and
its kiosk.devices.IoBoard (door, tamper, lamp, watchdog, status): one board, one link, one
object. It owns the host end of the link (drivers/ioboard/firmware/link.py): one request at a
time, answered with the same sequence number, retransmitted after a timeout or a NAK up to a
bound, and a handshake (HELLO) on every new connection that checks the protocol version.
After an unplug or a board restart it reconnects and handshakes again on the next call.
It reaches the board through a Transport: SerialTransport (pyserial) for the real board, an
in-process one for simulators/ioboard.py; SerialIoBoard is the driver on a serial port.

It never journals or decides anything: the core journals each cash event and only then
calls acknowledge(); until then the board keeps the event and pending() repeats it.
"""

import secrets
import select
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import serial

from drivers.cash import check_largest_fen, unrecognised_detail
from drivers.ioboard.firmware import link
from kiosk.devices import BoardEvent, BoardStatus, CashEvent, CashKind, DeviceError

DEFAULT_BAUDRATE = 115200
# The board answers within a few milliseconds; a USB hub or a busy host may add tens.
DEFAULT_REPLY_TIMEOUT_S = 0.25
DEFAULT_ATTEMPTS = 6


class IoBoardNotAnswering(DeviceError):
    """The board did not answer (unplugged, unpowered, or not running the link firmware)."""


class IoBoardVersionMismatch(DeviceError):
    """The board's firmware speaks another version of the link protocol."""


class IoBoardRefused(DeviceError):
    """The board understood a request and refused it; the message says why."""


class TamperStillOpen(IoBoardRefused):
    """The tamper latch cannot be cleared while the tamper switch is still open."""


class TransportDown(Exception):
    """The byte channel to the board failed (unplugged, port vanished); the text says how."""


class Transport(Protocol):
    """A byte channel to the board: a serial port, or a simulator in the same process."""

    description: str

    def open(self) -> None:
        """Open the channel and drop stale input; TransportDown when it cannot be opened."""
        ...

    def write(self, data: bytes) -> None: ...

    def read(self, timeout_s: float) -> bytes:
        """Bytes that arrived within timeout_s (b"" when none); TransportDown on failure."""
        ...

    def close(self) -> None: ...


class SerialTransport:
    """The board's USB serial port through pyserial."""

    def __init__(self, port: str | Path, baudrate: int = DEFAULT_BAUDRATE) -> None:
        self.port = str(port)
        self.baudrate = baudrate
        self.description = f"I/O board on {self.port}"
        self._serial: serial.Serial | None = None

    def open(self) -> None:
        try:
            # Non-blocking reads: read() waits in select() for as long as the caller allows.
            self._serial = serial.Serial(self.port, self.baudrate, timeout=0)
            self._serial.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            self._serial = None
            raise TransportDown(str(exc)) from None

    def write(self, data: bytes) -> None:
        if self._serial is None:
            raise TransportDown("the port is closed")
        try:
            self._serial.write(data)
        except (serial.SerialException, OSError) as exc:
            raise TransportDown(str(exc)) from None

    def read(self, timeout_s: float) -> bytes:
        if self._serial is None:
            raise TransportDown("the port is closed")
        try:
            if not self._serial.in_waiting:
                ready, _, _ = select.select([self._serial.fileno()], [], [], timeout_s)
                if not ready:
                    return b""
            # A port that is readable yet has no bytes has hung up: pyserial raises then.
            return bytes(self._serial.read(max(1, self._serial.in_waiting)))
        except (serial.SerialException, OSError) as exc:
            raise TransportDown(str(exc)) from None

    def close(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except (serial.SerialException, OSError):
                pass  # closing a vanished port: nothing left to release
        self._serial = None


class IoBoardDriver:
    """The I/O board behind a transport (satisfies kiosk.devices.CashAcceptor and IoBoard)."""

    kind = "ioboard"

    def __init__(
        self,
        transport: Transport,
        *,
        reply_timeout_s: float = DEFAULT_REPLY_TIMEOUT_S,
        attempts: int = DEFAULT_ATTEMPTS,
        wall_clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.transport = transport
        self.reply_timeout_s = reply_timeout_s
        self.attempts = attempts
        self._wall_clock_ms = wall_clock_ms
        self._lock = threading.RLock()
        self._connected = False
        self._deframer = link.Deframer()
        self._seq = secrets.randbelow(256)
        self._hello: dict[str, Any] | None = None
        self._last_status: BoardStatus | None = None
        self.stats = {
            "requests": 0,
            "frames_sent": 0,
            "frames_received": 0,
            "retransmissions": 0,
            "naks": 0,
            "damaged_frames": 0,
            "reconnects": 0,
        }

    # ------------------------------------------------------------ CashAcceptor

    def set_accepting(self, accepting: bool, largest_fen: int | None = None) -> None:
        largest_fen = check_largest_fen(largest_fen)
        self._call(link.SET_ACCEPTING, link.encode_set_accepting(accepting, largest_fen))

    def pending(self) -> list[CashEvent]:
        with self._lock:
            events: list[CashEvent] = []
            after = 0
            while True:
                page = link.decode_cash_events(
                    self._call(link.CASH_PENDING, link.encode_u32(after))
                )
                board_id = self._board_id()
                events += [_cash_event(board_id, *event) for event in page]
                if len(page) < link.CASH_PAGE:
                    return events
                after = page[-1][0]

    def acknowledge(self, event_id: str) -> None:
        with self._lock:
            number = self._own_number(event_id, "")
            if number is not None:
                self._call(link.CASH_ACK, link.encode_u32(number))

    def health(self) -> dict[str, object]:
        try:
            status = self._status_flags()
        except DeviceError as exc:
            # Not answering: what the board is doing is unknown, never "fine".
            return {
                "device": self.transport.description,
                "online": False,
                "accepting": None,
                "largest_fen": None,
                "jammed": None,
                "pending": None,
                "error": str(exc),
            }
        flags = status["flags"]
        hello = self._hello or {}
        return {
            "device": self.transport.description,
            "online": True,
            "board_id": hello.get("board_id"),
            "firmware_version": status["firmware_version"],
            "capabilities": link.capability_names(hello.get("capabilities", 0)),
            "accepting": bool(flags & link.FLAG_ACCEPTING),
            "largest_fen": status["largest_fen"],
            "jammed": bool(flags & link.FLAG_JAMMED),
            "pending": status["unacknowledged_cash"],
            "board_events_pending": status["unacknowledged_board_events"],
            "tamper_latched": bool(flags & link.FLAG_TAMPER_LATCHED),
            "maintenance": bool(flags & link.FLAG_MAINTENANCE),
            "watchdog_resets": status["watchdog_resets"],
            "watchdog_gave_up": bool(flags & link.FLAG_WATCHDOG_GAVE_UP),
            "link": dict(self.stats),
        }

    # ------------------------------------------------------------ IoBoard

    def board_events(self) -> list[BoardEvent]:
        with self._lock:
            events: list[BoardEvent] = []
            after = 0
            while True:
                page = link.decode_board_events(
                    self._call(link.BOARD_EVENTS, link.encode_u32(after))
                )
                board_id = self._board_id()
                for number, kind, time_ms, clock_set, detail in page:
                    detail = dict(detail)
                    detail["clock"] = "unix_ms" if clock_set else "ms_since_board_start"
                    events.append(BoardEvent(f"{board_id}-b{number}", kind, time_ms, detail))
                if not page:
                    return events
                after = page[-1][0]

    def acknowledge_board_event(self, event_id: str) -> None:
        with self._lock:
            number = self._own_number(event_id, "b")
            if number is not None:
                self._call(link.BOARD_EVENT_ACK, link.encode_u32(number))

    def set_lamp(self, mode: str) -> None:
        if mode not in link.LAMP_MODES:
            raise ValueError(f"lamp mode {mode!r} is unknown; use one of {link.LAMP_MODES}")
        self._call(link.SET_LAMP, link.encode_u8(link.LAMP_MODES.index(mode)))

    def heartbeat(self) -> None:
        self._call(link.HEARTBEAT, link.encode_u64(self._wall_clock_ms()))

    def set_maintenance(self, on: bool) -> None:
        self._call(link.SET_MAINTENANCE, link.encode_u8(1 if on else 0))

    def clear_tamper(self) -> None:
        try:
            self._call(link.CLEAR_TAMPER)
        except IoBoardRefused as exc:
            raise TamperStillOpen(str(exc)) from None

    def board_status(self) -> BoardStatus:
        try:
            status = self._status_flags()
        except DeviceError:
            last = self._last_status
            # The link is down: say so, keep the last known settings, claim nothing physical.
            return BoardStatus(
                firmware_version=last.firmware_version if last else "unknown",
                link_up=False,
                door_open=None,
                tamper_latched=None,
                maintenance=last.maintenance if last else False,
                lamp=last.lamp if last else "out_of_service",
                temperature_c=None,
                unacknowledged_cash=last.unacknowledged_cash if last else 0,
            )
        flags = status["flags"]
        decic = status["temperature_decic"]
        self._last_status = BoardStatus(
            firmware_version=status["firmware_version"],
            link_up=True,
            door_open=bool(flags & link.FLAG_DOOR_OPEN) if flags & link.FLAG_DOOR_KNOWN else None,
            tamper_latched=bool(flags & link.FLAG_TAMPER_LATCHED),
            maintenance=bool(flags & link.FLAG_MAINTENANCE),
            lamp=status["lamp"],
            temperature_c=None if decic == link.TEMPERATURE_UNKNOWN else decic / 10,
            unacknowledged_cash=status["unacknowledged_cash"],
        )
        return self._last_status

    # ------------------------------------------------------------ tools

    def identify(self) -> dict[str, Any]:
        """Handshake (if not yet) and return what the board said: id, versions, capabilities."""
        with self._lock:
            self._connect()
            assert self._hello is not None
            hello = dict(self._hello)
        hello["capabilities"] = link.capability_names(hello["capabilities"])
        return hello

    def stop_for_repl(self) -> None:
        """Ask the firmware to leave its link loop and give the port to the REPL."""
        self._call(link.STOP_FOR_REPL)
        self.close()

    def close(self) -> None:
        with self._lock:
            self._disconnect()

    # ------------------------------------------------------------ the link

    def _status_flags(self) -> dict[str, Any]:
        return link.decode_status(self._call(link.STATUS))

    def _board_id(self) -> str:
        assert self._hello is not None
        board_id: str = self._hello["board_id"]
        return board_id

    def _own_number(self, event_id: str, marker: str) -> int | None:
        """The board's event number in event_id, or None for an id that is not this board's.

        Acknowledging an unknown id is harmless by contract, so it is not even sent.
        """
        self._connect()
        prefix = f"{self._board_id()}-{marker}"
        digits = event_id[len(prefix) :]
        if not event_id.startswith(prefix) or not digits.isdigit() or len(digits) > 10:
            return None
        number = int(digits)
        return number if number < 2**32 else None

    def _call(self, msg_type: int, payload: bytes = b"") -> bytes:
        with self._lock:
            self.stats["requests"] += 1
            try:
                return self._exchange(msg_type, payload)
            except link.LinkError as exc:
                raise IoBoardNotAnswering(
                    f"{self.transport.description} sent an answer that cannot be read ({exc}): "
                    "check the firmware version with `kiosk-tool ioboard flash`"
                ) from None

    def _exchange(self, msg_type: int, payload: bytes) -> bytes:
        rehandshakes = 0
        while True:
            self._connect()
            response_type, response = self._transact(msg_type, payload)
            if response_type == msg_type | link.RESPONSE_BIT:
                return response
            code, text = link.decode_error(response)
            if code == link.ERR_HANDSHAKE_FIRST and rehandshakes == 0:
                # The board restarted since our handshake: shake hands again and repeat.
                rehandshakes += 1
                self._hello = None
                continue
            if code == link.ERR_REFUSED:
                raise IoBoardRefused(f"the I/O board refused: {text}")
            raise IoBoardNotAnswering(
                f"the I/O board rejected a {link.REQUEST_NAMES.get(msg_type, msg_type)} "
                f"request ({text}): update the terminal or the board firmware so they match"
            )

    def _connect(self) -> None:
        if not self._connected:
            try:
                self.transport.open()
            except TransportDown as exc:
                raise IoBoardNotAnswering(
                    f"{self.transport.description} cannot be reached ({exc}): check the "
                    "board's USB cable and power; counted cash stays buffered on the board"
                ) from None
            self._connected = True
            self._deframer = link.Deframer()
            self._hello = None
            self.stats["reconnects"] += 1
        if self._hello is None:
            self._handshake()

    def _handshake(self) -> None:
        nonce = secrets.randbits(32)
        response_type, response = self._transact(
            link.HELLO,
            link.encode_hello(link.PROTOCOL_VERSION, nonce, self._wall_clock_ms()),
        )
        if response_type != link.HELLO | link.RESPONSE_BIT:
            raise IoBoardNotAnswering(
                f"{self.transport.description} refused the handshake: flash its firmware "
                "with `kiosk-tool ioboard flash`"
            )
        hello = link.decode_hello_response(response)
        if hello["protocol_version"] != link.PROTOCOL_VERSION:
            self._disconnect()
            raise IoBoardVersionMismatch(
                f"the I/O board firmware {hello['firmware_version']} speaks link protocol "
                f"v{hello['protocol_version']} but this terminal speaks "
                f"v{link.PROTOCOL_VERSION}: flash the matching firmware with "
                "`kiosk-tool ioboard flash --port PORT`"
            )
        if hello["host_nonce"] != nonce:
            raise IoBoardNotAnswering(
                f"{self.transport.description} answered another handshake: "
                "is another program using the port?"
            )
        self._hello = hello

    def _transact(self, msg_type: int, payload: bytes) -> tuple[int, bytes]:
        """Send one request and wait for its answer, retransmitting within the bound."""
        self._seq = (self._seq + 1) & 0xFF
        frame = link.encode_frame(self._seq, msg_type, payload)
        for attempt in range(self.attempts):
            if attempt:
                self.stats["retransmissions"] += 1
            self._write(frame)
            answer = self._await_answer(self._seq)
            if answer is not None:
                return answer
        self._disconnect()
        raise IoBoardNotAnswering(
            f"{self.transport.description} not answering after {self.attempts} tries: check its "
            "USB cable and power; counted cash stays buffered on the board"
        )

    def _write(self, frame: bytes) -> None:
        try:
            self.transport.write(frame)
            self.stats["frames_sent"] += 1
        except TransportDown as exc:
            self._disconnect()
            raise IoBoardNotAnswering(
                f"{self.transport.description} went away ({exc}): check its USB cable; "
                "counted cash stays buffered on the board"
            ) from None

    def _await_answer(self, seq: int) -> tuple[int, bytes] | None:
        """The answer to seq, or None after a timeout or a NAK (time to retransmit)."""
        deadline = time.monotonic() + self.reply_timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                data = self.transport.read(left)
            except TransportDown as exc:
                self._disconnect()
                raise IoBoardNotAnswering(
                    f"{self.transport.description} went away ({exc}): check its USB cable; "
                    "counted cash stays buffered on the board"
                ) from None
            damaged = self._deframer.damaged
            frames = self._deframer.feed(data)
            self.stats["damaged_frames"] += self._deframer.damaged - damaged
            # A damaged frame is most likely our answer: ask again now, not after the timeout.
            nak = self._deframer.damaged != damaged
            for got_seq, got_type, got_payload in frames:
                self.stats["frames_received"] += 1
                if got_type == link.NAK:
                    nak = True
                elif got_seq == seq:
                    return got_type, got_payload
                # Any other seq is a late answer to an earlier copy: already handled.
            if nak:
                self.stats["naks"] += 1
                return None

    def _disconnect(self) -> None:
        self.transport.close()
        self._connected = False
        self._hello = None


def _cash_event(
    board_id: str, number: int, kind: str, value_fen: int, inlet: str, pulses: int
) -> CashEvent:
    if kind == link.UNRECOGNISED:
        detail = unrecognised_detail(inlet, pulses)
        return CashEvent(f"{board_id}-{number}", CashKind.UNRECOGNISED, 0, detail)
    return CashEvent(f"{board_id}-{number}", CashKind(kind), value_fen)


class SerialIoBoard(IoBoardDriver):
    """The real board on a USB serial port: what the composition root builds for cash "real"."""

    def __init__(
        self,
        port: str | Path,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        reply_timeout_s: float = DEFAULT_REPLY_TIMEOUT_S,
        attempts: int = DEFAULT_ATTEMPTS,
    ) -> None:
        super().__init__(
            SerialTransport(port, baudrate), reply_timeout_s=reply_timeout_s, attempts=attempts
        )
        self.port = str(port)
