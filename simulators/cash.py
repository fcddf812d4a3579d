"""A simulated cash acceptor board whose counted cash survives a killed terminal process.

It owns the board's side of kiosk.devices.CashAcceptor: the inlets and their denomination
limit, the numbering of counted notes, coins and unrecognised items, and the buffer of events
the host has not acknowledged yet, all kept in a SQLite file (WAL, synchronous=FULL) so that a
new simulator opened on the same state path continues exactly where a killed one stopped, as
a real board does. It also models the board's faults: a jammed inlet, a link reset that
re-sends acknowledged events, a board that does not answer, link errors on the next or on
random host calls, and the board's own restart. It never decides what the cash pays for.
"""

import dataclasses
import secrets
import sqlite3
import threading
from pathlib import Path

from drivers.cash import (
    ACCEPTED_DENOMINATIONS_FEN,
    INLETS,
    CashRejected,
    check_largest_fen,
    denominations_up_to,
    unrecognised_detail,
)
from kiosk.devices import CashEvent, CashKind, DeviceError
from kiosk.money import format_fen
from kiosk.schema import Database, Migration, register
from kiosk.storage import open_database, write_transaction
from simulators.cash_link_faults import (
    LinkFaultPlan,
    LostPart,
    link_error_text,
    plan_next_calls,
    plan_random_calls,
)

__all__ = ["CashRejected", "SimulatedCashAcceptor"]

# A real board keeps only a bounded history of acknowledged events for re-sending after a link
# reset; older ones are forgotten. Unacknowledged events are never dropped.
ACKNOWLEDGED_HISTORY = 1000

