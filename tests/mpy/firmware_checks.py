"""Checks of the I/O board firmware's logic, run on the real MicroPython (tests/mpy/run.mjs).

Each check_* function is one specification; tests/test_ioboard_micropython.py runs them all in
the WebAssembly port under Node.js and reports each as its own pytest test. Plain asserts and
MicroPython-only modules: no pytest, no typing, no CPython stdlib beyond what MicroPython has.
The firmware is importable here as the package `ioboard`, laid out as on the board.
"""

import json
import os

from ioboard import FIRMWARE_VERSION, link
from ioboard.board import Board, read_settings
from ioboard.inhibit import enabled_channels, wired_channels
from ioboard.lamp import OFF, PATTERNS, colour_at
from ioboard.pulses import PulseTrainDecoder, pulse_train
from ioboard.store import EventStore
from ioboard.switches import DebouncedSwitch
from ioboard.watchdog import HostWatchdog

SETTINGS = read_settings("/lib/ioboard/config.json")


class FakeHal:
    """The board's hardware, driven by the checks: time, pulse edges, switches, outputs."""

    def __init__(self):
        self.now = 1000
        self.edges = []
        self.door = False
        self.tamper = False
        self.temperature = 31.5
        self.enabled = {}
        self.lamp = None
        self.host_power = []
        self._random = 7

    def now_ms(self):
        return self.now

    def pulse_edges(self):
        edges, self.edges = self.edges, []
        return edges

    def door_open(self):
        return self.door

    def tamper_open(self):
        return self.tamper

    def temperature_c(self):
        return self.temperature

    def random_bytes(self, count):
        out = bytearray()
        for _ in range(count):
            self._random = (self._random * 1103515245 + 12345) & 0x7FFFFFFF
            out.append(self._random >> 16 & 0xFF)
        return bytes(out)

    def set_inlet(self, inlet, enabled_fen):
        self.enabled[inlet] = list(enabled_fen)

    @property
    def inlets_open(self):
        return any(self.enabled.values())

    def set_lamp(self, colour):
        self.lamp = colour

    def set_host_power(self, on):
        self.host_power.append((self.now, on))


def run_for(board, hal, ms, step=10):
    end = hal.now + ms
    while hal.now < end:
        hal.now += step
        board.poll()


def insert(board, hal, inlet, pulses):
    for active, at in pulse_train(pulses, hal.now + 10):
        hal.edges.append((inlet, active, at))
    run_for(board, hal, pulses * 100 + 400)


class Host:
    """Just enough of a host to talk to a Board through real frames."""

    def __init__(self, board):
        self.board = board
        self.seq = 0
        self.deframer = link.Deframer()

    def request(self, msg_type, payload=b"", seq=None):
        if seq is None:
            self.seq = (self.seq + 1) & 0xFF
            seq = self.seq
        out = self.board.receive(link.encode_frame(seq, msg_type, payload))
        frames = [f for f in self.deframer.feed(out) if f[1] != link.NAK]
        assert len(frames) == 1, frames
        got_seq, got_type, got_payload = frames[0]
        assert got_seq == seq
        return got_type, got_payload

    def ok(self, msg_type, payload=b""):
        got_type, got_payload = self.request(msg_type, payload)
        assert got_type == msg_type | link.RESPONSE_BIT, (got_type, got_payload)
        return got_payload

    def hello(self):
        return link.decode_hello_response(
            self.ok(link.HELLO, link.encode_hello(link.PROTOCOL_VERSION, 42, 1700000000000))
        )


def new_board(hal=None, path="state.json"):
    hal = hal or FakeHal()
    board = Board(hal, SETTINGS, path)
    board.poll()
    return board, hal


# ---------------------------------------------------------------- codec


def check_crc16_is_ccitt_false():
    assert link.crc16(b"123456789") == 0x29B1
    assert link.crc16(b"") == 0xFFFF


