"""The real receipt printer: an ESC/POS thermal printer on a serial port (kiosk.devices.Printer).

Owns the conversation with the printer: the job's bytes (GB18030 Chinese through the
printer's Chinese mode, bold, double size, alignment, the native QR code, the cut), the
real-time status before and after every receipt (DLE EOT 1..4, decoded with status.py), the
end-of-job handshake (GS ( H process id), the serial link's drops and replugs, and the ledger
of job ids already sent so that a receipt re-sent after a dropped link is printed marked
REPRINT, never twice unmarked. It never lays out a receipt's wording (kiosk.receipts does)
and never decides whether a receipt must be printed (the transaction engine does).

python-escpos builds the QR and cut commands (escpos.printer.Dummy collects its bytes).
What it could not do, hence written here: its Serial class opens the port once and has no
reconnect; its text encoder picks single-byte code pages and cannot switch the printer into
GB18030 Chinese mode (FS &) for a run of Chinese inside an English line; its status calls
read "no reply" as "paper adequate"; and it has no end-of-job handshake.
"""

import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import segno
import serial
from escpos.constants import QR_ECLEVEL_H, QR_ECLEVEL_L, QR_ECLEVEL_M, QR_ECLEVEL_Q, QR_MODEL_2
from escpos.printer import Dummy

from drivers.printer.capabilities import (
    QR_QUIET_ZONE_MODULES,
    max_qr_symbol_modules,
    paper_for_columns,
)
from drivers.printer.status import (
    BUFFER_CLEARED_REPLY,
    ERROR_ADVICE,
    PROCESS_ID_ALPHABET,
    PROCESS_ID_HEADER,
    PROCESS_ID_LENGTH,
    STATUS_KINDS,
    error_conditions,
    is_status_reply,
    printer_status,
)
from kiosk.devices import (
    CoverOpen,
    PaperOut,
    PrinterError,
    PrinterOffline,
    PrinterStatus,
    ReceiptDocument,
    ReceiptLine,
)
from kiosk.i18n import bilingual
from kiosk.receipts.layout import wrap
from kiosk.storage import open_database, write_transaction

ESC, GS, FS, DLE = b"\x1b", b"\x1d", b"\x1c", b"\x10"
INITIALIZE = ESC + b"@"
CHINESE_ON, CHINESE_OFF = FS + b"&", FS + b"."
BOLD = {False: ESC + b"E\x00", True: ESC + b"E\x01"}
SIZE = {False: GS + b"!\x00", True: GS + b"!\x11"}  # double: twice as wide and as high
ALIGN = {"left": ESC + b"a\x00", "center": ESC + b"a\x01", "right": ESC + b"a\x02"}
FONT_A, FONT_B = ESC + b"M\x00", ESC + b"M\x01"
CLEAR_BUFFERS = DLE + b"\x14\x08\x01\x03\x14\x01\x06\x02\x08"
CUTS = ("full", "partial")
QR_LEVELS = {"L": QR_ECLEVEL_L, "M": QR_ECLEVEL_M, "Q": QR_ECLEVEL_Q, "H": QR_ECLEVEL_H}
# The largest QR module the driver asks for: bigger modules only waste paper.
MAX_QR_MODULE_DOTS = 6
# The last line of every job, in the small font: the job id, so that paper found in the
# printer (or a simulator's output) can be matched to the job that printed it.
JOB_LINE_PREFIX = "job "
REPRINT_MESSAGE = "REPRINT"

PORT_ERRORS = (serial.SerialException, OSError)
READ_SLICE_S = 0.05  # one blocking read; deadlines are checked between reads
WRITE_TIMEOUT_S = 10.0  # a printer that takes no bytes for this long has stopped reading


@dataclass(frozen=True)
class _Attempt:
    number: int  # 1 for the first time the job's bytes are sent
    marked: bool


