"""kiosk-tool diagnose on a simulated terminal: one injected fault per run, named in the verdict.

The terminal is real down to its devices' simulators: a SoftHSM2 token, the platform
simulator on loopback, the simulated printer, card reader and cash acceptor (whose state
files the composition root opens, so a fault armed here is the fault diagnose sees), a real
journal, and a real Mosquitto broker for the MQTT item.
"""

import json
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from firmware_tools.cli import main
from kiosk.config import load_config
from kiosk.config_template import render_config
from kiosk.diagnostics import DiagnosticContext, Verdict, run_diagnostics
from simulators.printer import SimulatedPrinter
from simulators.smartcard import SimulatedCardReader
from station.composition import build_terminal, simulator_dir
from tests.fixtures.pty_printer import PtyPrinterBench
from tests.fixtures.terminal import rig_config

pytestmark = pytest.mark.softhsm


@dataclass
class DiagnosedTerminal:
    config_path: Path
    data_dir: Path
    pin_file: Path
    token: Any
    platform: Any

    def rewrite_config(self, **changes: str) -> None:
        text = self.config_path.read_text(encoding="utf-8")
        for old, new in changes.items():
            assert old in text
            text = text.replace(old, new)
        self.config_path.write_text(text, encoding="utf-8")


def write_config(path: Path, data_dir: Path, platform_url: str, token: Any, pin_file: Path) -> None:
    text = render_config(
        institution_no=token.institution_no,
        station_name=token.station_name,
        terminal_id=token.terminal_id,
        data_dir=str(data_dir),
        platform_url=platform_url,
        token={
            "kind": "pkcs11",
            "module": token.module,
            "label": token.label,
            "key_label": token.key_label,
            "pin_source": f"file:{pin_file}",
            "softhsm_conf": str(token.conf),
        },
    )
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def terminal(tmp_path: Path, softhsm_token: Any, platform_sim: Any) -> DiagnosedTerminal:
    data_dir = tmp_path / "data"
    pin_file = tmp_path / "user.pin"
    pin_file.write_text(softhsm_token.user_pin + "\n")
    pin_file.chmod(0o600)
    config_path = tmp_path / "kiosk.toml"
    write_config(config_path, data_dir, platform_sim.url, softhsm_token, pin_file)
    config = load_config(config_path)
    # Start the terminal once: it registers with the platform and opens its journal.
    built, _sims = build_terminal(config, signer=softhsm_token.signer())
    built.start()
    built.close()
    return DiagnosedTerminal(config_path, data_dir, pin_file, softhsm_token, platform_sim)


def diagnose(
    capsys: pytest.CaptureFixture[str], terminal: DiagnosedTerminal, *extra: str
) -> tuple[int, dict[str, Any], str]:
    code = main(
        ["diagnose", "--config", str(terminal.config_path), "--unattended", "--json", "--quiet"]
        + list(extra)
    )
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    return {item["id"]: item["verdict"] for item in report["results"]}


def failed_items(report: dict[str, Any]) -> dict[str, str]:
    return {item["id"]: item["detail"] for item in report["results"] if item["verdict"] == "fail"}


def test_a_healthy_simulated_terminal_may_go_back_into_service(
    capsys: pytest.CaptureFixture[str], terminal: DiagnosedTerminal
) -> None:
    code, report, err = diagnose(capsys, terminal)
    assert code == 0, err
    assert report["may_return_to_service"] is True
    found = verdicts(report)
    for item in ("printer.status", "card_reader.link", "token.sign", "token.certificate"):
        assert found[item] == "pass"
    for item in ("ioboard.link", "platform.reach", "clock.skew", "disk.space", "journal.verify"):
        assert found[item] == "pass"
    # Unattended: the items that need a technician are skipped, never passed.
    for item in ("printer.test_receipt", "card_reader.test_card", "ioboard.coin"):
        assert found[item] == "skipped"
    assert found["mqtt.connect"] == "skipped"  # no [telemetry] broker configured
    assert report["counts"]["fail"] == 0
    journal = next(i for i in report["results"] if i["id"] == "journal.verify")
    assert journal["detail"].startswith("journal verified: ")


