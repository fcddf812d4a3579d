"""The link codec (drivers/ioboard/firmware/link.py) on CPython: the host's half of the promise.

The same module runs on the board; tests/test_ioboard_micropython.py checks it there. These
are properties over arbitrary input: every frame and payload round-trips, damage is detected
and never yields a wrong frame, and the receiver is back in step after any garbage.
"""

import binascii
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.cash import ACCEPTED_DENOMINATIONS_FEN, INLETS
from drivers.ioboard.firmware import link
from kiosk.devices import CashKind

payloads = st.binary(max_size=link.MAX_PAYLOAD)
seqs = st.integers(0, 255)
types = st.integers(0, 255)


@given(st.binary(max_size=600))
def test_the_hand_written_crc_is_cpythons_crc_hqx_from_ffff(data: bytes) -> None:
    assert link.crc16(data) == binascii.crc_hqx(data, 0xFFFF)


@given(st.binary(max_size=1200))
def test_cobs_round_trips_and_leaves_no_zero_byte(data: bytes) -> None:
    encoded = link.cobs_encode(data)

    assert 0 not in encoded
    assert link.cobs_decode(encoded) == data


@given(seqs, types, payloads)
def test_any_frame_round_trips_through_the_deframer(
    seq: int, msg_type: int, payload: bytes
) -> None:
    frame = link.encode_frame(seq, msg_type, payload)

    assert len(frame) <= link.MAX_ENCODED + 2
    assert link.Deframer().feed(frame) == [(seq, msg_type, payload)]


@given(st.lists(st.tuples(seqs, types, payloads), max_size=8), st.integers(1, 64))
def test_frames_split_anywhere_arrive_whole_and_in_order(
    frames: list[tuple[int, int, bytes]], chunk: int
) -> None:
    stream = b"".join(link.encode_frame(*frame) for frame in frames)
    deframer = link.Deframer()

    got = []
    for start in range(0, len(stream), chunk):
        got += deframer.feed(stream[start : start + chunk])

    assert got == frames
    assert deframer.damaged == 0


@given(st.binary(max_size=2000), seqs, types, payloads)
def test_after_any_garbage_the_next_frame_is_received(
    garbage: bytes, seq: int, msg_type: int, payload: bytes
) -> None:
    deframer = link.Deframer()

    got = deframer.feed(garbage + link.encode_frame(seq, msg_type, payload))

    assert got[-1] == (seq, msg_type, payload)


@settings(max_examples=300)
@given(seqs, types, st.binary(max_size=40), st.data())
def test_a_damaged_frame_is_dropped_and_counted_never_misread(
    seq: int, msg_type: int, payload: bytes, data: st.DataObject
) -> None:
    frame = bytearray(link.encode_frame(seq, msg_type, payload))
    inner = len(frame) - 2
    # Up to three flipped bits, or one byte dropped or duplicated, or two bytes swapped:
    # all within what CRC-16/CCITT plus the length byte detect for certain.
    damage = data.draw(st.sampled_from(["flip", "drop", "duplicate", "swap"]))
    index = 1 + data.draw(st.integers(0, inner - 1))
    if damage == "flip":
        for bit in data.draw(st.sets(st.integers(0, inner * 8 - 1), min_size=1, max_size=3)):
            frame[1 + bit // 8] ^= 1 << (bit % 8)
    elif damage == "drop":
        del frame[index]
    elif damage == "duplicate":
        frame.insert(index, frame[index])
    else:
        if index + 1 >= len(frame) - 1 or frame[index] == frame[index + 1]:
            return  # nothing to swap
        frame[index], frame[index + 1] = frame[index + 1], frame[index]
    deframer = link.Deframer()

    got = deframer.feed(bytes(frame))

    assert (seq, msg_type, payload) not in got
    assert all(len(frame_payload) <= link.MAX_PAYLOAD for _, _, frame_payload in got)
    assert deframer.damaged >= 1


def test_a_payload_too_long_for_a_frame_is_refused() -> None:
    try:
        link.encode_frame(1, link.STATUS, bytes(link.MAX_PAYLOAD + 1))
    except link.LinkError as exc:
        assert "exceeds" in str(exc)
    else:
        raise AssertionError("an oversized payload was framed")


def test_an_endless_stream_without_delimiter_is_one_damaged_frame_not_a_memory_leak() -> None:
    deframer = link.Deframer()

    deframer.feed(b"\x01" * 100_000)
    got = deframer.feed(link.encode_frame(3, link.STATUS))

    assert got == [(3, link.STATUS, b"")]
    assert deframer.damaged == 1


counted_cash = st.tuples(
    st.integers(0, 2**32 - 1),
    st.sampled_from(link.INLETS),
    st.integers(1, 2**32 - 1),
).map(lambda e: (e[0], e[1], e[2], e[1], 0))
unrecognised_items = st.tuples(
    st.integers(0, 2**32 - 1), st.sampled_from(link.INLETS), st.integers(0, 0xFFFF)
).map(lambda e: (e[0], link.UNRECOGNISED, 0, e[1], e[2]))
cash_events = st.lists(st.one_of(counted_cash, unrecognised_items), max_size=link.CASH_PAGE)


@given(cash_events)
def test_cash_event_pages_round_trip_and_fit_a_frame(
    events: list[tuple[int, str, int, str, int]],
) -> None:
    encoded = link.encode_cash_events(events)

    assert len(encoded) <= link.MAX_PAYLOAD
    assert link.decode_cash_events(encoded) == events


def test_every_cash_kind_on_the_wire_is_a_kind_of_the_core() -> None:
    assert {str(kind) for kind in CashKind} == set(link.CASH_KINDS)
    assert set(link.INLETS) == {str(inlet) for inlet in INLETS}


@given(st.booleans(), st.one_of(st.none(), st.integers(0, link.NO_LIMIT - 1)))
def test_the_accepting_setting_round_trips(accepting: bool, largest_fen: int | None) -> None:
    encoded = link.encode_set_accepting(accepting, largest_fen)

    assert link.decode_set_accepting(encoded) == (accepting, largest_fen)


def test_a_limit_beyond_the_wire_is_no_limit() -> None:
    encoded = link.encode_set_accepting(True, 2**40)

    assert link.decode_set_accepting(encoded) == (True, None)


def test_a_version_1_accepting_request_is_malformed_for_a_version_2_board() -> None:
    with pytest.raises(link.LinkError, match="set_accepting payload has 1 bytes"):
        link.decode_set_accepting(b"\x01")


details = st.dictionaries(
    st.text(max_size=8),
    st.one_of(st.integers(-(2**31), 2**31), st.booleans(), st.text(max_size=8)),
    max_size=3,
)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**32 - 1),
            st.sampled_from(link.BOARD_EVENT_KINDS),
            st.integers(0, 2**64 - 1),
            st.booleans(),
            details,
        ),
        max_size=link.BOARD_EVENT_PAGE,
    )
)
def test_board_event_pages_round_trip(
    events: list[tuple[int, str, int, bool, dict[str, object]]],
) -> None:
    assert link.decode_board_events(link.encode_board_events(events)) == events


