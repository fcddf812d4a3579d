"""mosquitto_sub's framed output (`%t\\0%l\\0%p`) is split back into exactly the messages sent."""

import os
import select
import subprocess

from hypothesis import given
from hypothesis import strategies as st

from backoffice.ingest import MqttIngest
from backoffice.ingest_check import FrameReader
from tests.fixtures.backoffice import DEADLINE_S, Broker, wait_for

# MQTT topics are UTF-8 without U+0000; payloads are any bytes.
topics = st.text(st.characters(blacklist_characters="\x00", codec="utf-8"), min_size=1)
messages = st.lists(st.tuples(topics, st.binary(max_size=300)), max_size=20)


def frame(topic: str, payload: bytes) -> bytes:
    return topic.encode() + b"\0" + str(len(payload)).encode() + b"\0" + payload


@given(messages=messages, cuts=st.lists(st.integers(min_value=0), max_size=10))
def test_frames_split_anywhere_come_out_as_the_messages_sent(
    messages: list[tuple[str, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(frame(topic, payload) for topic, payload in messages)
    points = sorted({cut % (len(stream) + 1) for cut in cuts} | {0, len(stream)})
    reader = FrameReader()
    out: list[tuple[str, bytes]] = []
    for start, end in zip(points, points[1:], strict=False):
        out += reader.feed(stream[start:end])
    assert out == messages and reader.pending() == 0


def test_an_incomplete_frame_waits_for_the_rest() -> None:
    reader = FrameReader()
    assert reader.feed(b"kiosk/v1/1/T/event\x005\x00ab") == []
    assert reader.pending() > 0
    assert reader.feed(b"c\x00\ndkiosk") == [("kiosk/v1/1/T/event", b"abc\x00\n")]
    assert reader.pending() == len(b"dkiosk")


def test_a_real_mosquitto_sub_frames_binary_payloads_and_odd_topics_losslessly(
    backoffice_broker: Broker,
) -> None:
    sent = [("a/b c/", b"x\x00y\nz"), ("a/empty", b""), ("a/\u4e2d", "电费".encode())]
    port = str(backoffice_broker.port)
    command = ["mosquitto_sub", "-p", port, "-q", "1", "-t", "a/#", "-N"]
    sub = subprocess.Popen([*command, "-F", MqttIngest.FRAME_FORMAT], stdout=subprocess.PIPE)
    try:
        assert sub.stdout is not None
        pipe, reader = sub.stdout.fileno(), FrameReader()

        def read(wait_s: float) -> list[tuple[str, bytes]]:
            ready, _, _ = select.select([pipe], [], [], wait_s)
            return reader.feed(os.read(pipe, 65536)) if ready else []

        def probe() -> list[tuple[str, bytes]]:  # until the subscription is active
            probe_pub = ["mosquitto_pub", "-p", port, "-t", "a/probe", "-n"]
            subprocess.run(probe_pub, check=True, timeout=DEADLINE_S)
            return read(0.2)

        assert wait_for(probe, "mosquitto_sub to subscribe")[-1] == ("a/probe", b"")
        read(0.2)  # a probe still on its way
        for topic, payload in sent:
            publish = ["mosquitto_pub", "-p", port, "-q", "1", "-t", topic]
            publish.append("-s" if payload else "-n")  # -s refuses an empty stdin
            subprocess.run(publish, input=payload, check=True, timeout=DEADLINE_S)
        received: list[tuple[str, bytes]] = []
        wait_for(lambda: received.extend(read(0.2)) or len(received) >= 3, "three messages")
    finally:
        sub.terminate()
        sub.wait(10)
    assert [m for m in received if m[0] != "a/probe"] == sent