def check_cobs_round_trips_edge_cases():
    samples = [b"", b"\x00", b"\x00\x00", b"\x11\x00\x22", bytes(range(1, 255)), b"\x01" * 255]
    samples.append(bytes(range(256)) * 2)
    for data in samples:
        encoded = link.cobs_encode(data)
        assert 0 not in encoded
        assert link.cobs_decode(encoded) == data


def check_a_frame_round_trips_and_has_no_zero_inside():
    frame = link.encode_frame(200, link.CASH_ACK, b"\x00\x00\x00\x05")
    assert frame[0] == 0 and frame[-1] == 0 and 0 not in frame[1:-1]
    assert link.Deframer().feed(frame) == [(200, link.CASH_ACK, b"\x00\x00\x00\x05")]


def check_every_single_bit_flip_is_detected():
    frame = link.encode_frame(7, link.STATUS, b"\x01\x02\x03")
    for index in range(1, len(frame) - 1):
        for bit in range(8):
            damaged = bytearray(frame)
            damaged[index] ^= 1 << bit
            deframer = link.Deframer()
            assert deframer.feed(bytes(damaged)) == [], (index, bit)
            assert deframer.damaged >= 1


def check_the_deframer_resyncs_after_garbage():
    deframer = link.Deframer()
    garbage = b"\x13\x37\xff\xfe" * 100
    frames = deframer.feed(garbage + link.encode_frame(1, link.HEARTBEAT, b"x") + b"\x99\x98")
    frames += deframer.feed(link.encode_frame(2, link.STATUS))
    assert frames == [(1, link.HEARTBEAT, b"x"), (2, link.STATUS, b"")]
    assert deframer.damaged >= 1


def check_payload_layouts_round_trip():
    events = [
        (1, "coin", 10, "coin", 0),
        (4294967295, "note", 10000, "note", 0),
        (7, "unrecognised", 0, "note", 7),
    ]
    assert link.decode_cash_events(link.encode_cash_events(events)) == events
    for accepting, largest in ((True, None), (True, 2000), (False, None), (True, 0)):
        encoded = link.encode_set_accepting(accepting, largest)
        assert link.decode_set_accepting(encoded) == (accepting, largest)
    board_events = [(3, "tamper", 1700000000123, True, {}), (4, "watchdog_reset", 5, False, {})]
    assert link.decode_board_events(link.encode_board_events(board_events)) == board_events
    hello = link.encode_hello_response(1, 99, "a1b2c3d4", "1.0.0", 0x7F, 12)
    decoded = link.decode_hello_response(hello)
    assert decoded["board_id"] == "a1b2c3d4" and decoded["boots"] == 12
    assert link.capability_names(link.CAP_COIN | link.CAP_TAMPER) == ["coin", "tamper"]


def check_a_malformed_payload_is_a_link_error():
    for bad in (b"", b"\x02", b"\x01\x00"):
        try:
            link.decode_cash_events(bad)
        except link.LinkError:
            continue
        raise AssertionError(bad)


def check_a_cash_event_that_contradicts_itself_is_a_link_error():
    bad_events = [
        (1, "unrecognised", 500, "note", 3),  # an unrecognised item has no value
        (2, "note", 0, "note", 0),  # a note is worth something
        (3, "note", 1000, "coin", 0),  # a note does not come in through the coin inlet
    ]
    for event in bad_events:
        try:
            link.decode_cash_events(link.encode_cash_events([event]))
        except link.LinkError:
            continue
        raise AssertionError(event)
    try:
        link.decode_set_accepting(b"\x02\xff\xff\xff\xff")
    except link.LinkError:
        pass
    else:
        raise AssertionError("flag 2 accepted")


# ---------------------------------------------------------------- pulses


def feed(decoder, edges, until):
    results = []
    for active, at in edges:
        results += decoder.poll(at)
        decoder.edge(active, at)
    for now in range(edges[-1][1] if edges else 0, until, 5):
        results += decoder.poll(now)
    return results


