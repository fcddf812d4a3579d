"""Cash: every note and coin journaled once, the inlets limited to what is still due.

Owns the acceptor's inlets and the journaling of what it counted. Rules:
- A counted event is journaled (cash_in) and committed, then acknowledged to the acceptor;
  an event delivered again is recognised by its id and counted once.
- Cash counted while no payment collects becomes a `refund` transaction closed at once
  (a voucher): possible only around a restart or when the inlets could not be closed.
- Something the acceptor kept but could not recognise is a suspense record
  (cash_suspense) tied to the collecting payment, if any: the inlets close, the customer is
  told and given a claim slip, and the operator is alerted to count it at the next
  collection.
- While collecting, the inlets take no note larger than the smallest note that covers what
  is still due (coins are always taken), so a customer overshoots by less than one note
  and a tiny bill never turns a 100-yuan note into a large voucher.
- A device that cannot close its inlets never strands a payment: the caller goes on, and
  cash arriving later becomes a refund voucher.
"""

import logging
import sqlite3
import uuid
from collections.abc import Callable

from kiosk.alerts import AlertKind, announce, append_alert
from kiosk.clock import Clock, iso
from kiosk.devices import CashAcceptor, CashEvent, DeviceError
from kiosk.events import EventBus
from kiosk.journal import Journal
from kiosk.money import RMB_NOTES_FEN
from kiosk.storage import write_transaction
from kiosk.transactions.kinds import TxKind
from kiosk.transactions.states import TxState
from kiosk.transactions.store import TxRow, TxStore

log = logging.getLogger(__name__)

UNRECOGNISED = "unrecognised"


def largest_note_for(still_due_fen: int) -> int:
    """The largest note the inlets take while still_due_fen is owed: the smallest note that
    covers it (the largest note if none does)."""
    for note in sorted(RMB_NOTES_FEN):
        if note >= still_due_fen:
            return note
    return max(RMB_NOTES_FEN)


