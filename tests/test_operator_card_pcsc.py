"""The station operator's card on the real PC/SC stack: pyscard -> private pcscd -> vpcd ->
our simulated card (drivers/smartcard/operator_app.py). Nothing is mocked.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from drivers.smartcard.pcsc_reader import PcscCardReader
from kiosk.devices import CardError, OperatorCardBlocked, OperatorPinWrong
from simulators.vpcd_card import VpcdCardSimulator
from tests.fixtures.pcscd import PrivatePcscd

OPERATOR = "87000000000007"
TECH = "99000000000042"
PIN = "135790"


@pytest.fixture
def cards(vpcd_cards: VpcdCardSimulator) -> VpcdCardSimulator:
    vpcd_cards.issue_operator(OPERATOR, "OP-0007", PIN)
    vpcd_cards.issue_technician(TECH, "T-042", "2468")
    return vpcd_cards


def insert(cards: VpcdCardSimulator, reader: PcscCardReader, card_no: str) -> None:
    cards.insert(card_no)
    assert reader.wait_for_card(True, 10.0)


def test_the_operator_card_gives_its_id_for_the_right_pin(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    insert(cards, pcsc_reader, OPERATOR)
    with pytest.raises(OperatorPinWrong) as wrong:
        pcsc_reader.verify_operator("111111")
    assert wrong.value.tries_left == 2
    assert pcsc_reader.verify_operator(PIN) == "OP-0007"
    assert cards.operator(OPERATOR).tries_left == 3
    assert str(pcsc_reader.health()["atr"]).startswith("3B8A8001")  # "KIOSK-OPER": 10 bytes


def test_three_wrong_pins_block_the_operator_card_and_its_state_file_keeps_it(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader, pcscd: PrivatePcscd
) -> None:
    insert(cards, pcsc_reader, OPERATOR)
    for pin in ("111111", "222222"):
        with pytest.raises(OperatorPinWrong):
            pcsc_reader.verify_operator(pin)
    with pytest.raises(OperatorCardBlocked):
        pcsc_reader.verify_operator("333333")
    with pytest.raises(OperatorCardBlocked):
        pcsc_reader.verify_operator(PIN)
    cards.close()
    assert pcscd.card_simulator(cards.state_path).operator(OPERATOR).blocked


def test_the_two_staff_cards_are_told_apart_by_their_application(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    with pytest.raises(CardError, match="no operator card"):
        pcsc_reader.verify_operator(PIN)
    insert(cards, pcsc_reader, TECH)
    with pytest.raises(CardError, match="not an operator card"):
        pcsc_reader.verify_operator("2468")
    cards.remove()
    assert pcsc_reader.wait_for_card(False, 10.0)
    insert(cards, pcsc_reader, OPERATOR)
    with pytest.raises(CardError, match="not a technician card"):
        pcsc_reader.verify_technician(PIN)
    assert cards.operator(OPERATOR).tries_left == 3  # nothing was tried on it


def test_a_state_file_written_before_operator_cards_still_loads(
    pcscd: PrivatePcscd, tmp_path: Path
) -> None:
    state = tmp_path / "old-cards.json"
    state.write_text('{"utility": {}, "technician": {}}', encoding="utf-8")
    simulator = pcscd.card_simulator(state)
    try:
        simulator.issue_operator(OPERATOR, "OP-0007", PIN)
        assert simulator.has_card(OPERATOR)
    finally:
        simulator.close()


def test_kiosk_tool_card_simulate_serves_an_operator_card_the_driver_verifies(
    pcscd: PrivatePcscd, tmp_path: Path
) -> None:
    pin_file = tmp_path / "operator.pin"
    pin_file.write_text(PIN + "\n", encoding="ascii")
    command = [
        sys.executable, "-m", "simulators.cards", "simulate", "--card", "operator",
        "--card-no", OPERATOR, "--operator-id", "OP-0042", "--pin-file", str(pin_file),
        "--state", str(tmp_path / "cards.json"), "--port", str(pcscd.port),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reader = PcscCardReader(pcscd.reader_name, monitor=False)
    try:
        assert reader.wait_for_card(True, 20.0)
        assert reader.verify_operator(PIN) == "OP-0042"
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.close()
    pcscd.wait_for_empty_reader()
    assert "operator card" in (process.stdout.read() if process.stdout else "")
    again = subprocess.run(
        [*command[:5], "technician", *command[6:]], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1 and "is not a technician card" in again.stderr