def check_ten_pulses_make_a_ten_yuan_note():
    decoder = PulseTrainDecoder("note", SETTINGS["note"])
    assert feed(decoder, pulse_train(10, 0), 2000) == [("cash", "note", 1000)]


def check_coins_are_valued_by_their_channel_table():
    decoder = PulseTrainDecoder("coin", SETTINGS["coin"])
    assert feed(decoder, pulse_train(5, 0), 1500) == [("cash", "coin", 50)]
    assert decoder.channels_fen() == [10, 50, 100]


def check_a_coin_train_between_channels_is_unrecognised_not_valued_per_pulse():
    decoder = PulseTrainDecoder("coin", SETTINGS["coin"])
    assert feed(decoder, pulse_train(7, 0), 1500) == [("unrecognised", "coin", 7)]


def check_an_inlet_without_a_channel_table_is_refused():
    try:
        PulseTrainDecoder("coin", {"value_per_pulse_fen": 10})
    except ValueError as exc:
        assert "train_values_fen" in str(exc)
    else:
        raise AssertionError("a per-pulse inlet was accepted")


def check_contact_bounce_inside_a_pulse_is_one_pulse():
    decoder = PulseTrainDecoder("note", SETTINGS["note"])
    edges = []
    for active, at in pulse_train(5, 0):
        edges.append((active, at))
        if active:  # the contact chatters just after closing
            edges += [(False, at + 1), (True, at + 2), (False, at + 3), (True, at + 4)]
    assert feed(decoder, edges, 1500) == [("cash", "note", 500)]


def check_a_glitch_shorter_than_a_pulse_counts_nothing():
    decoder = PulseTrainDecoder("coin", SETTINGS["coin"])
    assert feed(decoder, [(True, 0), (False, 8)], 1000) == []
    assert decoder.glitches == 1


def check_a_gap_separates_two_notes():
    decoder = PulseTrainDecoder("note", SETTINGS["note"])
    edges = pulse_train(5, 0) + pulse_train(1, 500 + 500)
    assert feed(decoder, edges, 3000) == [("cash", "note", 500), ("cash", "note", 100)]


def check_a_train_length_not_in_the_table_is_reported_not_counted():
    decoder = PulseTrainDecoder("note", SETTINGS["note"])
    assert feed(decoder, pulse_train(3, 0), 1500) == [("unrecognised", "note", 3)]


def check_a_train_cut_short_by_a_jam_is_unrecognised_even_if_its_count_is_a_channel():
    decoder = PulseTrainDecoder("note", SETTINGS["note"])
    # Five good pulses (a 5-yuan count), then the line sticks: the note never finished.
    edges = pulse_train(5, 0) + [(True, 600)]
    results = feed(decoder, edges, 1000)
    assert [r[0] for r in results] == ["jammed"], results
    results = feed(decoder, [(False, 1000)], 2000)
    assert results == [("unrecognised", "note", 5)], results


def check_a_line_stuck_active_is_a_jam_and_counts_nothing():
    decoder = PulseTrainDecoder("note", SETTINGS["note"])
    results = feed(decoder, [(True, 0)], 1000)
    assert results == [("jammed", "note", SETTINGS["note"]["max_pulse_ms"] + 5)], results
    assert decoder.jammed
    assert feed(decoder, [(False, 1000)], 2000) == []
    assert not decoder.jammed


# ---------------------------------------------------------------- switches, lamp, watchdog


def check_a_switch_changes_only_after_it_is_stable():
    switch = DebouncedSwitch(50)
    assert switch.sample(False, 0) is None
    assert switch.sample(False, 50) is False
    assert switch.sample(True, 60) is None
    assert switch.sample(False, 70) is None
    assert switch.sample(True, 80) is None
    assert switch.sample(True, 129) is None
    assert switch.sample(True, 130) is True


