"""The in-process simulated reader's technician cards block like the PC/SC ones."""

from pathlib import Path

import pytest

from kiosk.devices import CardError, CardRefused, TechnicianCardBlocked, TechnicianPinWrong
from simulators.smartcard import SimulatedCardReader

TECH = "99000000000042"


@pytest.fixture
def reader(tmp_path: Path) -> SimulatedCardReader:
    reader = SimulatedCardReader(tmp_path / "reader.sqlite")
    reader.create_technician_card(TECH, "T-042", "2468")
    return reader


def test_the_right_pin_gives_the_technician_id(reader: SimulatedCardReader) -> None:
    reader.insert_technician_card(TECH)

    assert reader.verify_technician("2468") == "T-042"


def test_three_wrong_pins_block_the_card_and_the_block_survives_a_restart(
    reader: SimulatedCardReader, tmp_path: Path
) -> None:
    reader.insert_technician_card(TECH)
    tries = []
    for pin in ("1111", "2222"):
        with pytest.raises(TechnicianPinWrong) as wrong:
            reader.verify_technician(pin)
        tries.append(wrong.value.tries_left)
    with pytest.raises(TechnicianCardBlocked):
        reader.verify_technician("3333")
    reader.close()

    again = SimulatedCardReader(tmp_path / "reader.sqlite")
    assert tries == [2, 1]
    with pytest.raises(TechnicianCardBlocked):
        again.verify_technician("2468")
    assert again.technician_card(TECH).blocked


def test_a_technician_card_is_not_a_prepaid_card_and_leaves_with_remove(
    reader: SimulatedCardReader,
) -> None:
    reader.insert_technician_card(TECH)
    with pytest.raises(CardRefused, match="6A82"):
        reader.read_prepaid()

    reader.remove_card()

    assert reader.read_prepaid() is None
    with pytest.raises(CardError, match="no technician card"):
        reader.verify_technician("2468")


def test_an_unplugged_reader_checks_no_pin_and_counts_no_try(reader: SimulatedCardReader) -> None:
    reader.insert_technician_card(TECH)
    reader.unplug()

    with pytest.raises(CardError, match="not connected"):
        reader.verify_technician("1111")

    assert reader.technician_card(TECH).tries_left == 3
