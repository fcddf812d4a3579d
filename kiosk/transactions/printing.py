"""Paper for the resident: receipts, reprints, and results claimed after the resident left.

Owns when a receipt is printed and who may have it printed again. Rules:
- A receipt is printed after its tx_close record committed, and only while the resident is
  at the kiosk. A result settled in their absence (recovery, housekeeping) is not printed
  into an empty tray: it waits to be claimed with the token printed on the resident's paper
  (the interim slip or the receipt), and the tx_close record says so (`awaiting_claim`).
- The token is a secret of the payer: it is not journaled, and nothing is reprinted or
  claimed by receipt number alone.
- A reprint is marked as a copy and carries no redeemable voucher code.
"""

import logging
import sqlite3
from collections.abc import Callable

from kiosk.catalog import Catalog
from kiosk.clock import Clock, iso
from kiosk.devices import Printer, PrinterError, ReceiptDocument
from kiosk.errors import KioskError
from kiosk.events import EventBus
from kiosk.i18n import bilingual
from kiosk.journal import Journal
from kiosk.journal.record_types import RecordType
from kiosk.receipts import (
    StationInfo,
    claim_slip_document,
    interim_slip_document,
    receipt_document,
    receipt_from_record,
)
from kiosk.storage import write_transaction
from kiosk.transactions.kinds import PayMethod
from kiosk.transactions.store import TxRow, TxStore
from kiosk.transactions.transitions import mask_account

log = logging.getLogger(__name__)


class ReceiptRefused(KioskError):
    """No receipt can be printed for what was asked; the message says what to check."""


class ReceiptDesk:
    def __init__(
        self,
        conn: sqlite3.Connection,
        store: TxStore,
        journal: Journal,
        printer: Printer,
        clock: Clock,
        events: EventBus,
        catalog: Callable[[], Catalog],
        *,
        station: StationInfo,
        columns: int,
    ) -> None:
        self._conn = conn
        self._store = store
        self._journal = journal
        self.printer = printer
        self._clock = clock
        self._events = events
        self._catalog = catalog
        self._station = station
        self._columns = columns

    def print_receipt(self, tx_id: str, copy_no: int) -> tuple[bool, str | None]:
        """Print (or reprint, marked as a copy) the receipt of a closed transaction."""
        row = self._store.get(tx_id)
        assert row.receipt_no is not None
        record = self._journal.by_receipt(row.receipt_no)
        if record is None:
            raise KioskError(f"receipt {row.receipt_no} is not in the journal")
        receipt = receipt_from_record(
            record, station=self._station, service_name=self._service_name(row.service)
        )
        document = receipt_document(
            receipt,
            record,
            columns=self._columns,
            copy_no=copy_no,
            # The reprint code goes on the original only: a copy never gives it away.
            receipt_token=self._store.token_of(tx_id) if copy_no == 0 else None,
        )
        printed, problem = self._print(document, what=row.receipt_no)
        if not printed:
            with write_transaction(self._conn):
                self._store.update(tx_id, iso(self._clock.now()), print_problem=problem)
            return False, problem
        if copy_no == 0:
            with write_transaction(self._conn):
                self._store.update(tx_id, iso(self._clock.now()), printed=1, print_problem=None)
        return True, None

    def _service_name(self, code: str) -> str:
        try:
            return bilingual(self._catalog().service(code).name)
        except KioskError:
            return code

    def _print(self, document: ReceiptDocument, *, what: str) -> tuple[bool, str | None]:
        try:
            self.printer.print_receipt(document)
        except PrinterError as exc:
            self._events.publish("receipt_not_printed", receipt_no=what, reason=type(exc).__name__)
            return False, str(exc)
        return True, None

    def print_interim(self, row: TxRow) -> tuple[bool, str | None]:
        """The interim slip of a payment not settled yet: reference, amounts, what next."""
        document = interim_slip_document(
            tx_id=row.tx_id,
            station=self._station,
            service_name=self._service_name(row.service),
            account_masked=mask_account(row.account),
            amount_fen=row.pay_fen or row.due_fen,
            fee_fen=row.fee_fen,
            cash_in_fen=row.cash_in_fen,
            time=self._clock.now(),
            columns=self._columns,
            receipt_token=self._store.token_of(row.tx_id),
            by_phone=row.pay_method == PayMethod.QR,
        )
        return self._print(document, what=row.tx_id)

    def print_claim_slip(self, tx_id: str | None, event_id: str) -> tuple[bool, str | None]:
        """The slip for cash the acceptor kept but could not recognise."""
        document = claim_slip_document(
            tx_id=tx_id or event_id,
            station=self._station,
            time=self._clock.now(),
            columns=self._columns,
            claim_ref=event_id,
        )
        return self._print(document, what=event_id)

    def by_token(self, token: str) -> str:
        """The closed transaction the token printed on a resident's paper names."""
        tx_id = self._store.tx_of_token("".join(ch for ch in token if ch.isdigit()))
        if tx_id is None:
            raise ReceiptRefused(
                "no receipt has this reprint code: check the code printed on your paper"
            )
        row = self._store.get(tx_id)
        if row.receipt_no is None:
            raise ReceiptRefused(
                "this payment is not settled yet: the result is printed once the platform "
                "has answered; please come back later or call the hotline"
            )
        return tx_id

    def claim(self, token: str) -> tuple[bool, str | None]:
        """Print what the token's paper entitles to: the original receipt if it was never
        printed (settled in the resident's absence), otherwise a marked copy."""
        return self.claim_tx(self.by_token(token), by="resident")

    def claim_by_number(self, receipt_no: str, *, by: str) -> tuple[bool, str | None]:
        """The same for station staff, who name the receipt by its number."""
        record = self._journal.by_receipt(receipt_no)
        if record is None:
            raise ReceiptRefused(f"there is no receipt number {receipt_no}: check the number")
        return self.claim_tx(str(record["tx_id"]), by=by)

    def claim_tx(self, tx_id: str, *, by: str) -> tuple[bool, str | None]:
        row = self._store.get(tx_id)
        if not row.printed:
            printed, problem = self.print_receipt(tx_id, copy_no=0)
            if printed:
                with write_transaction(self._conn):
                    self._journal.append(
                        RecordType.RECEIPT_CLAIMED,
                        {"tx_id": tx_id, "receipt_no": row.receipt_no, "by": by},
                    )
            return printed, problem
        with write_transaction(self._conn):
            copy_no = self._store.next_counter(f"copy:{row.receipt_no}")
        return self.print_receipt(tx_id, copy_no=copy_no)