def arm_paper_out(terminal: DiagnosedTerminal) -> None:
    SimulatedPrinter(terminal.data_dir / "receipts").paper_out()


def arm_cover_open(terminal: DiagnosedTerminal) -> None:
    SimulatedPrinter(terminal.data_dir / "receipts").cover_open()


def arm_printer_offline(terminal: DiagnosedTerminal) -> None:
    SimulatedPrinter(terminal.data_dir / "receipts").offline()


def arm_reader_missing(terminal: DiagnosedTerminal) -> None:
    config = load_config(terminal.config_path)
    SimulatedCardReader(simulator_dir(config) / "cards.sqlite3").unplug()


def arm_ioboard_down(terminal: DiagnosedTerminal) -> None:
    # The board unplugged: its udev name is gone.
    gone = terminal.config_path.parent / "no-such-ioboard"
    terminal.rewrite_config(
        **{'ioboard = "sim"': 'ioboard = "real"', 'ioboard_port = ""': f'ioboard_port = "{gone}"'}
    )


def arm_wrong_pin(terminal: DiagnosedTerminal) -> None:
    terminal.pin_file.write_text("999999\n")


def arm_token_absent(terminal: DiagnosedTerminal) -> None:
    terminal.rewrite_config(**{'label = "kiosk"': 'label = "kiosk-not-plugged-in"'})


def arm_platform_down(terminal: DiagnosedTerminal) -> None:
    terminal.platform.stop()


def arm_journal_tampered(terminal: DiagnosedTerminal) -> None:
    conn = sqlite3.connect(load_config(terminal.config_path).database_path)
    conn.execute("DROP TRIGGER journal_no_update")
    (record,) = conn.execute("SELECT record FROM journal WHERE seq = 1").fetchone()
    altered = record.replace('"terminal":"T0001"', '"terminal":"T0002"')
    assert altered != record
    conn.execute("UPDATE journal SET record = ? WHERE seq = 1", (altered,))
    conn.commit()
    conn.close()