def check_lamp_patterns():
    assert colour_at("in_service", 123456) == PATTERNS["in_service"][0]
    assert colour_at("attention", 0) == (255, 0, 0)
    assert colour_at("attention", 300) == OFF
    assert colour_at("maintenance", 1500) == OFF


def check_the_watchdog_waits_for_the_first_heartbeat():
    watchdog = HostWatchdog({"timeout_ms": 100})
    assert watchdog.poll(10**6) is None and watchdog.host_powered


def check_the_watchdog_cycles_a_silent_host_and_restores_power():
    watchdog = HostWatchdog(
        {"timeout_ms": 100, "relay_off_ms": 20, "boot_grace_ms": 300, "max_resets": 2}
    )
    watchdog.heartbeat(0)
    assert watchdog.poll(99) is None
    report = watchdog.poll(100)
    assert report == {"fired": True, "silent_ms": 100, "resets_in_a_row": 1}
    assert not watchdog.host_powered
    assert watchdog.poll(119) is None and not watchdog.host_powered
    watchdog.poll(120)
    assert watchdog.host_powered
    # After a cycle the host gets the boot grace, then is cycled again, then given up on.
    assert watchdog.poll(419) is None
    assert watchdog.poll(420)["resets_in_a_row"] == 2
    watchdog.poll(440)
    assert watchdog.poll(740) == {"gave_up": True, "silent_ms": 300, "resets_in_a_row": 2}
    assert watchdog.poll(10**6) is None and watchdog.host_powered
    watchdog.heartbeat(10**6)
    assert not watchdog.gave_up


def check_maintenance_suspends_the_watchdog():
    watchdog = HostWatchdog({"timeout_ms": 100})
    watchdog.heartbeat(0)
    watchdog.set_maintenance(True, 50)
    assert watchdog.poll(10**6) is None
    watchdog.set_maintenance(False, 10**6)
    assert watchdog.poll(10**6 + 99) is None
    assert watchdog.poll(10**6 + 100)["fired"]


# ---------------------------------------------------------------- durable events


def check_counted_cash_survives_a_board_restart():
    hal = FakeHal()
    store = EventStore("state.json", hal.random_bytes)
    first = store.add_cash("note", 1000)
    store.add_cash("coin", 50)
    store.add_cash("unrecognised", 0, "note", 7)
    store.acknowledge_cash(first)
    again = EventStore("state.json", hal.random_bytes)
    assert again.board_id == store.board_id
    assert again.cash_after(0, 10) == [
        (2, "coin", 50, "coin", 0),
        (3, "unrecognised", 0, "note", 7),
    ]
    assert again.boots == 2
    assert again.add_cash("note", 100) == 4


def check_a_buffer_written_by_firmware_1_is_kept_after_the_upgrade():
    with open("state.json", "w") as handle:
        json.dump(
            {
                "board_id": "0a0b0c0d",
                "next_cash": 3,
                "next_board": 1,
                "cash": [[1, "note", 2000], [2, "coin", 50]],
                "board": [],
                "tamper_latched": False,
                "boots": 4,
            },
            handle,
        )
    store = EventStore("state.json", FakeHal().random_bytes)
    assert not store.lost_state and store.board_id == "0a0b0c0d"
    assert store.cash_after(0, 10) == [(1, "note", 2000, "note", 0), (2, "coin", 50, "coin", 0)]
    encoded = link.encode_cash_events(store.cash_after(0, 10))
    assert [e[:3] for e in link.decode_cash_events(encoded)] == [(1, "note", 2000), (2, "coin", 50)]


def check_event_numbers_are_never_reused_after_acknowledgement():
    hal = FakeHal()
    store = EventStore("state.json", hal.random_bytes)
    number = store.add_cash("note", 100)
    store.acknowledge_cash(number)
    assert EventStore("state.json", hal.random_bytes).add_cash("note", 100) == number + 1