class JobLedger:
    """Which job ids were sent to the printer, and how often (durable when given a path).

    A job is recorded BEFORE its first byte is sent: after a crash or a dropped link nobody
    knows how much of it reached the paper, so any later send of that job id is marked.
    """

    def __init__(self, path: Path | None) -> None:
        if path is None:
            self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = open_database(path)
        with write_transaction(self._conn) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS printer_jobs (job_id TEXT PRIMARY KEY, "
                "sends INTEGER NOT NULL, confirmed INTEGER NOT NULL)"
            )

    def start(self, job_id: str) -> _Attempt:
        with write_transaction(self._conn) as conn:
            row = conn.execute(
                "SELECT sends FROM printer_jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            sends = 0 if row is None else int(row[0])
            conn.execute(
                "INSERT INTO printer_jobs VALUES (?, 1, 0) "
                "ON CONFLICT (job_id) DO UPDATE SET sends = sends + 1",
                (job_id,),
            )
        return _Attempt(number=sends + 1, marked=sends > 0)

    def confirm(self, job_id: str) -> None:
        with write_transaction(self._conn) as conn:
            conn.execute("UPDATE printer_jobs SET confirmed = 1 WHERE job_id = ?", (job_id,))

    def counts(self) -> tuple[int, int]:
        """(jobs confirmed printed, sends that were marked as reprints)."""
        confirmed, resent = self._conn.execute(
            "SELECT COALESCE(SUM(confirmed), 0), COALESCE(SUM(sends - 1), 0) FROM printer_jobs"
        ).fetchone()
        return int(confirmed), int(resent)

    def close(self) -> None:
        self._conn.close()


class _LinkDown(Exception):
    """The serial port vanished or failed; the caller decides whether to wait for it."""


class EscPosPrinter:
    """An ESC/POS receipt printer on a serial port (satisfies kiosk.devices.Printer)."""

    kind = "escpos"

    def __init__(
        self,
        port: str,
        columns: int = 32,
        *,
        timeout_s: float = 0.5,
        reconnect_s: float = 2.0,
        job_timeout_s: float = 30.0,
        baudrate: int = 115200,
        jobs_path: Path | None = None,
    ) -> None:
        """port: the serial device (e.g. /dev/ttyUSB0); columns: 32 (58 mm) or 48 (80 mm).

        timeout_s: how long one status reply may take before the query counts as unanswered
        (it is asked twice). reconnect_s: how long a vanished port may take to come back
        before the printer counts as disconnected (the debounce of a brief drop).
        job_timeout_s: how long a printing receipt may take before it counts as failed.
        jobs_path: SQLite file remembering the job ids sent, so that REPRINT marking
        survives a restart of the terminal (None: kept in memory).
        """
        self.paper = paper_for_columns(columns)
        self.columns = columns
        self.port = port
        self.timeout_s = timeout_s
        self.reconnect_s = reconnect_s
        self.job_timeout_s = job_timeout_s
        self.baudrate = baudrate
        self._lock = threading.RLock()
        self._serial: serial.Serial | None = None
        self._rx = bytearray()
        self._status_replies: deque[int] = deque()
        self._process_ids: set[str] = set()
        self._buffer_cleared = False
        self._noise_bytes = 0
        self._link_drops = 0
        self._last_replies: dict[int, int] | None = None
        self._job_counter = 0
        self._ledger = JobLedger(jobs_path)

    # ------------------------------------------------------------ kiosk.devices.Printer

    def status(self) -> PrinterStatus:
        with self._lock:
            try:
                return self._with_link(self._query_status)
            except _LinkDown:
                self._last_replies = None
                return PrinterStatus(online=None)

    def print_receipt(self, document: ReceiptDocument) -> None:
        self._check_document(document)
        with self._lock:
            self._refuse_unless_ready(self.status(), before=True)
            drops = 0
            while True:
                attempt = self._ledger.start(document.job_id)
                job = self.job_bytes(document, reprint=attempt.number if attempt.marked else 0)
                try:
                    self._send_job(document.job_id, job)
                    break
                except _LinkDown:
                    drops += 1
                    self._link_drops += 1
                    # The link came back within the debounce window: send the job again,
                    # marked, so the resident gets a whole receipt and the fragment the
                    # drop left on the paper is told apart from it.
                    if drops > 2 or not self._reconnect(self.reconnect_s):
                        raise PrinterOffline(
                            "receipt printer disconnected in the middle of a receipt: check "
                            "its data cable and power; the receipt can be reprinted afterwards"
                        ) from None
                    self._refuse_unless_ready(self.status(), before=True)
            self._ledger.confirm(document.job_id)
            # The status after the receipt is read for health and the next job; it does not
            # fail a receipt the printer has confirmed printing (an empty roll right after
            # the cut is the next resident's problem, caught before their receipt).
            self.status()

    def health(self) -> dict[str, object]:
        status = self.status()
        with self._lock:
            replies = self._last_replies
            confirmed, resent = self._ledger.counts()
            link_up = self._serial is not None
            noise, drops = self._noise_bytes, self._link_drops
        if status.online is None:
            paper = "unknown"
        elif status.paper_out:
            paper = "out"
        else:
            paper = "near_end" if status.paper_near_end else "ok"
        return {
            "device": "receipt printer (ESC/POS)",
            "port": self.port,
            "link": "up" if link_up else "down",
            "online": status.online,
            "cover_open": status.cover_open,
            "paper_near_end": status.paper_near_end,
            "paper_out": status.paper_out,
            "error": status.error,
            "errors": error_conditions(replies) if replies else [],
            "paper": paper,
            "jobs_printed": confirmed,
            "reprints_marked": resent,
            "noise_bytes": noise,
            "link_drops": drops,
            "paper_width_mm": self.paper.width_mm,
            "columns": self.columns,
        }

    def close(self) -> None:
        with self._lock:
            self._close_port()
            self._ledger.close()

    # ------------------------------------------------------------ the job's bytes

    def job_bytes(self, document: ReceiptDocument, reprint: int = 0) -> bytes:
        """The ESC/POS bytes of a receipt; reprint > 0 adds the REPRINT marking (send n)."""
        self._check_document(document)
        out = bytearray(INITIALIZE)
        marking = (
            [
                ReceiptLine(
                    f"** {bilingual(REPRINT_MESSAGE)} {reprint} **", bold=True, align="center"
                )
            ]
            if reprint
            else []
        )
        for line in (*marking, *document.lines, *marking):
            out += self._line_bytes(line)
        if document.qr_payload is not None:
            qr = self._qr_bytes(document.qr_payload, document.qr_error_level)
            out += ALIGN["center"] + qr + b"\n"
        out += ALIGN["left"] + FONT_B + text_bytes(JOB_LINE_PREFIX + document.job_id)
        out += b"\n" + FONT_A
        cutter = Dummy()
        cutter.cut(mode="FULL" if document.cut == "full" else "PART")
        out += cutter.output
        return bytes(out)

    def _line_bytes(self, line: ReceiptLine) -> bytes:
        # Wrapped here rather than by the printer so that a wrapped line keeps its alignment
        # and breaks between words; a double-size character takes twice the columns.
        scale = 2 if line.double else 1
        rows = wrap(line.text, self.columns // scale) if line.text.strip() else [line.text]
        out = bytearray(ALIGN[line.align] + BOLD[line.bold] + SIZE[line.double])
        for row in rows:
            out += text_bytes(row) + b"\n"
        out += BOLD[False] + SIZE[False]
        return bytes(out)

    def _qr_bytes(self, payload: str, level: str) -> bytes:
        modules = _qr_modules(payload, level)
        dots = max(1, min(MAX_QR_MODULE_DOTS, self.paper.dots // modules))
        code = Dummy()
        code.qr(payload, ec=QR_LEVELS[level], size=dots, model=QR_MODEL_2, native=True)
        return bytes(code.output)

    def _check_document(self, document: ReceiptDocument) -> None:
        if not document.job_id:
            raise ValueError("a receipt job needs a non-empty job id")
        if document.cut not in CUTS:
            raise ValueError(f"receipt cut {document.cut!r} is not one of {CUTS}")
        for line in document.lines:
            if line.align not in ALIGN:
                raise ValueError(f"receipt line alignment {line.align!r} is not one of {ALIGN}")
            _refuse_control_characters(line.text, "a receipt line")
        if document.qr_payload is not None:
            _refuse_control_characters(document.qr_payload, "the receipt's QR payload")
            if document.qr_error_level not in QR_LEVELS:
                raise ValueError(
                    f"QR error level {document.qr_error_level!r} is not one of {tuple(QR_LEVELS)}"
                )
            modules = _qr_modules(document.qr_payload, document.qr_error_level)
            if modules > max_qr_symbol_modules(self.paper):
                raise ValueError(
                    f"the receipt's QR payload ({len(document.qr_payload)} characters) is too "
                    f"long for a legible QR code on {self.paper.width_mm} mm paper: shorten it"
                )

    # ------------------------------------------------------------ sending a job

    def _send_job(self, job_id: str, job: bytes) -> None:
        self._job_counter += 1
        process_id = _process_id(self._job_counter)
        # GS ( H fn=48: the printer answers once everything before it has been printed.
        request = GS + b"(H\x06\x0000" + process_id.encode("ascii")
        self._process_ids.discard(process_id)
        self._write(job + request)
        deadline = time.monotonic() + self.job_timeout_s
        while True:
            wait = min(self.timeout_s * 2, max(deadline - time.monotonic(), 0.0))
            if self._pump(lambda: process_id in self._process_ids, wait):
                return
            # No confirmation yet: a long receipt, or a printer that stopped part-way. The
            # real-time status is answered even while the printer is stopped.
            status = self._query_status()
            if not status.ready:
                self._abandon_job()
                self._refuse_unless_ready(status, before=False, job_id=job_id)
            if time.monotonic() >= deadline:
                self._abandon_job()
                raise PrinterError(
                    f"receipt printer did not confirm receipt job {job_id} within "
                    f"{self.job_timeout_s:g} s: check the paper path and the printer's "
                    "lights; the receipt can be reprinted afterwards"
                )

    def _abandon_job(self) -> None:
        # DLE DC4 8 drops the job's unprinted rest: without it the printer would print the
        # fragment as soon as paper is loaded, on top of the reprint.
        self._buffer_cleared = False
        try:
            self._write(CLEAR_BUFFERS)
            self._pump(lambda: self._buffer_cleared, self.timeout_s)
        except _LinkDown:
            pass

    # ------------------------------------------------------------ status

    def _query_status(self) -> PrinterStatus:
        replies: dict[int, int] = {}
        for kind in STATUS_KINDS:
            reply = self._query(kind)
            if reply is None:
                reply = self._query(kind)  # one reply lost to line noise is not an outage
            if reply is None:
                self._last_replies = None
                return PrinterStatus(online=None)
            replies[kind] = reply
        self._last_replies = replies
        return printer_status(replies)

    def _query(self, kind: int) -> int | None:
        self._pump(lambda: False, 0.0)  # take in whatever arrived before the question
        self._status_replies.clear()
        self._write(DLE + b"\x04" + bytes([kind]))
        if self._pump(lambda: bool(self._status_replies), self.timeout_s):
            return self._status_replies.popleft()
        return None

    def _refuse_unless_ready(
        self, status: PrinterStatus, *, before: bool, job_id: str | None = None
    ) -> None:
        if status.ready:
            return
        after = "" if before else " part-way through a receipt"
        reprint = "; the receipt can be reprinted afterwards"
        if status.online is None:
            raise PrinterOffline(
                f"receipt printer not answering{after}: check its power and data cable{reprint}"
            )
        if status.paper_out:
            raise PaperOut(
                f"receipt printer ran out of paper{after}: load a {self.paper.width_mm} mm "
                f"thermal roll and close the cover{reprint}"
            )
        if status.cover_open:
            raise CoverOpen(
                f"receipt printer cover is open{after}: close it firmly until it clicks{reprint}"
            )
        advice = [ERROR_ADVICE[name] for name in error_conditions(self._last_replies or {})]
        what = "; ".join(advice) or "switch the printer off and on"
        raise PrinterError(f"receipt printer reports an error{after}: {what}{reprint}")

    # ------------------------------------------------------------ the serial link

    def _with_link(self, operation: Callable[[], PrinterStatus]) -> PrinterStatus:
        if self._serial is None and not self._reconnect(0.0):
            raise _LinkDown
        try:
            return operation()
        except _LinkDown:
            self._link_drops += 1
            # A brief drop (a loose connector, a USB re-enumeration) is debounced: wait for
            # the port to come back before calling the printer disconnected.
            if not self._reconnect(self.reconnect_s):
                raise
            return operation()

    def _reconnect(self, within_s: float) -> bool:
        self._close_port()
        deadline = time.monotonic() + within_s
        while True:
            try:
                self._serial = serial.Serial(
                    self.port, self.baudrate, timeout=READ_SLICE_S, write_timeout=WRITE_TIMEOUT_S
                )
                self._rx.clear()
                return True
            except PORT_ERRORS:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)

    def _close_port(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except PORT_ERRORS:
                pass
        self._serial = None

    def _write(self, data: bytes) -> None:
        port = self._serial
        if port is None:
            raise _LinkDown
        try:
            port.write(data)
            port.flush()
        except PORT_ERRORS as exc:
            raise _LinkDown from exc

    def _pump(self, done: Callable[[], bool], wait_s: float) -> bool:
        """Read and sort replies until done() or wait_s passes; returns done()."""
        deadline = time.monotonic() + wait_s
        while True:
            port = self._serial
            if port is None:
                raise _LinkDown
            try:
                waiting = port.in_waiting
                if waiting:
                    data = port.read(waiting)
                elif time.monotonic() < deadline:
                    data = port.read(1)  # waits at most the port's read timeout
                else:
                    data = b""
            except PORT_ERRORS as exc:
                raise _LinkDown from exc
            self._rx += data
            self._sort_replies()
            if done():
                return True
            if time.monotonic() >= deadline:
                return False

    def _sort_replies(self) -> None:
        """Split the received bytes into status replies, process ids and noise."""
        rx = self._rx
        while rx:
            if rx[:1] == PROCESS_ID_HEADER[:1] and PROCESS_ID_HEADER.startswith(rx[:2]):
                if len(rx) < 2 + PROCESS_ID_LENGTH + 1:
                    return  # wait for the rest of the response
                if rx[:2] == PROCESS_ID_HEADER and rx[2 + PROCESS_ID_LENGTH] == 0:
                    self._process_ids.add(rx[2 : 2 + PROCESS_ID_LENGTH].decode("latin-1"))
                    del rx[: 2 + PROCESS_ID_LENGTH + 1]
                    continue
            if rx[: len(BUFFER_CLEARED_REPLY)] == BUFFER_CLEARED_REPLY:
                self._buffer_cleared = True
                del rx[: len(BUFFER_CLEARED_REPLY)]
                continue
            if BUFFER_CLEARED_REPLY.startswith(bytes(rx)):
                return  # possibly the start of 37 25 00
            if is_status_reply(rx[0]):
                self._status_replies.append(rx[0])
            else:
                self._noise_bytes += 1  # line noise: a status byte always has its fixed bits
            del rx[:1]


def text_bytes(text: str) -> bytes:
    """ASCII as it is; every other run through the printer's Chinese mode, in GB18030."""
    out = bytearray()
    for ascii_run, chars in groupby(text, key=str.isascii):
        run = "".join(chars)
        if ascii_run:
            out += run.encode("ascii")
        else:
            out += CHINESE_ON + run.encode("gb18030") + CHINESE_OFF
    return bytes(out)


def _process_id(counter: int) -> str:
    base = len(PROCESS_ID_ALPHABET)
    digits = []
    for _ in range(PROCESS_ID_LENGTH):
        counter, digit = divmod(counter, base)
        digits.append(PROCESS_ID_ALPHABET[digit])
    return "".join(reversed(digits))


def _qr_modules(payload: str, level: str) -> int:
    """The QR symbol's width in modules, quiet zone included, as the printer will draw it
    (its firmware picks the mode from the data: alphanumeric for a receipt's KR2 code)."""
    try:
        symbol = segno.make_qr(payload, error=level.lower(), boost_error=False)
    except segno.DataOverflowError:
        return 10_000
    return int(symbol.symbol_size(border=QR_QUIET_ZONE_MODULES)[0])


def _refuse_control_characters(text: str, what: str) -> None:
    # A control character inside a line would be a printer command.
    for char in text:
        if ord(char) < 0x20 or ord(char) == 0x7F:
            raise ValueError(f"{what} contains the control character {char!r}: remove it")
