"""The I/O board's behaviour: inputs to durable events, link requests to answers.

Board ties the parts together: it decodes pulse trains into counted cash (and unrecognised
items) kept on flash until the host acknowledges them, opens the inlets' channels the host
allows, turns door and tamper switches into timed events (tamper latched until cleared),
drives the lamp and the host watchdog, and answers the host's link requests.
It reaches hardware only through the HAL it is given:

    now_ms() -> int                       monotonic milliseconds
    pulse_edges() -> [(inlet, active, t)] edges seen since the last call, oldest first
    door_open() -> bool, tamper_open() -> bool   raw switch levels
    temperature_c() -> float | None
    random_bytes(n) -> bytes
    set_inlet(inlet, enabled_fen)         the channels the validator may take ([]: none)
    set_lamp((r, g, b)), set_host_power(bool)

It never blocks, sleeps or touches a port: the run loop (rp2.py on the board, the harness on
a host) feeds it bytes and calls poll().
"""

import json

from . import FIRMWARE_VERSION, link
from .inhibit import enabled_channels, wired_channels
from .lamp import colour_at
from .pulses import PulseTrainDecoder
from .store import CASH_CLOSE_INLETS_AT, EventStore
from .switches import DebouncedSwitch
from .watchdog import HostWatchdog

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - MicroPython has no typing module; mypy reads this
    from typing import Any, Protocol

    class Hal(Protocol):
        def now_ms(self) -> int: ...
        def pulse_edges(self) -> list[tuple[str, bool, int]]: ...
        def door_open(self) -> bool: ...
        def tamper_open(self) -> bool: ...
        def temperature_c(self) -> float | None: ...
        def random_bytes(self, count: int) -> bytes: ...
        def set_inlet(self, inlet: str, enabled_fen: list[int]) -> None: ...
        def set_lamp(self, colour: tuple[int, int, int]) -> None: ...
        def set_host_power(self, on: bool) -> None: ...

else:
    # CPython evaluates signature annotations when a def runs; MicroPython ignores them.
    Any = object


_CAPABILITY_BITS = {name: bit for bit, name in link.CAPABILITY_NAMES}


def read_settings(path: str) -> dict[str, Any]:
    with open(path) as handle:
        settings: dict[str, Any] = json.load(handle)
    return settings


class RequestRefused(Exception):
    """A valid request the board will not carry out now; the text says why."""


