"""The scanner drivers' own rules: cutting characters into scans, the US keymap, the HID
grab, the factory's choice of transport. The Protocol's promises are in
tests/contracts/test_scanner_contract.py."""

from pathlib import Path

import pytest
from evdev import ecodes

from drivers.scanner.assembly import MAX_SCAN_CHARS, LineAssembler, RawScan
from drivers.scanner.factory import is_hid_port, open_scanner
from drivers.scanner.hid_source import HidLineSource
from drivers.scanner.keymap import UNKNOWN_CHAR, KeyDecoder, keys_for
from drivers.scanner.line_driver import LineScanner, LinkError
from drivers.scanner.serial_source import SerialLineSource
from kiosk.devices import ScannerUnavailable
from simulators.scanner import sample_code
from simulators.scanner_hid import HidScannerSimulator
from tests.fixtures.scanner import RECONNECT_S, wait_for

# ---------------------------------------------------------------- cutting scans


def test_a_terminator_ends_a_scan_whatever_the_chunks() -> None:
    lines = LineAssembler(gap_s=0.3)
    assert lines.feed("1345", 0.0) == []
    assert lines.feed("6789\r", 0.01) == [RawScan("13456789", complete=True)]
    assert not lines.waiting


def test_cr_lf_is_one_terminator_and_bare_terminators_end_nothing() -> None:
    lines = LineAssembler(gap_s=0.3)
    assert lines.feed("12\r\n34\n\r\r", 0.0) == [RawScan("12", True), RawScan("34", True)]
    assert lines.feed("\n", 0.01) == []  # the LF of a CR LF split across two reads


def test_a_pause_gives_up_a_partial_scan_before_the_next_one() -> None:
    lines = LineAssembler(gap_s=0.3)
    lines.feed("1234", 0.0)
    assert lines.expire(0.2) == []
    assert lines.feed("5678\r", 0.5) == [RawScan("1234", False), RawScan("5678", True)]


def test_a_partial_scan_expires_without_more_characters() -> None:
    lines = LineAssembler(gap_s=0.3)
    lines.feed("1234", 1.0)
    assert lines.expire(1.31) == [RawScan("1234", False)]
    assert lines.expire(5.0) == []


def test_characters_without_end_are_cut_as_partial_scans() -> None:
    lines = LineAssembler(gap_s=0.3)
    scans = lines.feed("9" * (MAX_SCAN_CHARS + 1), 0.0)
    assert scans == [RawScan("9" * (MAX_SCAN_CHARS + 1), False)]


def test_a_gap_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LineAssembler(gap_s=0)


# ---------------------------------------------------------------- the US keymap


def typed(events: list[tuple[int, int]]) -> str:
    decoder = KeyDecoder()
    return "".join(decoder.key(code, value) for code, value in events)


def test_digits_and_enter_type_on_press_only() -> None:
    events = [(ecodes.KEY_1, 1), (ecodes.KEY_1, 0), (ecodes.KEY_0, 1), (ecodes.KEY_0, 2)]
    events += [(ecodes.KEY_0, 0), (ecodes.KEY_ENTER, 1), (ecodes.KEY_ENTER, 0)]
    assert typed(events) == "10\r"


def test_keypad_digits_and_keypad_enter_type_like_the_row_above() -> None:
    events = [(ecodes.KEY_NUMLOCK, 1), (ecodes.KEY_KP6, 1), (ecodes.KEY_KP2, 1)]
    events += [(ecodes.KEY_KPENTER, 1)]
    assert typed(events) == "62\r"


def test_shift_makes_capitals_and_symbols_until_released() -> None:
    events = [(ecodes.KEY_LEFTSHIFT, 1), (ecodes.KEY_A, 1), (ecodes.KEY_1, 1)]
    events += [(ecodes.KEY_LEFTSHIFT, 0), (ecodes.KEY_A, 1), (ecodes.KEY_1, 1)]
    assert typed(events) == "A!a1"


def test_a_key_outside_the_table_types_the_unknown_character() -> None:
    assert typed([(ecodes.KEY_F13, 1)]) == UNKNOWN_CHAR


def test_what_keys_for_types_decodes_back() -> None:
    text = "Pay-13 4567/x?\r"
    events: list[tuple[int, int]] = []
    for code, shifted in keys_for(text):
        if shifted:
            events.append((ecodes.KEY_RIGHTSHIFT, 1))
        events += [(code, 1), (code, 0)]
        if shifted:
            events.append((ecodes.KEY_RIGHTSHIFT, 0))
    assert typed(events) == text
    with pytest.raises(ValueError, match="cannot type"):
        keys_for("付")


# ---------------------------------------------------------------- the HID driver


def test_the_hid_driver_grabs_the_scanner_away_from_the_screen() -> None:
    simulator = HidScannerSimulator(use_uinput=False)
    scanner = LineScanner(HidLineSource(simulator.port, opener=simulator.opener))
    try:
        wait_for("the driver to open the scanner", lambda: scanner.health()["connected"] is True)
        assert simulator.grabbed
    finally:
        scanner.close()
        simulator.unplug()
    assert not simulator.grabbed


def test_a_scanner_another_program_grabbed_is_unavailable_with_the_reason() -> None:
    simulator = HidScannerSimulator(use_uinput=False)
    simulator.grabbed_elsewhere = True
    scanner = LineScanner(
        HidLineSource(simulator.port, opener=simulator.opener), reconnect_s=RECONNECT_S
    )
    try:
        wait_for(
            "the grab to fail",
            lambda: "grabbed" in str(scanner.health()["last_error"]),
        )
        with pytest.raises(ScannerUnavailable, match="another program has grabbed"):
            scanner.read(0)
        simulator.grabbed_elsewhere = False
        wait_for("the driver to open the scanner", lambda: scanner.health()["connected"] is True)
        scanner.arm()
        simulator.scan(sample_code(serial=9))
        code = scanner.read(5)
        assert code is not None and code.code == sample_code(serial=9)
    finally:
        scanner.close()
        simulator.unplug()


def test_a_missing_input_device_is_a_link_error_naming_it() -> None:
    source = HidLineSource("name:No such scanner")
    with pytest.raises(LinkError, match="No such scanner"):
        source.open()
    with pytest.raises(LinkError):
        HidLineSource("/dev/input/event-none").open()


def test_a_missing_serial_port_is_a_link_error() -> None:
    with pytest.raises(LinkError):
        SerialLineSource("/dev/kiosk-scanner-not-here").open()


# ---------------------------------------------------------------- choosing the driver


def test_the_port_decides_hid_or_serial(tmp_path: Path) -> None:
    assert is_hid_port("name:Newland HID")
    assert is_hid_port("/dev/input/event3")
    link = tmp_path / "kiosk-scanner"
    link.symlink_to("/dev/input/event7")
    assert is_hid_port(str(link))
    assert not is_hid_port("/dev/ttyACM0")
    assert not is_hid_port("/dev/kiosk-scanner-serial")


@pytest.mark.parametrize(("port", "kind"), [("absent", "serial"), ("name:Absent", "hid")])
def test_the_factory_starts_a_driver_that_waits_for_an_absent_scanner(
    tmp_path: Path, port: str, kind: str
) -> None:
    scanner = open_scanner(str(tmp_path / port) if kind == "serial" else port)
    try:
        assert scanner.kind == kind
        wait_for(
            "the first attempt to open",
            lambda: scanner.health()["last_error"] != f"{kind} scanner not opened yet",
        )
        with pytest.raises(ScannerUnavailable, match="not connected"):
            scanner.read(0)
    finally:
        scanner.close()
