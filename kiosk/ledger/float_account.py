"""Float mirror and low-balance threshold crossings (deposits: kiosk.ledger.deposits)."""

import logging
import sqlite3

from kiosk.events import EventBus
from kiosk.journal import Journal
from kiosk.ledger.policy import is_low
from kiosk.platform import FloatState, FloatStatement, PlatformClient, PlatformError
from kiosk.signing import SignerError
from kiosk.storage import write_transaction
from kiosk.terminal_schema import TERMINAL

log = logging.getLogger(__name__)


class FloatAccount:
    def __init__(
        self,
        conn: sqlite3.Connection,
        journal: Journal,
        platform: PlatformClient,
        events: EventBus,
        low_threshold_fen: int,
    ) -> None:
        self._conn = conn
        self._journal = journal
        self._platform = platform
        self._events = events
        self._threshold = low_threshold_fen
        TERMINAL.migrate(conn)

    def last_known(self) -> FloatState | None:
        row = self._conn.execute("SELECT balance_fen, held_fen FROM float_state").fetchone()
        return None if row is None else FloatState(row[0], row[1])

    def refresh(self) -> FloatState | None:
        """Ask the platform; journal and announce a crossing of the low-balance threshold.
        The last known state when the platform does not answer."""
        return self.ask() or self.last_known()

    def ask(self) -> FloatState | None:
        """The platform's answer now, mirrored; None when it did not answer."""
        try:
            state = self._platform.float_state()
        except (PlatformError, SignerError) as exc:
            log.warning("float balance not refreshed: %s", exc)
            return None
        self._mirror(state)
        return state

    @property
    def threshold_fen(self) -> int:
        return self._threshold

    def _mirror(self, state: FloatState) -> None:
        previous = self._conn.execute("SELECT low FROM float_state").fetchone()
        was_low = bool(previous[0]) if previous else False
        low = is_low(state.balance_fen, self._threshold)
        with write_transaction(self._conn):
            self._conn.execute(
                "INSERT INTO float_state (id, balance_fen, held_fen, low, checked) "
                "VALUES (1, ?, ?, ?, datetime('now')) ON CONFLICT(id) DO UPDATE SET "
                "balance_fen = excluded.balance_fen, held_fen = excluded.held_fen, "
                "low = excluded.low, checked = excluded.checked",
                (state.balance_fen, state.held_fen, int(low)),
            )
            if low != was_low:
                self._journal.append(
                    "low_float" if low else "float_restored",
                    {"balance_fen": state.balance_fen, "threshold_fen": self._threshold},
                )
        if low and not was_low:
            self._events.publish(
                "low_float", balance_fen=state.balance_fen, threshold_fen=self._threshold
            )

    def statement(self) -> FloatStatement | None:
        """The platform's statement of the float account (kiosk.settlement.float_check reads
        it at each day close), with the mirror refreshed from it; None if it did not answer."""
        try:
            statement = self._platform.float_statement()
        except (PlatformError, SignerError) as exc:
            log.warning("float statement not read: %s", exc)
            return None
        self._mirror(statement.float_state)
        return statement
