"""The real board: RP2040 pins, ADC and USB serial behind the HAL, and the main loop.

Owns pin numbers (from config.json), turning pin interrupts into timed pulse edges, the lamp's
PWM, the host power relay, the temperature sensor and the USB serial byte stream. Everything
the board decides is in board.py; this file only moves bytes and levels. It runs only on the
board (it imports `machine`), so the tests compile it with mpy-cross but never import it.
"""

import select
import sys
import time

import machine
import micropython

from .board import Board, read_settings

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - MicroPython has no typing module; mypy reads this
    from typing import Any
else:
    # CPython evaluates signature annotations when a def runs; MicroPython ignores them.
    Any = object

SETTINGS_PATH = "/lib/ioboard/config.json"
STATE_PATH = "/ioboard-state.json"
LOOP_WAIT_MS = 2


class Rp2Hal:
    def __init__(self, pins: dict[str, Any]) -> None:
        self._ticks = time.ticks_ms()  # type: ignore[attr-defined]  # MicroPython's time
        self._now = 0
        self._edges: list[tuple[str, bool, int]] = []
        self._inputs = {}
        for inlet in ("coin", "note"):
            pin = machine.Pin(pins[inlet + "_pulse"], machine.Pin.IN, machine.Pin.PULL_UP)
            # Validators pull the line low for a pulse (open collector): low means active.
            pin.irq(self._edge_handler(inlet), machine.Pin.IRQ_FALLING | machine.Pin.IRQ_RISING)
            self._inputs[inlet] = pin
        # Inhibit lines, driven high to let cash in: one per inlet and, where the validator
        # has them, one per channel (denomination), all inhibiting at start.
        self._inlet_lines = {}
        self._channel_lines = {}
        for inlet in ("coin", "note"):
            self._inlet_lines[inlet] = machine.Pin(
                pins[inlet + "_inhibit"], machine.Pin.OUT, value=0
            )
            channels = pins.get(inlet + "_channel_inhibit") or {}
            self._channel_lines[inlet] = {
                int(value): machine.Pin(pin, machine.Pin.OUT, value=0)
                for value, pin in channels.items()
            }
        self._door = machine.Pin(pins["door"], machine.Pin.IN, machine.Pin.PULL_UP)
        self._tamper = machine.Pin(pins["tamper"], machine.Pin.IN, machine.Pin.PULL_UP)
        # The relay is wired normally closed: the host has power unless the board energises it.
        self._relay = machine.Pin(pins["host_power_relay"], machine.Pin.OUT, value=0)
        self._lamp = []
        for key in ("lamp_red", "lamp_green", "lamp_blue"):
            pwm = machine.PWM(machine.Pin(pins[key]))
            pwm.freq(1000)
            self._lamp.append(pwm)
        self._sensor = machine.ADC(4)

    def _edge_handler(self, inlet: str) -> Any:
        def handler(pin: Any) -> None:
            # Soft IRQ (scheduled), so appending is allowed; the time is taken at once.
            self._edges.append((inlet, pin.value() == 0, time.ticks_ms()))  # type: ignore[attr-defined]  # MicroPython's time

        return handler

    def now_ms(self) -> int:
        # ticks_ms wraps; the board's logic wants a clock that only grows.
        ticks = time.ticks_ms()  # type: ignore[attr-defined]  # MicroPython's time
        self._now += time.ticks_diff(ticks, self._ticks)  # type: ignore[attr-defined]  # MicroPython's time
        self._ticks = ticks
        return self._now

    def pulse_edges(self) -> list[tuple[str, bool, int]]:
        now = self.now_ms()
        state = machine.disable_irq()
        edges, self._edges = self._edges, []
        machine.enable_irq(state)
        ticks = self._ticks
        out = []
        for inlet, active, at in edges:
            ago = time.ticks_diff(ticks, at)  # type: ignore[attr-defined]  # MicroPython's time
            out.append((inlet, active, now - ago))
        return out

    def door_open(self) -> bool:
        return bool(self._door.value())  # switch closes to ground while the door is shut

    def tamper_open(self) -> bool:
        return bool(self._tamper.value())

    def temperature_c(self) -> float | None:
        try:
            volts = self._sensor.read_u16() * 3.3 / 65535
        except OSError:
            return None
        # RP2040 datasheet, section 4.9.5: 27 degrees C at 0.706 V, -1.721 mV per degree.
        celsius: float = 27 - (volts - 0.706) / 0.001721
        return celsius

    def random_bytes(self, count: int) -> bytes:
        import os

        return os.urandom(count)

    def set_inlet(self, inlet: str, enabled_fen: list[int]) -> None:
        # Inhibit the inlet, set its channels, then let it in again: no moment with a channel
        # enabled that the host excluded. A note already in transport is finished by the validator.
        self._inlet_lines[inlet].value(0)
        for value, pin in self._channel_lines[inlet].items():
            pin.value(1 if value in enabled_fen else 0)
        if enabled_fen:
            self._inlet_lines[inlet].value(1)

    def set_lamp(self, colour: tuple[int, int, int]) -> None:
        # An index loop: MicroPython's zip() has no strict= argument.
        for index in range(3):
            self._lamp[index].duty_u16(colour[index] * 257)

    def set_host_power(self, on: bool) -> None:
        self._relay.value(0 if on else 1)


def run() -> None:
    settings = read_settings(SETTINGS_PATH)
    board = Board(Rp2Hal(settings["pins"]), settings, STATE_PATH)
    # 0x03 is an ordinary byte inside frames: it must not interrupt the firmware.
    micropython.kbd_intr(-1)
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    try:
        while not board.stop_requested:
            received = bytearray()
            while poller.poll(0) and len(received) < 256:
                received.extend(stdin.read(1))
            if received:
                answer = board.receive(received)
                if answer:
                    stdout.write(answer)
            board.poll()
            if not received:
                poller.poll(LOOP_WAIT_MS)
    finally:
        micropython.kbd_intr(3)
