"""A simulated receipt printer that "prints" each receipt as a UTF-8 text file in a directory.

It owns the printer's side of kiosk.devices.Printer: its status (online, cover, paper), its
faults (paper near end, paper out, paper running out in the middle of a job, cover open, not
answering) and the paper it has printed. Each receipt becomes one file written durably
(temp file, fsync, rename, fsync of the directory), named after its job id, so the printed
paper survives a killed terminal process exactly like real paper does. A job id printed twice
gets a second file whose first line says DUPLICATE: a real printer cannot refuse a job, so the
simulator makes the mistake visible for tests to assert that it never happens. The printer's
fault state lives in a SQLite file in the same directory, so it survives a restart as well.
"""

import os
import sqlite3
import threading
import unicodedata
from pathlib import Path
from urllib.parse import quote, unquote

import segno

from drivers.printer.capabilities import (
    QR_QUIET_ZONE_MODULES,
    max_qr_symbol_modules,
    paper_for_columns,
)
from kiosk.devices import (
    CoverOpen,
    PaperOut,
    PrinterOffline,
    PrinterStatus,
    ReceiptDocument,
    ReceiptLine,
)
from kiosk.schema import Database, Migration, register
from kiosk.storage import open_database, write_transaction

STATE_FILE_NAME = ".simulated-printer.sqlite"
RECEIPT_SUFFIX = ".txt"

SIMULATED_PRINTER = register(
    Database(
        "simulated printer",
        (
            Migration(
                1,
                "the printer's state",
                """CREATE TABLE IF NOT EXISTS printer (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
        online INTEGER NOT NULL,
        cover_open INTEGER NOT NULL,
        paper TEXT NOT NULL CHECK (paper IN ('ok', 'near_end', 'out')),
        out_mid_job INTEGER NOT NULL
    )""",
            ),
        ),
    )
)
_FIRST_STATE = (
    "INSERT OR IGNORE INTO printer (singleton, online, cover_open, paper, out_mid_job)"
    " VALUES (1, 1, 0, 'ok', 0)"
)

_ALIGNMENTS = ("left", "center", "right")
_CUTS = ("full", "partial")
# Longest file name stem: leaves room for ".<copy>.txt" within Linux's 255-byte limit.
_MAX_STEM_BYTES = 240


def receipt_file_stem(job_id: str) -> str:
    """The file name stem of a job: the job id with '/' (and anything unsafe) %-escaped.

    quote() leaves '.' and '~' alone; they are escaped too so that a stem never contains a
    dot, which keeps "<stem>.txt" and the duplicates' "<stem>.<copy>.txt" unambiguous and
    the job id recoverable with unquote().
    """
    if not job_id:
        raise ValueError("a receipt job needs a non-empty job id")
    stem = quote(job_id, safe="").replace(".", "%2E").replace("~", "%7E")
    if len(stem.encode()) > _MAX_STEM_BYTES:
        raise ValueError(f"job id {job_id[:40]!r}... is too long to name a receipt file")
    return stem


def _char_columns(char: str) -> int:
    # A printer's CJK font is twice as wide as its ASCII font; combining marks take no column.
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def text_columns(text: str) -> int:
    """How many columns of the standard font `text` takes on paper."""
    return sum(_char_columns(char) for char in text)


def _refuse_control_characters(text: str, what: str) -> None:
    # Control characters would be printer commands on a real ESC/POS printer.
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise ValueError(f"{what} contains the control character {char!r}: remove it")