# The simulated board's state file. Its first columns' later additions were made when
# missing by releases before versioning: migration 2 (kiosk.schema adopts such a file).
CASH_BOARD = register(
    Database(
        "simulated cash board",
        (
            Migration(
                1,
                "acceptor, events, link faults",
                """
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
CREATE TABLE IF NOT EXISTS link_faults (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    remaining INTEGER NOT NULL,
    probability REAL NOT NULL,
    seed INTEGER NOT NULL,
    draws INTEGER NOT NULL,
    lose TEXT NOT NULL
)
""",
            ),
            Migration(
                2,
                "the largest value accepted; why an item was refused",
                """
ALTER TABLE acceptor ADD COLUMN largest_fen INTEGER;
ALTER TABLE events ADD COLUMN detail TEXT NOT NULL DEFAULT ''
""",
            ),
        ),
    )
)


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
        CASH_BOARD.migrate(self._conn)
        with write_transaction(self._conn) as conn:
            # A fresh board gets a random identity so that its event ids never repeat those
            # of an earlier board whose state file was deleted.
            conn.execute(
                "INSERT OR IGNORE INTO acceptor (singleton, acceptor_id, next_number, accepting,"
                " jammed, online, largest_fen) VALUES (1, ?, 1, 0, 0, 1, NULL)",
                (f"cash-{secrets.token_hex(4)}",),
            )

    # ------------------------------------------------------------ the host's side (Protocol)

    def set_accepting(self, accepting: bool, largest_fen: int | None = None) -> None:
        largest_fen = check_largest_fen(largest_fen)
        with self._lock:
            with write_transaction(self._conn) as conn:
                lost = self._host_call(conn)
                if lost is not LostPart.REQUEST:
                    # Absolute, as the board's request is: an earlier limit is replaced.
                    conn.execute(
                        "UPDATE acceptor SET accepting = ?, largest_fen = ?",
                        (int(accepting), largest_fen if accepting else None),
                    )
            _raise_link_error(lost)

    def pending(self) -> list[CashEvent]:
        with self._lock:
            with write_transaction(self._conn) as conn:
                lost = self._host_call(conn)
                rows = conn.execute(
                    "SELECT event_id, kind, value_fen, detail FROM events"
                    " WHERE acknowledged = 0 OR redeliver = 1 ORDER BY number"
                ).fetchall()
            _raise_link_error(lost)
        return [
            CashEvent(row["event_id"], CashKind(row["kind"]), row["value_fen"], row["detail"])
            for row in rows
        ]

    def acknowledge(self, event_id: str) -> None:
        with self._lock:
            with write_transaction(self._conn) as conn:
                lost = self._host_call(conn)
                if lost is not LostPart.REQUEST:
                    # Unknown and already acknowledged ids match nothing or change nothing:
                    # the host may repeat an acknowledgement after a restart without harm.
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
            _raise_link_error(lost)

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
                    "largest_fen": None,
                    "jammed": None,
                    "pending": None,
                }
            pending = self._conn.execute(
                "SELECT count(*) FROM events WHERE acknowledged = 0 OR redeliver = 1"
            ).fetchone()[0]
        largest = state["largest_fen"]
        # As the board reports its inlets: open only if some denomination is still let in.
        takes_some = any(denominations_up_to(inlet, largest) for inlet in INLETS)
        return {
            "device": "cash acceptor (simulated)",
            "acceptor_id": state["acceptor_id"],
            "online": True,
            "accepting": bool(state["accepting"]) and takes_some,
            "largest_fen": largest,
            "jammed": bool(state["jammed"]),
            "pending": pending,
        }

    # ------------------------------------------------------------ the customer's side

    def insert(self, kind: str, value_fen: int) -> CashEvent:
        """A customer puts a note or coin into the inlet.

        Counted cash is in the board's durable buffer before this returns. The board counts
        while its link to the host is down (it buffers until acknowledged), but refuses while
        the inlets are closed or jammed, refuses unknown denominations and, as a validator
        whose channel is inhibited, denominations above the limit the host set.
        """
        inlet = _inlet(kind)
        accepted = ACCEPTED_DENOMINATIONS_FEN[inlet]
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
            self._require_open_inlets(state)
            largest = state["largest_fen"]
            if value_fen not in denominations_up_to(inlet, largest):
                raise CashRejected(
                    f"a {kind} of {format_fen(value_fen)} is above the {format_fen(largest)} "
                    "the inlets take now: it was handed back"
                )
            return self._count(conn, state, CashEvent("", inlet, value_fen))

    def insert_unrecognised(self, inlet: str, pulses: int = 3) -> CashEvent:
        """The validator takes something it cannot value (a pulse count between channels).

        Counted as an event of kind unrecognised worth 0 fen, durably, like a note; refused
        like any cash while the inlets are closed or jammed (the validator takes nothing then).
        """
        kind = _inlet(inlet)
        if isinstance(pulses, bool) or not isinstance(pulses, int) or pulses <= 0:
            raise ValueError(f"{pulses!r} pulses: an unrecognised item sends 1 or more pulses")
        with self._lock, write_transaction(self._conn) as conn:
            state = self._state(conn)
            self._require_open_inlets(state)
            item = CashEvent("", CashKind.UNRECOGNISED, 0, unrecognised_detail(kind, pulses))
            return self._count(conn, state, item)

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

    def restart_board(self) -> None:
        """The board restarts on its own: counted cash stays, the inlets close, no limit."""
        with self._lock, write_transaction(self._conn) as conn:
            conn.execute("UPDATE acceptor SET accepting = 0, largest_fen = NULL")

    def fail_next_host_calls(self, count: int, lose: LostPart | str = LostPart.REQUEST) -> None:
        """The next `count` host calls (set_accepting, pending, acknowledge) fail.

        Each raises DeviceError; `lose` says whether the board never saw the request or
        carried it out and lost the answer ("either": drawn per call). Replaces any armed
        link fault; durable like every other fault.
        """
        self._arm(plan_next_calls(count, lose))

    def fail_host_calls_randomly(
        self, probability: float, seed: int, lose: LostPart | str = LostPart.EITHER
    ) -> None:
        """Every later host call fails with `probability`, reproducibly for `seed`."""
        self._arm(plan_random_calls(probability, seed, lose))

    def stop_failing_host_calls(self) -> None:
        self._arm(LinkFaultPlan())

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

    @staticmethod
    def _require_open_inlets(state: sqlite3.Row) -> None:
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

    @staticmethod
    def _count(conn: sqlite3.Connection, state: sqlite3.Row, item: CashEvent) -> CashEvent:
        """Number item and keep it in the durable buffer (inside the caller's transaction)."""
        number = state["next_number"]
        event = CashEvent(
            f"{state['acceptor_id']}-{number}", item.kind, item.value_fen, item.detail
        )
        conn.execute(
            "INSERT INTO events (number, event_id, kind, value_fen, detail) VALUES (?, ?, ?, ?, ?)",
            (number, event.event_id, str(event.kind), event.value_fen, event.detail),
        )
        conn.execute("UPDATE acceptor SET next_number = ?", (number + 1,))
        return event

    def _arm(self, plan: LinkFaultPlan) -> None:
        with self._lock, write_transaction(self._conn) as conn:
            _save_plan(conn, plan)

    def _host_call(self, conn: sqlite3.Connection) -> LostPart | None:
        """The online check and the armed link fault's decision for one host call.

        Runs in the call's transaction, so the draw is committed together with what the
        call did (nothing, for a lost request): a killed process never replays a decision.
        """
        self._require_online(conn)
        plan = _load_plan(conn)
        before = dataclasses.replace(plan)
        lost = plan.next_call()
        if plan != before:
            # Even a call that goes through may use a draw: the next must not repeat it.
            _save_plan(conn, plan)
        return lost


def _raise_link_error(lost: LostPart | None) -> None:
    """After the call's transaction: the host hears of a lost request or answer."""
    if lost is not None:
        raise DeviceError(
            f"I/O board link error ({link_error_text(lost)}): repeat the call; "
            "counted cash stays buffered on the board"
        )


def _inlet(kind: str) -> CashKind:
    try:
        inlet = CashKind(kind)
    except ValueError:
        inlet = CashKind.UNRECOGNISED
    if inlet not in INLETS:
        raise CashRejected(f"{kind!r} is neither a note nor a coin: it was handed back")
    return inlet


def _load_plan(conn: sqlite3.Connection) -> LinkFaultPlan:
    row = conn.execute("SELECT * FROM link_faults").fetchone()
    if row is None:
        return LinkFaultPlan()
    return LinkFaultPlan(
        remaining=row["remaining"],
        probability=row["probability"],
        seed=row["seed"],
        draws=row["draws"],
        lose=LostPart(row["lose"]),
    )


def _save_plan(conn: sqlite3.Connection, plan: LinkFaultPlan) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO link_faults (singleton, remaining, probability, seed, draws, lose)"
        " VALUES (1, ?, ?, ?, ?, ?)",
        (plan.remaining, plan.probability, plan.seed, plan.draws, str(plan.lose)),
    )
