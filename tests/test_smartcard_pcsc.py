"""The PC/SC reader driver end to end: pyscard -> private pcscd -> vpcd -> our simulated cards.

Nothing is mocked: tests/fixtures/pcscd.py starts pcscd with the vsmartcard virtual reader and
the cards answer APDUs over vpcd's TCP link, as docs/smartcard.md describes.
"""

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.smartcard.pcsc_reader import CardReaderEvent, PcscCardReader
from drivers.smartcard.prepaid_card import CardStatusError
from drivers.smartcard.prepaid_mac import credit_mac
from kiosk.devices import (
    CardError,
    CardLoad,
    CardRefused,
    CardRemoved,
    PrepaidCard,
    TechnicianCardBlocked,
    TechnicianPinWrong,
)
from simulators.vpcd_card import CardProtocol, VpcdCardSimulator
from tests.fixtures.pcscd import PrivatePcscd

CARD = "31000012345678"
TECH = "99000000000042"
PIN = "2468"
TERMINAL = "K-31000001-01"


def ref(counter: int) -> str:
    return f"{TERMINAL}-{counter:016x}-p"


def insert(cards: VpcdCardSimulator, reader: PcscCardReader, card_no: str) -> None:
    cards.insert(card_no)
    assert reader.wait_for_card(True, 10.0)


def credit(reader: PcscCardReader, amount_fen: int, counter: int) -> PrepaidCard:
    mac = credit_mac(CARD, counter, amount_fen, TERMINAL, ref(counter))
    return reader.credit_prepaid(
        CARD, amount_fen, counter, mac, terminal=TERMINAL, ref=ref(counter)
    )


