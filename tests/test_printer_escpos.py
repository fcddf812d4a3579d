"""The ESC/POS driver against the pseudo-terminal printer: receipts, faults, drops and replugs."""

import threading
import time

import pytest
import serial
from PIL import Image
from pyzbar.pyzbar import decode

from drivers.printer.escpos_commands import CHINESE_OFF, CHINESE_ON
from drivers.printer.receipt_job import text_bytes
from drivers.printer.render import PrintedText
from kiosk.devices import (
    CoverOpen,
    PaperOut,
    PrinterError,
    PrinterOffline,
    ReceiptDocument,
    ReceiptLine,
)
from kiosk.receipts import receipt_document, receipt_from_record, verify_receipt
from tests.fixtures.journal_bench import JournalBench
from tests.fixtures.pty_printer import PtyPrinterBench

STATION_NAME = "历下区泉城路便民服务站"


def signed_receipt(bench: JournalBench, columns: int, number: int = 7) -> ReceiptDocument:
    record = bench.pay(number, amount_fen=12345)
    receipt = receipt_from_record(record, station_name=STATION_NAME, service_name="国网电费")
    return receipt_document(receipt, record, columns=columns)


def simple(job_id: str = "R-1/0") -> ReceiptDocument:
    return ReceiptDocument(
        job_id=job_id,
        lines=(
            ReceiptLine("便民服务站", bold=True, double=True, align="center"),
            *(ReceiptLine(f"第{n}行 line {n}") for n in range(1, 9)),
        ),
        qr_payload="KR1:test",
        cut="full",
    )


