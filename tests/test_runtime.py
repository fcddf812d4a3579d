"""kiosk.runtime: guarded start, bounded housekeeping, systemd notify, events, commands.

Real core on simulated devices, the platform simulator over loopback HTTP with its faults,
the real sd_notify datagrams on a socket the test listens on, a real Mosquitto broker for
the command that outlives its wait. No mocks.
"""

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.config import ConfigError, parse_config, refuse_development_trust
from kiosk.diagnostics import DiagnosticContext, Verdict, run_diagnostics
from kiosk.events import Event
from kiosk.runtime import Cadence, Runtime, RuntimeEvent
from kiosk.service_faults import Fault
from kiosk.service_notify import ServiceNotifier
from kiosk.telemetry.commands import Command, CommandHandlers, CommandRunner
from station.cli import main as kiosk_main
from tests.fixtures.terminal import STATION, TERMINAL, TerminalRig

FAST = Cadence(platform_call_s=1.0, platform_retry_s=2.0, confirm_after_s=0.0)


class NotifyListener:
    """The service manager's end of sd_notify: a datagram socket that records every message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            self.messages.append((time.monotonic(), fields))

    def times_of(self, key: str) -> list[float]:
        return [at for at, fields in list(self.messages) if key in fields]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifyListener]:
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.close()


def notifier_for(listener: NotifyListener, watchdog_s: float) -> ServiceNotifier:
    """What systemd gives a Type=notify unit with WatchdogSec=watchdog_s."""
    return ServiceNotifier(
        {"NOTIFY_SOCKET": str(listener.path), "WATCHDOG_USEC": str(int(watchdog_s * 1e6))}
    )


def turn_until(runtime: Runtime, condition: Any, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        runtime.turn()
        time.sleep(0.05)


# ---------------------------------------------------------------------- guarded start


def test_a_failing_token_at_start_leaves_the_terminal_up_out_of_service_until_it_works(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 30_00)
    rig.insert(progress.tx_id, 10_00)
    rig.signer.failing = True  # the USBKey pulled, then the power failed
    outcomes = rig.crash_and_restart()  # raised SignerError before: a restart every 5 s
    # Recovery ran all the same: the interrupted payment is closed, its cash a voucher.
    assert [o.tx_id for o in outcomes] == [progress.tx_id]
    assert outcomes[0].outcome == "cancelled"
    terminal = rig.terminal
    assert Fault.TOKEN_UNAVAILABLE in terminal.faults
    assert terminal.service_state() == "out_of_service"
    seen: list[Event] = []
    terminal.events.subscribe(seen.append)
    runtime = Runtime(terminal, started=True, cadence=FAST)
    runtime.start()
    runtime.turn()
    assert terminal.service_state() == "out_of_service"
    rig.signer.failing = False  # the token is back: housekeeping notices by itself
    turn_until(runtime, lambda: not terminal.faults, "the token fault to clear")
    turn_until(
        runtime,
        lambda: any(
            e.kind == RuntimeEvent.SERVICE_STATE and e.data["state"] != "out_of_service"
            for e in seen
        ),
        "the service state event back in service",
    )
    assert terminal.journal.signing_available()


def test_a_platform_refusing_at_start_is_a_fault_that_clears_when_it_answers(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    rig.platform.set_faults(["float:error", "register:error"])
    rig.crash_and_restart()
    terminal = rig.terminal
    assert Fault.PLATFORM_UNREACHABLE in terminal.faults
    assert terminal.service_state() == "out_of_service"
    runtime = Runtime(terminal, started=True, cadence=FAST)
    runtime.start()
    runtime.turn()
    assert Fault.PLATFORM_UNREACHABLE in terminal.faults
    rig.platform.clear_faults()
    turn_until(runtime, lambda: not terminal.faults, "the platform fault to clear")
    assert terminal.registered and terminal.service_state() != "out_of_service"


# ---------------------------------------------------------------------- bounded housekeeping


def test_a_black_holed_platform_never_starves_the_watchdog_or_a_residents_call(
    tmp_path: Path, platform_sim: Any, notify: NotifyListener
) -> None:
    from tests.fixtures.terminal import started_rig

    with started_rig(tmp_path / "terminal", platform_sim) as rig:
        # A gateway that waits long before giving up: unbounded, one housekeeping call
        # would hold the terminal's thread 3 x 10 s, past any watchdog.
        platform = dataclasses.replace(rig.config.platform, timeout_s=10.0, retries=3)
        rig.config = dataclasses.replace(rig.config, platform=platform)
        rig.crash_and_restart()
        terminal = rig.terminal
        # A payment left in doubt: a housekeeping duty that asks the platform its status.
        progress = terminal.start_phone_topup("mobile-topup", "13800138000", 10_00)
        rig.insert(progress.tx_id, 10_00)
        rig.platform.set_faults(["post:timeout_after_commit:sleep_ms=100", "status:error"])
        with terminal.platform.bounded(0.05):  # lose the answer fast, for the setup only
            assert terminal.finish(progress.tx_id).outcome == "in_doubt"
        rig.platform.clear_faults()
        rig.platform.set_faults(["*:timeout_before:sleep_ms=120000"])  # the black hole
        rig.clock.advance(timedelta(minutes=1))  # its retry is due

        runtime = Runtime(terminal, started=True, cadence=FAST, notifier=notifier_for(notify, 2.0))
        runtime.start()
        thread = threading.Thread(target=runtime.run, daemon=True)
        thread.start()
        try:
            time.sleep(3.0)  # housekeeping is now working against the black hole
            asked = time.monotonic()
            served = runtime.submit(terminal.service_state).result(timeout=30)
            waited = time.monotonic() - asked
            time.sleep(5.0)
        finally:
            runtime.stop()
            thread.join(30)
        assert served in ("in_service", "attention", "out_of_service")
        pings = notify.times_of("WATCHDOG")
        gaps = [later - earlier for earlier, later in zip(pings, pings[1:], strict=False)]
        assert len(pings) >= 6, pings
        # The unit's budget: a ping every WatchdogSec/2 (1 s here) plus at most one bounded
        # duty (one platform call of platform_call_s): never the 30 s an unbounded call takes.
        assert max(gaps) < 1.0 + FAST.platform_call_s + 1.5, gaps
        assert waited < FAST.platform_call_s + 1.5, waited
        assert platform_sim.requests_seen().get("status", 0) >= 1  # it did try the platform


# ---------------------------------------------------------------------- events and notify


def test_ready_then_watchdog_and_the_events_the_screens_follow(
    terminal_rig: TerminalRig, notify: NotifyListener
) -> None:
    rig = terminal_rig
    seen: list[Event] = []
    rig.terminal.events.subscribe(seen.append)
    runtime = Runtime(rig.terminal, started=True, cadence=FAST, notifier=notifier_for(notify, 30.0))
    runtime.start()
    turn_until(runtime, lambda: notify.times_of("READY"), "READY=1")
    ready = notify.times_of("READY")[0]
    turn_until(
        runtime, lambda: [t for t in notify.times_of("WATCHDOG") if t >= ready], "WATCHDOG=1"
    )

    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 30_00)
    rig.sims.cash.insert("note", 10_00)  # counted by the acceptor, journaled by the loop
    turn_until(
        runtime, lambda: any(e.kind == RuntimeEvent.CASH_COUNTED for e in seen), "cash counted"
    )
    assert rig.terminal.collect(progress.tx_id).cash_in_fen == 10_00

    rig.sims.cards.create_card("3100000000000001", "electricity", "M-000001")
    rig.sims.cards.insert_card("3100000000000001")
    turn_until(runtime, lambda: any(e.kind == RuntimeEvent.CARD_INSERTED for e in seen), "card in")
    rig.sims.cards.remove_card()
    turn_until(runtime, lambda: any(e.kind == RuntimeEvent.CARD_REMOVED for e in seen), "card out")
    rig.sims.printer.paper_out()
    turn_until(
        runtime,
        lambda: any(e.kind == RuntimeEvent.DEVICE_STATE for e in seen),
        "the device state event",
    )


# ---------------------------------------------------------------------- remote commands


def test_a_command_that_outlives_its_wait_is_reported_running_then_done() -> None:
    handlers = CommandHandlers()
    release = threading.Event()
    handlers.register("close_day", lambda _c: {"closed": release.wait(30)})
    reports: list[tuple[str, bool, Any, Any]] = []
    runner = CommandRunner(handlers, lambda *report: reports.append(report), wait_s=0.2)
    command = Command("c-1", "close_day", {}, expires=None, nonce="0" * 16)  # type: ignore[arg-type]
    thread = runner.run(command)
    deadline = time.monotonic() + 10
    while not reports:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert reports == [("c-1", True, {"state": "running", "waited_s": 0.2}, None)]
    release.set()
    thread.join(10)
    assert reports[-1] == ("c-1", True, {"closed": True}, None)


# ---------------------------------------------------------------------- development trust


def real_token_config(tmp_path: Path, operator_key_file: str = "") -> dict[str, Any]:
    return {
        "data_dir": str(tmp_path / "data"),
        "station": {"institution_no": STATION, "name": "站", "terminal_id": TERMINAL},
        "platform": {"url": "http://127.0.0.1:9"},
        "token": {"kind": "pkcs11", "module": "/usr/lib/vendor/libvendor-pkcs11.so"},
        "business": {"operator_key_file": operator_key_file},
    }


def test_a_real_token_refuses_the_public_development_catalog_key(tmp_path: Path) -> None:
    from kiosk.catalog import shipped_operator_public_pem

    with pytest.raises(ConfigError, match="development operator key"):
        refuse_development_trust(parse_config(real_token_config(tmp_path)))
    copy = tmp_path / "dev-copy.pub.pem"
    copy.write_bytes(shipped_operator_public_pem())
    with pytest.raises(ConfigError, match="development operator key"):
        refuse_development_trust(parse_config(real_token_config(tmp_path, str(copy))))
    production = tmp_path / "operator.pub.pem"
    production.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    refuse_development_trust(parse_config(real_token_config(tmp_path, str(production))))
    softhsm = real_token_config(tmp_path)
    softhsm["token"]["module"] = "/usr/lib/softhsm/libsofthsm2.so"
    refuse_development_trust(parse_config(softhsm))  # a development token may trust it


def test_kiosk_run_and_diagnose_refuse_a_real_token_trusting_the_development_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import tomli_w

    path = tmp_path / "kiosk.toml"
    path.write_text(tomli_w.dumps(real_token_config(tmp_path)), encoding="utf-8")
    assert kiosk_main(["run", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "operator_key_file" in err
    config = parse_config(real_token_config(tmp_path), source=str(path))
    report = run_diagnostics(DiagnosticContext(config), only=("catalog.trust",))
    [result] = report.results
    assert result.verdict is Verdict.FAIL and "development" in result.detail


def test_every_fault_has_its_reason_in_chinese_and_english() -> None:
    from kiosk.i18n import translator

    chinese, english = translator("zh_CN"), translator("en")
    for fault in Fault:
        assert chinese(fault.message) != fault.message, fault
        assert english(fault.message) == fault.message
        assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese(fault.message)), fault