def wait_until(condition: object, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def cards(vpcd_cards: VpcdCardSimulator) -> VpcdCardSimulator:
    vpcd_cards.issue_prepaid(CARD, "electricity", "4400123456")
    vpcd_cards.issue_technician(TECH, "T-042", PIN)
    return vpcd_cards


def test_a_card_read_through_pcscd_gives_its_record_and_health_its_atr(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    assert pcsc_reader.read_prepaid() is None
    insert(cards, pcsc_reader, CARD)

    card = pcsc_reader.read_prepaid()
    health = pcsc_reader.health()

    assert card == PrepaidCard(CARD, "electricity", "4400123456", 0, 0, last_load=None)
    json.dumps(health)
    assert health["connected"] is True and health["card_present"] is True
    assert str(health["atr"]).startswith("3B8D8001")


def test_a_credit_is_applied_once_and_the_card_keeps_its_counter_in_its_state_file(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader, pcscd: PrivatePcscd
) -> None:
    insert(cards, pcsc_reader, CARD)

    assert credit(pcsc_reader, 5000, 1).purchase_counter == 1
    with pytest.raises(CardRefused, match="6985"):
        credit(pcsc_reader, 5000, 1)
    cards.close()

    again = pcscd.card_simulator(cards.state_path)
    assert (again.prepaid(CARD).purchase_counter, again.prepaid(CARD).balance_fen) == (1, 5000)


def test_a_wrong_mac_is_refused_with_6988_and_loads_nothing(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    insert(cards, pcsc_reader, CARD)

    with pytest.raises(CardRefused, match="6988"):
        pcsc_reader.credit_prepaid(
            CARD,
            99900,
            1,
            credit_mac(CARD, 1, 100, TERMINAL, ref(1)),
            terminal=TERMINAL,
            ref=ref(1),
        )

    assert cards.prepaid(CARD).balance_fen == 0


@pytest.mark.parametrize(
    ("terminal", "to"), [("K-31000001-02", ref(1)), (TERMINAL, ref(2))], ids=["terminal", "ref"]
)
def test_a_mac_for_another_terminal_or_reference_is_refused_with_6988(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader, terminal: str, to: str
) -> None:
    insert(cards, pcsc_reader, CARD)
    mac = credit_mac(CARD, 1, 5000, TERMINAL, ref(1))

    with pytest.raises(CardRefused, match="6988"):
        pcsc_reader.credit_prepaid(CARD, 5000, 1, mac, terminal=terminal, ref=to)

    assert cards.prepaid(CARD).load_log == ()


def test_a_terminal_id_or_reference_longer_than_the_card_holds_is_refused_with_6a80(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    insert(cards, pcsc_reader, CARD)

    for terminal, to in (("T" * 33, ref(1)), (TERMINAL, "R" * 65)):
        mac = credit_mac(CARD, 1, 5000, terminal, to)
        with pytest.raises(CardRefused, match="6A80"):
            pcsc_reader.credit_prepaid(CARD, 5000, 1, mac, terminal=terminal, ref=to)
    with pytest.raises(CardRefused, match="nothing reached the card"):
        pcsc_reader.credit_prepaid(CARD, 5000, 1, bytes(8), terminal=TERMINAL, ref="R" * 250)

    assert cards.prepaid(CARD).purchase_counter == 0


def test_the_load_log_is_read_record_by_record_and_keeps_the_newest_ten(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    insert(cards, pcsc_reader, CARD)
    assert pcsc_reader.load_log() == []

    for counter in range(1, 12):
        credited = credit(pcsc_reader, 100 * counter, counter)
        assert credited.last_load == CardLoad(counter, 100 * counter, TERMINAL, ref(counter))

    log = pcsc_reader.load_log()
    assert [load.counter for load in log] == list(range(11, 1, -1))
    assert log[0] == CardLoad(11, 1100, TERMINAL, ref(11))
    card = pcsc_reader.read_prepaid()
    assert card is not None and card.last_load == log[0]


def test_a_card_pulled_before_the_write_and_loaded_elsewhere_reads_with_the_other_load(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    insert(cards, pcsc_reader, CARD)
    with pytest.raises(ValueError, match="remove it"):
        cards.load_elsewhere(CARD, 3000)  # it is in this kiosk's reader, not at the office
    cards.pull_during_next_command(after_apply=False)
    with pytest.raises(CardRemoved):
        credit(pcsc_reader, 5000, 1)
    assert pcsc_reader.wait_for_card(False, 10.0)

    cards.load_elsewhere(CARD, 3000, ref="GRID-01-0000815")
    insert(cards, pcsc_reader, CARD)

    card = pcsc_reader.read_prepaid()
    assert card is not None and card.purchase_counter == 1
    assert card.last_load == CardLoad(1, 3000, "GRID-01", "GRID-01-0000815")


def test_a_card_pulled_before_the_credit_is_removed_and_unchanged(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    insert(cards, pcsc_reader, CARD)
    cards.pull_during_next_command(after_apply=False)

    with pytest.raises(CardRemoved):
        credit(pcsc_reader, 5000, 1)

    assert cards.inserted is None
    insert(cards, pcsc_reader, CARD)
    card = pcsc_reader.read_prepaid()
    assert card is not None and card.purchase_counter == 0
    assert credit(pcsc_reader, 5000, 1).purchase_counter == 1  # the resumed credit


def test_a_card_pulled_after_it_applied_the_credit_shows_it_and_refuses_the_retry(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    insert(cards, pcsc_reader, CARD)
    cards.pull_during_next_command(after_apply=True)

    with pytest.raises(CardRemoved):
        credit(pcsc_reader, 5000, 1)
    insert(cards, pcsc_reader, CARD)

    card = pcsc_reader.read_prepaid()
    assert card is not None and (card.purchase_counter, card.last_credit_fen) == (1, 5000)
    with pytest.raises(CardRefused):
        credit(pcsc_reader, 5000, 1)


def test_a_memory_failure_status_word_is_a_card_error_not_a_refusal(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    insert(cards, pcsc_reader, CARD)
    cards.answer_error("6581")

    with pytest.raises(CardStatusError, match="6581") as failure:
        credit(pcsc_reader, 5000, 1)

    assert not isinstance(failure.value, CardRefused)
    assert cards.prepaid(CARD).purchase_counter == 0
    assert credit(pcsc_reader, 5000, 1).purchase_counter == 1  # only the next command failed


def test_a_blocked_card_refuses_the_credit_with_6983(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    cards.block_prepaid(CARD)
    insert(cards, pcsc_reader, CARD)

    with pytest.raises(CardRefused, match="6983"):
        credit(pcsc_reader, 5000, 1)


def test_a_card_without_the_prepaid_application_is_refused_with_6a82(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    insert(cards, pcsc_reader, TECH)

    with pytest.raises(CardRefused, match="6A82"):
        pcsc_reader.read_prepaid()


def test_the_technician_card_gives_its_id_for_the_right_pin(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    insert(cards, pcsc_reader, TECH)

    with pytest.raises(TechnicianPinWrong) as wrong:
        pcsc_reader.verify_technician("1111")

    assert wrong.value.tries_left == 2
    assert pcsc_reader.verify_technician(PIN) == "T-042"
    assert cards.technician(TECH).tries_left == 3


def test_three_wrong_pins_block_the_technician_card_for_good(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader, pcscd: PrivatePcscd
) -> None:
    insert(cards, pcsc_reader, TECH)
    tries = []
    for pin in ("1111", "2222"):
        with pytest.raises(TechnicianPinWrong) as wrong:
            pcsc_reader.verify_technician(pin)
        tries.append(wrong.value.tries_left)
    with pytest.raises(TechnicianCardBlocked):
        pcsc_reader.verify_technician("3333")
    with pytest.raises(TechnicianCardBlocked):
        pcsc_reader.verify_technician(PIN)
    cards.close()

    assert tries == [2, 1]
    assert pcscd.card_simulator(cards.state_path).technician(TECH).blocked


def test_a_technician_check_without_a_technician_card_is_a_card_error(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    with pytest.raises(CardError, match="no technician card"):
        pcsc_reader.verify_technician(PIN)
    insert(cards, pcsc_reader, CARD)
    with pytest.raises(CardError, match="not a technician card"):
        pcsc_reader.verify_technician(PIN)


def test_insertions_and_removals_reach_observers_with_their_card_session(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    assert pcsc_reader.wait_for_card(False, 10.0)  # the last test's card has left
    seen: list[CardReaderEvent] = []
    pcsc_reader.add_observer(seen.append)

    insert(cards, pcsc_reader, CARD)
    cards.remove()
    assert pcsc_reader.wait_for_card(False, 10.0)
    insert(cards, pcsc_reader, TECH)

    def card_events() -> list[tuple[str, int]]:
        return [(e.kind, e.session) for e in seen if e.kind.startswith("card_")]

    assert wait_until(lambda: card_events()[-1:] and card_events()[-1][0] == "card_inserted")
    assert wait_until(lambda: len(card_events()) >= 3), seen
    last = card_events()[-3:]
    first = last[0][1]
    assert last == [("card_inserted", first), ("card_removed", first), ("card_inserted", first + 1)]
    assert pcsc_reader.events()[-1].atr.startswith("3B8A8001")  # the technician card's ATR


def test_a_restarted_pcscd_is_recovered_without_a_new_driver(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader, pcscd: PrivatePcscd
) -> None:
    insert(cards, pcsc_reader, CARD)
    assert pcsc_reader.read_prepaid() is not None

    pcscd.restart()

    assert pcsc_reader.wait_for_card(True, 15.0)  # the card reconnects to the new vpcd
    card = pcsc_reader.read_prepaid()
    assert card is not None and card.card_no == CARD
    kinds = [e.kind for e in pcsc_reader.events()]
    assert wait_until(lambda: "service_restored" in [e.kind for e in pcsc_reader.events()])
    assert "service_lost" in [e.kind for e in pcsc_reader.events()] or "reader_removed" in kinds


def test_an_unplugged_reader_is_a_card_error_and_works_again_when_plugged_back(
    cards: VpcdCardSimulator, pcsc_reader: PcscCardReader, pcscd: PrivatePcscd
) -> None:
    insert(cards, pcsc_reader, CARD)
    pcscd.stop()
    try:
        with pytest.raises(CardError, match="pcscd|reader"):
            pcsc_reader.read_prepaid()
        health = pcsc_reader.health()
        assert (health["connected"], health["card_present"]) == (False, None)
    finally:
        pcscd.start()

    assert pcsc_reader.wait_for_card(True, 15.0)
    assert credit(pcsc_reader, 5000, 1).purchase_counter == 1


def test_a_card_that_hangs_gives_a_card_error_within_the_timeout(
    cards: VpcdCardSimulator, pcscd: PrivatePcscd
) -> None:
    reader = PcscCardReader(pcscd.reader_name, timeout_s=1.0, monitor=False)
    insert(cards, reader, CARD)
    release = threading.Event()
    original = cards.answer

    def slow_answer(card_no: str, raw: bytes) -> bytes:
        release.wait(5.0)
        return original(card_no, raw)

    cards.answer = slow_answer  # type: ignore[method-assign]
    started = time.monotonic()
    try:
        with pytest.raises(CardError, match="did not answer within 1 s"):
            reader.read_prepaid()
        assert time.monotonic() - started < 4.0
    finally:
        release.set()
        cards.answer = original  # type: ignore[method-assign]
        reader.close()


def test_kiosk_tool_card_simulate_serves_a_card_that_the_driver_reads(
    pcscd: PrivatePcscd, tmp_path: Path
) -> None:
    import subprocess
    import sys

    control = tmp_path / "control.sock"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulators.cards",
            "simulate",
            "--card",
            "utility",
            "--card-no",
            CARD,
            "--meter-no",
            "4400123456",
            "--state",
            str(tmp_path / "cards.json"),
            "--port",
            str(pcscd.port),
            "--control",
            str(control),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader = PcscCardReader(pcscd.reader_name, monitor=False)
    try:
        assert reader.wait_for_card(True, 20.0)
        card = reader.read_prepaid()
        assert card is not None and card.meter_no == "4400123456"
        steer = subprocess.run(
            [sys.executable, "-m", "simulators.cards", "control", "remove",
             "--control", str(control), "--json"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert steer.returncode == 0, steer.stderr
        assert json.loads(steer.stdout)["inserted"] is None
        assert reader.wait_for_card(False, 10.0)
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.close()
    assert process.stdout is not None and "virtual reader" in process.stdout.read()


def test_kiosk_tool_card_control_without_a_simulator_says_so_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "simulators.cards", "control", "status",
         "--control", str(tmp_path / "none.sock")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "no card simulator answers" in result.stderr


# ---------------------------------------------------------------- T=0 cards


class Exchanges:
    """What passed between pcscd and the simulated card: (command hex, status word) pairs.

    A spy wrapped around the real card's answer(): the card still answers every command."""

    def __init__(self, cards: VpcdCardSimulator) -> None:
        self.seen: list[tuple[str, str]] = []
        self._answer = cards.answer
        cards.answer = self  # type: ignore[method-assign]

    def __call__(self, card_no: str, raw: bytes) -> bytes:
        response = self._answer(card_no, raw)
        self.seen.append((raw.hex().upper(), response[-2:].hex().upper()))
        return response

    def status_words(self) -> list[str]:
        return [sw for _, sw in self.seen]


@pytest.fixture
def t0_cards(pcscd: PrivatePcscd, tmp_path: Path) -> Iterator[VpcdCardSimulator]:
    """A T=0 utility card whose I/O buffer holds 16 bytes (answers come in chunks)."""
    cards = pcscd.card_simulator(tmp_path / "cards.json", protocol=CardProtocol.T0, t0_chunk=16)
    cards.issue_prepaid(CARD, "electricity", "4400123456")
    cards.issue_technician(TECH, "T-042", PIN)
    yield cards
    cards.close()
    pcscd.wait_for_empty_reader()


def test_a_t0_technician_card_gives_its_id_after_an_le_correction(
    t0_cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    insert(t0_cards, pcsc_reader, TECH)
    exchanges = Exchanges(t0_cards)

    assert pcsc_reader.verify_technician(PIN) == "T-042"

    assert exchanges.status_words()[-2:] == ["6C05", "9000"]  # "T-042" is 5 bytes


def test_a_t0_card_is_read_and_credited_through_get_response_and_le_correction(
    t0_cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    insert(t0_cards, pcsc_reader, CARD)
    assert str(pcsc_reader.health()["atr"]).startswith("3B0D")  # T=0 only: pcscd uses T=0
    exchanges = Exchanges(t0_cards)

    read = pcsc_reader.read_prepaid()
    credited = credit(pcsc_reader, 5000, 1)

    assert read == PrepaidCard(CARD, "electricity", "4400123456", 0, 0, last_load=None)
    assert credited.purchase_counter == 1
    assert credited.last_load == CardLoad(1, 5000, TERMINAL, ref(1))
    commands = [command for command, _ in exchanges.seen]
    status_words = exchanges.status_words()
    assert any(sw.startswith("6C") for sw in status_words)  # READ CARD with Le 00, resent
    assert "6110" in status_words  # the CREDIT answer announced 16 bytes at a time
    assert sum(command.startswith("00C00000") for command in commands) >= 3  # chained
    assert t0_cards.prepaid(CARD).balance_fen == 5000


def test_a_t0_card_that_never_stops_announcing_data_is_a_card_error_not_a_hang(
    t0_cards: VpcdCardSimulator, pcsc_reader: PcscCardReader
) -> None:
    insert(t0_cards, pcsc_reader, CARD)
    original = t0_cards.answer

    def endless(card_no: str, raw: bytes) -> bytes:
        if raw[:2] == b"\x00\xc0":
            return b"\x00" + bytes.fromhex("6101")  # one byte, and one more, for ever
        return original(card_no, raw)

    t0_cards.answer = endless  # type: ignore[method-assign]
    try:
        with pytest.raises(CardError, match="kept asking for GET RESPONSE"):
            credit(pcsc_reader, 5000, 1)
    finally:
        t0_cards.answer = original  # type: ignore[method-assign]
    assert t0_cards.prepaid(CARD).purchase_counter == 1  # the card did apply it
    card = pcsc_reader.read_prepaid()
    assert card is not None and card.last_load == CardLoad(1, 5000, TERMINAL, ref(1))


# ---------------------------------------------------------------- several readers


@pytest.fixture
def spare_cards(pcscd: PrivatePcscd, tmp_path: Path) -> Iterator[VpcdCardSimulator]:
    """Simulated cards for the second reader pcscd lists (vpcd's second slot)."""
    cards = pcscd.card_simulator(tmp_path / "spare-cards.json", spare=True)
    cards.issue_prepaid(CARD, "electricity", "4400123456")
    yield cards
    cards.close()
    pcscd.wait_for_empty_reader(spare=True)


@pytest.mark.parametrize("pattern", ["*vpcd 00 01", "Kiosk Test vpcd 00 01", "Kiosk*[1]"])
def test_the_reader_is_chosen_by_its_name_pattern_among_several(
    spare_cards: VpcdCardSimulator, pcscd: PrivatePcscd, pattern: str
) -> None:
    chosen = PcscCardReader(pattern, monitor=False, timeout_s=10.0)
    other = PcscCardReader("*vpcd 00 00", monitor=False, timeout_s=10.0)
    first = PcscCardReader("", monitor=False, timeout_s=10.0)
    try:
        insert(spare_cards, chosen, CARD)

        card = chosen.read_prepaid()

        assert card is not None and card.card_no == CARD
        assert chosen.health()["reader"] == pcscd.spare_reader_name
        assert other.read_prepaid() is None  # the other reader is empty
        assert first.health()["reader"] == pcscd.reader_name  # "": the first reader listed
    finally:
        for reader in (chosen, other, first):
            reader.close()


@pytest.mark.parametrize(
    ("pattern", "error"),
    [
        ("Gemalto*", "no card reader matches 'Gemalto*' (readers present: "),
        ("Kiosk Test vpcd", "2 card readers match 'Kiosk Test vpcd'"),
        ("*vpcd 00 0[01]", "2 card readers match"),
    ],
)
def test_a_pattern_matching_no_reader_or_several_is_one_clear_error_naming_them(
    pcscd: PrivatePcscd, pattern: str, error: str
) -> None:
    reader = PcscCardReader(pattern, monitor=False)
    try:
        with pytest.raises(CardError, match=re.escape(error)) as failure:
            reader.read_prepaid()
        health = reader.health()
    finally:
        reader.close()

    message = str(failure.value)
    assert "\n" not in message
    assert all(repr(name) in message for name in pcscd.reader_names)
    assert (health["connected"], health["card_present"]) == (False, None)
    assert health["last_error"] == message


# ---------------------------------------------------------------- simulated cards (T=0, elsewhere)


def kiosk_tool_card(*args: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [sys.executable, "-m", "simulators.cards", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_kiosk_tool_serves_a_t0_card_and_loads_it_elsewhere_for_the_bench(
    pcscd: PrivatePcscd, tmp_path: Path
) -> None:
    control = str(tmp_path / "control.sock")
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators.cards", "simulate", "--card", "utility",
         "--card-no", CARD, "--meter-no", "4400123456", "--state", str(tmp_path / "cards.json"),
         "--port", str(pcscd.port), "--control", control, "--protocol", "t0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    reader = PcscCardReader(pcscd.reader_name, monitor=False, timeout_s=10.0)
    try:
        assert reader.wait_for_card(True, 20.0)
        assert str(reader.health()["atr"]).startswith("3B0D")  # a T=0 card
        assert credit(reader, 5000, 1).last_load == CardLoad(1, 5000, TERMINAL, ref(1))

        in_reader = kiosk_tool_card("control", "load-elsewhere", "--control", control,
                                    "--card-no", CARD, "--amount", "30")  # fmt: skip
        bad_amount = kiosk_tool_card("control", "load-elsewhere", "--control", control,
                                     "--card-no", CARD, "--amount", "30元")  # fmt: skip
        assert kiosk_tool_card("control", "remove", "--control", control).returncode == 0
        assert reader.wait_for_card(False, 10.0)
        loaded = kiosk_tool_card("control", "load-elsewhere", "--control", control,
                                 "--card-no", CARD, "--amount", "30", "--ref", "GRID-01-7",
                                 "--json")  # fmt: skip
        plain = kiosk_tool_card("control", "load-elsewhere", "--control", control,
                                "--card-no", CARD, "--amount", "0.50",
                                "--terminal", "GAS-OFFICE-3")  # fmt: skip
        assert kiosk_tool_card("control", "insert", "--control", control,
                               "--card-no", CARD).returncode == 0  # fmt: skip
        assert reader.wait_for_card(True, 10.0)
        card = reader.read_prepaid()
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.close()
        pcscd.wait_for_empty_reader()

    assert in_reader.returncode == 1 and in_reader.stderr.count("\n") == 1
    assert "remove it before loading it elsewhere" in in_reader.stderr
    assert bad_amount.returncode == 1 and bad_amount.stderr.count("\n") == 1
    assert "not a yuan amount" in bad_amount.stderr
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["card"]["last_load"] == {
        "counter": 2, "amount_fen": 3000, "terminal": "GRID-01", "ref": "GRID-01-7"
    }  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert "loaded ¥0.50 at terminal GAS-OFFICE-3" in plain.stdout
    assert card is not None and card.purchase_counter == 3
    assert card.last_load is not None and card.last_load.terminal == "GAS-OFFICE-3"
