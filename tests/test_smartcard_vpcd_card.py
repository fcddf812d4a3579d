"""The vpcd simulated card's APDU answers, byte for byte: load log, CREDIT data and T=0.

These call VpcdCardSimulator.answer() directly with command APDUs, as vpcd hands them over,
so every status word the card can give is reached without a reader; tests/test_smartcard_pcsc.py
runs the same card through pcscd.
"""

from pathlib import Path

import pytest

from drivers.smartcard import prepaid_app
from drivers.smartcard.apdu import CommandApdu, ResponseApdu, encode_tlv
from drivers.smartcard.prepaid_mac import credit_mac
from kiosk.devices import CardLoad
from simulators.vpcd_card import CardProtocol, VpcdCardSimulator

CARD = "31000012345678"
TERMINAL = "K-31000001-01"


def simulator(
    tmp_path: Path, protocol: CardProtocol = CardProtocol.T1, chunk: int = 256
) -> VpcdCardSimulator:
    cards = VpcdCardSimulator(tmp_path / "cards.json", protocol=protocol, t0_chunk=chunk)
    cards.issue_prepaid(CARD, "electricity", "4400123456")
    return cards


def send(cards: VpcdCardSimulator, command: CommandApdu | str) -> ResponseApdu:
    raw = bytes.fromhex(command) if isinstance(command, str) else command.encode()
    return ResponseApdu.decode(cards.answer(CARD, raw))


def credit_command(counter: int, amount: int = 5000, ref: str = "") -> CommandApdu:
    ref = ref or f"{TERMINAL}-{counter}-p"
    mac = credit_mac(CARD, counter, amount, TERMINAL, ref)
    return prepaid_app.credit(amount, counter, mac, TERMINAL, ref)


@pytest.fixture
def cards(tmp_path: Path) -> VpcdCardSimulator:
    cards = simulator(tmp_path)
    assert send(cards, prepaid_app.select()).ok
    return cards


# ---------------------------------------------------------------- load log (READ RECORD)


def test_read_record_1_is_the_newest_load_and_an_empty_log_answers_6a83(
    cards: VpcdCardSimulator,
) -> None:
    assert send(cards, prepaid_app.read_load_record(1)).status_word == "6A83"
    assert send(cards, credit_command(1, 5000)).ok
    assert send(cards, credit_command(2, 700)).ok

    newest = send(cards, prepaid_app.read_load_record(1))
    older = send(cards, prepaid_app.read_load_record(2))

    assert newest.ok and older.ok
    assert prepaid_app.decode_load_record(newest.data) == CardLoad(
        2, 700, TERMINAL, f"{TERMINAL}-2-p"
    )
    assert prepaid_app.decode_load_record(older.data).counter == 1
    assert send(cards, prepaid_app.read_load_record(3)).status_word == "6A83"


@pytest.mark.parametrize(
    ("apdu", "status_word"),
    [
        ("00B200C400", "6A83"),  # record 0: no such record
        ("00B201BC00", "6A82"),  # SFI 17: no such file
        ("00B201C500", "6B00"),  # P2 mode other than "record number in P1"
    ],
)
def test_read_record_refuses_what_the_load_log_does_not_hold(
    cards: VpcdCardSimulator, apdu: str, status_word: str
) -> None:
    send(cards, credit_command(1))

    assert send(cards, apdu).status_word == status_word


def test_the_log_survives_a_new_simulator_on_the_same_state_file(
    cards: VpcdCardSimulator, tmp_path: Path
) -> None:
    send(cards, credit_command(1))

    again = VpcdCardSimulator(tmp_path / "cards.json")

    assert again.prepaid(CARD).load_log == (CardLoad(1, 5000, TERMINAL, f"{TERMINAL}-1-p"),)


# ---------------------------------------------------------------- CREDIT data


def test_a_credit_too_short_for_amount_counter_and_mac_answers_6700(
    cards: VpcdCardSimulator,
) -> None:
    short = CommandApdu(0x80, prepaid_app.INS_CREDIT, 0, 0, bytes(15), le=256)

    assert send(cards, short).status_word == "6700"


def test_a_credit_without_terminal_and_reference_answers_6a80_and_loads_nothing(
    cards: VpcdCardSimulator,
) -> None:
    whole = credit_command(1)
    bare = CommandApdu(0x80, prepaid_app.INS_CREDIT, 0, 0, whole.data[:16], le=256)
    broken_tlv = CommandApdu(
        0x80, prepaid_app.INS_CREDIT, 0, 0, whole.data[:16] + b"\xd3\x09ab", le=256
    )
    not_ascii = CommandApdu(
        0x80,
        prepaid_app.INS_CREDIT,
        0,
        0,
        whole.data[:16] + encode_tlv([(0xD3, b"\xff"), (0xD4, b"r")]),
        le=256,
    )

    for command in (bare, broken_tlv, not_ascii):
        assert send(cards, command).status_word == "6A80"
    assert cards.prepaid(CARD).purchase_counter == 0


