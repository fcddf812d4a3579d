"""The host driver against the real firmware logic behind a pseudo-terminal (the bench board).

Every test drives the board as people do (a 10-yuan note as a pulse train, the door, the
enclosure, the USB cable) and talks to it only through SerialIoBoard over pyserial.
"""

import os
import select
import threading
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.ioboard.firmware import FIRMWARE_VERSION, link
from drivers.ioboard.host import (
    IoBoardNotAnswering,
    IoBoardVersionMismatch,
    SerialIoBoard,
    TamperStillOpen,
)
from kiosk.devices import CashAcceptor, CashKind, IoBoard
from simulators.ioboard import SimulatedIoBoard
from simulators.ioboard_board import BoardHarness, CashHandedBack, bench_settings, wait_for


def test_the_driver_is_both_the_cash_acceptor_and_the_io_board(ioboard: SerialIoBoard) -> None:
    acceptor: CashAcceptor = ioboard
    board: IoBoard = ioboard

    assert acceptor.pending() == []
    assert board.board_status().link_up is True


def test_the_handshake_reports_firmware_version_capabilities_and_board_id(
    ioboard: SerialIoBoard,
) -> None:
    hello = ioboard.identify()

    assert hello["firmware_version"] == FIRMWARE_VERSION
    assert hello["protocol_version"] == link.PROTOCOL_VERSION
    assert set(hello["capabilities"]) >= {"coin", "note", "door", "tamper", "watchdog"}
    assert len(hello["board_id"]) == 8


def test_a_ten_yuan_note_arrives_as_one_pending_event_until_acknowledged(
    ioboard_harness: BoardHarness, ioboard: SerialIoBoard
) -> None:
    ioboard.set_accepting(True)

    ioboard_harness.insert("note", 1000)

    (event,) = ioboard.pending()
    assert (event.kind, event.value_fen) == ("note", 1000)
    assert event.event_id.startswith(ioboard.identify()["board_id"] + "-")
    ioboard.acknowledge(event.event_id)
    assert ioboard.pending() == []


def test_cash_offered_while_the_inlets_are_closed_is_handed_back_and_not_counted(
    ioboard_harness: BoardHarness, ioboard: SerialIoBoard
) -> None:
    ioboard.set_accepting(False)

    with pytest.raises(CashHandedBack):
        ioboard_harness.insert("note", 1000)

    assert ioboard.pending() == []
    assert ioboard.health()["accepting"] is False


def test_a_pulse_train_between_channels_is_a_pending_unrecognised_item_worth_nothing(
    ioboard_harness: BoardHarness, ioboard: SerialIoBoard
) -> None:
    ioboard.set_accepting(True)

    ioboard_harness.send_pulses("note", 7)

    wait_for(lambda: ioboard.health()["pending"] == 1, "count the unknown train")
    (item,) = ioboard.pending()
    assert (item.kind, item.value_fen) == (CashKind.UNRECOGNISED, 0)
    assert item.detail == "pulses=7 on the note inlet"
    assert item.event_id.startswith(ioboard.identify()["board_id"] + "-")
    assert not any(e.kind == "cash_unrecognised" for e in ioboard.board_events())
    ioboard.acknowledge(item.event_id)
    assert ioboard.pending() == []


def test_a_limit_drives_the_validators_channel_inhibit_lines(
    ioboard_harness: BoardHarness, ioboard: SerialIoBoard
) -> None:
    ioboard.set_accepting(True, largest_fen=2000)

    assert ioboard_harness.hal.enabled_fen == {
        "coin": [10, 50, 100],
        "note": [100, 500, 1000, 2000],
    }
    ioboard.set_accepting(False)
    assert ioboard_harness.hal.enabled_fen == {"coin": [], "note": []}


def test_the_limit_survives_the_usb_cable_pulled_and_plugged_back(
    ioboard_harness: BoardHarness, ioboard: SerialIoBoard
) -> None:
    ioboard.set_accepting(True, largest_fen=1000)
    ioboard_harness.pull_link()
    with pytest.raises(IoBoardNotAnswering):
        ioboard.pending()
    ioboard_harness.plug_link()

    assert ioboard.health()["largest_fen"] == 1000  # reconnected and shook hands again
    with pytest.raises(CashHandedBack, match="handed back"):
        ioboard_harness.insert("note", 5000)
    ioboard_harness.insert("note", 1000)
    assert [e.value_fen for e in ioboard.pending()] == [1000]


