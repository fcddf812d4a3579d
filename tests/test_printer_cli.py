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
        "firmware_tools.cli",
        "printer",
        "simulate",
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