def wait_until(condition: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# ------------------------------------------------------------------ a real signed receipt


def test_a_signed_receipt_round_trips_line_for_line_and_its_qr_verifies(
    pty_printer: PtyPrinterBench, journal_bench: JournalBench
) -> None:
    document = signed_receipt(journal_bench, pty_printer.columns)
    printer = pty_printer.driver()

    printer.print_receipt(document)

    (receipt,) = pty_printer.complete_prints(document.job_id)
    printed = [
        (row.text, row.bold, row.align, row.width)
        for row in receipt.page.rows
        if isinstance(row, PrintedText) and row.text and not row.small
    ]
    expected = [
        (line.text, line.bold, line.align, 2 if line.double else 1) for line in document.lines
    ]
    assert printed == expected
    assert receipt.page.cut == "partial"
    (symbol,) = decode(Image.open(receipt.png_path))
    assert symbol.data.decode("ascii") == document.qr_payload
    assert verify_receipt(symbol.data.decode("ascii"), journal_bench.cert_pem).genuine
    assert pty_printer.simulator.unknown == []


def test_chinese_goes_through_chinese_mode_in_gb18030_and_ascii_stays_single_byte() -> None:
    assert text_bytes("缴费 Bill ¥1") == (
        CHINESE_ON
        + "缴费".encode("gb18030")
        + CHINESE_OFF
        + b" Bill "
        + CHINESE_ON
        + "¥".encode("gb18030")
        + CHINESE_OFF
        + b"1"
    )


def test_a_double_size_line_wider_than_half_the_paper_is_wrapped_by_display_width(
    pty_printer_58: PtyPrinterBench,
) -> None:
    document = ReceiptDocument(
        "R-wide/0", (ReceiptLine("便民服务站缴费凭条 Receipt", double=True),)
    )

    pty_printer_58.driver().print_receipt(document)

    (receipt,) = pty_printer_58.complete_prints("R-wide/0")
    rows = [r for r in receipt.page.rows if isinstance(r, PrintedText) and r.width == 2]
    assert [r.text for r in rows] == ["便民服务站缴费凭", "条 Receipt"]


# ------------------------------------------------------------------ status and faults


def test_a_ready_printer_reports_every_sensor_known_and_fine(
    pty_printer_58: PtyPrinterBench,
) -> None:
    status = pty_printer_58.driver().status()

    assert status.ready
    assert (status.online, status.cover_open, status.paper_near_end) == (True, False, False)
    assert (status.paper_out, status.error) == (False, False)


@pytest.mark.parametrize(
    ("fault", "error", "advice"),
    [
        ("paper_out", PaperOut, "load a 58 mm thermal roll"),
        ("cover_open", CoverOpen, "close it firmly"),
        ("offline", PrinterOffline, "check its power and data cable"),
        ("cutter_error", PrinterError, "clear the paper from the cutter"),
    ],
)
def test_a_fault_before_the_job_refuses_it_with_advice_and_prints_nothing(
    pty_printer_58: PtyPrinterBench, fault: str, error: type[PrinterError], advice: str
) -> None:
    getattr(pty_printer_58.simulator, fault)()
    printer = pty_printer_58.driver()

    with pytest.raises(error, match=advice):
        printer.print_receipt(simple())

    assert pty_printer_58.simulator.receipts == []
    assert not printer.status().ready


def test_no_reply_is_unknown_never_paper_ok(pty_printer_58: PtyPrinterBench) -> None:
    pty_printer_58.simulator.offline()
    printer = pty_printer_58.driver()

    status = printer.status()

    assert status.online is None
    assert None in (status.paper_out,) and status.cover_open is None
    assert printer.health()["paper"] == "unknown"


def test_a_nearly_empty_roll_still_prints_and_is_reported_after_the_job(
    pty_printer_58: PtyPrinterBench,
) -> None:
    printer = pty_printer_58.driver()
    printer.print_receipt(simple("R-a/0"))
    pty_printer_58.simulator.paper_near_end()

    printer.print_receipt(simple("R-b/0"))

    assert printer.status().paper_near_end is True
    assert printer.health()["paper"] == "near_end"
    assert len(pty_printer_58.complete_prints("R-b/0")) == 1


def test_paper_running_out_mid_job_fails_it_and_the_retry_is_marked_reprint(
    pty_printer_58: PtyPrinterBench,
) -> None:
    simulator = pty_printer_58.simulator
    printer = pty_printer_58.driver()
    simulator.paper_out_mid_job(after_rows=4)

    with pytest.raises(PaperOut, match="part-way through a receipt"):
        printer.print_receipt(simple())

    assert [r.truncated for r in simulator.receipts] == [True]
    simulator.restore()
    printer.print_receipt(simple())
    # The rest of the failed job was cleared, not printed on top of the reprint.
    (whole,) = pty_printer_58.complete_prints("R-1/0")
    assert len(simulator.receipts) == 2
    assert "重打 REPRINT 2" in whole.text


def test_a_brief_drop_mid_job_is_debounced_and_the_resent_receipt_is_marked(
    pty_printer_58: PtyPrinterBench,
) -> None:
    simulator = pty_printer_58.simulator
    printer = pty_printer_58.driver()
    simulator.drop_link_mid_job(after_rows=3, down_s=0.3)

    printer.print_receipt(simple())

    fragment, whole = simulator.receipts
    assert fragment.truncated and "LINK DROPPED" in fragment.text
    assert pty_printer_58.complete_prints("R-1/0") == [whole]
    assert "重打 REPRINT 2" in whole.text
    assert printer.health()["reprints_marked"] == 1


def test_a_long_drop_mid_job_fails_it_and_the_later_print_is_marked(
    pty_printer_58: PtyPrinterBench,
) -> None:
    simulator = pty_printer_58.simulator
    printer = pty_printer_58.driver()
    simulator.drop_link_mid_job(after_rows=3, down_s=30)

    with pytest.raises(PrinterOffline, match="disconnected in the middle of a receipt"):
        printer.print_receipt(simple())

    simulator.replug()
    printer.print_receipt(simple())
    (whole,) = pty_printer_58.complete_prints("R-1/0")
    assert "REPRINT" in whole.text


def test_a_job_sent_before_a_terminal_restart_is_marked_when_sent_again(
    pty_printer_58: PtyPrinterBench,
) -> None:
    pty_printer_58.driver().print_receipt(simple())

    pty_printer_58.driver().print_receipt(simple())

    first, second = pty_printer_58.complete_prints("R-1/0")
    assert "REPRINT" not in first.text and "重打 REPRINT 2" in second.text


def test_unplug_is_unknown_and_replug_recovers_without_a_new_driver(
    pty_printer_58: PtyPrinterBench,
) -> None:
    printer = pty_printer_58.driver()
    assert printer.status().ready
    pty_printer_58.simulator.unplug()

    assert printer.status().online is None
    assert printer.health()["link"] == "down"
    with pytest.raises(PrinterOffline):
        printer.print_receipt(simple())

    pty_printer_58.simulator.replug()
    assert printer.status().ready
    printer.print_receipt(simple())
    assert len(pty_printer_58.complete_prints("R-1/0")) == 1


def test_a_brief_unplug_is_not_reported_as_a_fault(pty_printer_58: PtyPrinterBench) -> None:
    printer = pty_printer_58.driver()
    assert printer.status().ready
    pty_printer_58.simulator.unplug()
    threading.Timer(0.3, pty_printer_58.simulator.replug).start()

    assert printer.status().ready


def test_line_noise_is_ignored_by_status_and_jobs(pty_printer_58: PtyPrinterBench) -> None:
    printer = pty_printer_58.driver()
    pty_printer_58.simulator.noisy()
    pty_printer_58.simulator.paper_near_end()

    status = printer.status()
    printer.print_receipt(simple())

    assert status.ready and status.paper_near_end is True
    assert len(pty_printer_58.complete_prints("R-1/0")) == 1
    noise = printer.health()["noise_bytes"]
    assert isinstance(noise, int) and noise > 0


def test_bytes_the_printer_does_not_know_are_reported_not_dropped(
    pty_printer_58: PtyPrinterBench,
) -> None:
    with serial.Serial(str(pty_printer_58.link), timeout=1) as port:
        port.write(b"\x1b\x99hello\n\x1dV\x00")
        wait_until(lambda: pty_printer_58.simulator.receipts)

    (unknown,) = pty_printer_58.simulator.unknown
    assert unknown.raw == b"\x1b\x99"
    assert "UNKNOWN 1b 99" in pty_printer_58.simulator.receipts[0].text
