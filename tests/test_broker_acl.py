"""The broker's ACL (deploy/mosquitto/acl) with a real Mosquitto: what a terminal must not do.

Each negative case is followed by a legitimate message on the same connection, which the
broker handles in order: once the legitimate one has arrived, the forbidden one would have
arrived too, so "never received" is proven without sleeping.
"""

import ssl
import uuid
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures.mosquitto import (
    STATION,
    MosquittoBroker,
    MqttPeer,
    MqttPki,
    connect_peer,
    wait_until,
)

ROOT = "kiosk/v1"
A = f"{ROOT}/{STATION}/TA"
B = f"{ROOT}/{STATION}/TB"
NOT_AUTHORIZED = 135  # MQTT 5 reason code 0x87


@pytest.fixture
def peers(mosquitto: MosquittoBroker, mqtt_pki: MqttPki) -> Iterator[dict[str, MqttPeer]]:
    run = uuid.uuid4().hex[:6]
    made: dict[str, MqttPeer] = {
        "a": connect_peer(mosquitto, mqtt_pki.terminal("TA"), f"acl-a-{run}"),
        "b": connect_peer(mosquitto, mqtt_pki.terminal("TB"), f"acl-b-{run}"),
        "office": connect_peer(mosquitto, mqtt_pki.backoffice(), f"acl-office-{run}"),
    }
    yield made
    for peer in made.values():
        peer.close()


def test_a_terminal_publishes_under_its_own_root_and_the_back_office_receives_it(
    peers: dict[str, MqttPeer],
) -> None:
    peers["office"].subscribe(f"{ROOT}/#")
    info = peers["a"].publish(f"{A}/heartbeat", b"mine")
    assert not info.rc
    assert peers["office"].wait_for(f"{A}/heartbeat")[0].payload == b"mine"


def test_terminal_a_cannot_publish_as_terminal_b(peers: dict[str, MqttPeer]) -> None:
    office = peers["office"]
    office.subscribe(f"{ROOT}/#")
    for kind in ("status", "heartbeat", "health", "event", "outbox", "cmd_result"):
        peers["a"].publish(f"{B}/{kind}", b"forged by A")
    peers["a"].publish(f"{A}/heartbeat", b"sentinel")
    office.wait_for(f"{A}/heartbeat")
    assert [m.topic for m in office.messages() if m.topic.startswith(B)] == []


