"""The real receipt printer: an ESC/POS thermal printer on a serial or USB printer-class link.

Owns the conversation with the printer (kiosk.devices.Printer): the real-time status before
and after every receipt (DLE EOT 1..4, decoded with status.py), detecting at first contact
how the model confirms a job, confirming each job that way (GS ( H process id, or status
polling for models that ignore it), clearing a job that stopped part-way, the link's drops and
replugs, and the REPRINT marking of a job id sent again (job_ledger.py). The job's bytes come
from receipt_job.py, the model's behaviour from profiles.py, the link from transport.py. It
never lays out a receipt's wording (kiosk.receipts does) and never decides whether a receipt
must be printed (the transaction engine does).

Written here rather than taken from python-escpos: its printers open the port once and have
no reconnect; its text encoder picks single-byte code pages and cannot switch the printer
into GB18030 Chinese mode (FS &) for a run of Chinese inside an English line; its status
calls read "no reply" as "paper adequate"; and it has no end-of-job confirmation.
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from drivers.printer import escpos_commands as esc
from drivers.printer.capabilities import paper_for_columns
from drivers.printer.job_ledger import JobLedger
from drivers.printer.profiles import AUTO, Confirmation, ConfirmationSource, profile_for
from drivers.printer.receipt_job import EscPosJob, check_document, receipt_job
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
from drivers.printer.transport import LinkError, TransportKind, open_transport
from kiosk.devices import (
    CoverOpen,
    PaperOut,
    PrinterError,
    PrinterOffline,
    PrinterStatus,
    ReceiptDocument,
)

log = logging.getLogger(__name__)

# A status-polled job counts as printed once the printer has stayed ready for the time the
# job's paper takes at the model's (conservative) speed, times this, plus the extra seconds:
# a paper-out or cover opened while it prints is seen by one of the polls.
STATUS_POLL_SLACK = 1.25
STATUS_POLL_EXTRA_S = 0.5


class _LinkDown(Exception):
    """The link vanished or failed; the caller decides whether to wait for it."""


class EscPosPrinter:
    """An ESC/POS receipt printer on a serial port or a usblp device (kiosk.devices.Printer)."""

    kind = "escpos"

    def __init__(
        self,
        port: str,
        columns: int = 32,
        *,
        model: str = AUTO,
        confirm: str = AUTO,
        transport: str = TransportKind.AUTO,
        timeout_s: float = 0.5,
        reconnect_s: float = 2.0,
        job_timeout_s: float = 30.0,
        probe_timeout_s: float = 1.0,
        poll_interval_s: float = 0.25,
        baudrate: int = 115200,
        jobs_path: Path | None = None,
    ) -> None:
        """port: the device (/dev/kiosk-printer, /dev/ttyUSB0, /dev/usb/lp0); columns: 32 or 48.

        model: a profile name from profiles.toml, or "auto" (the generic Epson-compatible
        profile, its job confirmation detected at first contact). confirm: "auto" (the
        profile's, or detected for model "auto"), "process_id" or "status_poll".
        transport: "auto" (usblp for /dev/usb/lp*, after udev's link; else serial),
        "serial" or "usblp". Unknown names raise ValueError (UnknownPrinterModel for model).
        timeout_s: how long one status reply may take before the query counts as unanswered
        (it is asked twice). reconnect_s: how long a vanished port may take to come back
        before the printer counts as disconnected (the debounce of a brief drop).
        job_timeout_s: how long a printing receipt may take before it counts as failed.
        probe_timeout_s: how long the first-contact probe waits for a process-id reply.
        poll_interval_s: the pause between status polls while a job prints.
        jobs_path: SQLite file remembering the job ids sent, so that REPRINT marking
        survives a restart of the terminal (None: kept in memory).
        """
        self.paper = paper_for_columns(columns)
        self.columns = columns
        self.profile = profile_for(model, self.paper.width_mm)
        self.model = model
        self._confirm_override = None if confirm == AUTO else Confirmation(confirm)
        self.port = port
        self.timeout_s = timeout_s
        self.reconnect_s = reconnect_s
        self.job_timeout_s = job_timeout_s
        self.probe_timeout_s = probe_timeout_s
        self.poll_interval_s = poll_interval_s
        self._transport = open_transport(port, TransportKind(transport), baudrate)
        self._lock = threading.RLock()
        self._link_up = False
        self._detected: Confirmation | None = None
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
                return self._with_link(self._first_contact_status)
            except _LinkDown:
                self._last_replies = None
                return PrinterStatus(online=None)

    def print_receipt(self, document: ReceiptDocument) -> None:
        check_document(document, self.paper)
        with self._lock:
            self._refuse_unless_ready(self.status(), before=True)
            drops = 0
            while True:
                attempt = self._ledger.start(document.job_id)
                job = receipt_job(
                    document,
                    self.profile,
                    self.paper,
                    reprint=attempt.number if attempt.marked else 0,
                )
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
            link_up = self._link_up
            noise, drops = self._noise_bytes, self._link_drops
            confirmation, source = self.confirmation()
        if status.online is None:
            paper = "unknown"
        elif status.paper_out:
            paper = "out"
        else:
            paper = "near_end" if status.paper_near_end else "ok"
        return {
            "device": "receipt printer (ESC/POS)",
            "port": self.port,
            "transport": str(self._transport.kind),
            "model": self.profile.name,
            "confirmation": str(confirmation) if confirmation else "undetected",
            "confirmation_source": str(source),
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
            self._close_link()
            self._ledger.close()

    # ------------------------------------------------------------ how a job is confirmed

    def confirmation(self) -> tuple[Confirmation | None, ConfirmationSource]:
        """The confirmation method in force (None: not detected yet) and where it comes from."""
        if self._confirm_override is not None:
            return self._confirm_override, ConfirmationSource.CONFIG
        if self.model != AUTO:
            return self.profile.confirm, ConfirmationSource.PROFILE
        if self._detected is not None:
            return self._detected, ConfirmationSource.DETECTED
        return None, ConfirmationSource.UNDETECTED

    def _first_contact_status(self) -> PrinterStatus:
        status = self._query_status()
        if status.ready and self.confirmation()[0] is None:
            self._detect_confirmation()
        return status

    def _detect_confirmation(self) -> None:
        # GS ( H is answered in turn, so only a ready printer with nothing to print answers it
        # at once; a stopped one would answer later and be taken for a clone. Hence the probe
        # runs only when the status is ready, and again after every reconnect (the printer
        # behind the port may have been swapped).
        process_id = self._next_process_id()
        self._write(esc.process_id_request(process_id))
        answered = self._pump(lambda: process_id in self._process_ids, self.probe_timeout_s)
        self._detected = Confirmation.PROCESS_ID if answered else Confirmation.STATUS_POLL
        log.info("receipt printer on %s confirms jobs by %s", self.port, self._detected)

    def _send_job(self, job_id: str, job: EscPosJob) -> None:
        method = self.confirmation()[0]
        if method is None:  # the printer was not ready at first contact: probe now
            self._detect_confirmation()
            method = self.confirmation()[0]
        if method is Confirmation.PROCESS_ID:
            self._confirm_by_process_id(job_id, job)
        else:
            self._confirm_by_status_poll(job_id, job)

    def _confirm_by_process_id(self, job_id: str, job: EscPosJob) -> None:
        process_id = self._next_process_id()
        # GS ( H fn=48: the printer answers once everything before it has been printed.
        self._write(job.data + esc.process_id_request(process_id))
        deadline = time.monotonic() + self.job_timeout_s
        while True:
            wait = min(self.timeout_s * 2, max(deadline - time.monotonic(), 0.0))
            if self._pump(lambda: process_id in self._process_ids, wait):
                return
            # No confirmation yet: a long receipt, or a printer that stopped part-way. The
            # real-time status is answered even while the printer is stopped.
            self._fail_unless_ready(job_id)
            if time.monotonic() >= deadline:
                self._abandon_job()
                raise PrinterError(
                    f"receipt printer did not confirm receipt job {job_id} within "
                    f"{self.job_timeout_s:g} s: check the paper path and the printer's "
                    "lights; the receipt can be reprinted afterwards"
                )

    def _confirm_by_status_poll(self, job_id: str, job: EscPosJob) -> None:
        # A model that ignores GS ( H says nothing when a job is done, and its real-time
        # status overtakes the job in its buffer. So the job counts as printed once the
        # printer has stayed ready for as long as the job's paper takes to print (bounded by
        # job_timeout_s); a paper-out, an opened cover or a switched-off printer meanwhile
        # fails it. GS r is not used as an in-turn marker: its one-byte reply cannot be told
        # from line noise (0x00 is a valid reply).
        print_s = job.paper_mm / self.profile.print_speed_mm_s
        settle_s = min(print_s * STATUS_POLL_SLACK + STATUS_POLL_EXTRA_S, self.job_timeout_s)
        self._write(job.data)
        done_at = time.monotonic() + settle_s
        while True:
            self._pump(lambda: False, min(self.poll_interval_s, done_at - time.monotonic()))
            self._fail_unless_ready(job_id)
            if time.monotonic() >= done_at:
                return

    def _fail_unless_ready(self, job_id: str) -> None:
        status = self._query_status()
        if not status.ready:
            self._abandon_job()
            self._refuse_unless_ready(status, before=False, job_id=job_id)

    def _next_process_id(self) -> str:
        self._job_counter += 1
        process_id = _process_id(self._job_counter)
        self._process_ids.discard(process_id)
        return process_id

    def _abandon_job(self) -> None:
        # DLE DC4 8 drops the job's unprinted rest: without it the printer would print the
        # fragment as soon as paper is loaded, on top of the reprint.
        self._buffer_cleared = False
        try:
            self._write(esc.CLEAR_BUFFERS)
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
        self._write(esc.status_query(kind))
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

    # ------------------------------------------------------------ the link

    def _with_link(self, operation: Callable[[], PrinterStatus]) -> PrinterStatus:
        if not self._link_up and not self._reconnect(0.0):
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
        self._close_link()
        deadline = time.monotonic() + within_s
        while True:
            try:
                self._transport.open()
            except LinkError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
                continue
            self._link_up = True
            self._rx.clear()
            self._detected = None  # the printer behind the port may be another one now
            return True

    def _close_link(self) -> None:
        self._transport.close()
        self._link_up = False

    def _write(self, data: bytes) -> None:
        if not self._link_up:
            raise _LinkDown
        try:
            self._transport.write(data)
        except LinkError as exc:
            raise _LinkDown from exc

    def _pump(self, done: Callable[[], bool], wait_s: float) -> bool:
        """Read and sort replies until done() or wait_s passes; returns done()."""
        deadline = time.monotonic() + wait_s
        while True:
            if not self._link_up:
                raise _LinkDown
            try:
                data = self._transport.read(deadline - time.monotonic())
            except LinkError as exc:
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


def _process_id(counter: int) -> str:
    base = len(PROCESS_ID_ALPHABET)
    digits = []
    for _ in range(PROCESS_ID_LENGTH):
        counter, digit = divmod(counter, base)
        digits.append(PROCESS_ID_ALPHABET[digit])
    return "".join(reversed(digits))
