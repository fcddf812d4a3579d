"""The small interfaces the terminal core needs from each kind of device.

Each device kind has a real driver and a simulator in drivers/, both satisfying the
Protocol here; the composition root picks one from configuration. kiosk/ never imports a
driver module directly.
"""

from dataclasses import dataclass, field
from typing import Protocol

from kiosk.errors import KioskError


class DeviceError(KioskError):
    """A device failed; the message says which and what a person can do."""


# ---------------------------------------------------------------- cash (I/O board pulses)


@dataclass(frozen=True)
class CashEvent:
    """One note or coin counted by the acceptor.

    event_id is unique per acceptor for ever (the board numbers its events and keeps them
    until acknowledged), so an event delivered twice, as after a restart between
    journaling and acknowledging, is recognised and counted once.
    """

    event_id: str
    kind: str  # "note" or "coin"
    value_fen: int


class CashAcceptor(Protocol):
    def set_accepting(self, accepting: bool) -> None:
        """Open or close the note and coin inlets."""
        ...

    def pending(self) -> list[CashEvent]:
        """Counted events not yet acknowledged, oldest first (may repeat earlier ones)."""
        ...

    def acknowledge(self, event_id: str) -> None:
        """The core has journaled the event durably; the acceptor may forget it."""
        ...

    def health(self) -> dict[str, object]: ...


# ---------------------------------------------------------------- prepaid utility IC card


class CardError(DeviceError):
    """The card answered with an error or the reader failed."""


class CardRemoved(CardError):
    """The card was pulled out (possibly in the middle of a command)."""


class CardRefused(CardError):
    """The card refused a command (wrong MAC, wrong counter, blocked)."""


@dataclass(frozen=True)
class PrepaidCard:
    card_no: str
    utility: str  # "electricity", "gas", "water"
    meter_no: str
    purchase_counter: int  # incremented by the card on every credit it applies
    last_credit_fen: int


class CardReader(Protocol):
    def read_prepaid(self) -> PrepaidCard | None:
        """The prepaid card in the reader, or None when no card is present."""
        ...

    def credit_prepaid(
        self, card_no: str, amount_fen: int, new_counter: int, mac: bytes
    ) -> PrepaidCard:
        """Apply a credit the platform authorised with mac.

        The card applies it only if its purchase counter is new_counter - 1, so the same
        credit can never be applied twice. Returns the card as read after the credit.
        """
        ...

    def health(self) -> dict[str, object]: ...


class TechnicianPinWrong(CardError):
    """The technician card refused the PIN; tries_left more attempts before it blocks."""

    def __init__(self, message: str, tries_left: int) -> None:
        super().__init__(message)
        self.tries_left = tries_left


class TechnicianCardBlocked(CardError):
    """The technician card is blocked after too many wrong PINs (only the operator can unblock)."""


class TechnicianCards(Protocol):
    """The reader's second application: the technician card that opens maintenance mode."""

    def verify_technician(self, pin: str) -> str:
        """The technician id of the card in the reader once pin is verified.

        Raises TechnicianPinWrong (with tries left), TechnicianCardBlocked, CardRemoved, or
        CardError when no technician card is present.
        """
        ...


# ---------------------------------------------------------------- receipt printer


class PrinterError(DeviceError):
    """The receipt could not be printed; the receipt stays reprintable."""


class PaperOut(PrinterError):
    pass


class CoverOpen(PrinterError):
    pass


class PrinterOffline(PrinterError):
    pass


@dataclass(frozen=True)
class PrinterStatus:
    online: bool | None  # None: the printer did not answer (never read as "fine")
    cover_open: bool | None = None
    paper_near_end: bool | None = None
    paper_out: bool | None = None
    error: bool | None = None

    @property
    def ready(self) -> bool:
        return (
            self.online is True
            and self.cover_open is False
            and self.paper_out is False
            and self.error is False
        )


@dataclass(frozen=True)
class ReceiptLine:
    text: str
    bold: bool = False
    double: bool = False
    align: str = "left"  # left | center | right


@dataclass(frozen=True)
class ReceiptDocument:
    """What a printer needs to print one receipt: lines, a QR payload and a job id.

    job_id identifies the receipt print (receipt number plus copy number) so that a job
    retried after a dropped link is recognised and never printed twice unmarked.
    """

    job_id: str
    lines: tuple[ReceiptLine, ...]
    qr_payload: str | None = None
    cut: str = "partial"  # full | partial
    extra: dict[str, str] = field(default_factory=dict)
    # The QR code's error correction level, L M Q or H (kiosk.receipts.qr picks M or L so
    # that a receipt's code stays within version 10).
    qr_error_level: str = "M"


class Printer(Protocol):
    def status(self) -> PrinterStatus: ...

    def print_receipt(self, document: ReceiptDocument) -> None:
        """Print or raise PrinterError saying why not."""
        ...

    def health(self) -> dict[str, object]: ...


# ------------------------------------------- I/O board (door, tamper, lamp, watchdog)


@dataclass(frozen=True)
class BoardEvent:
    """A physical-security or board event, buffered by the board until acknowledged.

    kind: "door_open", "door_closed", "tamper" (latched until a technician clears it),
    "tamper_cleared", "watchdog_reset" (the board power-cycled the host), "board_restart".
    """

    event_id: str
    kind: str
    board_time_ms: int
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class BoardStatus:
    firmware_version: str
    link_up: bool
    door_open: bool | None
    tamper_latched: bool | None
    maintenance: bool
    lamp: str  # in_service | out_of_service | maintenance | attention
    temperature_c: float | None
    unacknowledged_cash: int


LAMP_MODES = ("in_service", "out_of_service", "maintenance", "attention")


class IoBoard(Protocol):
    """The I/O board besides its cash inlets (which it offers as a CashAcceptor)."""

    def board_events(self) -> list[BoardEvent]:
        """Events not yet acknowledged, oldest first (may repeat earlier ones)."""
        ...

    def acknowledge_board_event(self, event_id: str) -> None: ...

    def set_lamp(self, mode: str) -> None: ...

    def heartbeat(self) -> None:
        """Tell the board's watchdog the host is alive."""
        ...

    def set_maintenance(self, on: bool) -> None:
        """Maintenance mode suspends the watchdog and shows the maintenance lamp."""
        ...

    def clear_tamper(self) -> None: ...

    def board_status(self) -> BoardStatus: ...

    def health(self) -> dict[str, object]: ...