def test_a_forged_publish_is_answered_not_authorized_under_mqtt5(
    mosquitto: MosquittoBroker, mqtt_pki: MqttPki
) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="acl-rc", protocol=mqtt.MQTTv5)
    cert = mqtt_pki.terminal("TA")
    client.tls_set(str(cert.ca), str(cert.cert), str(cert.key), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    codes: list[int] = []
    client.on_publish = lambda c, u, mid, rc, props: codes.append(int(rc.value))
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        client.publish(f"{B}/outbox", b"forged", qos=1)
        client.publish(f"{A}/outbox", b"allowed", qos=1)
        wait_until(lambda: len(codes) == 2, 20, "two PUBACKs")
    finally:
        client.disconnect()
        client.loop_stop()
    # 16 is "no matching subscribers": accepted, nobody listening on A's outbox right now.
    assert codes[0] == NOT_AUTHORIZED and codes[1] in (0, 16)


def test_terminal_a_cannot_read_terminal_bs_commands(peers: dict[str, MqttPeer]) -> None:
    a, b, office = peers["a"], peers["b"], peers["office"]
    # Mosquitto 2.0 may grant the SUBACK; its read ACL still filters every delivery.
    a.subscribe(f"{B}/cmd")
    a.subscribe(f"{ROOT}/+/+/cmd")  # a wildcard must not leak other terminals' commands
    a.subscribe(f"{A}/cmd")
    b.subscribe(f"{B}/cmd")
    office.publish(f"{B}/cmd", b"for B only")
    office.publish(f"{A}/cmd", b"for A")
    assert b.wait_for(f"{B}/cmd")[0].payload == b"for B only"
    a.wait_for(f"{A}/cmd")
    assert [m.payload for m in a.messages()] == [b"for A"] * len(a.messages())


def test_terminal_a_cannot_read_what_terminal_b_publishes(peers: dict[str, MqttPeer]) -> None:
    a = peers["a"]
    a.subscribe(f"{ROOT}/#")
    a.subscribe(f"{A}/ack")
    peers["b"].publish(f"{B}/outbox", b"B's record")
    peers["office"].publish(f"{A}/ack", b'{"v":1,"upto_seq":1}')
    a.wait_for(f"{A}/ack")
    assert [m.topic for m in a.messages() if m.topic.startswith(B)] == []


def test_a_terminal_cannot_forge_the_back_offices_acknowledgement_or_command(
    peers: dict[str, MqttPeer],
) -> None:
    a, b = peers["a"], peers["b"]
    a.subscribe(f"{A}/ack")
    a.subscribe(f"{A}/cmd")
    b.subscribe(f"{B}/ack")
    b.subscribe(f"{B}/cmd")
    for target in (A, B):
        a.publish(f"{target}/ack", b'{"v":1,"upto_seq":999}')
        a.publish(f"{target}/cmd", b"{}")
    peers["office"].publish(f"{A}/ack", b"sentinel A")
    peers["office"].publish(f"{B}/ack", b"sentinel B")
    assert [m.payload for m in a.wait_for(f"{A}/ack")] == [b"sentinel A"]
    assert [m.payload for m in b.wait_for(f"{B}/ack")] == [b"sentinel B"]
    assert a.messages("/cmd") == [] and b.messages("/cmd") == []


def test_the_last_will_of_a_terminal_that_vanishes_reaches_the_back_office(
    peers: dict[str, MqttPeer], mosquitto: MosquittoBroker, mqtt_pki: MqttPki
) -> None:
    office = peers["office"]
    office.subscribe(f"{A}/status")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="acl-will", protocol=mqtt.MQTTv5)
    cert = mqtt_pki.terminal("TA")
    client.tls_set(str(cert.ca), str(cert.cert), str(cert.key), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.will_set(f"{A}/status", b"will", qos=1, retain=False)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    wait_until(client.is_connected, 20, "the will client to connect")
    client.loop_stop()
    client.socket().close()  # gone without DISCONNECT, as a killed process or a cut link
    assert office.wait_for(f"{A}/status")[-1].payload == b"will"


def test_a_client_without_a_certificate_is_refused(
    mosquitto: MosquittoBroker, mqtt_pki: MqttPki
) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="acl-anon", protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=str(mqtt_pki.ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    outcome: list[str] = []
    client.on_connect = lambda *args: outcome.append("connected")
    client.on_disconnect = lambda *args: outcome.append("disconnected")
    client.on_connect_fail = lambda *args: outcome.append("failed")
    try:
        client.connect(mosquitto.host, mosquitto.port)
    except (ssl.SSLError, OSError):
        return  # refused during the TLS handshake itself (TLS 1.2)
    client.loop_start()
    try:
        wait_until(lambda: outcome, 20, "the broker to refuse a client without a certificate")
    finally:
        client.loop_stop()
    assert outcome[0] != "connected"


def test_back_office_workers_share_the_stream_each_message_to_one_of_them(
    mosquitto: MosquittoBroker, mqtt_pki: MqttPki, peers: dict[str, MqttPeer]
) -> None:
    run = uuid.uuid4().hex[:6]
    second = connect_peer(mosquitto, mqtt_pki.backoffice(), f"acl-office2-{run}")
    try:
        shared = f"$share/ingest-{run}/{ROOT}/+/+/event"
        for office in (peers["office"], second):
            assert office.subscribe(shared) == [1]
        for n in range(6):
            peers["a"].publish(f"{A}/event", b"%d" % n)
        wait_until(
            lambda: len(peers["office"].messages("/event")) + len(second.messages("/event")) == 6,
            what="the six events, each to one worker of the group",
        )
    finally:
        second.close()


def test_a_terminal_subscribed_to_the_shared_stream_reads_nothing_of_it(
    mosquitto: MosquittoBroker, mqtt_pki: MqttPki, peers: dict[str, MqttPeer]
) -> None:
    # Mosquitto grants the SUBSCRIBE and checks the read at delivery, so the terminal gets
    # nothing; that it can still divert messages from the group is a known limit of the
    # file ACL (docs/mqtt.md section 6).
    run = uuid.uuid4().hex[:6]
    peers["b"].subscribe(f"$share/ingest-{run}/{ROOT}/+/+/event")
    peers["b"].subscribe(f"{B}/cmd")
    for n in range(3):
        peers["a"].publish(f"{A}/event", b"%d" % n)
    peers["office"].publish(f"{B}/cmd", b"after")  # handled after the events, in order
    peers["b"].wait_for("/cmd")
    assert peers["b"].messages("/event") == []