def check_unreadable_state_starts_a_new_board_id_and_keeps_the_old_file():
    hal = FakeHal()
    old = EventStore("state.json", hal.random_bytes).board_id
    with open("state.json", "w") as handle:
        handle.write("{not json")
    store = EventStore("state.json", hal.random_bytes)
    assert store.lost_state and store.board_id != old
    assert "state.json.bad" in os.listdir()


def check_board_events_are_bounded_dropping_door_events_first():
    hal = FakeHal()
    store = EventStore("state.json", hal.random_bytes)
    store.add_board_event("tamper", 1, False, {})
    for index in range(100):
        store.add_board_event("door_open", index, False, {})
    events = store.board_events_after(0, 1000)
    assert len(events) == 64 and events[0][1] == "tamper"


# ---------------------------------------------------------------- the board over frames


def check_the_board_answers_nothing_but_hello_before_a_handshake():
    board, _ = new_board()
    host = Host(board)
    got_type, payload = host.request(link.STATUS)
    assert got_type == link.ERROR
    assert link.decode_error(payload)[0] == link.ERR_HANDSHAKE_FIRST
    hello = host.hello()
    assert hello["firmware_version"] == FIRMWARE_VERSION
    assert hello["protocol_version"] == link.PROTOCOL_VERSION and hello["host_nonce"] == 42
    assert "watchdog" in link.capability_names(hello["capabilities"])


def check_a_host_of_another_protocol_version_learns_the_boards_version():
    board, _ = new_board()
    host = Host(board)
    answer = link.decode_hello_response(host.ok(link.HELLO, b"\x09" + bytes(12)))
    assert answer["protocol_version"] == link.PROTOCOL_VERSION
    assert host.request(link.STATUS)[0] == link.ERROR


def check_an_inserted_note_is_buffered_until_acknowledged():
    board, hal = new_board()
    host = Host(board)
    host.hello()
    host.ok(link.SET_ACCEPTING, link.encode_set_accepting(True, None))
    assert hal.inlets_open is True
    insert(board, hal, "note", 20)
    events = link.decode_cash_events(host.ok(link.CASH_PENDING, link.encode_u32(0)))
    assert events == [(1, "note", 2000, "note", 0)]
    host.ok(link.CASH_ACK, link.encode_u32(1))
    assert link.decode_cash_events(host.ok(link.CASH_PENDING, link.encode_u32(0))) == []


def check_a_retransmitted_request_is_answered_again_but_done_once():
    board, hal = new_board()
    host = Host(board)
    host.hello()
    host.ok(link.SET_ACCEPTING, link.encode_set_accepting(True, None))
    insert(board, hal, "coin", 10)
    insert(board, hal, "coin", 5)
    first = host.request(link.CASH_ACK, link.encode_u32(1), seq=77)
    insert(board, hal, "coin", 1)  # changes state between the two copies
    again = host.request(link.CASH_ACK, link.encode_u32(1), seq=77)
    assert first == again
    pending = link.decode_cash_events(host.ok(link.CASH_PENDING, link.encode_u32(0)))
    assert [e[:3] for e in pending] == [(2, "coin", 50), (3, "coin", 10)]


def check_cash_pending_pages_through_a_long_buffer():
    board, hal = new_board()
    host = Host(board)
    host.hello()
    for _ in range(link.CASH_PAGE + 3):
        board.store.add_cash("coin", 100)
    page = link.decode_cash_events(host.ok(link.CASH_PENDING, link.encode_u32(0)))
    assert len(page) == link.CASH_PAGE
    rest = link.decode_cash_events(host.ok(link.CASH_PENDING, link.encode_u32(page[-1][0])))
    assert [e[0] for e in rest] == [17, 18, 19]


