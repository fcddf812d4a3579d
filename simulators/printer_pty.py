"""A simulated ESC/POS receipt printer on a pseudo-terminal, for tests, the demo and a bench.

Owns the printer's side of the serial line: it opens a pseudo-terminal (os.openpty), links
its slave device at a path a driver opens like a serial port, decodes every byte received
(escpos_decoder), answers the real-time status queries (DLE EOT, from status.py's table),
the end-of-job handshake (GS ( H) and the buffer clear (DLE DC4 8), prints text and native
QR codes onto a page, and at each cut writes the page to the output directory as
receipt-NNNN.txt and receipt-NNNN.png (render.py). Unknown commands are recorded, logged and
noted on the page, never silently dropped.

It imitates one printer model (profiles.py): a model that does not answer GS ( H (a clone)
parses the request and ignores it, and the autocutter makes only the model's cuts. The model
can be switched while it runs (another printer plugged into the same port), and printing can
take the time real paper takes (print_speed_mm_s), so that a fault can strike while the host
waits for a job.

Faults, set while it runs (from Python or through the control FIFO, see docs/printer.md):
paper near end, paper out, paper running out part-way through the next job, cover open, a
cutter error, offline (it stops answering and prints nothing), line noise sent to the host,
and unplug/replug (the link disappears and comes back at the same path). Like a real printer
it stops printing while the cover is open or the paper is out, keeps the bytes it received
until it prints them or the host clears them, and answers status queries meanwhile.

All serial and page work happens on one thread; other threads (the fault methods, the
control FIFO) hand it actions and wait for them, so nothing races on the descriptors.

`python -m simulators.printer_pty --link PATH --out DIR` runs it until interrupted.
"""

import argparse
import errno
import logging
import os
import queue
import select
import signal
import stat
import sys
import threading
import time
import tty
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from drivers.printer import escpos_decoder as cmd
from drivers.printer.capabilities import DOTS_PER_MM, LINE_PITCH_MM, paper_for_columns
from drivers.printer.escpos_commands import Cut
from drivers.printer.profiles import (
    GENERIC_MODEL,
    PrinterProfile,
    UnknownPrinterModel,
    profile_for,
)
from drivers.printer.render import (
    PrintedPage,
    PrintedQr,
    PrintedText,
    page_text,
    qr_dots,
    write_page,
)
from drivers.printer.status import BUFFER_CLEARED_REPLY, encode_status, process_id_response
from kiosk.command_line import CommandError, run_command
from kiosk.message_text import error_text

log = logging.getLogger(__name__)

# Line noise the "noise" fault sends to the host: none of these bytes has the fixed bits of a
# status reply (a noise byte that had them could not be told from a reply by any host).
NOISE = b"\xff\x00\xaa\x55\x81\x7f\x01"
RECEIPT_PREFIX = "receipt-"
CONTROL_COMMANDS = (
    "paper-near-end",
    "paper-out",
    "paper-out-mid-job",
    "cover-open",
    "cutter-error",
    "offline",
    "noisy",
    "noise",
    "unplug",
    "replug",
    "restore",
    "model",
)


@dataclass(frozen=True)
class PrintedReceipt:
    number: int
    text_path: Path
    png_path: Path
    text: str
    page: PrintedPage
    truncated: bool  # the paper ran out part-way: no cut


@dataclass
class _Modes:
    bold: bool = False
    width: int = 1
    height: int = 1
    align: str = "left"
    small: bool = False


@dataclass
class _Qr:
    module_dots: int = 3
    error_level: str = "L"
    data: bytes | None = None


@dataclass
class _State:
    paper: str = "ok"  # ok | near_end | out
    cover_open: bool = False
    cutter_error: bool = False
    offline: bool = False
    noisy: bool = False
    out_after_rows: int | None = None  # paper runs out after this many rows of the next job
    drop_after_rows: int | None = None  # the link drops after this many rows of the next job
    drop_for_s: float = 0.5  # ... and comes back this much later

    @property
    def stopped(self) -> bool:
        return self.cover_open or self.paper == "out" or self.cutter_error


@dataclass
class _Line:
    text: str = ""
    modes: _Modes | None = None  # the modes when the line's first character came


