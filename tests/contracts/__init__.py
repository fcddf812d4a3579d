"""Contract tests: the promises of each kiosk.devices Protocol, run against every implementation.

A contract test talks to the device only through its Protocol. What the Protocol cannot do
(a customer inserting a note, a resident pulling a card, paper running out) it asks of a
*rig*: the implementation's test bench. Each implementation registers a rig factory below;
a factory called twice on the same directory gives a second, fresh driver object on the SAME
device, which is how the contracts check that state survives a restart of the terminal.

A real driver joins by adding its rig here (the ESC/POS printer on the pseudo-terminal
printer, the PC/SC reader with the vsmartcard virtual card, the I/O board harness).
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kiosk.devices import CardReader, CashAcceptor, Printer
from simulators.cash import SimulatedCashAcceptor
from simulators.printer import SimulatedPrinter
from simulators.smartcard import SimulatedCardReader
from simulators.vpcd_card import CardProtocol
from tests.fixtures.ioboard import IoBoardCashRig
from tests.fixtures.pcscd import PcscVpcdCardRig
from tests.fixtures.pty_printer import open_pty_printer_rig

# ---------------------------------------------------------------- cash acceptor


class CashRig(Protocol):
    acceptor: CashAcceptor

    def insert(self, kind: str, value_fen: int) -> None:
        """A customer inserts a note or coin; drivers.cash.CashRejected when it is handed
        back (inlets closed, or the denomination above the limit the host set)."""
        ...

    def insert_unrecognised(self, inlet: str) -> None:
        """The validator on inlet ("note" or "coin") takes something it cannot value."""
        ...

    def restart_board(self) -> None:
        """The acceptor's own restart (power cut on the board): RAM lost, buffer kept."""
        ...

    def close(self) -> None: ...


@dataclass
class SimulatedCashRig:
    acceptor: SimulatedCashAcceptor

    def insert(self, kind: str, value_fen: int) -> None:
        self.acceptor.insert(kind, value_fen)

    def insert_unrecognised(self, inlet: str) -> None:
        self.acceptor.insert_unrecognised(inlet)

    def restart_board(self) -> None:
        self.acceptor.restart_board()

    def close(self) -> None:
        self.acceptor.close()


CASH_RIGS: dict[str, Callable[[Path], CashRig]] = {
    "simulated": lambda directory: SimulatedCashRig(
        SimulatedCashAcceptor(directory / "cash-acceptor.sqlite")
    ),
    "ioboard-pty": IoBoardCashRig,
}

# ---------------------------------------------------------------- prepaid card reader


class CardRig(Protocol):
    reader: CardReader

    def issue_card(self, card_no: str, utility: str, meter_no: str) -> None:
        """Make a fresh prepaid card (purchase counter 0) available to insert."""
        ...

    def insert_card(self, card_no: str) -> None: ...

    def remove_card(self) -> None: ...

    def pull_during_next_command(self, after_apply: bool) -> None:
        """The resident pulls the card in the middle of the next command reaching it."""
        ...

    def load_elsewhere(self, card_no: str, amount_fen: int, terminal: str, ref: str) -> None:
        """The resident tops the card (out of the reader) up at another terminal: a genuine
        load authorised for that terminal and reference."""
        ...

    def close(self) -> None: ...


@dataclass
class SimulatedCardRig:
    reader: SimulatedCardReader

    def issue_card(self, card_no: str, utility: str, meter_no: str) -> None:
        self.reader.create_card(card_no, utility, meter_no)

    def insert_card(self, card_no: str) -> None:
        self.reader.insert_card(card_no)

    def remove_card(self) -> None:
        self.reader.remove_card()

    def pull_during_next_command(self, after_apply: bool) -> None:
        self.reader.pull_during_next_command(after_apply)

    def load_elsewhere(self, card_no: str, amount_fen: int, terminal: str, ref: str) -> None:
        self.reader.load_elsewhere(card_no, amount_fen, terminal, ref)

    def close(self) -> None:
        self.reader.close()


CARD_RIGS: dict[str, Callable[[Path], CardRig]] = {
    "simulated": lambda directory: SimulatedCardRig(
        SimulatedCardReader(directory / "card-reader.sqlite")
    ),
    "pcsc-vpcd": PcscVpcdCardRig,
    # A T=0 card with a 16-byte I/O buffer: every answer comes by GET RESPONSE, in chunks.
    "pcsc-vpcd-t0": lambda directory: PcscVpcdCardRig(directory, CardProtocol.T0, t0_chunk=16),
}

# ---------------------------------------------------------------- receipt printer


class PrinterRig(Protocol):
    printer: Printer

    def printed(self, job_id: str) -> list[str]:
        """The text that came out of the printer for job_id, one entry per print."""
        ...

    def paper_near_end(self) -> None: ...

    def paper_out(self) -> None: ...

    def cover_open(self) -> None: ...

    def offline(self) -> None: ...

    def restore(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class SimulatedPrinterRig:
    printer: SimulatedPrinter

    def printed(self, job_id: str) -> list[str]:
        return self.printer.printed_receipts(job_id)

    def paper_near_end(self) -> None:
        self.printer.paper_near_end()

    def paper_out(self) -> None:
        self.printer.paper_out()

    def cover_open(self) -> None:
        self.printer.cover_open()

    def offline(self) -> None:
        self.printer.offline()

    def restore(self) -> None:
        self.printer.restore()

    def close(self) -> None:
        self.printer.close()


PRINTER_RIGS: dict[str, Callable[[Path], PrinterRig]] = {
    "simulated": lambda directory: SimulatedPrinterRig(SimulatedPrinter(directory / "paper")),
    "simulated-80mm": lambda directory: SimulatedPrinterRig(
        SimulatedPrinter(directory / "paper", columns=48)
    ),
    "escpos-pty": open_pty_printer_rig,
    "escpos-pty-80mm": lambda directory: open_pty_printer_rig(directory, columns=48),
    # A clone that ignores GS ( H: the driver detects it and confirms jobs by status polling.
    "escpos-pty-clone": lambda directory: open_pty_printer_rig(directory, model="clone-58"),
    # The kernel usblp device's file I/O (a raw pty stands in for /dev/usb/lp0).
    "escpos-usblp-80mm": lambda directory: open_pty_printer_rig(
        directory, columns=48, model="kiosk-80", transport="usblp"
    ),
}
