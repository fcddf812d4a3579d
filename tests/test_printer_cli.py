"""kiosk-tool printer: the test receipt over the real pty printer, and the simulator's FIFO."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drivers.printer.escpos_driver import EscPosPrinter
from firmware_tools.cli import main
from tests.fixtures.pty_printer import PtyPrinterBench


def test_printer_test_prints_chinese_english_and_a_qr_and_reports_ready(
    pty_printer: PtyPrinterBench, capsys: pytest.CaptureFixture[str]
) -> None:
    columns = str(pty_printer.columns)

    code = main(
        ["printer", "test", "--port", str(pty_printer.link), "--columns", columns, "--json"]
    )

    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["printed"] and out["after"]["ready"]
    (receipt,) = pty_printer.simulator.receipts
    assert "打印机测试" in receipt.text and "Printer test" in receipt.text
    assert receipt.page.qr_payloads() == [b"KIOSK-PRINTER-TEST"] and receipt.page.cut


def test_printer_test_on_a_printer_without_paper_exits_1_with_one_line(
    pty_printer_58: PtyPrinterBench, capsys: pytest.CaptureFixture[str]
) -> None:
    pty_printer_58.simulator.paper_out()

    code = main(["printer", "test", "--port", str(pty_printer_58.link)])

    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "out of paper: load a 58 mm thermal roll" in err
    assert pty_printer_58.simulator.receipts == []


def test_the_simulator_command_takes_faults_through_its_control_fifo(tmp_path: Path) -> None:
    link, control = tmp_path / "printer", tmp_path / "control"
    command = [
        sys.executable,
        "-m",
        "simulators.printer_pty",
        "--link",
        str(link),
        "--out",
        str(tmp_path / "paper"),
        "--control",
        str(control),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not (link.is_symlink() and control.exists()):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        printer = EscPosPrinter(str(link), timeout_s=0.5)
        assert printer.status().ready
        with open(control, "w") as fifo:
            fifo.write("cover-open\n")
        while printer.status().cover_open is not True:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        printer.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode == 0
    assert not link.exists()


def test_printer_test_on_a_clone_detects_status_polling_and_says_so(
    pty_clone: PtyPrinterBench, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["printer", "test", "--port", str(pty_clone.link)])

    out = capsys.readouterr().out
    assert code == 0
    assert "model epson-compatible, jobs confirmed by status_poll" in out
    assert len(pty_clone.simulator.receipts) == 1


def test_printer_test_over_usblp_with_a_named_model_reports_both(
    pty_clone: PtyPrinterBench, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["printer", "test", "--port", str(pty_clone.link), "--transport", "usblp"]

    code = main([*argv, "--model", "clone-58", "--json"])

    health = json.loads(capsys.readouterr().out)["health"]
    assert code == 0
    assert (health["transport"], health["model"], health["confirmation"]) == (
        "usblp",
        "clone-58",
        "status_poll",
    )
    assert pty_clone.simulator.process_id_requests == 0


def test_printer_test_with_an_unknown_model_exits_1_with_one_line(
    pty_printer_58: PtyPrinterBench, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["printer", "test", "--port", str(pty_printer_58.link), "--model", "tm-t88"])

    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "printer model 'tm-t88' is not known" in err and "printer models" in err


def test_printer_models_lists_every_profile_and_auto(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["printer", "models", "--json"]) == 0
    models = {m["model"]: m for m in json.loads(capsys.readouterr().out)["models"]}

    assert models["clone-58"]["confirm"] == "status_poll"
    assert models["kiosk-80"]["paper_widths_mm"] == [80]
    assert main(["printer", "models"]) == 0
    assert "auto: epson-compatible" in capsys.readouterr().out


def test_the_simulator_command_imitates_a_clone_and_switches_model_through_its_fifo(
    tmp_path: Path,
) -> None:
    link, control = tmp_path / "printer", tmp_path / "control"
    command = [
        sys.executable,
        "-m",
        "simulators.printer_pty",
        "--link",
        str(link),
        "--out",
        str(tmp_path / "paper"),
        "--control",
        str(control),
        "--model",
        "clone-58",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not (link.is_symlink() and control.exists()):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        clone = EscPosPrinter(str(link), timeout_s=0.5, probe_timeout_s=0.5)
        assert clone.status().ready
        assert clone.confirmation()[0] == "status_poll"
        clone.close()
        with open(control, "w") as fifo:
            fifo.write("model epson-compatible\n")
        while True:  # the FIFO line is read by the simulator's thread, soon
            epson = EscPosPrinter(str(link), timeout_s=0.5, probe_timeout_s=0.5)
            detected = epson.status().ready and epson.confirmation()[0]
            epson.close()
            if detected == "process_id":
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode == 0