def check_cash_counted_while_the_inlets_close_is_still_counted():
    board, hal = new_board()
    host = Host(board)
    host.hello()
    host.ok(link.SET_ACCEPTING, link.encode_set_accepting(True, None))
    for active, at in pulse_train(5, hal.now + 10):
        hal.edges.append(("note", active, at))
    run_for(board, hal, 200)
    host.ok(link.SET_ACCEPTING, link.encode_set_accepting(False, None))
    run_for(board, hal, 1000)
    assert hal.inlets_open is False
    assert board.store.cash_after(0, 10) == [(1, "note", 500, "note", 0)]


def check_an_unrecognised_train_is_buffered_and_numbered_like_cash():
    board, hal = new_board()
    host = Host(board)
    host.hello()
    host.ok(link.SET_ACCEPTING, link.encode_set_accepting(True, None))
    insert(board, hal, "note", 20)
    insert(board, hal, "note", 7)  # between the 5- and 10-yuan channels
    insert(board, hal, "coin", 10)
    events = link.decode_cash_events(host.ok(link.CASH_PENDING, link.encode_u32(0)))
    assert events == [
        (1, "note", 2000, "note", 0),
        (2, "unrecognised", 0, "note", 7),
        (3, "coin", 100, "coin", 0),
    ]
    status = link.decode_status(host.ok(link.STATUS))
    assert status["unacknowledged_cash"] == 3
    kinds = [e[1] for e in board.store.board_events_after(0, 10)]
    assert "cash_unrecognised" not in kinds  # reported once, as cash, not twice
    host.ok(link.CASH_ACK, link.encode_u32(2))
    pending = link.decode_cash_events(host.ok(link.CASH_PENDING, link.encode_u32(0)))
    assert [e[0] for e in pending] == [1, 3]


def check_an_unrecognised_item_survives_a_board_restart_until_acknowledged():
    board, hal = new_board()
    host = Host(board)
    host.hello()
    host.ok(link.SET_ACCEPTING, link.encode_set_accepting(True, None))
    insert(board, hal, "coin", 3)
    again, _ = new_board(FakeHal())
    host = Host(again)
    host.hello()
    events = link.decode_cash_events(host.ok(link.CASH_PENDING, link.encode_u32(0)))
    assert events == [(1, "unrecognised", 0, "coin", 3)]


def check_a_limit_inhibits_the_channels_above_it_on_both_inlets():
    board, hal = new_board()
    host = Host(board)
    host.hello()
    host.ok(link.SET_ACCEPTING, link.encode_set_accepting(True, 2000))
    assert hal.enabled == {"coin": [10, 50, 100], "note": [100, 500, 1000, 2000]}
    host.ok(link.SET_ACCEPTING, link.encode_set_accepting(True, 50))
    assert hal.enabled == {"coin": [10, 50], "note": []}
    status = link.decode_status(host.ok(link.STATUS))
    assert status["largest_fen"] == 50 and status["flags"] & link.FLAG_ACCEPTING
    host.ok(link.SET_ACCEPTING, link.encode_set_accepting(True, None))  # absolute: no limit
    assert hal.enabled["note"] == [100, 500, 1000, 2000, 5000, 10000]
    assert link.decode_status(host.ok(link.STATUS))["largest_fen"] is None
    host.ok(link.SET_ACCEPTING, link.encode_set_accepting(True, 5))  # below every channel
    assert hal.enabled == {"coin": [], "note": []}
    assert not link.decode_status(host.ok(link.STATUS))["flags"] & link.FLAG_ACCEPTING


def check_closing_the_inlets_inhibits_every_channel_and_drops_the_limit():
    board, hal = new_board()
    host = Host(board)
    host.hello()
    host.ok(link.SET_ACCEPTING, link.encode_set_accepting(True, 1000))
    host.ok(link.SET_ACCEPTING, link.encode_set_accepting(False, 1000))
    assert hal.enabled == {"coin": [], "note": []}
    assert link.decode_status(host.ok(link.STATUS))["largest_fen"] is None


