"""The real I/O board firmware run on the host, behind a pseudo-terminal, driven from tests.

BoardRunner runs drivers/ioboard/firmware's Board (the very code the board runs) with a host
HAL: a monotonic clock, pulse edges scheduled in time as a validator sends them, switch levels
and recorded outputs (the channels each inlet lets in, lamp, host power relay). It offers what
a person does to the board: insert a note or coin (as a pulse train, handed back when its
channel is inhibited) or something the validator cannot value, open the door, open the
enclosure (tamper), restart the board. BoardHarness adds the USB link: a pseudo-terminal
whose slave path (a stable symlink, as udev gives a real board) the host driver opens with
pyserial, with faults that can be injected on the line (bit flips, dropped, duplicated and
reordered bytes) and a link that can be pulled and plugged back.

It is a test bench and a technician's bench: it never talks to real hardware and the firmware
logic in it is not copied or mocked.
"""

import json
import os
import random
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import drivers.ioboard.firmware as firmware_package
from drivers.cash import CashRejected
from drivers.ioboard.firmware.board import Board
from drivers.ioboard.firmware.pulses import pulse_train
from kiosk.money import format_fen

FIRMWARE_DIR = Path(firmware_package.__file__).resolve().parent

# A bench validator sends short pulses so that a 100-yuan note (100 pulses) takes under a
# second; the decoder logic is the board's, only its configured timings differ.
BENCH_PULSE_MS = 3
BENCH_SPACE_MS = 3
BENCH_PULSE_SETTINGS = {"debounce_ms": 1, "min_pulse_ms": 2, "max_pulse_ms": 40, "gap_ms": 30}
POLL_INTERVAL_S = 0.002
WAIT_TIMEOUT_S = 15.0


class CashHandedBack(CashRejected):
    """The validator did not take the cash (inlet or channel inhibited); nothing was counted."""


def bench_settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The board's shipped config.json with bench pulse timings and any overrides merged in."""
    settings: dict[str, Any] = json.loads((FIRMWARE_DIR / "config.json").read_text())
    for inlet in ("coin", "note"):
        settings[inlet].update(BENCH_PULSE_SETTINGS)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key].update(value)
        else:
            settings[key] = value
    return settings


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_TIMEOUT_S) -> None:
    """Poll condition until it holds; TimeoutError naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the bench board did not {what} within {timeout_s:.0f} s")
        time.sleep(0.002)


class HostHal:
    """The board's hardware as the firmware sees it, on a host: HAL methods plus bench inputs."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()
        self.scheduled_edges: list[tuple[int, str, bool]] = []  # (time_ms, inlet, active)
        self.door = False
        self.tamper = False
        self.temperature: float | None = 31.5
        self.enabled_fen: dict[str, list[int]] = {}  # inlet -> channels let in ([]: inhibited)
        self.lamp: tuple[int, int, int] = (0, 0, 0)
        self.host_power: list[tuple[int, bool]] = []

    def now_ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    def pulse_edges(self) -> list[tuple[str, bool, int]]:
        now = self.now_ms()
        due = [edge for edge in self.scheduled_edges if edge[0] <= now]
        self.scheduled_edges = self.scheduled_edges[len(due) :]
        return [(inlet, active, at) for at, inlet, active in due]

    def door_open(self) -> bool:
        return self.door

    def tamper_open(self) -> bool:
        return self.tamper

    def temperature_c(self) -> float | None:
        return self.temperature

    def random_bytes(self, count: int) -> bytes:
        return os.urandom(count)

    def set_inlet(self, inlet: str, enabled_fen: list[int]) -> None:
        self.enabled_fen[inlet] = list(enabled_fen)

    @property
    def inlets_open(self) -> bool:
        return any(self.enabled_fen.values())

    def set_lamp(self, colour: tuple[int, int, int]) -> None:
        self.lamp = colour

    def set_host_power(self, on: bool) -> None:
        self.host_power.append((self.now_ms(), on))