FAULTS: dict[str, tuple[Callable[[DiagnosedTerminal], None], tuple[str, ...], str, str]] = {
    # fault: (arm it, extra options, the item that must fail, words its verdict must name)
    "paper out": (arm_paper_out, (), "printer.status", "paper out"),
    "printer cover open": (arm_cover_open, (), "printer.status", "cover open"),
    "printer offline": (arm_printer_offline, (), "printer.status", "printer offline"),
    "card reader missing": (arm_reader_missing, (), "card_reader.link", "card reader missing"),
    "I/O board down": (arm_ioboard_down, (), "ioboard.link", "I/O board not answering"),
    "token PIN wrong": (arm_wrong_pin, (), "token.sign", "token PIN wrong"),
    "token absent": (arm_token_absent, (), "token.sign", "USBKey token absent"),
    "platform down": (arm_platform_down, ("--timeout", "2"), "platform.reach", "platform down"),
    "journal tampered": (arm_journal_tampered, (), "journal.verify", "journal tampered"),
    "disk low": (lambda t: None, ("--min-free-mb", str(10**9)), "disk.space", "disk space low"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_diagnose_names_the_one_injected_fault_and_keeps_the_terminal_out_of_service(
    fault: str, capsys: pytest.CaptureFixture[str], terminal: DiagnosedTerminal
) -> None:
    arm, options, item, words = FAULTS[fault]
    arm(terminal)
    code, report, err = diagnose(capsys, terminal, *options)
    assert code == 1
    assert report["may_return_to_service"] is False
    failures = failed_items(report)
    # Faults that take the signer away also take what needs it (signed platform requests,
    # the certificate); every other item still passes or is skipped.
    assert item in failures, failures
    assert words in failures[item]
    allowed = {item}
    if fault.startswith("token"):
        allowed |= {"platform.reach"}
    if fault == "platform down":
        allowed |= {"clock.skew"}
    assert set(failures) <= allowed, failures
    # One line on stderr names the failed item, so a technician sees it without --json.
    last = err.strip().splitlines()[-1]
    assert last.startswith("kiosk-tool: error: the terminal must not go back into service")
    assert item in last and words in last
    next_action = next(i["next_action"] for i in report["results"] if i["id"] == item)
    assert next_action


def test_a_certificate_close_to_expiry_is_a_warning_that_still_allows_service(
    capsys: pytest.CaptureFixture[str], terminal: DiagnosedTerminal
) -> None:
    code, report, _err = diagnose(capsys, terminal, "--cert-warn-days", "100000")
    assert code == 0
    item = next(i for i in report["results"] if i["id"] == "token.certificate")
    assert item["verdict"] == "warn"
    assert "kiosk-tool provision renew" in item["next_action"]


def test_paper_near_end_is_a_warning_that_still_allows_service(
    capsys: pytest.CaptureFixture[str], terminal: DiagnosedTerminal
) -> None:
    SimulatedPrinter(terminal.data_dir / "receipts").paper_near_end()
    code, report, _err = diagnose(capsys, terminal)
    assert code == 0
    assert verdicts(report)["printer.status"] == "warn"


# ---------------------------------------------------------------- MQTT against Mosquitto


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).is_file():
        pytest.skip("Mosquitto is not installed: apt-get install mosquitto")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    process = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("Mosquitto did not start listening within 20 s")
            time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(timeout=10)


def test_diagnose_passes_mqtt_against_a_running_mosquitto(
    capsys: pytest.CaptureFixture[str], terminal: DiagnosedTerminal, mosquitto: int
) -> None:
    code, report, err = diagnose(capsys, terminal, "--mqtt-broker", f"127.0.0.1:{mosquitto}")
    assert code == 0, err
    assert verdicts(report)["mqtt.connect"] == "pass"


def test_diagnose_names_a_broker_that_is_down(
    capsys: pytest.CaptureFixture[str], terminal: DiagnosedTerminal
) -> None:
    code, report, err = diagnose(capsys, terminal, "--mqtt-broker", f"127.0.0.1:{free_port()}")
    assert code == 1
    assert set(failed_items(report)) == {"mqtt.connect"}
    assert "MQTT broker not reachable" in failed_items(report)["mqtt.connect"]
    assert "mqtt.connect" in err


def test_the_html_maintenance_record_names_the_station_the_fault_and_the_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], terminal: DiagnosedTerminal
) -> None:
    arm_paper_out(terminal)
    html_path = tmp_path / "record.html"
    code, _report, _err = diagnose(
        capsys, terminal, "--html", str(html_path), "--technician", "<王师傅>"
    )
    assert code == 1
    page = html_path.read_text(encoding="utf-8")
    assert "设备维护记录" in page and "不得恢复服务" in page
    assert "printer paper out" in page and "load a new paper roll" in page
    assert "&lt;王师傅&gt;" in page and "<王师傅>" not in page  # escaped, never markup


@pytest.mark.parametrize(
    ("stop", "words"), [("paper_out", "printer paper out"), ("cover_open", "printer cover open")]
)
def test_a_real_printer_stopped_for_paper_or_cover_is_diagnosed_by_that_cause(
    pty_printer_58: PtyPrinterBench, tmp_path: Path, stop: str, words: str
) -> None:
    # The ESC/POS driver on the pty simulator: a stopped printer also reports itself offline.
    getattr(pty_printer_58.simulator, stop)()
    config = rig_config(tmp_path / "data", "http://127.0.0.1:9")
    context = DiagnosticContext(config=config, printer=pty_printer_58.driver())
    [result] = run_diagnostics(context, only=("printer.status",)).results
    assert result.verdict is Verdict.FAIL and result.detail.startswith(words), result