def test_a_negative_limit_is_refused_before_anything_is_sent(ioboard: SerialIoBoard) -> None:
    requests = ioboard.stats["requests"]

    with pytest.raises(ValueError, match="largest_fen -100"):
        ioboard.set_accepting(True, largest_fen=-100)

    assert ioboard.stats["requests"] == requests


def test_cash_counted_while_the_cable_is_out_is_there_after_it_is_plugged_back(
    ioboard_harness: BoardHarness, ioboard: SerialIoBoard
) -> None:
    ioboard.set_accepting(True)
    ioboard_harness.insert("note", 500)
    ioboard_harness.pull_link()

    ioboard_harness.insert("coin", 100)
    with pytest.raises(IoBoardNotAnswering, match="USB cable"):
        ioboard.pending()
    assert ioboard.board_status().link_up is False
    assert ioboard.health()["online"] is False
    ioboard_harness.plug_link()

    assert [(e.kind, e.value_fen) for e in ioboard.pending()] == [("note", 500), ("coin", 100)]
    assert ioboard.stats["reconnects"] == 2


def test_a_board_restart_keeps_counted_cash_and_never_reuses_an_event_id(
    ioboard_harness: BoardHarness, ioboard: SerialIoBoard
) -> None:
    ioboard.set_accepting(True)
    ioboard_harness.insert("note", 2000)
    (first,) = ioboard.pending()
    ioboard.acknowledge(first.event_id)
    ioboard_harness.insert("note", 5000)

    ioboard_harness.restart_board()

    (kept,) = ioboard.pending()  # the driver shakes hands again by itself
    assert kept.value_fen == 5000
    ioboard.set_accepting(True)
    ioboard_harness.insert("note", 2000)
    ids = [first.event_id] + [event.event_id for event in ioboard.pending()]
    assert len(set(ids)) == 3
    restarts = [e for e in ioboard.board_events() if e.kind == "board_restart"]
    assert [e.detail["boots"] for e in restarts] == [1, 2]


def test_door_events_carry_the_hosts_clock_and_leave_once_acknowledged(
    ioboard_harness: BoardHarness, ioboard: SerialIoBoard
) -> None:
    ioboard.heartbeat()  # sets the board's clock

    ioboard_harness.open_door()
    ioboard_harness.close_door()

    events = [e for e in ioboard.board_events() if e.kind.startswith("door")]
    assert [e.kind for e in events] == ["door_open", "door_closed"]
    assert all(e.detail["clock"] == "unix_ms" and e.board_time_ms > 1.6e12 for e in events)
    for event in ioboard.board_events():
        ioboard.acknowledge_board_event(event.event_id)
    assert ioboard.board_events() == []


def test_tamper_stays_latched_until_cleared_and_cannot_be_cleared_while_open(
    ioboard_harness: BoardHarness, ioboard: SerialIoBoard
) -> None:
    ioboard_harness.open_enclosure()

    with pytest.raises(TamperStillOpen, match="close the enclosure"):
        ioboard.clear_tamper()
    ioboard_harness.close_enclosure()
    ioboard_harness.restart_board()
    assert ioboard.board_status().tamper_latched is True
    ioboard.clear_tamper()

    assert ioboard.board_status().tamper_latched is False
    kinds = [e.kind for e in ioboard.board_events()]
    assert kinds.count("tamper") == 1 and kinds[-1] == "tamper_cleared"


def test_the_lamp_shows_the_mode_the_host_sets(
    ioboard_harness: BoardHarness, ioboard: SerialIoBoard
) -> None:
    ioboard.set_lamp("in_service")
    assert ioboard.board_status().lamp == "in_service"
    wait_for(lambda: ioboard_harness.hal.lamp == (0, 255, 0), "light the lamp green")

    with pytest.raises(ValueError, match="unknown"):
        ioboard.set_lamp("disco")


def test_status_reports_temperature_and_says_unknown_when_the_sensor_fails(
    ioboard_harness: BoardHarness, ioboard: SerialIoBoard
) -> None:
    ioboard_harness.hal.temperature = 41.2
    assert ioboard.board_status().temperature_c == pytest.approx(41.2)

    ioboard_harness.hal.temperature = None

    status = ioboard.board_status()
    assert status.temperature_c is None
    assert status.firmware_version == FIRMWARE_VERSION


@pytest.fixture
def fast_watchdog_board(tmp_path: Path) -> Iterator[BoardHarness]:
    settings = bench_settings(
        {"watchdog": {"timeout_ms": 400, "relay_off_ms": 150, "boot_grace_ms": 60_000}}
    )
    harness = BoardHarness(tmp_path / "board", settings)
    harness.start()
    yield harness
    harness.stop()