class BoardRunner:
    """The firmware's Board with a host HAL, polled by a thread as the board's main loop does."""

    def __init__(self, state_dir: Path, settings: dict[str, Any] | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.settings = settings if settings is not None else bench_settings()
        self.hal = HostHal()
        self.lock = threading.RLock()
        self.board = Board(self.hal, self.settings, str(self.state_dir / "state.json"))
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._poller = threading.Thread(target=self._poll_loop, name="ioboard-poll", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        self._poller = None

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            with self.lock:
                self.board.poll()
            time.sleep(POLL_INTERVAL_S)

    def receive(self, data: bytes) -> bytes:
        """Bytes from the host into the board, its answer out."""
        with self.lock:
            return self.board.receive(data)

    # ------------------------------------------------------------ what people do

    def channel_table(self, inlet: str) -> dict[int, int]:
        """The inlet's channels: value in fen -> the train length the validator sends."""
        table = self.settings[inlet]["train_values_fen"]
        return {int(value): int(pulses) for pulses, value in table.items()}

    def pulses_for(self, kind: str, value_fen: int) -> int:
        table = self.channel_table(kind)
        if value_fen not in table:
            raise ValueError(f"the {kind} validator sends no pulse train for {value_fen} fen")
        return table[value_fen]

    def insert(self, kind: str, value_fen: int) -> int:
        """A customer inserts a note or coin: its pulse train, until the board counted it.

        Returns the board's event number. Raises CashHandedBack when the inlet is closed or
        the note's channel inhibited (above the host's limit), as a validator hands it back.
        """
        pulses = self.pulses_for(kind, value_fen)
        with self.lock:
            enabled = self.hal.enabled_fen.get(kind, [])
            if not enabled:
                raise CashHandedBack(f"the {kind} inlet is closed: the cash was handed back")
            if value_fen not in enabled:
                raise CashHandedBack(
                    f"the {kind} inlet inhibits {format_fen(value_fen)} now "
                    f"(it takes up to {format_fen(max(enabled))}): the cash was handed back"
                )
            before = self._next_cash()
        self.send_pulses(kind, pulses)
        wait_for(lambda: self._next_cash() > before, f"count a {kind} of {value_fen} fen")
        return before

    def insert_unrecognised(self, inlet: str, pulses: int = 3) -> int:
        """The validator takes something and sends a train that matches no channel.

        Returns the board's event number (an unrecognised cash event). Refused like cash
        while the inlet is closed: an inhibited validator takes nothing.
        """
        if pulses <= 0 or pulses in self.channel_table(inlet).values():
            raise ValueError(
                f"{pulses} pulses is no unrecognised train on the {inlet} inlet: give a count "
                "that matches none of its channels"
            )
        with self.lock:
            if not self.hal.enabled_fen.get(inlet):
                raise CashHandedBack(f"the {inlet} inlet is closed: the item was handed back")
            before = self._next_cash()
        self.send_pulses(inlet, pulses)
        wait_for(lambda: self._next_cash() > before, f"report a {pulses}-pulse train")
        return before

    def send_pulses(self, inlet: str, pulses: int, pulse_ms: int = BENCH_PULSE_MS) -> None:
        """Any pulse train on an inlet line (also trains the validator table does not know)."""
        with self.lock:
            start = max([self.hal.now_ms()] + [at for at, _, _ in self.hal.scheduled_edges]) + 5
            edges = pulse_train(pulses, start, pulse_ms, BENCH_SPACE_MS)
            self.hal.scheduled_edges += [(at, inlet, active) for active, at in edges]

    def count(self, kind: str, value_fen: int) -> int:
        """Cash counted as if its pulse train had just been decoded (for link torture runs)."""
        with self.lock:
            return self.board.store.add_cash(kind, value_fen)

    def open_door(self) -> None:
        self._set_switch("door", True)

    def close_door(self) -> None:
        self._set_switch("door", False)

    def open_enclosure(self) -> None:
        """Trips the tamper switch (it latches on the board)."""
        self._set_switch("tamper", True)

    def close_enclosure(self) -> None:
        self._set_switch("tamper", False)

    def _set_switch(self, name: str, open_: bool) -> None:
        with self.lock:
            setattr(self.hal, name, open_)
        switch = self.board.door if name == "door" else self.board.tamper
        wait_for(
            lambda: switch.level is open_, f"see the {name} switch {'open' if open_ else 'closed'}"
        )

    def restart_board(self) -> None:
        """Power-cycles the board: RAM is lost, what is on its flash stays."""
        with self.lock:
            self.hal.scheduled_edges = []
            self.board = Board(self.hal, self.settings, str(self.state_dir / "state.json"))

    def _next_cash(self) -> int:
        with self.lock:
            number: int = self.board.store.state["next_cash"]
            return number


@dataclass
class LineFaults:
    """Damage injected into the bytes on the line, each a probability per byte."""

    bit_flip: float = 0.0
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0  # swap with the next byte
    rng: random.Random = field(default_factory=lambda: random.Random(4))
    injected: int = 0

    def apply(self, data: bytes) -> bytes:
        out = bytearray()
        rng = self.rng
        for byte in data:
            roll = rng.random()
            if roll < self.drop:
                self.injected += 1
                continue
            roll -= self.drop
            if roll < self.bit_flip:
                self.injected += 1
                byte ^= 1 << rng.randrange(8)
            elif roll - self.bit_flip < self.duplicate:
                self.injected += 1
                out.append(byte)
            out.append(byte)
        index = 0
        while index < len(out) - 1:
            if rng.random() < self.reorder:
                self.injected += 1
                out[index], out[index + 1] = out[index + 1], out[index]
                index += 1
            index += 1
        return bytes(out)


class BoardHarness(BoardRunner):
    """The bench board on a pseudo-terminal; `port` is the path the host driver opens."""

    def __init__(
        self,
        state_dir: Path,
        settings: dict[str, Any] | None = None,
        faults: LineFaults | None = None,
    ) -> None:
        super().__init__(state_dir, settings)
        self.port = str(self.state_dir / "ttyIOBOARD")
        self.faults = faults
        self.muted = False
        self._fds: tuple[int, int] | None = None
        self._link_stop = threading.Event()
        self._link_thread: threading.Thread | None = None

    def start(self) -> None:
        super().start()
        self.plug_link()

    def stop(self) -> None:
        self.pull_link()
        super().stop()

    def plug_link(self) -> None:
        """Plug the USB cable in: a new pseudo-terminal behind the same port path."""
        if self._fds is not None:
            return
        master, slave = os.openpty()
        # Raw mode: frames are binary; no echo, no CR/LF or flow-control translation.
        tty.setraw(slave)
        # Never block the board on a host that stopped reading: a full line drops bytes.
        os.set_blocking(master, False)
        temporary = self.port + ".new"
        if os.path.lexists(temporary):
            os.unlink(temporary)
        os.symlink(os.ttyname(slave), temporary)
        os.replace(temporary, self.port)
        self._fds = (master, slave)
        self._link_stop.clear()
        self._link_thread = threading.Thread(
            target=self._serve_link, args=(master,), name="ioboard-link", daemon=True
        )
        self._link_thread.start()

    def pull_link(self) -> None:
        """Pull the USB cable: the host's open port fails and the port path disappears."""
        if self._fds is None:
            return
        self._link_stop.set()
        if self._link_thread is not None:
            self._link_thread.join(timeout=5)
        self._link_thread = None
        for fd in self._fds:
            os.close(fd)
        self._fds = None
        if os.path.lexists(self.port):
            os.unlink(self.port)

    def _serve_link(self, master: int) -> None:
        while not self._link_stop.is_set():
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(master, 4096)
            except BlockingIOError:
                continue
            except OSError:
                # No host has the port open (EIO on a pty): wait for one.
                time.sleep(0.01)
                continue
            if self.muted or not data:
                continue
            if self.faults is not None:
                data = self.faults.apply(data)
            answer = self.receive(data)
            if answer and self.faults is not None:
                answer = self.faults.apply(answer)
            while answer:
                try:
                    written = os.write(master, answer)
                except BlockingIOError:
                    time.sleep(0.001)
                    continue
                except OSError:
                    break
                answer = answer[written:]