class CashDesk:
    def __init__(
        self,
        conn: sqlite3.Connection,
        store: TxStore,
        journal: Journal,
        cash: CashAcceptor,
        clock: Clock,
        events: EventBus,
        terminal_id: str,
    ) -> None:
        self._conn = conn
        self._store = store
        self._journal = journal
        self.device = cash
        self._clock = clock
        self._events = events
        self._terminal = terminal_id
        self._limit: int | None = None
        # Set by the engine: close a refund transaction (cash outside a payment) at once.
        self.on_orphan: Callable[[str], None] = lambda tx_id: None
        # Set by the engine: the customer gets a claim slip for unrecognised cash.
        self.on_suspense: Callable[[str | None, str], None] = lambda tx_id, event_id: None

    # ------------------------------------------------------------------ inlets

    @property
    def limit(self) -> int | None:
        """The largest note the inlets take now (None: closed, or no limit told)."""
        return self._limit

    def open_for(self, row: TxRow) -> None:
        """Open the inlets for a collecting payment, limited to what is still due."""
        limit = largest_note_for(row.total_due_fen - row.cash_in_fen)
        self.device.set_accepting(True, largest_fen=limit)
        self._limit = limit

    def limit_for(self, row: TxRow) -> None:
        """After cash came in: close the inlets once paid, else narrow them to what is due.

        Only while they are open for this payment: a payment being cancelled or finished
        closed them first, and must never see them opened again by a last note.
        """
        if self._limit is None or self.suspense_count(row.tx_id):
            return  # closed when the unrecognised item came in; they stay closed
        still_due = row.total_due_fen - row.cash_in_fen
        if still_due <= 0:
            self.close()
            return
        limit = largest_note_for(still_due)
        if limit != self._limit:
            try:
                self.device.set_accepting(True, largest_fen=limit)
                self._limit = limit
            except DeviceError as exc:
                log.warning("cash inlets not narrowed: %s", exc)

    def reassert(self) -> None:
        """Open the inlets again if a payment is collecting (the board restarted)."""
        row = self._store.collecting()
        if row is None or self.suspense_count(row.tx_id):
            return
        try:
            self.open_for(row)
        except DeviceError as exc:
            log.warning("cash inlets not reopened after a restart: %s", exc)

    def close(self, tx_id: str | None = None) -> bool:
        """Close the inlets; False (and an alert) if the device could not be told."""
        self._limit = None
        try:
            self.device.set_accepting(False)
            return True
        except DeviceError as exc:
            log.warning("cash inlets not closed: %s", exc)
            with write_transaction(self._conn):
                alert = append_alert(
                    self._journal,
                    AlertKind.INLETS_NOT_CLOSED,
                    tx_id=tx_id,
                    problem=type(exc).__name__,
                )
            announce(self._events, alert)
            return False

    # ------------------------------------------------------------------ counting

    def drain(self) -> None:
        """Journal every counted event, then acknowledge it to the acceptor."""
        try:
            events = self.device.pending()
        except DeviceError as exc:
            log.warning("cash acceptor not answering: %s", exc)
            return
        for event in events:
            if not self._store.cash_event_known(event.event_id):
                self._journal_event(event)
            try:
                self.device.acknowledge(event.event_id)
            except DeviceError as exc:
                # Journaled already: the acceptor sends it again and it is recognised.
                log.warning("cash event %s not acknowledged yet: %s", event.event_id, exc)
                return

    def suspense_count(self, tx_id: str) -> int:
        found = self._conn.execute(
            "SELECT count(*) FROM cash_event WHERE tx_id = ? AND kind = ?", (tx_id, UNRECOGNISED)
        ).fetchone()
        return int(found[0])

    def _journal_event(self, event: CashEvent) -> None:
        if event.kind == UNRECOGNISED:
            self._suspense(event)
            return
        collecting = self._store.collecting()
        if collecting is None:
            self._orphan(event)
            return
        with write_transaction(self._conn):
            total = collecting.cash_in_fen + event.value_fen
            record = self._journal.append(
                "cash_in",
                {
                    "tx_id": collecting.tx_id,
                    "event_id": event.event_id,
                    "cash_kind": event.kind,
                    "value_fen": event.value_fen,
                    "cash_in_fen": total,
                },
            )
            seq = record["seq"]
            assert isinstance(seq, int)
            self._store.add_cash_event(
                event.event_id, collecting.tx_id, event.kind, event.value_fen, seq
            )
            self._store.update(collecting.tx_id, iso(self._clock.now()), cash_in_fen=total)
        self._events.publish(
            "cash_in", tx_id=collecting.tx_id, value_fen=event.value_fen, cash_in_fen=total
        )
        # At once, whoever drained (the runtime's loop, not only the screen's collect()): the
        # next note must already meet the narrower limit.
        self.limit_for(self._store.get(collecting.tx_id))

    def _suspense(self, event: CashEvent) -> None:
        collecting = self._store.collecting()
        tx_id = None if collecting is None else collecting.tx_id
        with write_transaction(self._conn):
            record = self._journal.append(
                "cash_suspense",
                {"tx_id": tx_id, "event_id": event.event_id, "detail": event.detail[:80]},
                sign=True,
            )
            seq = record["seq"]
            assert isinstance(seq, int)
            self._store.add_cash_event(event.event_id, tx_id or "", UNRECOGNISED, 0, seq)
            alert = append_alert(
                self._journal,
                AlertKind.UNRECOGNISED_CASH,
                tx_id=tx_id,
                event_id=event.event_id,
                suspense_seq=seq,
            )
        announce(self._events, alert)
        if collecting is not None:
            self.close(collecting.tx_id)
        self._events.publish("cash_unrecognised", tx_id=tx_id, event_id=event.event_id)
        self.on_suspense(tx_id, event.event_id)

    def _orphan(self, event: CashEvent) -> None:
        now = iso(self._clock.now())
        tx_id = f"{self._terminal}-{uuid.uuid4().hex[:16]}"
        row = TxRow(
            tx_id=tx_id,
            kind=str(TxKind.CASH_REFUND),
            service="cash-refund",
            biller="",
            account="",
            state=str(TxState.NEW),
            due_fen=0,
            fee_fen=0,
            created=now,
            updated=now,
            cash_in_fen=event.value_fen,
            voucher_fen=event.value_fen,
        )
        with write_transaction(self._conn):
            self._store.insert(row)
            record = self._journal.append(
                "cash_in",
                {
                    "tx_id": tx_id,
                    "event_id": event.event_id,
                    "cash_kind": event.kind,
                    "value_fen": event.value_fen,
                    "cash_in_fen": event.value_fen,
                    "unexpected": True,
                },
            )
            seq = record["seq"]
            assert isinstance(seq, int)
            self._store.add_cash_event(event.event_id, tx_id, event.kind, event.value_fen, seq)
            self._store.update(tx_id, now, state=TxState.VOIDING)
        self.on_orphan(tx_id)
