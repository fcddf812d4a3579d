"""The small interfaces the terminal core needs from each kind of device.

Each device kind has a real driver and a simulator in drivers/, both satisfying the
Protocol here; the composition root picks one from configuration. kiosk/ never imports a
driver module directly.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from kiosk.errors import KioskError
from kiosk.payment_codes import CodeProblem, PaymentScheme, mask_code, scheme_of


class DeviceError(KioskError):
    """A device failed; the message says which and what a person can do."""


# ---------------------------------------------------------------- cash (I/O board pulses)


class CashKind(StrEnum):
    """What the acceptor counted: a note, a coin, or something it took but could not value."""

    NOTE = "note"
    COIN = "coin"
    # A pulse train that matches no denomination (a count between two channels, a train cut
    # short by a jam): the acceptor took something, so it is reported, valued at 0 fen.
    UNRECOGNISED = "unrecognised"


@dataclass(frozen=True)
class CashEvent:
    """One note or coin counted by the acceptor, or one item it took but could not recognise.

    event_id is unique per acceptor for ever (the board numbers its events and keeps them
    until acknowledged), so an event delivered twice, as after a restart between
    journaling and acknowledging, is recognised and counted once. Unrecognised items are
    numbered, buffered and acknowledged exactly like notes; their value_fen is 0 and detail
    says what the board saw (e.g. "pulses=7 on the note inlet") for the suspense record.
    """

    event_id: str
    kind: CashKind
    value_fen: int  # 0 for CashKind.UNRECOGNISED
    detail: str = ""

    def __post_init__(self) -> None:
        # A frozen dataclass: normalise "note" to CashKind.NOTE the way __init__ would.
        object.__setattr__(self, "kind", CashKind(self.kind))
        if isinstance(self.value_fen, bool) or not isinstance(self.value_fen, int):
            raise ValueError(f"cash event {self.event_id}: value {self.value_fen!r} is not fen")
        recognised = self.kind is not CashKind.UNRECOGNISED
        if recognised != (self.value_fen > 0) or self.value_fen < 0:
            raise ValueError(
                f"cash event {self.event_id}: a {self.kind} cannot be worth {self.value_fen} fen"
            )


class CashAcceptor(Protocol):
    def set_accepting(self, accepting: bool, largest_fen: int | None = None) -> None:
        """Open or close the inlets.

        When open, accept only denominations of at most largest_fen (None: every accepted
        denomination); larger ones are inhibited (a pulse validator's per-channel inhibit
        lines) and go back to the customer. Each call is absolute: it replaces the earlier
        setting. The setting survives a link reset; after the acceptor's own restart the
        inlets are closed. A negative largest_fen is a ValueError.
        """
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
class CardLoad:
    """One entry of the card's load log, as the card itself recorded it.

    The card appends it atomically with the balance and the purchase counter, and only for
    a credit whose issuer MAC covers all four fields, so it proves which authorisation moved
    the counter: ours (this terminal, this transaction) or a load made elsewhere.
    """

    counter: int  # the purchase counter this load moved the card to
    amount_fen: int
    terminal: str  # the terminal id the load was authorised for
    ref: str  # the transaction reference it was authorised for (the platform key)


@dataclass(frozen=True)
class PrepaidCard:
    card_no: str
    utility: str  # "electricity", "gas", "water"
    meter_no: str
    purchase_counter: int  # incremented by the card on every credit it applies
    last_credit_fen: int
    last_load: CardLoad | None = None  # the newest load-log entry, None on a fresh card


class CardReader(Protocol):
    def read_prepaid(self) -> PrepaidCard | None:
        """The prepaid card in the reader (with its newest load), or None when no card is in."""
        ...

    def credit_prepaid(
        self,
        card_no: str,
        amount_fen: int,
        new_counter: int,
        mac: bytes,
        *,
        terminal: str,
        ref: str,
    ) -> PrepaidCard:
        """Apply a credit the platform authorised with mac for this terminal and reference.

        The card checks the MAC over card number, new counter, amount, terminal and ref; it
        applies the credit only if its purchase counter is new_counter - 1, so the same
        credit can never be applied twice, and it records the load (CardLoad) in its load
        log in the same write. Returns the card as read after the credit, last_load included.
        """
        ...

    def load_log(self) -> list[CardLoad]:
        """The load log of the prepaid card in the reader, newest first (as many entries as
        the card keeps); CardRemoved when no card is in. Read only when the newest load does
        not settle a question: it costs one command per entry."""
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


class OperatorPinWrong(CardError):
    """The station operator's card refused the PIN; tries_left more before it blocks."""

    def __init__(self, message: str, tries_left: int) -> None:
        super().__init__(message)
        self.tries_left = tries_left