def layout_line(line: ReceiptLine, columns: int) -> list[str]:
    """The paper rows of one receipt line: wrapped at the paper's edge, then aligned.

    Thermal printers wrap at the last column, not at a word; a double-size line takes two
    columns per column of text. Alignment pads with spaces (no trailing spaces).
    """
    _refuse_control_characters(line.text, "a receipt line")
    if line.align not in _ALIGNMENTS:
        raise ValueError(f"receipt line alignment {line.align!r} is not one of {_ALIGNMENTS}")
    scale = 2 if line.double else 1
    rows: list[tuple[str, int]] = []
    current, width = "", 0
    for char in line.text:
        char_width = _char_columns(char) * scale
        if current and width + char_width > columns:
            rows.append((current, width))
            current, width = "", 0
        current += char
        width += char_width
    rows.append((current, width))
    laid_out = []
    for text, width in rows:
        free = max(columns - width, 0)
        pad = {"left": 0, "center": free // 2, "right": free}[line.align]
        laid_out.append(" " * pad + text)
    return laid_out


class SimulatedPrinter:
    """A thermal receipt printer writing receipts into out_dir (satisfies kiosk.devices.Printer)."""

    kind = "simulated"

    def __init__(self, out_dir: Path, columns: int = 32) -> None:
        self.paper = paper_for_columns(columns)
        self.columns = columns
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in out_dir.glob(".*.tmp"):  # left by a process killed mid-write
            stale.unlink(missing_ok=True)
        self._lock = threading.Lock()
        self._conn = open_database(out_dir / STATE_FILE_NAME)
        SIMULATED_PRINTER.migrate(self._conn)
        with write_transaction(self._conn) as conn:
            conn.execute(_FIRST_STATE)

    # ------------------------------------------------------------ the terminal's side (Protocol)

    def status(self) -> PrinterStatus:
        with self._lock:
            return self._status(self._state(self._conn))

    def print_receipt(self, document: ReceiptDocument) -> None:
        body, qr_line, cut_line = self._render(document)
        stem = receipt_file_stem(document.job_id)
        with self._lock, write_transaction(self._conn) as conn:
            state = self._state(conn)
            self._refuse_unless_ready(state)
            copies = len(self._files_of_stem(stem))
            header = [f"DUPLICATE print {copies + 1} of job {document.job_id}"] if copies else []
            path = self.out_dir / (
                f"{stem}.{copies + 1}{RECEIPT_SUFFIX}" if copies else f"{stem}{RECEIPT_SUFFIX}"
            )
            if state["out_mid_job"]:
                printed = body[: len(body) // 2]
                trailer = f"TRUNCATED: the paper ran out during job {document.job_id}"
                _write_durably(path, header + printed + [trailer])
                conn.execute("UPDATE printer SET paper = 'out', out_mid_job = 0")
                # Raised after the state is committed: the paper is out whatever happens next.
                error: PaperOut | None = PaperOut(self._paper_out_message(part_way=True))
            else:
                lines = header + body + ([qr_line] if qr_line else []) + [cut_line]
                _write_durably(path, lines)
                error = None
        if error is not None:
            raise error

    def health(self) -> dict[str, object]:
        with self._lock:
            state = self._state(self._conn)
        status = self._status(state)
        return {
            "device": "receipt printer (simulated)",
            "online": status.online,
            "cover_open": status.cover_open,
            "paper_near_end": status.paper_near_end,
            "paper_out": status.paper_out,
            "error": status.error,
            "paper": state["paper"] if state["online"] else "unknown",
            "jobs_printed": len(self.printed_job_ids()),
            "paper_width_mm": self.paper.width_mm,
            "columns": self.columns,
        }

    # ------------------------------------------------------------ what came out of the printer

    def receipt_files(self, job_id: str) -> list[Path]:
        """The files printed for job_id, first print first ([] when never printed)."""
        return self._files_of_stem(receipt_file_stem(job_id))

    def printed_receipts(self, job_id: str) -> list[str]:
        """The text of every print of job_id, first print first."""
        return [path.read_text(encoding="utf-8") for path in self.receipt_files(job_id)]

    def printed_job_ids(self) -> set[str]:
        """Every job id printed at least once (truncated prints included)."""
        return {unquote(path.name.split(".")[0]) for path in self._receipt_paths()}

    def duplicate_files(self) -> list[Path]:
        """Every second or later print of a job id: there should never be any."""
        return sorted(path for path in self._receipt_paths() if path.name.count(".") == 2)

    # ------------------------------------------------------------ faults

    def paper_near_end(self) -> None:
        """The roll is nearly used up: the printer still prints but says so."""
        self._update("paper = 'near_end'")

    def paper_out(self) -> None:
        self._update("paper = 'out'")

    def paper_out_mid_job(self) -> None:
        """The next job runs out of paper part-way: a TRUNCATED print and PaperOut."""
        self._update("out_mid_job = 1")

    def cover_open(self) -> None:
        self._update("cover_open = 1")

    def offline(self) -> None:
        """The printer stops answering: its status is unknown, never read as fine."""
        self._update("online = 0")

    def restore(self) -> None:
        """A technician loads a fresh roll, closes the cover and reconnects the printer."""
        self._update("online = 1, cover_open = 0, paper = 'ok', out_mid_job = 0")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------ internals

    def _render(self, document: ReceiptDocument) -> tuple[list[str], str | None, str]:
        if document.cut not in _CUTS:
            raise ValueError(f"receipt cut {document.cut!r} is not one of {_CUTS}")
        body = [row for line in document.lines for row in layout_line(line, self.columns)]
        qr_line = None
        if document.qr_payload is not None:
            self._check_qr_fits(document.qr_payload, document.qr_error_level)
            qr_line = f"[QR] {document.qr_payload}"
        return body, qr_line, f"[CUT {document.cut}]"

    def _check_qr_fits(self, payload: str, level: str) -> None:
        _refuse_control_characters(payload, "the receipt's QR payload")
        widest = max_qr_symbol_modules(self.paper)
        try:
            symbol = segno.make_qr(payload, error=level.lower(), boost_error=False)
        except segno.DataOverflowError:
            symbol = None
        if symbol is None or symbol.symbol_size(border=QR_QUIET_ZONE_MODULES)[0] > widest:
            raise ValueError(
                f"the receipt's QR payload ({len(payload)} characters) is too long for a "
                f"legible QR code on {self.paper.width_mm} mm paper: shorten it"
            )

    def _refuse_unless_ready(self, state: sqlite3.Row) -> None:
        if not state["online"]:
            raise PrinterOffline(
                "receipt printer not answering: check its power and data cable; "
                "the receipt can be reprinted afterwards"
            )
        if state["cover_open"]:
            raise CoverOpen(
                "receipt printer cover is open: close it firmly until it clicks; "
                "the receipt can be reprinted afterwards"
            )
        if state["paper"] == "out":
            raise PaperOut(self._paper_out_message(part_way=False))

    def _paper_out_message(self, part_way: bool) -> str:
        what = "ran out of paper part-way through a receipt" if part_way else "is out of paper"
        return (
            f"receipt printer {what}: load a {self.paper.width_mm} mm thermal roll and "
            "close the cover; the receipt can be reprinted afterwards"
        )

    @staticmethod
    def _status(state: sqlite3.Row) -> PrinterStatus:
        if not state["online"]:
            return PrinterStatus(online=None)
        return PrinterStatus(
            online=True,
            cover_open=bool(state["cover_open"]),
            # The near-end sensor also sees an empty roll.
            paper_near_end=state["paper"] in ("near_end", "out"),
            paper_out=state["paper"] == "out",
            error=False,
        )

    @staticmethod
    def _state(conn: sqlite3.Connection) -> sqlite3.Row:
        row: sqlite3.Row = conn.execute("SELECT * FROM printer").fetchone()
        return row

    def _update(self, assignments: str) -> None:
        # assignments is one of this module's literal SQL fragments, never caller text.
        with self._lock, write_transaction(self._conn) as conn:
            conn.execute(f"UPDATE printer SET {assignments}")

    def _files_of_stem(self, stem: str) -> list[Path]:
        files = []
        path = self.out_dir / f"{stem}{RECEIPT_SUFFIX}"
        copy = 1
        while path.exists():
            files.append(path)
            copy += 1
            path = self.out_dir / f"{stem}.{copy}{RECEIPT_SUFFIX}"
        return files

    def _receipt_paths(self) -> list[Path]:
        return [
            path
            for path in self.out_dir.glob(f"*{RECEIPT_SUFFIX}")
            if not path.name.startswith(".")
        ]


def _write_durably(path: Path, lines: list[str]) -> None:
    """Write lines to path so that after a crash the file is either complete or absent."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # makes the rename itself durable
    finally:
        os.close(directory)