class Board:
    def __init__(self, hal: "Hal", settings: dict[str, Any], state_path: str) -> None:
        self.hal = hal
        self.settings = settings
        self.store = EventStore(state_path, hal.random_bytes)
        self.fitted = settings.get("fitted", [name for _, name in link.CAPABILITY_NAMES])
        self.decoders = {kind: PulseTrainDecoder(kind, settings[kind]) for kind in link.INLETS}
        pins = settings.get("pins", {})
        self.wired = {inlet: wired_channels(pins, inlet) for inlet in link.INLETS}
        stable_ms = int(settings.get("switch_stable_ms", 50))
        self.door = DebouncedSwitch(stable_ms)
        self.tamper = DebouncedSwitch(stable_ms)
        self.watchdog = HostWatchdog(settings.get("watchdog", {}))
        self.deframer = link.Deframer()
        self.handshaken = False
        self.last_request: tuple[int, int, bytes] | None = None
        self.last_response = b""
        self.clock_offset_ms: int | None = None
        # The host's setting, in RAM only: after the board's own restart the inlets are closed
        # and unlimited until the host opens them again.
        self.accepting = False
        self.largest_fen: int | None = None
        self.enabled: dict[str, list[int]] = {inlet: [] for inlet in link.INLETS}
        self.inlets_open = False
        self.lamp_mode = "out_of_service"
        self.maintenance = False
        self.stop_requested = False
        self.started_ms = hal.now_ms()
        self._lamp_shown: tuple[int, int, int] | None = None
        self._host_power = True
        for inlet in link.INLETS:
            hal.set_inlet(inlet, [])
        hal.set_host_power(True)
        self.record(
            "board_restart",
            {"boots": self.store.boots, "state_lost": self.store.lost_state},
        )

    # ------------------------------------------------------------ events

    def record(self, kind: str, detail: dict[str, Any]) -> int:
        now = self.hal.now_ms()
        if self.clock_offset_ms is None:
            return self.store.add_board_event(kind, now, False, detail)
        return self.store.add_board_event(kind, now + self.clock_offset_ms, True, detail)

    # ------------------------------------------------------------ inputs and time

    def poll(self) -> None:
        now = self.hal.now_ms()
        for inlet, active, at_ms in self.hal.pulse_edges():
            decoder = self.decoders.get(inlet)
            if decoder is not None:
                decoder.edge(active, at_ms)
        for decoder in self.decoders.values():
            for result, kind, value in decoder.poll(now):
                if result == "cash":
                    # Durable before anything else happens: this is the customer's money.
                    self.store.add_cash(kind, value)
                elif result == "unrecognised":
                    # Something went in that matches no channel: buffered and numbered like
                    # cash, worth 0 fen, so the host ties it to the customer who inserted it.
                    self.store.add_cash(link.UNRECOGNISED, 0, kind, value)
                else:
                    self.record("inlet_jammed", {"inlet": kind, "held_ms": value})
        self._poll_switches(now)
        self._poll_watchdog(now)
        self._apply_outputs(now)

    def _poll_switches(self, now: int) -> None:
        if "door" in self.fitted:
            first = self.door.level is None
            changed = self.door.sample(self.hal.door_open(), now)
            if changed is not None and not (first and not changed):
                self.record("door_open" if changed else "door_closed", {})
        if "tamper" in self.fitted:
            changed = self.tamper.sample(self.hal.tamper_open(), now)
            if changed and not self.store.tamper_latched:
                self.store.set_tamper_latched(True)
                self.record("tamper", {})

    def _poll_watchdog(self, now: int) -> None:
        if "watchdog" not in self.fitted:
            return
        report = self.watchdog.poll(now)
        if report is not None:
            # Kept on flash until the host, once back, acknowledges it.
            self.record("watchdog_reset", report)
        powered = self.watchdog.host_powered
        if powered != self._host_power:
            self._host_power = powered
            self.hal.set_host_power(powered)

    def _apply_outputs(self, now: int) -> None:
        may_open = (
            self.accepting
            and self.store.unacknowledged_cash() < CASH_CLOSE_INLETS_AT
            and not any(decoder.jammed for decoder in self.decoders.values())
        )
        for inlet, decoder in self.decoders.items():
            enabled = enabled_channels(
                decoder.channels_fen(), may_open, self.largest_fen, self.wired[inlet]
            )
            if enabled != self.enabled[inlet]:
                self.enabled[inlet] = enabled
                self.hal.set_inlet(inlet, enabled)
        self.inlets_open = any(self.enabled.values())
        colour = colour_at(self.effective_lamp(), now)
        if colour != self._lamp_shown:
            self._lamp_shown = colour
            self.hal.set_lamp(colour)

    def effective_lamp(self) -> str:
        if self.maintenance:
            return "maintenance"
        if self.watchdog.gave_up:
            return "attention"
        return self.lamp_mode

    # ------------------------------------------------------------ the link

    def receive(self, data: bytes | bytearray) -> bytes:
        """Bytes from the host in, bytes to send back out."""
        out = bytearray()
        damaged_before = self.deframer.damaged
        for seq, msg_type, payload in self.deframer.feed(data):
            out.extend(self._answer(seq, msg_type, payload))
        if self.deframer.damaged != damaged_before:
            # Tell the host at once instead of letting it wait for its timeout.
            out.extend(link.encode_frame(0, link.NAK))
        return bytes(out)

    def _answer(self, seq: int, msg_type: int, payload: bytes) -> bytes:
        request = (seq, msg_type, payload)
        if msg_type != link.HELLO:
            if not self.handshaken:
                return link.encode_frame(
                    seq,
                    link.ERROR,
                    link.encode_error(link.ERR_HANDSHAKE_FIRST, "send hello first"),
                )
            if request == self.last_request:
                # A retransmission (our answer was lost): answer again, do not act twice.
                return self.last_response
        try:
            response_type, response = self._dispatch(msg_type, payload)
            frame = link.encode_frame(seq, response_type, response)
        except link.LinkError as exc:
            frame = link.encode_frame(
                seq, link.ERROR, link.encode_error(link.ERR_MALFORMED, str(exc))
            )
        except RequestRefused as exc:
            frame = link.encode_frame(
                seq, link.ERROR, link.encode_error(link.ERR_REFUSED, str(exc))
            )
        self.last_request = request
        self.last_response = frame
        return frame

    def _dispatch(self, msg_type: int, payload: bytes) -> tuple[int, bytes]:
        now = self.hal.now_ms()
        answer = msg_type | link.RESPONSE_BIT
        if msg_type == link.HELLO:
            version, nonce, host_time_ms = link.decode_hello(payload)
            self.handshaken = version == link.PROTOCOL_VERSION
            if self.handshaken:
                self.clock_offset_ms = host_time_ms - now
            return answer, link.encode_hello_response(
                link.PROTOCOL_VERSION,
                nonce,
                self.store.board_id,
                FIRMWARE_VERSION,
                self.capabilities(),
                self.store.boots,
            )
        if msg_type == link.STATUS:
            return answer, link.encode_status(self.status())
        if msg_type == link.CASH_PENDING:
            after = link.decode_u32(payload, "cash_pending")
            return answer, link.encode_cash_events(self.store.cash_after(after, link.CASH_PAGE))
        if msg_type == link.CASH_ACK:
            self.store.acknowledge_cash(link.decode_u32(payload, "cash_ack"))
            return answer, b""
        if msg_type == link.SET_ACCEPTING:
            accepting, largest_fen = link.decode_set_accepting(payload)
            # Absolute: a limit from an earlier request is replaced, never combined.
            self.accepting = accepting
            self.largest_fen = largest_fen if accepting else None
            self._apply_outputs(now)
            return answer, b""
        if msg_type == link.BOARD_EVENTS:
            after = link.decode_u32(payload, "board_events")
            return answer, self._board_event_page(after)
        if msg_type == link.BOARD_EVENT_ACK:
            self.store.acknowledge_board_event(link.decode_u32(payload, "board_event_ack"))
            return answer, b""
        if msg_type == link.SET_LAMP:
            mode = link.decode_u8(payload, "set_lamp")
            if mode >= len(link.LAMP_MODES):
                raise link.LinkError(f"lamp mode {mode} is unknown")
            self.lamp_mode = link.LAMP_MODES[mode]
            self._apply_outputs(now)
            return answer, b""
        if msg_type == link.HEARTBEAT:
            self.clock_offset_ms = link.decode_u64(payload, "heartbeat") - now
            self.watchdog.heartbeat(now)
            return answer, b""
        if msg_type == link.SET_MAINTENANCE:
            self.maintenance = link.decode_u8(payload, "set_maintenance") == 1
            self.watchdog.set_maintenance(self.maintenance, now)
            self._apply_outputs(now)
            return answer, b""
        if msg_type == link.CLEAR_TAMPER:
            self._clear_tamper()
            return answer, b""
        if msg_type == link.STOP_FOR_REPL:
            self.stop_requested = True
            return answer, b""
        return link.ERROR, link.encode_error(
            link.ERR_UNKNOWN_TYPE, f"request type 0x{msg_type:02x} is unknown to this firmware"
        )

    def _board_event_page(self, after: int) -> bytes:
        events = self.store.board_events_after(after, link.BOARD_EVENT_PAGE)
        # Details vary in size: send as many as fit in one payload (at least one).
        while len(events) > 1:
            encoded = link.encode_board_events(events)
            if len(encoded) <= link.MAX_PAYLOAD:
                return encoded
            events = events[:-1]
        return link.encode_board_events(events)

    def _clear_tamper(self) -> None:
        if self.tamper.level:
            raise RequestRefused(
                "the tamper switch is still open: close the enclosure, then clear the tamper"
            )
        if self.store.tamper_latched:
            self.store.set_tamper_latched(False)
            self.record("tamper_cleared", {})

    # ------------------------------------------------------------ status

    def capabilities(self) -> int:
        mask = 0
        for name in self.fitted:
            mask |= _CAPABILITY_BITS.get(name, 0)
        return mask

    def status(self) -> dict[str, Any]:
        flags = 0
        if self.door.level is not None:
            flags |= link.FLAG_DOOR_KNOWN
            if self.door.level:
                flags |= link.FLAG_DOOR_OPEN
        if self.store.tamper_latched:
            flags |= link.FLAG_TAMPER_LATCHED
        if self.maintenance:
            flags |= link.FLAG_MAINTENANCE
        if self.inlets_open:
            flags |= link.FLAG_ACCEPTING
        if any(decoder.jammed for decoder in self.decoders.values()):
            flags |= link.FLAG_JAMMED
        if self.clock_offset_ms is not None:
            flags |= link.FLAG_CLOCK_SET
        if self.watchdog.gave_up:
            flags |= link.FLAG_WATCHDOG_GAVE_UP
        temperature = self.hal.temperature_c() if "temperature" in self.fitted else None
        return {
            "flags": flags,
            "lamp": self.effective_lamp(),
            "temperature_decic": (
                link.TEMPERATURE_UNKNOWN if temperature is None else int(temperature * 10)
            ),
            "unacknowledged_cash": self.store.unacknowledged_cash(),
            "unacknowledged_board_events": self.store.unacknowledged_board_events(),
            "uptime_ms": self.hal.now_ms() - self.started_ms,
            "watchdog_resets": self.watchdog.total_resets,
            "largest_fen": self.largest_fen,
            "firmware_version": FIRMWARE_VERSION,
        }