class OperatorCardBlocked(CardError):
    """The operator card is blocked after too many wrong PINs (the operator's office unblocks)."""


class OperatorCards(Protocol):
    """The reader's third application: the station operator's card (经办人员: deposits, day
    close, cash collection, voucher payout, reprints), with its own PIN."""

    def verify_operator(self, pin: str) -> str:
        """The operator id of the card in the reader once pin is verified.

        Raises OperatorPinWrong (with tries left), OperatorCardBlocked, CardRemoved, or
        CardError when no operator card is present.
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


# ---------------------------------------------------------------- payment-code scanner


class ScannerError(DeviceError):
    """The scanner could not give a payment code; the message says what to do."""


class ScannerUnavailable(ScannerError):
    """The scanner is unplugged or does not answer; the driver reconnects by itself."""


class ScanMisread(ScannerError):
    """A scan arrived that is not the code wanted: garbled, partial, or another barcode.

    problem says which (kiosk.payment_codes.CodeProblem); RESIDENT_NOTICE is the message id
    of what the resident is told (Chinese in scanner.po).
    """

    RESIDENT_NOTICE = (
        "The code could not be read. Please open the payment code (付款码) in WeChat, "
        "Alipay or UnionPay and hold it under the scanner again."
    )

    def __init__(self, problem: CodeProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True)
class ScannedCode:
    """A resident's payment code as read, checked against the published formats.

    code is a bearer credential for about a minute: repr masks it, and it goes to the
    platform once (kiosk.platform), never to a log or the journal whole.
    """

    code: str = field(repr=False)
    scheme: PaymentScheme

    def __post_init__(self) -> None:
        if scheme_of(self.code) is not self.scheme:
            raise ValueError(f"payment code {self.masked} is not a {self.scheme} code")

    @property
    def masked(self) -> str:
        return mask_code(self.code)

    def __repr__(self) -> str:
        return f"ScannedCode({self.masked}, {self.scheme})"


class ScanPurpose(StrEnum):
    """What the scanner is armed to read: the one kind of code a screen waits for now."""

    PAYMENT = "payment"  # a resident's payment code (付款码), while a payment by phone waits
    VOUCHER = "voucher"  # a voucher slip's code, while the operator's voucher screen is open


@dataclass(frozen=True)
class ScannedVoucher:
    """A voucher named by a scanned code (kiosk.voucher_codes): its id, single-use money,
    so repr masks it and it is never logged whole."""

    voucher_id: str = field(repr=False)

    @property
    def masked(self) -> str:
        return mask_code(self.voucher_id)

    def __repr__(self) -> str:
        return f"ScannedVoucher({self.masked})"


class PaymentCodeScanner(Protocol):
    """A barcode scanner that reads residents' payment codes while a payment waits, and
    voucher slips' codes while the operator's voucher screen is open.

    The driver reads on its own thread and keeps what it read; the runtime polls read(0)
    on its turns, like the cash inlets. Codes are kept only while armed, judged as the
    purpose of the arming wants them (a payment code is a misread while armed for vouchers
    and the reverse), and each distinct code is given once per arming (a code held under
    the scanner is read again and again).
    """

    def arm(self, purpose: ScanPurpose = ScanPurpose.PAYMENT) -> None:
        """Codes of this purpose are wanted: forget anything read before, give them from now on."""
        ...

    def disarm(self) -> None:
        """No payment waits: scans are read and dropped (a HID scanner cannot be switched off)."""
        ...

    def read(self, timeout_s: float = 0.0) -> ScannedCode | ScannedVoucher | None:
        """The next code read while armed (a ScannedCode armed for payments, a
        ScannedVoucher armed for vouchers), waiting at most timeout_s; None if none.

        Raises ScanMisread for a scan that is not the code wanted (one per bad scan, in order
        with the good ones), ScannerUnavailable while the scanner is unplugged (after it
        comes back, read works again without anything being done).
        """
        ...

    def health(self) -> dict[str, object]: ...
