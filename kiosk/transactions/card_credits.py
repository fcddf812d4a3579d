"""Prepaid card credits: written to the card once, and called written only on the card's proof.

The platform's authorisation carries a MAC for one credit moving the card's purchase counter
from n to n + 1, bound to this terminal and the posting's key. A pending credit is:
- proven applied when the card's load log holds this very credit (counter n + 1, amount,
  terminal and reference all match): its newest entry when the counter stopped at n + 1, an
  older entry when the card has been loaded again since (here or elsewhere); recorded, never
  rewritten;
- written now when the card's counter is n;
- otherwise (the card was loaded elsewhere in between, or its last load is another one) a
  conflict for the operator, who reverses or refunds: never "written" on the counter alone.
"""

import logging
import sqlite3
from collections.abc import Sequence

from kiosk.alerts import AlertKind, announce, append_alert
from kiosk.devices import CardError, CardLoad, CardReader, CardRemoved, PrepaidCard
from kiosk.events import EventBus
from kiosk.journal import Journal
from kiosk.storage import write_transaction
from kiosk.transactions.kinds import CardCreditState
from kiosk.transactions.store import TxStore
from kiosk.transactions.transitions import mask_account

log = logging.getLogger(__name__)


def post_key_of(tx_id: str) -> str:
    """The posting key of a transaction (TransactionEngine.begin makes it so)."""
    return f"{tx_id}-p"


def this_load(credit: sqlite3.Row, terminal: str) -> CardLoad:
    """The load-log entry the card writes when it applies this credit."""
    return CardLoad(
        counter=int(credit["new_counter"]),
        amount_fen=int(credit["amount_fen"]),
        terminal=terminal,
        ref=post_key_of(str(credit["tx_id"])),
    )


def proves_applied(
    card: PrepaidCard, loads: Sequence[CardLoad], credit: sqlite3.Row, terminal: str
) -> bool:
    """Whether the card's own load log shows this very credit applied: its newest load when
    the counter stopped there, else the entry of the counter it moved the card to (loads:
    the log, read only when the card has moved on)."""
    wanted = this_load(credit, terminal)
    if card.purchase_counter == wanted.counter:
        return card.last_load == wanted
    return card.purchase_counter > wanted.counter and wanted in loads


class CardCredits:
    def __init__(
        self,
        conn: sqlite3.Connection,
        store: TxStore,
        journal: Journal,
        cards: CardReader,
        events: EventBus,
        terminal_id: str,
    ) -> None:
        self._conn = conn
        self._store = store
        self._journal = journal
        self._cards = cards
        self._events = events
        self._terminal = terminal_id

    def write_for(self, tx_id: str, card_no: str) -> CardCreditState:
        """Write the credit of tx_id to the card in the reader; pending if the card is gone."""
        try:
            card = self._cards.read_prepaid()
            if card is None or card.card_no != card_no:
                raise CardRemoved("the card was taken out before the credit was written")
            self.complete(card)
        except CardError as exc:
            log.warning("card credit for %s pending: %s", tx_id, exc)
            self._events.publish("card_credit_pending", tx_id=tx_id, reason=type(exc).__name__)
        return self.state_of(tx_id)

    def state_of(self, tx_id: str) -> CardCreditState:
        found = self._conn.execute(
            "SELECT state FROM card_credit WHERE tx_id = ?", (tx_id,)
        ).fetchone()
        return CardCreditState(found[0]) if found else CardCreditState.PENDING

    def complete(self, card: PrepaidCard) -> list[str]:
        """Settle every pending credit of this card, in counter order, never twice.

        Returns the tx ids proven written (now or before).
        """
        done: list[str] = []
        loads: list[CardLoad] | None = None
        for credit in self._store.card_credits(card.card_no):
            new_counter = int(credit["new_counter"])
            if card.purchase_counter > new_counter and loads is None:
                # The card moved on past this credit (loaded here or elsewhere since): only
                # its older log entries can tell whether this one is among them.
                loads = self._cards.load_log()
            found_applied = proves_applied(card, loads or [], credit, self._terminal)
            if not found_applied:
                if card.purchase_counter != new_counter - 1:
                    self._conflict(credit, card)
                    continue
                try:
                    card = self._cards.credit_prepaid(
                        card.card_no,
                        int(credit["amount_fen"]),
                        new_counter,
                        bytes(credit["mac"]),
                        terminal=self._terminal,
                        ref=post_key_of(str(credit["tx_id"])),
                    )
                except CardRemoved as exc:
                    # Pulled again: the credit stays pending for the card's next return; its
                    # load log then tells whether this attempt was applied.
                    log.info("card pulled while a pending credit was written: %s", exc)
                    self._events.publish("card_credit_pending", tx_id=credit["tx_id"])
                    break
            with write_transaction(self._conn):
                self._store.set_card_credit_state(credit["tx_id"], str(CardCreditState.WRITTEN))
                self._journal.append(
                    "card_credit_written",
                    {
                        "tx_id": credit["tx_id"],
                        "card_no_masked": mask_account(card.card_no),
                        "amount_fen": int(credit["amount_fen"]),
                        "new_counter": new_counter,
                        "found_applied": found_applied,
                    },
                )
            done.append(str(credit["tx_id"]))
        return done

    def _conflict(self, credit: sqlite3.Row, card: PrepaidCard) -> None:
        load = card.last_load
        with write_transaction(self._conn):
            self._store.set_card_credit_state(credit["tx_id"], str(CardCreditState.CONFLICT))
            self._journal.append(
                "card_credit_conflict",
                {
                    "tx_id": credit["tx_id"],
                    "card_no_masked": mask_account(card.card_no),
                    "amount_fen": int(credit["amount_fen"]),
                    "expected_counter": int(credit["new_counter"]) - 1,
                    "card_counter": card.purchase_counter,
                    "last_load_terminal": None if load is None else load.terminal,
                    "last_load_fen": None if load is None else load.amount_fen,
                },
            )
            alert = append_alert(
                self._journal,
                AlertKind.CARD_CREDIT_CONFLICT,
                tx_id=str(credit["tx_id"]),
                amount_fen=int(credit["amount_fen"]),
            )
        announce(self._events, alert)
        self._events.publish("card_credit_conflict", tx_id=credit["tx_id"])
