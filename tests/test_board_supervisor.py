"""The core's handling of the I/O board: events journaled once, tamper, maintenance, lamp."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kiosk.board_supervisor import MaintenanceRequired
from kiosk.devices import BoardEvent, BoardStatus, DeviceError
from kiosk.transactions.engine import PaymentRefused
from tests.fixtures.terminal import TerminalRig


@dataclass
class BoardStandIn:
    """An in-memory I/O board for the core's tests of its supervisor.

    A stand-in, not the board simulator: these tests are about what the core does with
    events, and need to fail an acknowledgement or the whole link on command. The board's own
    behaviour is tested against its real firmware logic in tests/test_ioboard_*.py.
    """

    events: list[BoardEvent] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    lamp: str = ""
    lamp_changes: int = 0
    heartbeats: int = 0
    maintenance: bool = False
    tamper: bool = False
    link_up: bool = True
    fail_acknowledge: bool = False

    def _link(self) -> None:
        if not self.link_up:
            raise DeviceError("the I/O board does not answer: check its USB cable")

    def board_events(self) -> list[BoardEvent]:
        self._link()
        return list(self.events)

    def acknowledge_board_event(self, event_id: str) -> None:
        self._link()
        if self.fail_acknowledge:
            raise DeviceError("acknowledgement lost on the link")
        self.acknowledged.append(event_id)
        self.events = [e for e in self.events if e.event_id != event_id]

    def set_lamp(self, mode: str) -> None:
        self._link()
        self.lamp = mode
        self.lamp_changes += 1

    def heartbeat(self) -> None:
        self._link()
        self.heartbeats += 1

    def set_maintenance(self, on: bool) -> None:
        self._link()
        self.maintenance = on

    def clear_tamper(self) -> None:
        self._link()
        self.tamper = False

    def board_status(self) -> BoardStatus:
        self._link()
        return BoardStatus("1.0.0", True, False, self.tamper, self.maintenance, self.lamp, 31.5, 0)

    def health(self) -> dict[str, object]:
        return {"link_up": self.link_up}

    def happen(self, kind: str, n: int) -> None:
        if kind == "tamper":
            self.tamper = True
        self.events.append(BoardEvent(f"B1-{n}", kind, 1000 * n, {"input": kind}))


@pytest.fixture
def board_rig(terminal_rig: TerminalRig) -> Iterator[tuple[TerminalRig, BoardStandIn]]:
    board = BoardStandIn()
    rig = terminal_rig
    from station.composition import build_terminal

    rig.terminal.close()  # the rig's terminal makes way for one with the stand-in board
    rig.terminal, rig.sims = build_terminal(
        rig.config, signer=rig.signer, clock=rig.clock, board=board
    )
    rig.terminal.start()
    yield rig, board


def board_records(rig: TerminalRig, type_: str = "board_event") -> list[dict[str, Any]]:
    return [r for r in rig.terminal.journal.records() if r["type"] == type_]


def test_a_door_event_is_journaled_then_acknowledged_and_announced(board_rig: Any) -> None:
    rig, board = board_rig
    seen: list[str] = []
    rig.terminal.events.subscribe(lambda e: seen.append(e.kind))
    board.happen("door_open", 1)
    rig.terminal.tick()
    [record] = board_records(rig)
    assert record["kind"] == "door_open" and record["event_id"] == "B1-1"
    assert board.acknowledged == ["B1-1"] and "door_open" in seen
    assert board.heartbeats == 1


def test_an_event_whose_acknowledgement_was_lost_is_journaled_only_once(board_rig: Any) -> None:
    rig, board = board_rig
    board.happen("door_open", 1)
    board.fail_acknowledge = True
    rig.terminal.tick()
    rig.terminal.tick()  # the board sends it again: it was never acknowledged
    board.fail_acknowledge = False
    rig.terminal.tick()
    assert len(board_records(rig)) == 1 and board.acknowledged == ["B1-1"]
    assert board.events == []


def test_an_event_seen_before_a_crash_is_not_journaled_again_after_restart(
    board_rig: Any,
) -> None:
    rig, board = board_rig
    board.happen("door_open", 1)
    board.fail_acknowledge = True
    rig.terminal.tick()
    board.fail_acknowledge = False
    from station.composition import build_terminal

    rig.terminal.instance_lock.release()  # a crash: the kernel drops the process's lock
    rig.terminal, rig.sims = build_terminal(
        rig.config, signer=rig.signer, clock=rig.clock, board=board
    )
    rig.terminal.start()
    rig.terminal.tick()
    assert len(board_records(rig)) == 1 and board.acknowledged == ["B1-1"]


def test_a_tamper_takes_the_terminal_out_of_service_until_a_technician_clears_it(
    board_rig: Any,
) -> None:
    rig, board = board_rig
    rig.terminal.tick()
    assert board.lamp in ("in_service", "attention")
    board.happen("tamper", 1)
    rig.terminal.tick()
    assert board.lamp == "out_of_service"
    with pytest.raises(PaymentRefused, match="tamper"):
        rig.terminal.start_phone_topup("mobile-topup", "13800138000", 50_00)
    with pytest.raises(MaintenanceRequired, match="technician card"):
        rig.terminal.clear_tamper()

    rig.terminal.enter_maintenance("TECH-007")
    assert board.maintenance and board.lamp == "maintenance"
    with pytest.raises(PaymentRefused, match="maintenance"):
        rig.terminal.start_phone_topup("mobile-topup", "13800138000", 50_00)
    rig.terminal.clear_tamper()
    rig.terminal.leave_maintenance()
    assert not board.tamper and not board.maintenance
    assert board.lamp in ("in_service", "attention")
    [cleared] = board_records(rig, "tamper_cleared")
    assert cleared["technician"] == "TECH-007" and cleared["tamper_event_id"] == "B1-1"
    actions = [(r["action"], r["technician"]) for r in board_records(rig, "maintenance")]
    assert actions == [("enter", "TECH-007"), ("leave", "TECH-007")]
    rig.terminal.start_phone_topup("mobile-topup", "13800138000", 50_00)


def test_a_tamper_latch_and_maintenance_survive_a_restart(board_rig: Any) -> None:
    rig, board = board_rig
    board.happen("tamper", 1)
    rig.terminal.tick()
    rig.terminal.enter_maintenance("TECH-007")
    board.maintenance = False  # the board restarted and forgot
    rig.crash_and_restart()
    assert rig.terminal.board.tamper_latched and rig.terminal.board.technician == "TECH-007"


def test_the_board_is_told_maintenance_again_once_its_link_is_back(board_rig: Any) -> None:
    rig, board = board_rig
    board.link_up = False
    rig.terminal.enter_maintenance("TECH-007")  # the flag is durable even so
    rig.terminal.tick()  # a dead link is logged, not raised
    board.link_up = True
    rig.terminal.tick()
    assert board.maintenance and board.lamp == "maintenance"


def test_the_lamp_is_set_only_when_the_state_changes(board_rig: Any) -> None:
    rig, board = board_rig
    for _ in range(5):
        rig.terminal.tick()
    assert board.lamp_changes == 1 and board.heartbeats == 5
