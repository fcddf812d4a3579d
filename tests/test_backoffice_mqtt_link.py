"""The back office's one MQTT client (backoffice.mqtt_link, paho-mqtt, MQTT 5) against a
real Mosquitto: what it publishes while the broker is down goes out when it is back; over
TLS under the fleet's ACL a command reaches its terminal; a command's message expiry lets
the broker drop it, undelivered, once it has expired; unreadable TLS files are one error."""

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from backoffice.config import BrokerConfig
from backoffice.errors import BackofficeError
from backoffice.mqtt_link import MqttLink
from kiosk.telemetry.topics import TopicKind, topic
from tests.fixtures.backoffice import DEADLINE_S, Broker, wait_for
from tests.fixtures.mosquitto import (
    STATION,
    MosquittoBroker,
    MqttPki,
    connect_peer,
    tls_broker_config,
)

ACK = topic("1", "T-01", TopicKind.ACK)


def test_messages_published_while_the_broker_is_down_arrive_when_it_is_back(
    backoffice_broker: Broker,
) -> None:
    broker = BrokerConfig(host=backoffice_broker.host, port=backoffice_broker.port)
    backoffice_broker.stop()
    link = MqttLink(broker, [], lambda message: None, "bo-test-pub")
    received: list[bytes] = []
    subscriber = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="t")
    try:
        # Published with no connection (the broker is down): kept, in order.
        link.publish(ACK, b'{"v":1,"upto_seq":7}', 1)
        link.publish(ACK, b'{"v":1,"upto_seq":9}', 1)
        subscribed = threading.Event()
        subscriber.on_subscribe = lambda *args: subscribed.set()
        subscriber.on_message = lambda c, u, m: received.append(m.payload)
        subscriber.on_connect = lambda c, *args: c.subscribe("kiosk/v1/+/+/ack", qos=1)
        backoffice_broker.start()
        subscriber.connect(backoffice_broker.host, backoffice_broker.port)
        subscriber.loop_start()
        assert subscribed.wait(DEADLINE_S)  # listening before the link connects
        link.start()
        wait_for(link.subscribed.is_set, "the link to connect")
        wait_for(lambda: len(received) >= 2, "the acks published while the broker was down")
        assert received[:2] == [b'{"v":1,"upto_seq":7}', b'{"v":1,"upto_seq":9}']
        wait_for(
            lambda: (
                link.publish(ACK, b'{"v":1,"upto_seq":12}', 1)
                or b'{"v":1,"upto_seq":12}' in received
            ),
            "an ack published once the broker is back",
        )
    finally:
        subscriber.loop_stop()
        link.stop()


def test_a_command_published_over_tls_reaches_the_terminal_under_the_fleets_acl(
    mosquitto: MosquittoBroker, mqtt_pki: MqttPki
) -> None:
    broker = tls_broker_config(mosquitto, mqtt_pki)
    terminal = connect_peer(mosquitto, mqtt_pki.terminal("TPUB1"), f"kiosk-{STATION}-TPUB1")
    link = MqttLink(broker, [], lambda message: None, "bo-test-pub-tls")
    try:
        terminal.subscribe(topic(STATION, "TPUB1", TopicKind.CMD))
        link.start()
        link.publish(topic(STATION, "TPUB1", TopicKind.CMD), b'{"v":1,"id":"c-1"}', 1, 300)
        terminal.wait_for("/cmd")
        assert [m.payload for m in terminal.messages("/cmd")] == [b'{"v":1,"id":"c-1"}']
    finally:
        link.stop()
        terminal.close()


def test_an_expired_command_is_dropped_by_the_broker_and_a_fresh_one_delivered(
    mosquitto: MosquittoBroker, mqtt_pki: MqttPki
) -> None:
    broker = tls_broker_config(mosquitto, mqtt_pki)
    cert, client_id = mqtt_pki.terminal("TEXP1"), f"kiosk-{STATION}-TEXP1"
    command_topic = topic(STATION, "TEXP1", TopicKind.CMD)
    terminal = connect_peer(mosquitto, cert, client_id, session_expiry_s=3600)
    terminal.subscribe(command_topic)
    terminal.close()  # away: the broker queues its QoS 1 messages in the session
    link = MqttLink(broker, [], lambda message: None, "bo-test-pub-expiry")
    link.start()
    try:
        wait_for(link.subscribed.is_set, "the link to connect")
        link.publish(command_topic, b'{"id":"short"}', 1, expiry_s=1)
        link.publish(command_topic, b'{"id":"long"}', 1, expiry_s=300)
        time.sleep(2.5)  # the first command's expiry passes while the terminal is away
        received: list[bytes] = []
        back = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        back.tls_set(ca_certs=str(cert.ca), certfile=str(cert.cert), keyfile=str(cert.key))
        back.on_message = lambda c, u, m: received.append(m.payload)
        back.connect(mosquitto.host, mosquitto.port, clean_start=False)  # resume the session
        back.loop_start()
        try:
            wait_for(lambda: received, "the queued command")
            assert received == [b'{"id":"long"}']
        finally:
            back.disconnect()
            back.loop_stop()
    finally:
        link.stop()


def test_unreadable_tls_files_are_one_clear_error() -> None:
    broker = BrokerConfig(tls_ca_file="/nonexistent/ca.pem")
    with pytest.raises(BackofficeError, match="tls_ca_file, tls_cert_file and tls_key_file"):
        MqttLink(broker, [], lambda message: None, "bo-test-pub")