def check_the_limit_survives_a_new_handshake_but_not_a_board_restart():
    board, hal = new_board()
    host = Host(board)
    host.hello()
    host.ok(link.SET_ACCEPTING, link.encode_set_accepting(True, 2000))
    host = Host(board)  # the host reconnected after a link reset
    host.hello()
    assert link.decode_status(host.ok(link.STATUS))["largest_fen"] == 2000
    assert hal.enabled["note"] == [100, 500, 1000, 2000]
    again, hal = new_board(FakeHal())  # the board's own restart
    host = Host(again)
    host.hello()
    status = link.decode_status(host.ok(link.STATUS))
    assert status["largest_fen"] is None and not status["flags"] & link.FLAG_ACCEPTING
    assert hal.enabled == {"coin": [], "note": []}


def check_a_note_above_the_limit_that_comes_in_anyway_is_still_counted():
    # The validator finished a note it had started before the limit, or ignored its line:
    # the note is in the cash box, so it is the customer's money and is counted.
    board, hal = new_board()
    host = Host(board)
    host.hello()
    host.ok(link.SET_ACCEPTING, link.encode_set_accepting(True, 1000))
    insert(board, hal, "note", 50)
    events = link.decode_cash_events(host.ok(link.CASH_PENDING, link.encode_u32(0)))
    assert events == [(1, "note", 5000, "note", 0)]


def check_a_channel_above_the_limit_without_its_own_line_closes_its_inlet():
    assert enabled_channels([100, 500, 1000], True, 500, [100, 500, 1000]) == [100, 500]
    assert enabled_channels([100, 500, 1000], True, 500, [100, 500]) == []
    assert enabled_channels([100, 500, 1000], True, 1000, []) == [100, 500, 1000]
    assert enabled_channels([100, 500, 1000], True, None, []) == [100, 500, 1000]
    assert enabled_channels([100, 500, 1000], False, None, [100, 500, 1000]) == []
    pins = {"note_channel_inhibit": {"100": 12, "500": 16}, "coin_inhibit": 4}
    assert wired_channels(pins, "note") == [100, 500]
    assert wired_channels(pins, "coin") == []


def check_the_board_applies_its_wiring_to_a_limit():
    settings = json.loads(json.dumps(SETTINGS))
    del settings["pins"]["note_channel_inhibit"]["10000"]
    hal = FakeHal()
    board = Board(hal, settings, "state.json")
    host = Host(board)
    host.hello()
    host.ok(link.SET_ACCEPTING, link.encode_set_accepting(True, 5000))
    # The 100-yuan channel cannot be inhibited alone: the note inlet closes, coins still go.
    assert hal.enabled == {"coin": [10, 50, 100], "note": []}
    host.ok(link.SET_ACCEPTING, link.encode_set_accepting(True, None))
    assert hal.enabled["note"] == [100, 500, 1000, 2000, 5000, 10000]


def check_door_events_carry_the_hosts_time():
    board, hal = new_board()
    host = Host(board)
    host.hello()  # host time 1700000000000 at board time 1010
    hal.door = True
    run_for(board, hal, 100)
    hal.door = False
    run_for(board, hal, 100)
    events = link.decode_board_events(host.ok(link.BOARD_EVENTS, link.encode_u32(0)))
    kinds = [(kind, clock_set) for _, kind, _, clock_set, _ in events]
    assert kinds == [("board_restart", False), ("door_open", True), ("door_closed", True)]
    assert events[1][2] == 1700000000000 + (1070 - 1010)


def check_tamper_stays_latched_until_cleared_with_the_enclosure_closed():
    board, hal = new_board()
    host = Host(board)
    host.hello()
    hal.tamper = True
    run_for(board, hal, 100)
    hal.tamper = False
    run_for(board, hal, 100)
    status = link.decode_status(host.ok(link.STATUS))
    assert status["flags"] & link.FLAG_TAMPER_LATCHED
    hal.tamper = True
    run_for(board, hal, 100)
    got_type, payload = host.request(link.CLEAR_TAMPER)
    assert got_type == link.ERROR and "still open" in link.decode_error(payload)[1]
    hal.tamper = False
    run_for(board, hal, 100)
    host.ok(link.CLEAR_TAMPER)
    status = link.decode_status(host.ok(link.STATUS))
    assert not status["flags"] & link.FLAG_TAMPER_LATCHED
    kinds = [e[1] for e in board.store.board_events_after(0, 10)]
    assert kinds == ["board_restart", "tamper", "tamper_cleared"]


