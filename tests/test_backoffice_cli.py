"""kiosk-backoffice as a person runs it: help, one-line errors, the key, reports, serve."""

import json
import logging
import os
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from backoffice.cli import main
from backoffice.logs import JournalFormatter, priority
from backoffice.store import Store
from tests.fixtures.backoffice import Broker, free_port, wait_for


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("serve", "make-command-key", "report"):
        with pytest.raises(SystemExit) as stopped:
            main([command, "--help"])
        assert stopped.value.code == 0
    assert "--by-method" in capsys.readouterr().out  # the last one: report


def test_a_missing_config_is_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    handlers = logging.getLogger().handlers[:]
    assert main(["serve", "--config", "/nonexistent/bo.toml"]) == 1
    # Logging is left as it was: a handler on this test's captured stderr would make a
    # later test's log line a "Logging error" traceback (tests/test_update_publish.py).
    assert logging.getLogger().handlers == handlers
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "kiosk-backoffice: error: configuration file /nonexistent/bo.toml does not exist: "
        "write one as docs/backoffice.md shows"
    ]


def test_a_wrong_config_key_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bo.toml"
    config.write_text('store = "sqlite:///x.db"\n[thresholds]\nofline_after_s = 3\n')
    assert main(["report", "exit", "--config", str(config)]) == 1
    assert "unknown config key 'thresholds.ofline_after_s'" in capsys.readouterr().err


def test_the_command_key_is_made_once_and_reports_print_csv_or_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "command.key"
    assert main(["make-command-key", "--out", str(key), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["public_key_file"].endswith("command.pub.pem")
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert main(["make-command-key", "--out", str(key)]) == 1
    config = tmp_path / "bo.toml"
    config.write_text(f'store = "sqlite:///{tmp_path / "bo.db"}"\n')
    capsys.readouterr()
    assert main(["report", "commission", "--config", str(config), "--month", "2025-03"]) == 0
    # No stations yet: the statement CSV is its byte-order mark alone (UTF-8 for Excel).
    assert capsys.readouterr().out == "\ufeff"
    assert main(["report", "revenue", "--config", str(config), "--period", "week"]) == 0
    assert capsys.readouterr().out == "\r\n"  # no business yet
    assert main(["report", "satisfaction", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["report", "daily", "--config", str(config), "--day", "3 March"]) == 1


def test_serve_and_simulate_fleet_run_as_processes(
    tmp_path: Path, backoffice_broker: Broker
) -> None:
    port = free_port()
    config = tmp_path / "bo.toml"
    config.write_text(
        f'store = "sqlite:///{tmp_path / "bo.db"}"\n'
        f"[broker]\nport = {backoffice_broker.port}\n[http]\nport = {port}\n"
    )
    serve = subprocess.Popen(
        [sys.executable, "-m", "backoffice.cli", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert serve.stdout is not None
        assert "dashboard at" in serve.stdout.readline().decode()
        fleet = subprocess.run(
            [
                sys.executable,
                "-m",
                "simulators.fleet_cli",
                "--terminals",
                "3",
                "--broker",
                f"127.0.0.1:{backoffice_broker.port}",
                "--heartbeat-s",
                "0.5",
                "--tx-per-hour",
                "3600",
                "--duration",
                "3",
                "--register-config",
                str(config),
            ],
            capture_output=True,
            timeout=120,
        )
        assert fleet.returncode == 0, fleet.stderr.decode()

        def listed() -> list[object]:
            # As the sign-in proxy would ask (docs/backoffice.md, "Sign-in and roles").
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/fleet", headers={"X-Forwarded-User": "ops"}
            )
            with urllib.request.urlopen(request, timeout=5) as r:
                rows: list[object] = json.loads(r.read())
            return rows if len(rows) == 3 else []

        wait_for(listed, "three terminals on the dashboard")
        store = Store(f"sqlite:///{tmp_path / 'bo.db'}")
        try:  # their records verified against the certificates the simulator registered
            wait_for(lambda: store.query("SELECT 1 FROM records"), "a stored record")
            assert store.query("SELECT COUNT(*) AS n FROM quarantine")[0]["n"] == 0
        finally:
            store.close()
    finally:
        serve.terminate()
        serve.wait(timeout=20)
    assert serve.returncode == 0


def test_simulate_fleet_says_when_the_broker_is_unreachable() -> None:
    port = free_port()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulators.fleet_cli",
            "--terminals",
            "1",
            "--broker",
            f"127.0.0.1:{port}",
            "--duration",
            "1",
        ],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert (
        result.stderr.decode()
        .strip()
        .startswith(f"simulate-fleet: error: cannot reach the MQTT broker at 127.0.0.1:{port}")
    )


def test_an_ingest_worker_tells_systemd_it_is_ready_pings_its_watchdog_and_logs_priorities(
    tmp_path: Path, backoffice_broker: Broker
) -> None:
    config = tmp_path / "bo.toml"
    config.write_text(
        f'store = "sqlite:///{tmp_path / "bo.db"}"\n[broker]\nport = {backoffice_broker.port}\n'
    )
    notify = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(notify))
        systemd.settimeout(20)
        environment = {
            **os.environ,
            "NOTIFY_SOCKET": str(notify),
            "WATCHDOG_USEC": "400000",  # a ping every 0.2 s
            "JOURNAL_STREAM": "8:1234",  # stderr is the journal: lines carry priorities
        }
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "backoffice.cli",
                "ingest",
                "--config",
                str(config),
                "--client-id",
                "bo-notify",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=environment,
            text=True,
        )
        try:
            messages = [systemd.recv(4096).decode() for _ in range(3)]
            assert "READY=1" in messages[0]
            assert messages[1:] == ["WATCHDOG=1", "WATCHDOG=1"]
        finally:
            worker.terminate()
            _, stderr = worker.communicate(timeout=30)
    assert worker.returncode == 0
    lines = [line for line in stderr.splitlines() if line]
    assert lines and all(re.match(r"<[0-7]>", line) for line in lines)
    assert any(line.startswith("<6>backoffice.mqtt_link: subscribed") for line in lines)


def test_journal_priorities_follow_the_log_levels() -> None:
    record = logging.LogRecord("backoffice.x", logging.WARNING, "", 0, "two\nlines", None, None)
    assert JournalFormatter().format(record) == "<4>backoffice.x: two\n<4>lines"
    assert [priority(level) for level in (50, 40, 30, 20, 10)] == [2, 3, 4, 6, 7]
