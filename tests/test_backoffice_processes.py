"""The back office's own MQTT processes: the libmosquitto publisher and the receiving process.

Against a real Mosquitto: QoS 1 messages (commands) published while the broker is down
arrive once it is back, and over TLS under the fleet's ACL; the receiving process, which
holds the subscribing session, ends with the back office, whether it stops cleanly or is
killed outright.
"""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from backoffice.config import BrokerConfig, Thresholds
from backoffice.errors import BackofficeError
from backoffice.ingest import MqttIngest
from backoffice.mqtt_publish import MosquittoPublisher
from backoffice.store import Store
from tests.fixtures.backoffice import DEADLINE_S, Broker, wait_for
from tests.fixtures.mosquitto import (
    STATION,
    MosquittoBroker,
    MqttPki,
    connect_peer,
    tls_broker_config,
)


def running(pid: int) -> bool:
    """Whether a process with this id exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z"


def test_messages_published_while_the_broker_is_down_arrive_when_it_is_back(
    backoffice_broker: Broker,
) -> None:
    broker = BrokerConfig(host=backoffice_broker.host, port=backoffice_broker.port)
    backoffice_broker.stop()
    publisher = MosquittoPublisher(broker, "bo-test-pub")
    publisher.start()
    received: list[bytes] = []
    got = threading.Event()
    subscriber = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="t")
    try:
        publisher.publish("kiosk/v1/1/T-01/ack", b'{"v":1,"upto_seq":7}', 1)
        publisher.publish("kiosk/v1/1/T-01/ack", b'{"v":1,"upto_seq":9}', 1)
        backoffice_broker.start()
        subscribed = threading.Event()
        subscriber.on_subscribe = lambda *args: subscribed.set()
        subscriber.on_message = lambda c, u, m: (received.append(m.payload), got.set())
        subscriber.connect(backoffice_broker.host, backoffice_broker.port)
        subscriber.subscribe("kiosk/v1/+/+/ack", qos=1)
        subscriber.loop_start()
        assert subscribed.wait(DEADLINE_S)
        wait_for(lambda: publisher.retry() or len(set(received)) >= 2, "the waiting acks")
        # In order; QoS 1 is at least once, and an ack that comes twice changes nothing.
        assert list(dict.fromkeys(received)) == [
            b'{"v":1,"upto_seq":7}',
            b'{"v":1,"upto_seq":9}',
        ]
        backoffice_broker.stop()  # now a connection that was up goes down, and comes back
        backoffice_broker.start()
        subscribed.clear()
        subscriber.on_connect = lambda c, *args: c.subscribe("kiosk/v1/+/+/ack", qos=1)
        assert subscribed.wait(DEADLINE_S)
        wait_for(
            lambda: (
                publisher.publish("kiosk/v1/1/T-01/ack", b'{"v":1,"upto_seq":12}', 1)
                or b'{"v":1,"upto_seq":12}' in received
            ),
            "an ack after the broker came back",
        )
    finally:
        subscriber.loop_stop()
        publisher.stop()


def test_a_command_published_over_tls_reaches_the_terminal_under_the_fleets_acl(
    mosquitto: MosquittoBroker, mqtt_pki: MqttPki
) -> None:
    broker = tls_broker_config(mosquitto, mqtt_pki)
    terminal = connect_peer(mosquitto, mqtt_pki.terminal("TPUB1"), f"kiosk-{STATION}-TPUB1")
    publisher = MosquittoPublisher(broker, f"bo-test-pub-{os.getpid()}")
    try:
        terminal.subscribe(f"kiosk/v1/{STATION}/TPUB1/cmd")
        publisher.start()
        publisher.publish(f"kiosk/v1/{STATION}/TPUB1/cmd", b'{"v":1,"id":"c-1"}', 1)
        wait_for(lambda: publisher.retry() or terminal.messages("/cmd"), "the command")
        assert [m.payload for m in terminal.messages("/cmd")] == [b'{"v":1,"id":"c-1"}']
    finally:
        publisher.stop()
        terminal.close()


def test_unreadable_tls_files_are_one_clear_error() -> None:
    broker = BrokerConfig(tls_ca_file="/nonexistent/ca.pem")
    with pytest.raises(BackofficeError, match="tls_ca_file, tls_cert_file and tls_key_file"):
        MosquittoPublisher(broker, "bo-test-pub")


def test_a_clean_stop_ends_the_receiving_process(tmp_path: Path, backoffice_broker: Broker) -> None:
    broker = BrokerConfig(
        host=backoffice_broker.host, port=backoffice_broker.port, client_id="bo-clean-stop"
    )
    store = Store(f"sqlite:///{tmp_path / 'bo.db'}")
    ingest = MqttIngest(store, broker, Thresholds())
    ingest.start()
    try:
        wait_for(ingest.connected.is_set, "the subscriptions")
        receiver = ingest.receiver_pid()
        assert running(receiver)
    finally:
        ingest.stop()
        store.close()
    assert not running(receiver)


def test_a_back_office_killed_outright_leaves_no_receiving_process_behind(
    tmp_path: Path, backoffice_broker: Broker
) -> None:
    # Left running, the receiving process would hold the client id and fight the next back
    # office for the persistent session.
    script = textwrap.dedent(
        f"""
        import sys, time
        from backoffice.config import BrokerConfig, Thresholds
        from backoffice.ingest import MqttIngest
        from backoffice.store import Store
        broker = BrokerConfig(host="127.0.0.1", port={backoffice_broker.port},
                              client_id="bo-killed")
        ingest = MqttIngest(Store("sqlite:///{tmp_path / "bo.db"}"), broker, Thresholds())
        ingest.start()
        ingest.connected.wait(20)
        print(ingest.receiver_pid(), flush=True)
        time.sleep(60)
        """
    )
    back_office = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        assert back_office.stdout is not None
        receiver = int(back_office.stdout.readline())
        assert running(receiver)
        back_office.send_signal(signal.SIGKILL)
        back_office.wait(DEADLINE_S)
        wait_for(lambda: not running(receiver), "the receiving process to end")
    finally:
        if back_office.poll() is None:
            back_office.kill()
            back_office.wait()


def test_a_receiving_process_that_dies_is_reported_once_and_the_back_office_still_stops(
    tmp_path: Path, backoffice_broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    broker = BrokerConfig(
        host=backoffice_broker.host, port=backoffice_broker.port, client_id="bo-receiver-dies"
    )
    store = Store(f"sqlite:///{tmp_path / 'bo.db'}")
    ingest = MqttIngest(store, broker, Thresholds(), liveness_every_s=0.05)
    ingest.start()
    try:
        wait_for(ingest.connected.is_set, "the subscriptions")
        os.kill(ingest.receiver_pid(), signal.SIGKILL)
        ended = "the receiving process ended: nothing is received until a restart"
        wait_for(lambda: ended in caplog.text, "the worker to report it")
        # Several liveness periods later it has said so once, and it is still checking.
        time.sleep(0.3)
        assert caplog.text.count(ended) == 1
        assert ingest._worker.is_alive()
    finally:
        ingest.stop()
        store.close()
    assert not ingest._worker.is_alive()