def test_a_credit_with_a_terminal_id_longer_than_the_card_holds_answers_6a80(
    cards: VpcdCardSimulator,
) -> None:
    terminal = "T" * 33
    mac = credit_mac(CARD, 1, 5000, terminal, "R-1")

    answer = send(cards, prepaid_app.credit(5000, 1, mac, terminal, "R-1"))

    assert answer.status_word == "6A80"
    assert cards.prepaid(CARD).load_log == ()


# ---------------------------------------------------------------- T=0


def test_a_t0_card_announces_case_4_data_with_61xx_and_gives_it_to_get_response(
    tmp_path: Path,
) -> None:
    cards = simulator(tmp_path, CardProtocol.T0)
    assert send(cards, prepaid_app.select()).status_word == "9000"  # no data: as it is

    announced = send(cards, credit_command(1))
    length = announced.sw & 0xFF
    fetched = send(cards, CommandApdu(0x00, 0xC0, 0x00, 0x00, le=length))

    assert announced.sw >> 8 == 0x61 and announced.data == b""
    assert fetched.ok and len(fetched.data) == length
    assert prepaid_app.decode_card_record(fetched.data).purchase_counter == 1


def test_a_t0_card_answers_a_wrong_le_with_6cxx_and_the_right_le_with_the_data(
    tmp_path: Path,
) -> None:
    cards = simulator(tmp_path, CardProtocol.T0)
    send(cards, prepaid_app.select())

    wrong = send(cards, prepaid_app.read_card())  # Le 00: 256 bytes asked for
    right = send(cards, CommandApdu(0x80, prepaid_app.INS_READ_CARD, 0, 0, le=wrong.sw & 0xFF))

    assert wrong.sw >> 8 == 0x6C and wrong.data == b""
    assert right.ok and prepaid_app.decode_card_record(right.data).card_no == CARD


def test_a_t0_card_with_a_small_buffer_chains_its_answer_behind_further_61xx(
    tmp_path: Path,
) -> None:
    cards = simulator(tmp_path, CardProtocol.T0, chunk=16)
    send(cards, prepaid_app.select())

    answer = send(cards, credit_command(1))
    data, status_words = b"", []
    while answer.sw >> 8 == 0x61:
        status_words.append(answer.status_word)
        answer = send(cards, CommandApdu(0x00, 0xC0, 0, 0, le=answer.sw & 0xFF))
        data += answer.data

    assert answer.ok and len(status_words) > 2
    assert all(sw == "6110" for sw in status_words[:-1])  # 16 bytes at a time
    assert prepaid_app.decode_card_record(data).purchase_counter == 1


def test_get_response_without_waiting_data_or_with_too_big_an_le_is_refused(
    tmp_path: Path,
) -> None:
    cards = simulator(tmp_path, CardProtocol.T0)
    send(cards, prepaid_app.select())
    assert send(cards, "00C0000010").status_word == "6985"  # nothing waits

    announced = send(cards, credit_command(1))
    too_big = send(cards, CommandApdu(0x00, 0xC0, 0, 0, le=(announced.sw & 0xFF) + 1))
    still_there = send(cards, CommandApdu(0x00, 0xC0, 0, 0, le=announced.sw & 0xFF))

    assert too_big.status_word == f"6C{announced.sw & 0xFF:02X}"
    assert still_there.ok


def test_any_other_command_drops_the_answer_waiting_for_get_response(tmp_path: Path) -> None:
    cards = simulator(tmp_path, CardProtocol.T0)
    send(cards, prepaid_app.select())
    announced = send(cards, credit_command(1))

    send(cards, prepaid_app.select())

    assert send(cards, CommandApdu(0x00, 0xC0, 0, 0, le=announced.sw & 0xFF)).status_word == "6985"
    assert cards.prepaid(CARD).purchase_counter == 1  # the credit itself stays applied


def test_a_t1_card_answers_whole_responses_even_to_a_wrong_le(cards: VpcdCardSimulator) -> None:
    answer = send(cards, credit_command(1))

    assert answer.ok and prepaid_app.decode_card_record(answer.data).purchase_counter == 1
    assert send(cards, prepaid_app.read_card()).ok
