"""sd_notify to a real AF_UNIX datagram socket, as systemd listens for it."""

import os
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from kiosk.service_notify import ServiceNotifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[Path, socket.socket]]:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    yield path, sock
    sock.close()


def test_ready_and_watchdog_reach_the_notify_socket(listener: tuple[Path, socket.socket]) -> None:
    path, sock = listener
    notifier = ServiceNotifier({"NOTIFY_SOCKET": str(path)})
    assert notifier.ready("serving")
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving"
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"


def test_outside_systemd_every_call_does_nothing() -> None:
    notifier = ServiceNotifier({})
    assert not notifier.enabled and not notifier.ready() and notifier.watchdog_interval is None


def test_a_vanished_socket_is_reported_not_raised(tmp_path: Path) -> None:
    assert not ServiceNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).watchdog()


def test_the_watchdog_is_pinged_at_half_its_period_and_only_for_this_process() -> None:
    env = {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}
    assert ServiceNotifier(env).watchdog_interval == timedelta(seconds=10)
    assert ServiceNotifier({**env, "WATCHDOG_PID": "1"}).watchdog_interval is None


def test_a_status_with_a_newline_is_refused(listener: tuple[Path, socket.socket]) -> None:
    path, _ = listener
    with pytest.raises(ValueError, match="one line"):
        ServiceNotifier({"NOTIFY_SOCKET": str(path)}).status("a\nREADY=1")