@dataclass
class _Action:
    run: Callable[[], object]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class PtyPrinterSimulator:
    """An ESC/POS printer on a pseudo-terminal linked at `link`, printing into `out_dir`."""

    def __init__(
        self,
        link: Path,
        out_dir: Path,
        columns: int = 32,
        *,
        control: Path | None = None,
        model: str = GENERIC_MODEL,
        print_speed_mm_s: float | None = None,
    ) -> None:
        """model: the profile it imitates; print_speed_mm_s: None prints at once."""
        self.link = link
        self.out_dir = out_dir
        self.columns = columns
        self.paper = paper_for_columns(columns)
        self.profile: PrinterProfile = profile_for(model, self.paper.width_mm)
        self.print_speed_mm_s = print_speed_mm_s
        self.control = control
        self.process_id_requests = 0  # GS ( H received (answered or, by a clone, ignored)
        self.receipts: list[PrintedReceipt] = []
        self.unknown: list[cmd.Unknown] = []
        self.bytes_discarded = 0  # received while offline
        self.on_receipt: Callable[[PrintedReceipt], None] | None = None
        self._state = _State()
        self._decoder = cmd.EscPosDecoder()
        self._pending: deque[cmd.Command] = deque()
        self._modes = _Modes()
        self._qr = _Qr()
        self._line = _Line()
        self._page = PrintedPage()
        self._rows_this_job = 0
        self._master: int | None = None
        self._slave: int | None = None
        self._control_fd: int | None = None
        self._actions: queue.Queue[_Action] = queue.Queue()
        self._wake_read, self._wake_write = os.pipe()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._replug_at: float | None = None
        self._busy_until: float | None = None  # printing the last row takes until then
        out_dir.mkdir(parents=True, exist_ok=True)
        self._next_number = 1 + len(list(out_dir.glob(f"{RECEIPT_PREFIX}*.txt")))

    # ------------------------------------------------------------ running

    def start(self) -> "PtyPrinterSimulator":
        self._plug()
        if self.control is not None:
            if self.control.exists() and not stat.S_ISFIFO(self.control.stat().st_mode):
                raise ValueError(f"control path {self.control} exists and is not a FIFO")
            if not self.control.exists():
                os.mkfifo(self.control)
            self._open_control()
        self._thread = threading.Thread(target=self._serve, name="pty-printer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping = True
            os.write(self._wake_write, b"x")
            self._thread.join(timeout=10)
            self._thread = None
        self._unplug()
        if self._control_fd is not None:
            os.close(self._control_fd)
            self._control_fd = None
        for fd in (self._wake_read, self._wake_write):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "PtyPrinterSimulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ faults (any thread)

    def paper_near_end(self) -> None:
        self._call(lambda: setattr(self._state, "paper", "near_end"))

    def paper_out(self) -> None:
        self._call(lambda: setattr(self._state, "paper", "out"))

    def paper_out_mid_job(self, after_rows: int = 4) -> None:
        """The paper runs out after after_rows rows of the next job (or of the current one)."""
        self._call(lambda: setattr(self._state, "out_after_rows", after_rows))

    def drop_link_mid_job(self, after_rows: int = 4, down_s: float = 0.5) -> None:
        """The link drops after after_rows rows of the next job and returns down_s later.

        What was received but not printed is lost with the link (the page so far is
        written, marked LINK DROPPED), as when a loose USB-serial adapter re-enumerates.
        """

        def arm() -> None:
            self._state.drop_after_rows, self._state.drop_for_s = after_rows, down_s

        self._call(arm)

    def cover_open(self) -> None:
        self._call(lambda: setattr(self._state, "cover_open", True))

    def cutter_error(self) -> None:
        self._call(lambda: setattr(self._state, "cutter_error", True))

    def offline(self) -> None:
        """Switched off: answers nothing, prints nothing, forgets what it was given."""
        self._call(self._go_offline)

    def noisy(self, on: bool = True) -> None:
        """Line noise before every reply to the host."""
        self._call(lambda: setattr(self._state, "noisy", on))

    def send_noise(self, data: bytes = NOISE) -> None:
        """A burst of line noise to the host, now."""
        self._call(lambda: self._reply(data))

    def unplug(self) -> None:
        """The cable is pulled: the link at `link` disappears (the printer keeps its state)."""
        self._call(self._unplug)

    def replug(self) -> None:
        """The cable is plugged back: a new pseudo-terminal linked at the same path."""
        self._call(self._plug)

    def restore(self) -> None:
        """A technician loads paper, closes the cover, clears the cutter and powers it on."""
        self._call(self._restore)

    def set_model(self, model: str) -> None:
        """Another model behind the same port (a swapped printer); UnknownPrinterModel if none."""
        profile = profile_for(model, self.paper.width_mm)
        self._call(lambda: setattr(self, "profile", profile))

    # ------------------------------------------------------------ what came out

    def printed_texts(self) -> list[str]:
        return [receipt.text for receipt in self.receipts]

    def status_conditions(self) -> dict[int, int]:
        """The four DLE EOT replies the printer would give now (for tests and the CLI)."""
        return {kind: self._status_byte(kind) for kind in (1, 2, 3, 4)}

    # ------------------------------------------------------------ the serving thread

    def _call(self, run: Callable[[], object]) -> None:
        if self._thread is None or not self._thread.is_alive():
            run()  # not started (or stopped): nothing else touches the state
            return
        action = _Action(run)
        self._actions.put(action)
        os.write(self._wake_write, b"x")
        if not action.done.wait(timeout=10):
            raise TimeoutError("the printer simulator's thread did not respond")
        if action.error is not None:
            raise action.error

    def _serve(self) -> None:
        while not self._stopping:
            watched = [fd for fd in (self._master, self._control_fd) if fd is not None]
            wait = 0.5
            for due in (self._replug_at, self._busy_until if self._pending else None):
                if due is not None:
                    wait = min(max(due - time.monotonic(), 0.0), wait)
            try:
                ready, _, _ = select.select([self._wake_read, *watched], [], [], wait)
            except (OSError, ValueError):
                continue
            if self._replug_at is not None and time.monotonic() >= self._replug_at:
                self._replug_at = None
                self._plug()
            if self._wake_read in ready:
                os.read(self._wake_read, 1024)
                self._run_actions()
            if self._master is not None and self._master in ready:
                self._read_master()
            if self._control_fd is not None and self._control_fd in ready:
                self._read_control()
            self._print_pending()  # rows that waited for the print head

    def _run_actions(self) -> None:
        while True:
            try:
                action = self._actions.get_nowait()
            except queue.Empty:
                return
            try:
                action.run()
                self._print_pending()  # a restored printer carries on with what it holds
            except Exception as exc:  # handed back to the caller's thread
                action.error = exc
            action.done.set()

    def _read_master(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 4096)
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            return  # no process has the line open: nothing to read
        if self._state.offline:
            self.bytes_discarded += len(data)
            return
        for command in self._decoder.feed(data):
            if isinstance(command, cmd.StatusQuery):
                self._reply(bytes([self._status_byte(command.kind)]))
            elif isinstance(command, cmd.ClearBuffers):
                self._pending.clear()
                self._reply(BUFFER_CLEARED_REPLY)
            else:
                self._pending.append(command)
        self._print_pending()

    def _reply(self, data: bytes) -> None:
        if self._master is None or self._state.offline:
            return
        noise = NOISE if self._state.noisy else b""
        os.write(self._master, noise + data)

    # ------------------------------------------------------------ link and control

    def _plug(self) -> None:
        if self._master is not None:
            return
        self._master, self._slave = os.openpty()
        # Raw from the start (pyserial sets it too when it opens the port): no echo of the
        # replies back to the printer, no newline translation.
        tty.setraw(self._slave)
        # The simulator keeps the slave open itself so that reading the master never fails
        # with EIO while no driver has the port open.
        self.link.unlink(missing_ok=True)
        self.link.symlink_to(os.ttyname(self._slave))
        self._decoder.reset()

    def _unplug(self) -> None:
        if self.link.is_symlink():
            self.link.unlink()
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        self._decoder.reset()

    def _open_control(self) -> None:
        assert self.control is not None
        self._control_fd = os.open(self.control, os.O_RDONLY | os.O_NONBLOCK)

    def _read_control(self) -> None:
        assert self._control_fd is not None
        data = os.read(self._control_fd, 4096)
        if not data:  # every writer closed the FIFO: reopen to wait for the next one
            os.close(self._control_fd)
            self._open_control()
            return
        for line in data.decode("utf-8", "replace").splitlines():
            self._control_command(line.split())
        self._print_pending()

    def _control_command(self, words: list[str]) -> None:
        if not words:
            return
        name, arguments = words[0], words[1:]
        actions: dict[str, Callable[[], object]] = {
            "paper-near-end": lambda: setattr(self._state, "paper", "near_end"),
            "paper-out": lambda: setattr(self._state, "paper", "out"),
            "paper-out-mid-job": lambda: setattr(
                self._state, "out_after_rows", int(arguments[0]) if arguments else 4
            ),
            "cover-open": lambda: setattr(self._state, "cover_open", True),
            "cutter-error": lambda: setattr(self._state, "cutter_error", True),
            "offline": self._go_offline,
            "noisy": lambda: setattr(self._state, "noisy", arguments != ["off"]),
            "noise": lambda: self._reply(NOISE),
            "unplug": self._unplug,
            "replug": self._plug,
            "restore": self._restore,
            "model": lambda: setattr(
                self, "profile", profile_for(arguments[0], self.paper.width_mm)
            ),
        }
        action = actions.get(name)
        if action is None:
            log.warning("unknown control command %r; known: %s", name, CONTROL_COMMANDS)
            return
        try:
            action()
        except (ValueError, OSError, IndexError) as exc:
            log.warning("control command %r failed: %s", " ".join(words), exc)
            return
        log.info("fault: %s", " ".join(words))

    def _go_offline(self) -> None:
        self._state.offline = True
        self._pending.clear()
        self._decoder.reset()

    def _restore(self) -> None:
        self._state = _State()
        self._replug_at = None
        if self._master is None:
            self._plug()

    # ------------------------------------------------------------ status

    def _status_byte(self, kind: int) -> int:
        state = self._state
        conditions: set[str] = set()
        if state.stopped:
            conditions.add("offline")  # ESC/POS: cover, paper end or error stop printing
        if state.cover_open:
            conditions.add("cover_open")
        if state.paper == "out":
            conditions |= {"paper_end_stop", "paper_out", "paper_near_end"}
        if state.paper == "near_end":
            conditions.add("paper_near_end")
        if state.cutter_error:
            conditions |= {"error", "autocutter_error"}
        return encode_status(kind, conditions)

    # ------------------------------------------------------------ printing

    def _print_pending(self) -> None:
        while self._pending and not self._state.stopped and not self._state.offline:
            if self._busy_until is not None:
                if time.monotonic() < self._busy_until:
                    return  # the head is still printing the last row
                self._busy_until = None
            self._execute(self._pending.popleft())

    def _execute(self, command: cmd.Command) -> None:
        modes = self._modes
        if isinstance(command, cmd.Text):
            if self._line.modes is None:
                self._line.modes = _Modes(**vars(modes))
            self._line.text += command.text
        elif isinstance(command, cmd.LineFeed):
            self._end_row()
        elif isinstance(command, cmd.Initialize):
            self._modes = _Modes()
            self._qr = _Qr()
            self._line = _Line()
        elif isinstance(command, cmd.Bold):
            modes.bold = command.on
        elif isinstance(command, cmd.CharacterSize):
            modes.width, modes.height = command.width, command.height
        elif isinstance(command, cmd.Align):
            modes.align = command.align
        elif isinstance(command, cmd.Font):
            modes.small = command.font == "B"
        elif isinstance(command, cmd.FeedLines):
            self._end_row(keep_empty=False)
            for _ in range(command.lines):
                self._add_row(PrintedText(""))
        elif isinstance(command, cmd.QrModuleSize):
            self._qr.module_dots = command.dots
        elif isinstance(command, cmd.QrErrorLevel):
            self._qr.error_level = command.level
        elif isinstance(command, cmd.QrStore):
            self._qr.data = command.data
        elif isinstance(command, cmd.QrPrint):
            qr = self._qr
            if qr.data:
                self._add_row(PrintedQr(qr.data, qr.module_dots, qr.error_level, modes.align))
        elif isinstance(command, cmd.Cut):
            self._end_row(keep_empty=False)
            # The autocutter makes the cut it has (a partial-only cutter cuts partially).
            self._page.cut = str(self.profile.cut_for(Cut.FULL if command.full else Cut.PARTIAL))
            self._finish_page(truncated=False)
        elif isinstance(command, cmd.ProcessIdRequest):
            self.process_id_requests += 1
            if self.profile.answers_process_id:  # a clone parses the request and ignores it
                self._reply(process_id_response(command.process_id))
        elif isinstance(command, cmd.PaperSensorQuery):
            self._reply(bytes([self._status_byte(4)]))
        elif isinstance(command, cmd.Unknown):
            self.unknown.append(command)
            log.warning("unknown ESC/POS bytes %s: %s", command.raw.hex(" "), command.reason)
            self._page.notes.append(f"UNKNOWN {command.raw.hex(' ')}: {command.reason}")
        # ChineseMode, InternationalSet, QrModel, CarriageReturn: the decoder already applied
        # what they change, or they change nothing on paper.

    def _end_row(self, keep_empty: bool = True) -> None:
        line, self._line = self._line, _Line()
        if line.modes is None:
            if keep_empty:
                self._add_row(PrintedText("", align=self._modes.align))
            return
        modes = line.modes
        row = PrintedText(
            line.text, modes.align, modes.bold, modes.width, modes.height, modes.small
        )
        self._add_row(row)

    def _add_row(self, row: PrintedText | PrintedQr) -> None:
        self._page.rows.append(row)
        self._rows_this_job += 1
        if self.print_speed_mm_s is not None:
            if isinstance(row, PrintedQr):
                row_mm = qr_dots(row) / DOTS_PER_MM
            else:
                row_mm = LINE_PITCH_MM * row.height
            self._busy_until = time.monotonic() + row_mm / self.print_speed_mm_s
        limit = self._state.out_after_rows
        if limit is not None and self._rows_this_job >= limit:
            self._state.out_after_rows = None
            self._state.paper = "out"
            self._page.notes.append("PAPER RAN OUT")
            self._finish_page(truncated=True)
        limit = self._state.drop_after_rows
        if limit is not None and self._rows_this_job >= limit:
            self._state.drop_after_rows = None
            self._page.notes.append("LINK DROPPED")
            self._finish_page(truncated=True)
            self._pending.clear()
            self._unplug()
            self._replug_at = time.monotonic() + self._state.drop_for_s

    def _finish_page(self, truncated: bool) -> None:
        page, self._page = self._page, PrintedPage()
        self._rows_this_job = 0
        stem = self.out_dir / f"{RECEIPT_PREFIX}{self._next_number:04d}"
        self._next_number += 1
        write_page(page, self.paper, self.columns, stem)
        receipt = PrintedReceipt(
            number=self._next_number - 1,
            text_path=stem.with_suffix(".txt"),
            png_path=stem.with_suffix(".png"),
            text=page_text(page, self.columns),
            page=page,
            truncated=truncated,
        )
        self.receipts.append(receipt)
        log.info("printed %s%s", receipt.text_path.name, " (paper ran out)" if truncated else "")
        if self.on_receipt is not None:
            self.on_receipt(receipt)


def _simulate(args: argparse.Namespace) -> int:
    from firmware_tools.tool_language import say, tool_translator

    logging.basicConfig(level=logging.INFO, format="printer simulator: %(message)s")
    if args.link.exists() and not args.link.is_symlink():
        raise CommandError(
            "{path} exists and is not a link: choose another --link path", path=args.link
        )
    if args.print_speed is not None and args.print_speed <= 0:
        raise CommandError(
            "--print-speed {value:g} must be more than 0 mm/s", value=args.print_speed
        )
    try:
        simulator = PtyPrinterSimulator(
            args.link,
            args.out,
            args.columns,
            control=args.control,
            model=args.model,
            print_speed_mm_s=args.print_speed,
        )
    except UnknownPrinterModel as exc:
        raise CommandError(
            "{problem} (see kiosk-tool printer models)", problem=error_text(exc)
        ) from None
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        simulator.start()
    except (OSError, ValueError) as exc:
        raise CommandError(
            "cannot start the printer simulator: {problem}", problem=error_text(exc)
        ) from None
    t = tool_translator()
    started = say(
        t,
        "printer simulator ({model}) on {link}, receipts in {out}",
        model=simulator.profile.name,
        link=args.link,
        out=args.out,
    )
    if args.control:
        started += say(t, ", faults through {control}", control=args.control)
    print(started, flush=True)
    try:
        stop.wait()
    finally:
        simulator.stop()
    stopped = say(
        t, "printer simulator stopped after {count} receipts", count=len(simulator.receipts)
    )
    print(stopped, file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    simulate = argparse.ArgumentParser(
        prog="python -m simulators.printer_pty",
        description="run an ESC/POS printer on a pseudo-terminal until interrupted",
    )
    simulate.add_argument(
        "--link",
        type=Path,
        required=True,
        help="path of the link to the pseudo-terminal (the 'serial port')",
    )
    simulate.add_argument(
        "--out", type=Path, required=True, help="directory for the printed receipts (.txt and .png)"
    )
    simulate.add_argument("--columns", type=int, choices=(32, 48), default=32)
    simulate.add_argument(
        "--model",
        default="epson-compatible",
        help="the printer model it imitates, e.g. clone-58 (ignores GS ( H)",
    )
    simulate.add_argument(
        "--print-speed",
        type=float,
        metavar="MM_PER_S",
        help="print at this paper speed instead of at once",
    )
    simulate.add_argument(
        "--control", type=Path, help="FIFO to create for fault commands (see docs/printer.md)"
    )
    simulate.set_defaults(handler=_simulate)
    return simulate


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
