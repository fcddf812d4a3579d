"""The terminal's side of the I/O board: physical security, maintenance mode, lamp, watchdog.

Owns turning the board's events (door, tamper, watchdog resets, board restarts) into journal
records and bus events — journaled before they are acknowledged to the board, exactly once
by event id — and the state they imply: a latched tamper takes the terminal out of service
until a technician clears it in maintenance mode; maintenance mode is entered and left by a
named technician, journaled, and suspends the board's watchdog. It feeds the watchdog and
keeps the lamp showing the terminal's state. It never talks to a serial port itself (the
board driver does) and never decides anything about money.
"""

import logging
import sqlite3
from collections.abc import Callable

from kiosk.devices import LAMP_MODES, BoardEvent, DeviceError, IoBoard
from kiosk.errors import KioskError
from kiosk.events import EventBus
from kiosk.journal import Journal
from kiosk.journal.record_types import RecordType
from kiosk.storage import write_transaction
from kiosk.terminal_schema import TERMINAL

log = logging.getLogger(__name__)


class MaintenanceRequired(KioskError):
    """The action needs maintenance mode (a technician card and PIN first)."""


class BoardSupervisor:
    """Drains board events into the journal and keeps maintenance, tamper and lamp state.

    The maintenance flag and the tamper latch are stored in the terminal's database, so a
    restart neither drops a technician out of maintenance silently nor forgets a tamper.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        journal: Journal,
        board: IoBoard | None,
        events: EventBus,
        *,
        service_state: Callable[[], str],
    ) -> None:
        self._conn = conn
        self._journal = journal
        self.board = board
        self._events = events
        self._service_state = service_state
        self._lamp_shown: str | None = None
        TERMINAL.migrate(conn)

    # ------------------------------------------------------------------ state

    def _mode(self, name: str) -> str | None:
        row = self._conn.execute(
            "SELECT value FROM terminal_mode WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else str(row[0])

    def _set_mode(self, name: str, value: str | None) -> None:
        if value is None:
            self._conn.execute("DELETE FROM terminal_mode WHERE name = ?", (name,))
        else:
            self._conn.execute(
                "INSERT INTO terminal_mode (name, value) VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    @property
    def technician(self) -> str | None:
        """The technician in maintenance mode, or None when the terminal is in service."""
        return self._mode("maintenance")

    @property
    def tamper_latched(self) -> bool:
        return self._mode("tamper") is not None

    # ------------------------------------------------------------------ board events

    def drain(self) -> list[BoardEvent]:
        """Journal every new board event, then acknowledge it; return the new ones."""
        if self.board is None:
            return []
        try:
            pending = self.board.board_events()
        except DeviceError as exc:
            log.warning("I/O board events unavailable: %s", exc)
            return []
        new: list[BoardEvent] = []
        for event in pending:
            if self._record(event):
                new.append(event)
                self._events.publish(
                    event.kind, event_id=event.event_id, source="ioboard", detail=dict(event.detail)
                )
            try:
                # Acknowledged only once the record is durable: a crash before this line
                # makes the board send it again, and the seen-table drops the repeat.
                self.board.acknowledge_board_event(event.event_id)
            except DeviceError as exc:
                log.warning("I/O board did not take the acknowledgement: %s", exc)
                break
        return new

    def _record(self, event: BoardEvent) -> bool:
        with write_transaction(self._conn):
            seen = self._conn.execute(
                "SELECT 1 FROM board_event_seen WHERE event_id = ?", (event.event_id,)
            ).fetchone()
            if seen is not None:
                return False
            record = self._journal.append(
                RecordType.BOARD_EVENT,
                {
                    "event_id": event.event_id,
                    "kind": event.kind,
                    "board_time_ms": event.board_time_ms,
                    "detail": dict(event.detail),
                },
            )
            self._conn.execute(
                "INSERT INTO board_event_seen (event_id, seq) VALUES (?, ?)",
                (event.event_id, record["seq"]),
            )
            if event.kind == "tamper":
                self._set_mode("tamper", event.event_id)
        return True

    # ------------------------------------------------------------------ maintenance

    def enter_maintenance(self, technician_id: str) -> None:
        if not technician_id:
            raise KioskError("a technician id is needed to enter maintenance mode")
        with write_transaction(self._conn):
            if self.technician == technician_id:
                return
            self._journal.append("maintenance", {"action": "enter", "technician": technician_id})
            self._set_mode("maintenance", technician_id)
        self._tell_board_maintenance(True)
        self._events.publish("maintenance_entered", technician=technician_id)
        self.refresh_lamp()

    def leave_maintenance(self) -> None:
        technician = self.technician
        if technician is None:
            return
        with write_transaction(self._conn):
            self._journal.append("maintenance", {"action": "leave", "technician": technician})
            self._set_mode("maintenance", None)
        self._tell_board_maintenance(False)
        self._events.publish("maintenance_left", technician=technician)
        self.refresh_lamp()

    def clear_tamper(self) -> None:
        """Clear a latched tamper: only a technician in maintenance mode may."""
        technician = self.technician
        if technician is None:
            raise MaintenanceRequired(
                "clearing a tamper alarm needs maintenance mode: insert a technician card"
            )
        if self.board is not None:
            self.board.clear_tamper()  # the board's latch first: if it fails, nothing changes
        with write_transaction(self._conn):
            latched = self._mode("tamper")
            self._journal.append(
                "tamper_cleared", {"technician": technician, "tamper_event_id": latched}
            )
            self._set_mode("tamper", None)
        self._events.publish("tamper_cleared", technician=technician)
        self.refresh_lamp()

    def _tell_board_maintenance(self, on: bool) -> None:
        if self.board is None:
            return
        try:
            self.board.set_maintenance(on)
        except DeviceError as exc:
            # The flag is durable here; tick() tells the board again once it answers.
            log.warning("I/O board did not take maintenance=%s: %s", on, exc)

    # ------------------------------------------------------------------ housekeeping

    def tick(self) -> None:
        """Feed the watchdog, take new events, keep the board's maintenance flag and lamp."""
        if self.board is None:
            return
        try:
            self.board.heartbeat()
        except DeviceError as exc:
            log.warning("I/O board heartbeat failed: %s", exc)
        self.drain()
        try:
            status = self.board.board_status()
            if status.link_up and status.maintenance != (self.technician is not None):
                self.board.set_maintenance(self.technician is not None)
        except DeviceError as exc:
            log.warning("I/O board status unavailable: %s", exc)
        self.refresh_lamp()

    def refresh_lamp(self) -> None:
        if self.board is None:
            return
        mode = self._service_state()
        if mode not in LAMP_MODES:
            raise ValueError(f"unknown lamp mode {mode!r}")
        if mode == self._lamp_shown:
            return
        try:
            self.board.set_lamp(mode)
            self._lamp_shown = mode
        except DeviceError as exc:
            log.warning("I/O board lamp not set to %s: %s", mode, exc)
