"""Float mirror, low-balance threshold crossings and deposits awaiting confirmation."""

import logging
import sqlite3
import uuid

from kiosk.errors import KioskError
from kiosk.events import EventBus
from kiosk.journal import Journal
from kiosk.money import format_fen
from kiosk.platform import (
    FloatState,
    OutcomeUnknown,
    PlatformClient,
    PlatformError,
    PlatformRefused,
    Refusal,
)
from kiosk.signing import SignerError
from kiosk.storage import write_transaction

log = logging.getLogger(__name__)

# 002 (预存款): "每次预存款不低于500元" — every deposit is at least 500 yuan.
MIN_DEPOSIT_FEN = 500_00

SCHEMA = """
CREATE TABLE IF NOT EXISTS float_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    balance_fen INTEGER NOT NULL,
    held_fen INTEGER NOT NULL,
    low INTEGER NOT NULL,
    checked TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deposit (
    key TEXT PRIMARY KEY,
    amount_fen INTEGER NOT NULL,
    state TEXT NOT NULL              -- pending | confirmed
);
"""


class DepositRefused(KioskError):
    pass


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
        conn.executescript(SCHEMA)

    def last_known(self) -> FloatState | None:
        row = self._conn.execute("SELECT balance_fen, held_fen FROM float_state").fetchone()
        return None if row is None else FloatState(row[0], row[1])

    def refresh(self) -> FloatState | None:
        """Ask the platform; journal and announce a crossing of the low-balance threshold."""
        try:
            state = self._platform.float_state()
        except (PlatformError, SignerError) as exc:
            log.warning("float balance not refreshed: %s", exc)
            return self.last_known()
        previous = self._conn.execute("SELECT low FROM float_state").fetchone()
        was_low = bool(previous[0]) if previous else False
        is_low = state.balance_fen < self._threshold
        with write_transaction(self._conn):
            self._conn.execute(
                "INSERT INTO float_state (id, balance_fen, held_fen, low, checked) "
                "VALUES (1, ?, ?, ?, datetime('now')) ON CONFLICT(id) DO UPDATE SET "
                "balance_fen = excluded.balance_fen, held_fen = excluded.held_fen, "
                "low = excluded.low, checked = excluded.checked",
                (state.balance_fen, state.held_fen, int(is_low)),
            )
            if is_low != was_low:
                self._journal.append(
                    "low_float" if is_low else "float_restored",
                    {"balance_fen": state.balance_fen, "threshold_fen": self._threshold},
                )
        if is_low and not was_low:
            self._events.publish(
                "low_float", balance_fen=state.balance_fen, threshold_fen=self._threshold
            )
        return state

    def request_deposit(self, amount_fen: int) -> str:
        """Announce a deposit to the platform; it counts only once the platform confirms it."""
        if amount_fen < MIN_DEPOSIT_FEN:
            raise DepositRefused(
                f"a deposit must be at least {format_fen(MIN_DEPOSIT_FEN)}, "
                f"not {format_fen(amount_fen)}"
            )
        key = f"dep-{uuid.uuid4().hex[:16]}"
        with write_transaction(self._conn):
            self._conn.execute(
                "INSERT INTO deposit (key, amount_fen, state) VALUES (?, ?, 'pending')",
                (key, amount_fen),
            )
            self._journal.append(
                "float_deposit", {"deposit_key": key, "amount_fen": amount_fen, "state": "pending"}
            )
        self._platform.deposit(key, amount_fen)
        return key

    def check_deposits(self) -> list[str]:
        """Journal every deposit the platform has confirmed since the last check."""
        confirmed: list[str] = []
        for key, amount in self._conn.execute(
            "SELECT key, amount_fen FROM deposit WHERE state = 'pending'"
        ).fetchall():
            try:
                status = self._platform.deposit_status(key)
            except PlatformRefused as exc:
                if exc.code != Refusal.DEPOSIT_NOT_FOUND:
                    break
                # The announcement never reached the platform: announce it again (same key).
                try:
                    status = self._platform.deposit(key, amount, sent_before=True)
                except (PlatformError, SignerError) as again:
                    log.warning("deposit %s not announced yet: %s", key, again)
                    break
            except (OutcomeUnknown, SignerError):
                break
            if status.state != "confirmed":
                continue
            with write_transaction(self._conn):
                self._conn.execute("UPDATE deposit SET state = 'confirmed' WHERE key = ?", (key,))
                self._journal.append(
                    "float_deposit",
                    {"deposit_key": key, "amount_fen": amount, "state": "confirmed"},
                )
            confirmed.append(key)
        if confirmed:
            self.refresh()
        return confirmed
