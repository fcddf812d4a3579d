"""A simulated smartcard reader holding simulated prepaid utility cards, kept in a state file.

It owns the reader's side of kiosk.devices.CardReader: which card is in the slot, whether the
reader is plugged in, and the faults a bench or a test arms for the next command (card pulled
before or after the card applied a credit, an error status word), and the bench's "the card
was topped up elsewhere" (load_elsewhere). The cards' own rules live in
drivers.smartcard.prepaid_card. Everything is kept in a SQLite file (WAL, synchronous=FULL), so
a new simulator on the same state path continues where a killed one stopped: like real cards,
a credit the card applied stays applied whatever happened to the terminal.
"""

import sqlite3
import threading
from pathlib import Path
from typing import Literal

from drivers.smartcard.apdu import ApduError
from drivers.smartcard.operator_app import SimulatedOperatorCard
from drivers.smartcard.prepaid_app import LOAD_LOG_RECORDS
from drivers.smartcard.prepaid_card import (
    GRID_OFFICE_TERMINAL,
    SW_FILE_NOT_FOUND,
    CardCommandRefused,
    SimulatedPrepaidCard,
    check_status_word,
    error_for_status,
    load_elsewhere,
)
from drivers.smartcard.technician_app import SimulatedTechnicianCard, check_pin_format
from kiosk.devices import (
    CardError,
    CardLoad,
    CardRefused,
    CardRemoved,
    OperatorCardBlocked,
    OperatorPinWrong,
    PrepaidCard,
    TechnicianCardBlocked,
    TechnicianPinWrong,
)
from kiosk.schema import Database, Migration, register
from kiosk.storage import open_database, write_transaction

SIMULATED_CARDS = register(
    Database(
        "simulated cards",
        (
            Migration(
                1,
                "cards, the reader, technician and operator cards, load logs",
                """
CREATE TABLE IF NOT EXISTS cards (
    card_no TEXT PRIMARY KEY,
    utility TEXT NOT NULL,
    meter_no TEXT NOT NULL,
    purchase_counter INTEGER NOT NULL,
    last_credit_fen INTEGER NOT NULL,
    balance_fen INTEGER NOT NULL,
    blocked INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reader (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    connected INTEGER NOT NULL,
    slot_card_no TEXT REFERENCES cards (card_no),
    slot_foreign INTEGER NOT NULL,
    fault TEXT,
    fault_status_word TEXT
);
-- A technician card in the slot is, to the prepaid application, a foreign card: the
-- reader row marks slot_foreign and this table says which technician card it is.
CREATE TABLE IF NOT EXISTS technician_cards (
    card_no TEXT PRIMARY KEY,
    technician_id TEXT NOT NULL,
    pin_digest TEXT NOT NULL,
    tries_left INTEGER NOT NULL,
    in_slot INTEGER NOT NULL
);
-- The station operator's cards: foreign to the prepaid application too, like the
-- technician's (drivers.smartcard.operator_app).
CREATE TABLE IF NOT EXISTS operator_cards (
    card_no TEXT PRIMARY KEY,
    operator_id TEXT NOT NULL,
    pin_digest TEXT NOT NULL,
    tries_left INTEGER NOT NULL,
    in_slot INTEGER NOT NULL
);
-- Each card's load log (newest LOAD_LOG_RECORDS kept), written in the same transaction
-- as the card's counter and balance, as the card writes them in one EEPROM update.
CREATE TABLE IF NOT EXISTS load_log (
    card_no TEXT NOT NULL REFERENCES cards (card_no),
    counter INTEGER NOT NULL,
    amount_fen INTEGER NOT NULL,
    terminal TEXT NOT NULL,
    ref TEXT NOT NULL,
    PRIMARY KEY (card_no, counter)
)
""",
            ),
        ),
    )
)
_FIRST_STATE = (
    "INSERT OR IGNORE INTO reader (singleton, connected, slot_card_no, slot_foreign, fault,"
    " fault_status_word) VALUES (1, 1, NULL, 0, NULL, NULL)"
)