def test_the_board_power_cycles_a_silent_host_and_reports_it_when_the_host_is_back(
    fast_watchdog_board: BoardHarness,
) -> None:
    host = SerialIoBoard(fast_watchdog_board.port)
    host.heartbeat()
    host.close()  # the host hangs: no more heartbeats

    wait_for(
        lambda: [on for _, on in fast_watchdog_board.hal.host_power][-2:] == [False, True],
        "cut and restore the host's power",
    )

    host = SerialIoBoard(fast_watchdog_board.port)
    host.heartbeat()
    (report,) = [e for e in host.board_events() if e.kind == "watchdog_reset"]
    assert report.detail["fired"] is True and report.detail["silent_ms"] >= 400
    assert host.health()["watchdog_resets"] == 1
    host.close()


def test_maintenance_suspends_the_watchdog_and_shows_the_maintenance_lamp(
    fast_watchdog_board: BoardHarness,
) -> None:
    host = SerialIoBoard(fast_watchdog_board.port)
    host.heartbeat()
    host.set_maintenance(True)

    before = fast_watchdog_board.hal.now_ms()
    wait_for(lambda: fast_watchdog_board.hal.now_ms() > before + 1200, "let time pass")

    assert [on for _, on in fast_watchdog_board.hal.host_power] == [True]
    status = host.board_status()
    assert status.maintenance is True and status.lamp == "maintenance"
    host.close()


def test_a_board_that_does_not_answer_is_a_clear_error_after_bounded_retries(
    ioboard_harness: BoardHarness,
) -> None:
    host = SerialIoBoard(ioboard_harness.port, reply_timeout_s=0.05, attempts=3)
    host.identify()
    ioboard_harness.muted = True

    with pytest.raises(IoBoardNotAnswering, match="not answering after 3 tries"):
        host.set_lamp("attention")

    assert host.stats["retransmissions"] == 2
    host.close()


def test_a_port_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    host = SerialIoBoard(tmp_path / "ttyNONE")

    with pytest.raises(IoBoardNotAnswering, match="check the board's USB cable"):
        host.pending()


@pytest.fixture(params=[(9, "9.0.0"), (1, "1.0.0")], ids=["future", "firmware-1"])
def board_of_another_protocol_version(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[str, int]]:
    """A pseudo-terminal whose 'board' answers every HELLO as another protocol's firmware:
    a newer one, or a board still running firmware 1.0.0 (protocol v1) after an update."""
    version, firmware = request.param
    master, slave = os.openpty()
    tty.setraw(slave)
    stop = threading.Event()

    def answer() -> None:
        deframer = link.Deframer()
        while not stop.is_set():
            if not select.select([master], [], [], 0.05)[0]:
                continue
            for seq, msg_type, _ in deframer.feed(os.read(master, 4096)):
                if msg_type == link.HELLO:
                    hello = link.encode_hello_response(version, 0, "0badf00d", firmware, 0, 1)
                    os.write(master, link.encode_frame(seq, msg_type | link.RESPONSE_BIT, hello))

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield os.ttyname(slave), version
    stop.set()
    thread.join()
    os.close(master)
    os.close(slave)


def test_a_firmware_of_another_protocol_version_is_refused_with_what_to_flash(
    board_of_another_protocol_version: tuple[str, int],
) -> None:
    port, version = board_of_another_protocol_version
    host = SerialIoBoard(port)

    with pytest.raises(IoBoardVersionMismatch) as caught:
        host.pending()

    message = str(caught.value)
    assert f"speaks link protocol v{version} but this terminal speaks v2" in message
    assert "kiosk-tool ioboard flash" in message and "\n" not in message
    host.close()


def test_the_in_process_simulated_board_runs_the_same_firmware_and_faults(tmp_path: Path) -> None:
    board = SimulatedIoBoard(tmp_path / "sim")
    try:
        board.set_accepting(True)
        board.insert("note", 10000)
        board.pull_link()
        with pytest.raises(IoBoardNotAnswering):
            board.pending()
        board.plug_link()
        (event,) = board.pending()
        assert event.value_fen == 10000
        board.open_door()
        assert board.board_status().door_open is True
    finally:
        board.close()
    again = SimulatedIoBoard(tmp_path / "sim")
    try:
        assert [e.value_fen for e in again.pending()] == [10000]
    finally:
        again.close()