def check_the_tamper_latch_survives_a_board_restart():
    board, hal = new_board()
    hal.tamper = True
    run_for(board, hal, 100)
    again, _ = new_board(FakeHal())
    assert again.store.tamper_latched


def check_the_board_power_cycles_a_silent_host_and_reports_it_later():
    board, hal = new_board()
    host = Host(board)
    host.hello()
    host.ok(link.HEARTBEAT, link.encode_u64(1700000000000))
    timeout = SETTINGS["watchdog"]["timeout_ms"]
    run_for(board, hal, timeout + 100, step=100)
    assert hal.host_power[-1][1] is False
    cut_at = hal.host_power[-1][0]
    run_for(board, hal, SETTINGS["watchdog"]["relay_off_ms"] + 100, step=100)
    assert hal.host_power[-1] == (cut_at + SETTINGS["watchdog"]["relay_off_ms"], True)
    host = Host(board)  # the host is back
    host.hello()
    host.ok(link.HEARTBEAT, link.encode_u64(1700000200000))
    events = link.decode_board_events(host.ok(link.BOARD_EVENTS, link.encode_u32(0)))
    resets = [detail for _, kind, _, _, detail in events if kind == "watchdog_reset"]
    assert resets == [{"fired": True, "silent_ms": timeout, "resets_in_a_row": 1}]
    status = link.decode_status(host.ok(link.STATUS))
    assert status["watchdog_resets"] == 1


def check_maintenance_mode_suspends_the_watchdog_and_shows_the_maintenance_lamp():
    board, hal = new_board()
    host = Host(board)
    host.hello()
    host.ok(link.SET_LAMP, link.encode_u8(link.LAMP_MODES.index("in_service")))
    assert hal.lamp == PATTERNS["in_service"][0]
    host.ok(link.HEARTBEAT, link.encode_u64(1700000000000))
    host.ok(link.SET_MAINTENANCE, b"\x01")
    run_for(board, hal, SETTINGS["watchdog"]["timeout_ms"] * 3, step=500)
    assert all(on for _, on in hal.host_power)
    assert link.decode_status(host.ok(link.STATUS))["lamp"] == "maintenance"


def check_status_reports_temperature_version_and_buffers():
    board, hal = new_board()
    host = Host(board)
    host.hello()
    hal.temperature = -4.5
    board.store.add_cash("coin", 10)
    status = link.decode_status(host.ok(link.STATUS))
    assert status["temperature_decic"] == -45
    assert status["firmware_version"] == FIRMWARE_VERSION
    assert status["unacknowledged_cash"] == 1
    hal.temperature = None
    status = link.decode_status(host.ok(link.STATUS))
    assert status["temperature_decic"] == link.TEMPERATURE_UNKNOWN


def check_a_damaged_frame_gets_a_nak():
    board, _ = new_board()
    frame = bytearray(link.encode_frame(1, link.STATUS))
    frame[3] ^= 0x10
    frames = link.Deframer().feed(board.receive(bytes(frame)))
    assert [f[1] for f in frames] == [link.NAK]


def check_an_unknown_request_type_gets_a_clear_error():
    board, _ = new_board()
    host = Host(board)
    host.hello()
    got_type, payload = host.request(0x3E)
    assert got_type == link.ERROR
    assert link.decode_error(payload)[0] == link.ERR_UNKNOWN_TYPE


def check_settings_are_plain_json():
    assert json.loads(json.dumps(SETTINGS)) == SETTINGS