# The faults that can be armed, and the commands each one strikes: the first such command
# that reaches a card consumes it.
_PULL_BEFORE_APPLY = "pull-before-apply"
_PULL_AFTER_APPLY = "pull-after-apply"
_PULL_DURING_READ = "pull-during-read"
_STATUS_WORD = "status-word"
_STRIKES: dict[str, tuple[str, ...]] = {
    _PULL_BEFORE_APPLY: ("credit",),
    _PULL_AFTER_APPLY: ("credit",),
    _PULL_DURING_READ: ("read",),
    _STATUS_WORD: ("read", "credit"),
}

Command = Literal["read", "credit"]
# A credit as the card gets it: amount, new counter, MAC, terminal id, reference.
_Credit = tuple[int, int, bytes, str, str]


class SimulatedCardReader:
    """A PC/SC-like reader with one slot (kiosk.devices.CardReader, TechnicianCards and
    OperatorCards)."""

    kind = "simulated"

    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path
        self._lock = threading.Lock()
        self._conn = open_database(state_path)
        SIMULATED_CARDS.migrate(self._conn)
        with write_transaction(self._conn) as conn:
            conn.execute(_FIRST_STATE)

    # ------------------------------------------------------------ the terminal's side (Protocol)

    def read_prepaid(self) -> PrepaidCard | None:
        return self._command("read")

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
        outcome = self._command("credit", card_no, (amount_fen, new_counter, mac, terminal, ref))
        assert outcome is not None  # a credit either returns the card or raises
        return outcome

    def load_log(self) -> list[CardLoad]:
        card = self._command("read")  # a fault or a pull strikes as it would on a read
        if card is None:
            raise CardRemoved("no card in the reader to read the load log of: insert it")
        with self._lock:
            stored = self._card(self._conn, card.card_no)
        return [] if stored is None else list(stored.load_log)

    def health(self) -> dict[str, object]:
        with self._lock:
            reader = self._reader(self._conn)
        connected = bool(reader["connected"])
        present = reader["slot_card_no"] is not None or bool(reader["slot_foreign"])
        return {
            "device": "card reader (simulated)",
            "connected": connected,
            # An unplugged reader cannot say whether a card is in it: unknown, never "no".
            "card_present": present if connected else None,
        }

    # ------------------------------------------------------------ the resident's and bench's side

    def create_card(
        self, card_no: str, utility: str, meter_no: str, balance_fen: int = 0
    ) -> PrepaidCard:
        """Issue a new simulated card (purchase counter 0); an existing card_no is refused."""
        card = SimulatedPrepaidCard(card_no, utility, meter_no, balance_fen=balance_fen)
        with self._lock, write_transaction(self._conn) as conn:
            if self._card(conn, card_no) is not None:
                raise ValueError(f"a simulated card {card_no} exists already: use another number")
            self._store_card(conn, card)
        return card.as_read()

    def card(self, card_no: str) -> SimulatedPrepaidCard:
        """The full state of a simulated card (balance included), wherever it is."""
        with self._lock:
            card = self._card(self._conn, card_no)
        if card is None:
            raise ValueError(f"there is no simulated card {card_no}: create it first")
        return card

    def has_card(self, card_no: str) -> bool:
        """Whether a simulated card card_no has been created (in the reader or not)."""
        with self._lock:
            return self._card(self._conn, card_no) is not None

    def insert_card(self, card_no: str) -> None:
        """A resident puts the card into the slot (the same card already in it stays in)."""
        with self._lock, write_transaction(self._conn) as conn:
            if self._card(conn, card_no) is None:
                raise ValueError(f"there is no simulated card {card_no}: create it first")
            if self._reader(conn)["slot_card_no"] == card_no:
                return
            self._require_empty_slot(conn)
            conn.execute("UPDATE reader SET slot_card_no = ?", (card_no,))

    def insert_foreign_card(self) -> None:
        """A resident puts in a card without a prepaid utility application (a bank card)."""
        with self._lock, write_transaction(self._conn) as conn:
            self._require_empty_slot(conn)
            conn.execute("UPDATE reader SET slot_foreign = 1")

    def remove_card(self) -> None:
        """The card is taken out of the slot (harmless when the slot is empty)."""
        with self._lock, write_transaction(self._conn) as conn:
            conn.execute("UPDATE reader SET slot_card_no = NULL, slot_foreign = 0")
            conn.execute("UPDATE technician_cards SET in_slot = 0")
            conn.execute("UPDATE operator_cards SET in_slot = 0")

    def load_elsewhere(
        self,
        card_no: str,
        amount_fen: int,
        terminal: str = GRID_OFFICE_TERMINAL,
        ref: str | None = None,
    ) -> PrepaidCard:
        """The resident tops the card up at another terminal (the utility's counter).

        A genuine load: the simulated issuer's MAC for that terminal and reference, applied
        by the card's own rules, so the counter moves and the load log names that terminal.
        The card must be out of this reader (it is at the other terminal). Returns the card
        as read afterwards; raises ValueError for an unknown card or one in this reader, and
        CardCommandRefused as the card refuses (blocked, amount, too long a terminal/ref).
        """
        with self._lock, write_transaction(self._conn) as conn:
            card = self._card(conn, card_no)
            if card is None:
                raise ValueError(f"there is no simulated card {card_no}: create it first")
            if self._reader(conn)["slot_card_no"] == card_no:
                raise ValueError(
                    f"card {card_no} is in this reader: remove it before loading it elsewhere"
                )
            loaded = load_elsewhere(card, amount_fen, terminal, ref)
            self._store_card(conn, loaded)
        return loaded.as_read()

    # ------------------------------------------------------------ technician cards

    def create_technician_card(self, card_no: str, technician_id: str, pin: str) -> None:
        """Issue a technician card (3 PIN tries); an existing card number is refused."""
        card = SimulatedTechnicianCard.issue(card_no, technician_id, pin)
        with self._lock, write_transaction(self._conn) as conn:
            self._require_new(conn, card_no)
            conn.execute(
                "INSERT INTO technician_cards"
                " (card_no, technician_id, pin_digest, tries_left, in_slot) VALUES (?, ?, ?, ?, 0)",
                (card.card_no, card.technician_id, card.pin_digest, card.tries_left),
            )

    def technician_card(self, card_no: str) -> SimulatedTechnicianCard:
        with self._lock:
            card = self._technician(self._conn, card_no)
        if card is None:
            raise ValueError(f"there is no simulated technician card {card_no}: create it first")
        return card

    def insert_technician_card(self, card_no: str) -> None:
        """A technician puts a technician card into the slot."""
        with self._lock, write_transaction(self._conn) as conn:
            if self._technician(conn, card_no) is None:
                raise ValueError(f"there is no simulated technician card {card_no}: create it")
            self._require_empty_slot(conn)
            conn.execute("UPDATE reader SET slot_foreign = 1")
            conn.execute("UPDATE technician_cards SET in_slot = 1 WHERE card_no = ?", (card_no,))

    def verify_technician(self, pin: str) -> str:
        """kiosk.devices.TechnicianCards: the same 3-try rule as the PC/SC technician card."""
        try:
            pin_bytes = check_pin_format(pin)
        except ApduError as exc:
            raise CardError(str(exc)) from None
        with self._lock, write_transaction(self._conn) as conn:
            reader = self._reader(conn)
            if not reader["connected"]:
                return_error: CardError = CardError(
                    "card reader not connected: check its USB cable"
                )
            else:
                row = conn.execute(
                    "SELECT card_no FROM technician_cards WHERE in_slot = 1"
                ).fetchone()
                card = None if row is None else self._technician(conn, row["card_no"])
                if card is None:
                    return_error = CardError(
                        "no technician card in the reader: insert the technician card"
                    )
                else:
                    after, sw = card.verify(pin_bytes)
                    conn.execute(
                        "UPDATE technician_cards SET tries_left = ? WHERE card_no = ?",
                        (after.tries_left, after.card_no),
                    )
                    if sw == 0x9000:
                        return after.technician_id
                    if after.blocked:
                        return_error = TechnicianCardBlocked(
                            "the technician card is blocked after too many wrong PINs "
                            "(status 6983): ask the operator to unblock it"
                        )
                    else:
                        return_error = TechnicianPinWrong(
                            f"wrong technician PIN (status {sw:04X}): {after.tries_left} "
                            f"{'try' if after.tries_left == 1 else 'tries'} left before the "
                            "card blocks",
                            after.tries_left,
                        )
        # Raised after the commit: a wrong PIN counts on the card whatever the host does next.
        raise return_error

    # ------------------------------------------------------------ operator cards

    def create_operator_card(self, card_no: str, operator_id: str, pin: str) -> None:
        """Issue a station operator's card (3 PIN tries); an existing card number is refused."""
        card = SimulatedOperatorCard.issue(card_no, operator_id, pin)
        with self._lock, write_transaction(self._conn) as conn:
            self._require_new(conn, card_no)
            conn.execute(
                "INSERT INTO operator_cards (card_no, operator_id, pin_digest, tries_left, in_slot)"
                " VALUES (?, ?, ?, ?, 0)",
                (card.card_no, card.operator_id, card.pin_digest, card.tries_left),
            )

    def operator_card(self, card_no: str) -> SimulatedOperatorCard:
        with self._lock:
            card = self._operator(self._conn, card_no)
        if card is None:
            raise ValueError(f"there is no simulated operator card {card_no}: create it first")
        return card

    def insert_operator_card(self, card_no: str) -> None:
        """The station operator puts an operator card into the slot."""
        with self._lock, write_transaction(self._conn) as conn:
            if self._operator(conn, card_no) is None:
                raise ValueError(f"there is no simulated operator card {card_no}: create it")
            self._require_empty_slot(conn)
            conn.execute("UPDATE reader SET slot_foreign = 1")
            conn.execute("UPDATE operator_cards SET in_slot = 1 WHERE card_no = ?", (card_no,))

    def verify_operator(self, pin: str) -> str:
        """kiosk.devices.OperatorCards: the same 3-try rule as the PC/SC operator card."""
        try:
            pin_bytes = check_pin_format(pin)
        except ApduError as exc:
            raise CardError(str(exc)) from None
        with self._lock, write_transaction(self._conn) as conn:
            if not self._reader(conn)["connected"]:
                return_error: CardError = CardError(
                    "card reader not connected: check its USB cable"
                )
            else:
                row = conn.execute(
                    "SELECT card_no FROM operator_cards WHERE in_slot = 1"
                ).fetchone()
                card = None if row is None else self._operator(conn, row["card_no"])
                if card is None:
                    return_error = CardError(
                        "no operator card in the reader: insert the operator card"
                    )
                else:
                    after, sw = card.verify(pin_bytes)
                    conn.execute(
                        "UPDATE operator_cards SET tries_left = ? WHERE card_no = ?",
                        (after.tries_left, after.card_no),
                    )
                    if sw == 0x9000:
                        return after.operator_id
                    if after.blocked:
                        return_error = OperatorCardBlocked(
                            "the operator card is blocked after too many wrong PINs "
                            "(status 6983): the operator's office unblocks it"
                        )
                    else:
                        return_error = OperatorPinWrong(
                            f"wrong operator PIN (status {sw:04X}): {after.tries_left} "
                            f"{'try' if after.tries_left == 1 else 'tries'} left before the "
                            "card blocks",
                            after.tries_left,
                        )
        # Raised after the commit: a wrong PIN counts on the card whatever the host does next.
        raise return_error

    # ------------------------------------------------------------ faults

    def pull_during_next_command(self, after_apply: bool) -> None:
        """The card is pulled out in the middle of the next credit command that reaches it.

        With after_apply=False the credit is lost before the card applied it (nothing
        changed); with after_apply=True the card applied it but the answer never reached the
        terminal. Either way the credit raises CardRemoved and the slot is empty afterwards.
        Reads before that credit (a terminal reads the card before writing) are not affected.
        """
        self._arm(_PULL_AFTER_APPLY if after_apply else _PULL_BEFORE_APPLY, None)

    def pull_during_next_read(self) -> None:
        """The card is pulled out while the next read of it is in progress (CardRemoved)."""
        self._arm(_PULL_DURING_READ, None)

    def answer_error(self, status_word: str) -> None:
        """The next command that reaches the card is answered with status_word (e.g. 6581)."""
        status_word = check_status_word(status_word)
        error_for_status(status_word, "a command")  # refuses 9000: it is not an error
        self._arm(_STATUS_WORD, status_word)

    def block_card(self, card_no: str, blocked: bool = True) -> None:
        """The issuer blocks (or unblocks) a card: a blocked card refuses every credit."""
        with self._lock, write_transaction(self._conn) as conn:
            card = self._card(conn, card_no)
            if card is None:
                raise ValueError(f"there is no simulated card {card_no}: create it first")
            conn.execute("UPDATE cards SET blocked = ? WHERE card_no = ?", (int(blocked), card_no))

    def unplug(self) -> None:
        """The reader's USB cable is pulled: every command raises CardError."""
        self._set_connected(False)

    def replug(self) -> None:
        self._set_connected(True)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------ internals

    def _command(
        self, command: Command, card_no: str = "", credit: _Credit | None = None
    ) -> PrepaidCard | None:
        # The outcome is committed (a fault consumed, a credit applied, a card pulled) before
        # an error is raised, as a card's and a reader's state change whatever the host sees.
        with self._lock, write_transaction(self._conn) as conn:
            outcome = self._command_locked(conn, command, card_no, credit)
        if isinstance(outcome, CardError):
            raise outcome
        return outcome

    def _command_locked(
        self,
        conn: sqlite3.Connection,
        command: Command,
        card_no: str,
        credit: _Credit | None,
    ) -> PrepaidCard | CardError | None:
        doing = "the read" if command == "read" else f"the credit to card {card_no}"
        reader = self._reader(conn)
        if not reader["connected"]:
            return CardError(
                "card reader not connected: check its USB cable; the card's contents are unchanged"
            )
        slot_card_no: str | None = reader["slot_card_no"]
        if slot_card_no is None and not reader["slot_foreign"]:
            if command == "read":
                return None
            return CardRemoved(
                f"no card in the reader for {doing}: ask the resident to insert the card"
            )
        fault, fault_status_word = reader["fault"], reader["fault_status_word"]
        if fault is not None and command in _STRIKES[fault]:
            conn.execute("UPDATE reader SET fault = NULL, fault_status_word = NULL")
        else:
            fault = None
        if fault == _STATUS_WORD:
            return error_for_status(fault_status_word, doing)
        pulled = fault is not None
        if pulled:
            conn.execute("UPDATE reader SET slot_card_no = NULL, slot_foreign = 0")
        removed = CardRemoved(
            f"the card was pulled out during {doing}: ask the resident to put it back in; "
            "read it again before deciding whether a credit was loaded"
        )
        if slot_card_no is None:  # a card without the prepaid application
            if pulled:
                return removed
            if command == "credit":
                return CardRemoved(
                    f"the card in the reader is not prepaid card {card_no}: "
                    "ask the resident to insert the card being topped up"
                )
            return CardCommandRefused(
                SW_FILE_NOT_FOUND,
                "this card is not a prepaid utility card (status 6A82): "
                "ask the resident for the utility's IC card",
            )
        card = self._card(conn, slot_card_no)
        assert card is not None  # the foreign key keeps the slot pointing at a real card
        if command == "read":
            return removed if pulled else card.as_read()
        if slot_card_no != card_no:
            return (
                removed
                if pulled
                else CardRemoved(
                    f"the card in the reader is {slot_card_no}, not {card_no}: "
                    "ask the resident to insert the card being topped up"
                )
            )
        if fault == _PULL_BEFORE_APPLY:
            return removed
        assert credit is not None  # credit_prepaid always passes one
        try:
            credited = card.apply_credit(*credit)
        except CardRefused as refusal:
            return removed if pulled else refusal
        self._store_card(conn, credited)
        return removed if pulled else credited.as_read()

    def _arm(self, fault: str, status_word: str | None) -> None:
        with self._lock, write_transaction(self._conn) as conn:
            conn.execute("UPDATE reader SET fault = ?, fault_status_word = ?", (fault, status_word))

    def _set_connected(self, connected: bool) -> None:
        with self._lock, write_transaction(self._conn) as conn:
            conn.execute("UPDATE reader SET connected = ?", (int(connected),))

    def _require_empty_slot(self, conn: sqlite3.Connection) -> None:
        reader = self._reader(conn)
        if reader["slot_card_no"] is not None or reader["slot_foreign"]:
            raise ValueError("a card is in the reader already: remove it first")

    @staticmethod
    def _reader(conn: sqlite3.Connection) -> sqlite3.Row:
        row: sqlite3.Row = conn.execute("SELECT * FROM reader").fetchone()
        return row

    @staticmethod
    def _card(conn: sqlite3.Connection, card_no: str) -> SimulatedPrepaidCard | None:
        row = conn.execute("SELECT * FROM cards WHERE card_no = ?", (card_no,)).fetchone()
        if row is None:
            return None
        loads = conn.execute(
            "SELECT counter, amount_fen, terminal, ref FROM load_log WHERE card_no = ? "
            "ORDER BY counter DESC LIMIT ?",
            (card_no, LOAD_LOG_RECORDS),
        ).fetchall()
        return SimulatedPrepaidCard(
            card_no=row["card_no"],
            utility=row["utility"],
            meter_no=row["meter_no"],
            purchase_counter=row["purchase_counter"],
            last_credit_fen=row["last_credit_fen"],
            balance_fen=row["balance_fen"],
            blocked=bool(row["blocked"]),
            load_log=tuple(CardLoad(**dict(load)) for load in loads),
        )

    def _require_new(self, conn: sqlite3.Connection, card_no: str) -> None:
        if (
            self._card(conn, card_no) is not None
            or self._technician(conn, card_no) is not None
            or self._operator(conn, card_no) is not None
        ):
            raise ValueError(f"a simulated card {card_no} exists already: use another number")

    @staticmethod
    def _operator(conn: sqlite3.Connection, card_no: str) -> SimulatedOperatorCard | None:
        row = conn.execute("SELECT * FROM operator_cards WHERE card_no = ?", (card_no,)).fetchone()
        if row is None:
            return None
        return SimulatedOperatorCard(
            card_no=row["card_no"],
            operator_id=row["operator_id"],
            pin_digest=row["pin_digest"],
            tries_left=row["tries_left"],
        )

    @staticmethod
    def _technician(conn: sqlite3.Connection, card_no: str) -> SimulatedTechnicianCard | None:
        row = conn.execute(
            "SELECT * FROM technician_cards WHERE card_no = ?", (card_no,)
        ).fetchone()
        if row is None:
            return None
        return SimulatedTechnicianCard(
            card_no=row["card_no"],
            technician_id=row["technician_id"],
            pin_digest=row["pin_digest"],
            tries_left=row["tries_left"],
        )

    @staticmethod
    def _store_card(conn: sqlite3.Connection, card: SimulatedPrepaidCard) -> None:
        conn.execute(
            "INSERT INTO cards (card_no, utility, meter_no, purchase_counter, last_credit_fen,"
            " balance_fen, blocked) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (card_no) DO UPDATE SET"
            " purchase_counter = excluded.purchase_counter,"
            " last_credit_fen = excluded.last_credit_fen,"
            " balance_fen = excluded.balance_fen, blocked = excluded.blocked",
            (
                card.card_no,
                card.utility,
                card.meter_no,
                card.purchase_counter,
                card.last_credit_fen,
                card.balance_fen,
                int(card.blocked),
            ),
        )
        # The log as the card holds it: the newest loads only, older ones overwritten.
        conn.execute("DELETE FROM load_log WHERE card_no = ?", (card.card_no,))
        conn.executemany(
            "INSERT INTO load_log (card_no, counter, amount_fen, terminal, ref)"
            " VALUES (?, ?, ?, ?, ?)",
            [(card.card_no, x.counter, x.amount_fen, x.terminal, x.ref) for x in card.load_log],
        )
