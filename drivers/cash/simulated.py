"""A simulated cash acceptor board whose counted cash survives a killed terminal process.

It owns the board's side of kiosk.devices.CashAcceptor: the inlets, the numbering of counted
notes and coins, and the buffer of events the host has not acknowledged yet, all kept in a
SQLite file (WAL, synchronous=FULL) so that a new simulator opened on the same state path
continues exactly where a killed one stopped, as a real board does. It also models the board's
faults: a jammed inlet, a link reset that re-sends acknowledged events, and a board that does
not answer. It never decides what the cash pays for.
"""

import secrets
import sqlite3
import threading
from pathlib import Path

from drivers.cash import ACCEPTED_DENOMINATIONS_FEN
from kiosk.devices import CashEvent, DeviceError
from kiosk.money import format_fen
from kiosk.storage import open_database, write_transaction

# A real board keeps only a bounded history of acknowledged events for re-sending after a link
# reset; older ones are forgotten. Unacknowledged events are never dropped.
ACKNOWLEDGED_HISTORY = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS acceptor (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    acceptor_id TEXT NOT NULL,
    next_number INTEGER NOT NULL,
    accepting INTEGER NOT NULL,
    jammed INTEGER NOT NULL,
    online INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    number INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    value_fen INTEGER NOT NULL,
    acknowledged INTEGER NOT NULL DEFAULT 0,
    redeliver INTEGER NOT NULL DEFAULT 0
);
"""


class CashRejected(DeviceError):
    """A note or coin was not counted and went back to the customer; the message says why."""


class SimulatedCashAcceptor:
    """The simulated I/O board's cash inlets (satisfies kiosk.devices.CashAcceptor).

    insert() is the customer's side: it either counts the note or coin durably and returns its
    CashEvent, or raises CashRejected (the cash is handed back, nothing is counted).
    """

    kind = "simulated"

    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path
        self._lock = threading.Lock()
        self._conn = open_database(state_path)
        with write_transaction(self._conn) as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            # A fresh board gets a random identity so that its event ids never repeat those
            # of an earlier board whose state file was deleted.
            conn.execute(
                "INSERT OR IGNORE INTO acceptor VALUES (1, ?, 1, 0, 0, 1)",
                (f"cash-{secrets.token_hex(4)}",),
            )

    # ------------------------------------------------------------ the host's side (Protocol)

    def set_accepting(self, accepting: bool) -> None:
        with self._lock, write_transaction(self._conn) as conn:
            self._require_online(conn)
            conn.execute("UPDATE acceptor SET accepting = ?", (int(accepting),))

    def pending(self) -> list[CashEvent]:
        with self._lock, write_transaction(self._conn) as conn:
            self._require_online(conn)
            rows = conn.execute(
                "SELECT event_id, kind, value_fen FROM events"
                " WHERE acknowledged = 0 OR redeliver = 1 ORDER BY number"
            ).fetchall()
        return [CashEvent(row["event_id"], row["kind"], row["value_fen"]) for row in rows]

    def acknowledge(self, event_id: str) -> None:
        with self._lock, write_transaction(self._conn) as conn:
            self._require_online(conn)
            # Unknown and already acknowledged ids match nothing or change nothing: the host
            # may repeat an acknowledgement after a restart without harm.
            conn.execute(
                "UPDATE events SET acknowledged = 1, redeliver = 0 WHERE event_id = ?",
                (event_id,),
            )
            conn.execute(
                "DELETE FROM events WHERE acknowledged = 1 AND number <= ("
                " SELECT number FROM events WHERE acknowledged = 1"
                " ORDER BY number DESC LIMIT 1 OFFSET ?)",
                (ACKNOWLEDGED_HISTORY,),
            )

    def health(self) -> dict[str, object]:
        with self._lock:
            state = self._state(self._conn)
            if not state["online"]:
                # The board did not answer: what it is doing is unknown, never "fine".
                return {
                    "device": "cash acceptor (simulated)",
                    "acceptor_id": state["acceptor_id"],
                    "online": False,
                    "accepting": None,
                    "jammed": None,
                    "pending": None,
                }
            pending = self._conn.execute(
                "SELECT count(*) FROM events WHERE acknowledged = 0 OR redeliver = 1"
            ).fetchone()[0]
        return {
            "device": "cash acceptor (simulated)",
            "acceptor_id": state["acceptor_id"],
            "online": True,
            "accepting": bool(state["accepting"]),
            "jammed": bool(state["jammed"]),
            "pending": pending,
        }

    # ------------------------------------------------------------ the customer's side

    def insert(self, kind: str, value_fen: int) -> CashEvent:
        """A customer puts a note or coin into the inlet.

        Counted cash is in the board's durable buffer before this returns. The board counts
        while its link to the host is down (it buffers until acknowledged), but refuses while
        the inlets are closed or jammed and refuses unknown denominations.
        """
        accepted = ACCEPTED_DENOMINATIONS_FEN.get(kind)
        if accepted is None:
            raise CashRejected(f"{kind!r} is neither a note nor a coin: it was handed back")
        if (
            isinstance(value_fen, bool)
            or not isinstance(value_fen, int)
            or value_fen not in accepted
        ):
            shown = format_fen(value_fen) if isinstance(value_fen, int) else repr(value_fen)
            choices = ", ".join(format_fen(value) for value in sorted(accepted))
            raise CashRejected(
                f"a {kind} of {shown} is not accepted (only {choices}): it was handed back"
            )
        with self._lock, write_transaction(self._conn) as conn:
            state = self._state(conn)
            if state["jammed"]:
                raise CashRejected(
                    "the cash inlet is jammed: the cash was handed back; "
                    "a technician must clear the inlet"
                )
            if not state["accepting"]:
                raise CashRejected(
                    "the cash inlets are closed: the cash was handed back; "
                    "choose a service on the screen first"
                )
            number = state["next_number"]
            event = CashEvent(f"{state['acceptor_id']}-{number}", kind, value_fen)
            conn.execute(
                "INSERT INTO events (number, event_id, kind, value_fen) VALUES (?, ?, ?, ?)",
                (number, event.event_id, kind, value_fen),
            )
            conn.execute("UPDATE acceptor SET next_number = ?", (number + 1,))
        return event

    # ------------------------------------------------------------ faults

    def jam(self) -> None:
        """A note sticks in the inlet: health says jammed and the inlets refuse cash."""
        self._set_flag("jammed", True)

    def clear_jam(self) -> None:
        self._set_flag("jammed", False)

    def go_offline(self) -> None:
        """The board stops answering the host: the host's calls raise DeviceError."""
        self._set_flag("online", False)

    def go_online(self) -> None:
        self._set_flag("online", True)

    def redeliver_acknowledged(self, count: int) -> int:
        """After a link reset the board re-sends its `count` most recently acknowledged events.

        They reappear in pending() (in their original order) until acknowledged again. Returns
        how many will be re-sent (fewer when the board remembers fewer).
        """
        if count < 0:
            raise ValueError(f"cannot re-send {count} events: give a count of 0 or more")
        with self._lock, write_transaction(self._conn) as conn:
            cursor = conn.execute(
                "UPDATE events SET redeliver = 1 WHERE number IN ("
                " SELECT number FROM events WHERE acknowledged = 1"
                " ORDER BY number DESC LIMIT ?)",
                (count,),
            )
            return cursor.rowcount

    @property
    def acceptor_id(self) -> str:
        with self._lock:
            return str(self._state(self._conn)["acceptor_id"])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------ internals

    def _set_flag(self, column: str, value: bool) -> None:
        # column is one of this module's literal names, never caller text.
        with self._lock, write_transaction(self._conn) as conn:
            conn.execute(f"UPDATE acceptor SET {column} = ?", (int(value),))

    @staticmethod
    def _state(conn: sqlite3.Connection) -> sqlite3.Row:
        row: sqlite3.Row = conn.execute("SELECT * FROM acceptor").fetchone()
        return row

    def _require_online(self, conn: sqlite3.Connection) -> None:
        if not self._state(conn)["online"]:
            raise DeviceError(
                "I/O board not answering: check its USB cable and power; "
                "counted cash stays buffered on the board"
            )
