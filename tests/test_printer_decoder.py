"""The ESC/POS decoder and the status table: what the driver sends is what the printer reads."""

from hypothesis import given
from hypothesis import strategies as st

from drivers.printer import escpos_decoder as cmd
from drivers.printer.receipt_job import text_bytes
from drivers.printer.status import (
    STATUS_BITS,
    decode_status,
    encode_status,
    is_status_reply,
    printer_status,
)
from simulators.printer_pty import NOISE

printable = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn"), max_codepoint=0x9FFF),
    max_size=40,
)


@given(printable, st.integers(min_value=1, max_value=7))
def test_any_text_the_driver_encodes_decodes_to_itself_whatever_the_chunking(
    text: str, chunk: int
) -> None:
    data = text_bytes(text) + b"\n"
    decoder = cmd.EscPosDecoder()
    commands = [c for i in range(0, len(data), chunk) for c in decoder.feed(data[i : i + chunk])]
    assert "".join(c.text for c in commands if isinstance(c, cmd.Text)) == text
    assert not [c for c in commands if isinstance(c, cmd.Unknown)]
    assert decoder.incomplete == b""


@given(st.integers(min_value=1, max_value=4), st.data())
def test_every_status_condition_survives_encoding_and_decoding(
    kind: int, data: st.DataObject
) -> None:
    names = [bit.condition for bit in STATUS_BITS if bit.kind == kind]
    wanted = set(data.draw(st.lists(st.sampled_from(names), unique=True)))
    assert decode_status(kind, encode_status(kind, wanted)) == wanted


def test_the_simulators_line_noise_never_looks_like_a_status_reply() -> None:
    assert not any(is_status_reply(byte) for byte in NOISE)


def test_a_cover_open_reply_means_answering_but_not_ready() -> None:
    replies = {
        1: encode_status(1, {"offline"}),
        2: encode_status(2, {"cover_open"}),
        3: encode_status(3, set()),
        4: encode_status(4, set()),
    }
    status = printer_status(replies)
    assert status.online is False and status.cover_open is True and not status.ready


def test_unknown_commands_are_returned_with_a_reason() -> None:
    (unknown, text) = cmd.EscPosDecoder().feed(b"\x1b\x99ok")
    assert isinstance(unknown, cmd.Unknown) and "not supported" in unknown.reason
    assert text == cmd.Text("ok")
