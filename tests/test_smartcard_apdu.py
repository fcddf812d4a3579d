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
from drivers.smartcard.prepaid_mac import credit_mac
from drivers.smartcard.technician_app import SimulatedTechnicianCard
from drivers.smartcard.vpcd_card import PREPAID_ATR, answer_to_reset
from kiosk.devices import PrepaidCard

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


def test_the_credit_command_carries_amount_counter_and_mac_in_16_bytes() -> None:
    mac = credit_mac("31000012345678", 7, 5000)
    command = prepaid_app.credit(5000, 7, mac)

    assert command.encode()[:5] == bytes.fromhex("80D2000010")
    assert prepaid_app.parse_credit(command.data) == prepaid_app.CreditRequest(5000, 7, mac)
    with pytest.raises(ApduError):
        prepaid_app.credit(-1, 7, mac)


def test_the_atr_ends_with_a_check_byte_that_xors_to_zero() -> None:
    check = 0
    for value in PREPAID_ATR[1:]:
        check ^= value
    assert check == 0 and PREPAID_ATR[0] == 0x3B
    with pytest.raises(ValueError):
        answer_to_reset(bytes(16))


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