@given(
    st.integers(0, 255),
    st.integers(0, 2**32 - 1),
    st.text(max_size=20),
    st.text(max_size=20),
    st.integers(0, 0xFFFF),
    st.integers(0, 2**32 - 1),
)
def test_the_handshake_answer_round_trips(
    version: int, nonce: int, board_id: str, firmware: str, capabilities: int, boots: int
) -> None:
    encoded = link.encode_hello_response(version, nonce, board_id, firmware, capabilities, boots)

    assert link.decode_hello_response(encoded) == {
        "protocol_version": version,
        "host_nonce": nonce,
        "capabilities": capabilities,
        "boots": boots,
        "board_id": board_id,
        "firmware_version": firmware,
    }


@given(
    st.integers(0, 255),
    st.sampled_from(link.LAMP_MODES),
    st.integers(-32768, 32767),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 2**32 - 1),
    st.integers(0, 0xFFFF),
    st.one_of(st.none(), st.integers(0, link.NO_LIMIT - 1)),
    st.text(max_size=16),
)
def test_the_status_answer_round_trips(
    flags: int,
    lamp: str,
    decic: int,
    cash: int,
    board: int,
    uptime: int,
    resets: int,
    largest: int | None,
    fw: str,
) -> None:
    status = {
        "flags": flags,
        "lamp": lamp,
        "temperature_decic": decic,
        "unacknowledged_cash": cash,
        "unacknowledged_board_events": board,
        "uptime_ms": uptime,
        "watchdog_resets": resets,
        "largest_fen": largest,
        "firmware_version": fw,
    }

    assert link.decode_status(link.encode_status(status)) == status


@given(st.binary(max_size=300))
def test_no_payload_decoder_fails_with_anything_but_a_link_error(payload: bytes) -> None:
    decoders = [
        link.decode_cash_events,
        link.decode_board_events,
        link.decode_status,
        link.decode_hello_response,
        link.decode_hello,
        link.decode_error,
        link.decode_set_accepting,
        lambda p: link.decode_u32(p, "test"),
    ]
    for decode in decoders:
        try:
            decode(payload)
        except link.LinkError:
            pass


def test_a_hello_of_another_version_is_read_only_as_far_as_its_version() -> None:
    assert link.decode_hello(b"\x07garbage") == (7, 0, 0)
    assert link.decode_hello(link.encode_hello(link.PROTOCOL_VERSION, 5, 6)) == (
        link.PROTOCOL_VERSION,
        5,
        6,
    )


def test_the_boards_channels_are_the_denominations_the_terminal_accepts() -> None:
    # config.json cannot import drivers.cash (it is the board's file): the two must agree.
    config = json.loads((Path(link.__file__).parent / "config.json").read_text(encoding="utf-8"))
    for inlet in INLETS:
        channels = {int(value) for value in config[inlet]["train_values_fen"].values()}
        assert channels == ACCEPTED_DENOMINATIONS_FEN[inlet], inlet
        wired = {int(value) for value in config["pins"][f"{inlet}_channel_inhibit"]}
        assert wired == channels, f"every {inlet} channel has its inhibit line"
