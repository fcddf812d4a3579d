"""The APDU codecs and the card records both ends share, and the technician card's PIN rules."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.smartcard import prepaid_app, technician_app
from drivers.smartcard.apdu import (
    ApduError,
    CommandApdu,
    ResponseApdu,
    decode_tlv,
    encode_tlv,
)
from drivers.smartcard.prepaid_mac import check_credit_mac, credit_mac
from drivers.smartcard.technician_app import SimulatedTechnicianCard
from kiosk.devices import CardLoad, PrepaidCard
from simulators.vpcd_card import PREPAID_ATR, CardProtocol, answer_to_reset

byte = st.integers(0, 255)


@given(byte, byte, byte, byte, st.binary(max_size=255), st.none() | st.integers(1, 256))
def test_every_short_command_apdu_decodes_to_what_was_encoded(
    cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None
) -> None:
    command = CommandApdu(cla, ins, p1, p2, data, le)

    assert CommandApdu.decode(command.encode()) == command


@given(st.binary(min_size=4, max_size=300))
def test_arbitrary_bytes_either_decode_to_a_command_or_raise_apdu_error(raw: bytes) -> None:
    try:
        command = CommandApdu.decode(raw)
    except ApduError:
        return
    assert command.encode() == raw or raw[4:5] == b"\x00"


def test_a_command_whose_lc_does_not_match_its_data_is_refused() -> None:
    with pytest.raises(ApduError, match="Lc 5"):
        CommandApdu.decode(bytes.fromhex("80D20000050102"))


def test_a_response_splits_into_data_and_status_word() -> None:
    response = ResponseApdu.decode(bytes.fromhex("C102010263C1"))

    assert (response.data, response.status_word, response.ok) == (
        b"\xc1\x02\x01\x02",
        "63C1",
        False,
    )
    with pytest.raises(ApduError):
        ResponseApdu.decode(b"\x90")


@given(st.dictionaries(st.integers(1, 0xFE), st.binary(max_size=254), max_size=10))
def test_simple_tlv_records_round_trip(fields: dict[int, bytes]) -> None:
    assert decode_tlv(encode_tlv(list(fields.items()))) == fields


@pytest.mark.parametrize(
    "raw", ["C1", "C105AABB", "C101AAC101BB", "0001AA", "C1FF"], ids=lambda r: r
)
def test_malformed_simple_tlv_is_refused(raw: str) -> None:
    with pytest.raises(ApduError):
        decode_tlv(bytes.fromhex(raw))


@given(
    st.text("0123456789", min_size=1, max_size=20),
    st.sampled_from(["electricity", "gas", "water"]),
    st.text("0123456789ABCDEF-", min_size=1, max_size=20),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
)
def test_the_prepaid_card_record_round_trips(
    card_no: str, utility: str, meter_no: str, counter: int, last_credit: int
) -> None:
    card = PrepaidCard(card_no, utility, meter_no, counter, last_credit)

    assert prepaid_app.decode_card_record(prepaid_app.encode_card_record(card)) == card


def test_a_card_record_without_its_counter_is_refused() -> None:
    record = encode_tlv([(prepaid_app.TAG_CARD_NO, b"31"), (prepaid_app.TAG_UTILITY, b"gas")])

    with pytest.raises(ApduError, match="meter number"):
        prepaid_app.decode_card_record(record)


def test_the_credit_command_carries_amount_counter_mac_terminal_and_reference() -> None:
    mac = credit_mac("31000012345678", 7, 5000, "T01", "T01-ab-p")
    command = prepaid_app.credit(5000, 7, mac, "T01", "T01-ab-p")

    # Lc = 16 fixed bytes + D3 03 "T01" + D4 08 "T01-ab-p" = 31 (1F)
    assert command.encode()[:5] == bytes.fromhex("80D200001F")
    assert command.data[16:21] == bytes.fromhex("D303") + b"T01"
    assert prepaid_app.parse_credit(command.data) == prepaid_app.CreditRequest(
        5000, 7, mac, "T01", "T01-ab-p"
    )
    with pytest.raises(ApduError):
        prepaid_app.credit(-1, 7, mac, "T01", "r")
    with pytest.raises(ApduError, match="ASCII"):
        prepaid_app.credit(5000, 7, mac, "终端", "r")
    with pytest.raises(ApduError):
        prepaid_app.credit(5000, 7, mac, "T01", "r" * 255)  # more than one APDU carries


def test_a_credit_without_its_terminal_or_reference_does_not_parse() -> None:
    fixed = bytes(16)

    with pytest.raises(ApduError, match="terminal id"):
        prepaid_app.parse_credit(fixed + encode_tlv([(prepaid_app.TAG_LOAD_REF, b"r")]))
    with pytest.raises(ApduError, match="at least 16"):
        prepaid_app.parse_credit(bytes(15))


@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=32),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64),
)
def test_a_load_record_round_trips(counter: int, amount: int, terminal: str, ref: str) -> None:
    load = CardLoad(counter, amount, terminal, ref)

    assert prepaid_app.decode_load_record(prepaid_app.encode_load_record(load)) == load


def test_the_load_log_is_read_by_record_number_from_short_file_18() -> None:
    assert prepaid_app.read_load_record(1).encode() == bytes.fromhex("00B201C400")
    assert prepaid_app.read_load_record(10).encode() == bytes.fromhex("00B20AC400")
    with pytest.raises(ApduError):
        prepaid_app.read_load_record(0)


def test_the_credit_mac_covers_every_field_and_cannot_be_shifted_between_them() -> None:
    mac = credit_mac("31", 1, 5000, "T01", "R-1")

    assert check_credit_mac("31", 1, 5000, "T01", "R-1", mac)
    for changed in (
        ("32", 1, 5000, "T01", "R-1"),
        ("31", 2, 5000, "T01", "R-1"),
        ("31", 1, 5001, "T01", "R-1"),
        ("31", 1, 5000, "T02", "R-1"),
        ("31", 1, 5000, "T01", "R-2"),
        ("31", 1, 5000, "T01R", "-1"),  # the same characters, split elsewhere
    ):
        assert not check_credit_mac(*changed, mac)
    assert not check_credit_mac("31", 1, 5000, "终端", "R-1", mac)  # never raises


def test_the_atr_ends_with_a_check_byte_that_xors_to_zero() -> None:
    check = 0
    for value in PREPAID_ATR[1:]:
        check ^= value
    assert check == 0 and PREPAID_ATR[0] == 0x3B
    with pytest.raises(ValueError):
        answer_to_reset(bytes(16))


def test_the_t0_atr_offers_t0_alone_without_a_check_byte() -> None:
    atr = answer_to_reset(b"KIOSK-PREPAID", CardProtocol.T0)

    assert atr == bytes.fromhex("3B0D") + b"KIOSK-PREPAID"


def test_a_technician_pin_must_be_4_to_12_digits() -> None:
    for wrong in ("123", "12a4", "1" * 13, "１２３４"):
        with pytest.raises(ApduError):
            technician_app.verify(wrong)
    assert technician_app.verify("0042").encode() == bytes.fromhex("00200081043030343200"[:-2])


def test_a_technician_card_blocks_after_three_wrong_pins_even_for_the_right_one() -> None:
    card = SimulatedTechnicianCard.issue("99000001", "T-042", "2468")
    answers = []
    for pin in (b"1111", b"2222", b"3333", b"2468"):
        card, sw = card.verify(pin)
        answers.append(f"{sw:04X}")

    assert answers == ["63C2", "63C1", "6983", "6983"]
    assert card.blocked
    assert "2468" not in repr(card)


def test_the_right_pin_resets_the_try_counter() -> None:
    card = SimulatedTechnicianCard.issue("99000001", "T-042", "2468")
    card, _ = card.verify(b"1111")
    card, sw = card.verify(b"2468")

    assert (sw, card.tries_left) == (0x9000, 3)
    assert technician_app.tries_left_of(0x63C1) == 1
    assert technician_app.tries_left_of(0x6983) is None
