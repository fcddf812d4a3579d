"""What kiosk.devices.Printer promises, checked against every printer implementation."""

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiosk.devices import CoverOpen, PaperOut, PrinterOffline, ReceiptDocument, ReceiptLine
from tests.contracts import PRINTER_RIGS, PrinterRig

OpenPrinterRig = Callable[[], PrinterRig]


@pytest.fixture(params=sorted(PRINTER_RIGS))
def open_printer_rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenPrinterRig]:
    """Opens a driver on one printer; a second call opens a new driver on the same printer."""
    rigs: list[PrinterRig] = []

    def open_rig() -> PrinterRig:
        rig = PRINTER_RIGS[request.param](tmp_path)
        rigs.append(rig)
        return rig

    yield open_rig
    for rig in rigs:
        rig.close()


@pytest.fixture
def rig(open_printer_rig: OpenPrinterRig) -> PrinterRig:
    return open_printer_rig()


def receipt(job_id: str = "R20250301-0007/1") -> ReceiptDocument:
    return ReceiptDocument(
        job_id=job_id,
        lines=(
            ReceiptLine("Convenience Station 17", bold=True, align="center"),
            ReceiptLine("缴费凭条", double=True, align="center"),
            ReceiptLine("Electricity bill        ¥128.40"),
            ReceiptLine("Thank you", align="right"),
        ),
        qr_payload="https://verify.example/r/R20250301-0007?s=MEUCIQ",
        cut="full",
    )


def squeeze(text: str) -> str:
    return "".join(text.split())


def test_a_printer_with_paper_and_a_closed_cover_is_ready(rig: PrinterRig) -> None:
    status = rig.printer.status()

    assert status.ready
    assert status.online is True
    assert (status.cover_open, status.paper_out, status.paper_near_end) == (False, False, False)


def test_a_printed_receipt_shows_every_line_in_order_and_the_qr_payload(rig: PrinterRig) -> None:
    document = receipt()

    rig.printer.print_receipt(document)

    (printed,) = rig.printed(document.job_id)
    flat = squeeze(printed)
    positions = [flat.index(squeeze(line.text)) for line in document.lines]
    assert positions == sorted(positions)
    assert document.qr_payload is not None and document.qr_payload in printed


def test_a_line_wider_than_the_paper_is_wrapped_not_lost(rig: PrinterRig) -> None:
    long_text = "Account 0123456789 " * 6 + "完" * 30
    document = ReceiptDocument(job_id="R-long/1", lines=(ReceiptLine(long_text),))

    rig.printer.print_receipt(document)

    (printed,) = rig.printed(document.job_id)
    assert squeeze(long_text) in squeeze(printed)


def test_a_nearly_empty_roll_is_reported_but_still_prints(rig: PrinterRig) -> None:
    rig.paper_near_end()

    status = rig.printer.status()
    rig.printer.print_receipt(receipt())

    assert status.paper_near_end is True and status.ready
    assert len(rig.printed(receipt().job_id)) == 1


def test_without_paper_the_printer_is_not_ready_and_refuses_with_paper_out(
    rig: PrinterRig,
) -> None:
    rig.paper_out()

    assert rig.printer.status().paper_out is True
    assert not rig.printer.status().ready
    with pytest.raises(PaperOut):
        rig.printer.print_receipt(receipt())
    assert rig.printed(receipt().job_id) == []


def test_with_the_cover_open_the_printer_refuses_with_cover_open(rig: PrinterRig) -> None:
    rig.cover_open()

    assert rig.printer.status().cover_open is True
    assert not rig.printer.status().ready
    with pytest.raises(CoverOpen):
        rig.printer.print_receipt(receipt())
    assert rig.printed(receipt().job_id) == []


def test_a_printer_that_does_not_answer_is_unknown_never_fine(rig: PrinterRig) -> None:
    rig.offline()

    status = rig.printer.status()

    assert status.online is None
    assert not status.ready
    assert status.paper_out is not False and status.cover_open is not False
    with pytest.raises(PrinterOffline):
        rig.printer.print_receipt(receipt())
    assert rig.printed(receipt().job_id) == []


def test_after_the_fault_is_fixed_the_printer_prints_again(rig: PrinterRig) -> None:
    rig.paper_out()
    rig.cover_open()
    rig.offline()

    rig.restore()
    rig.printer.print_receipt(receipt())

    assert rig.printer.status().ready
    assert len(rig.printed(receipt().job_id)) == 1


def test_an_empty_roll_is_still_empty_for_a_new_driver_after_a_restart(
    open_printer_rig: OpenPrinterRig, rig: PrinterRig
) -> None:
    rig.paper_out()

    after = open_printer_rig()

    assert after.printer.status().paper_out is True
    with pytest.raises(PaperOut):
        after.printer.print_receipt(receipt())


@pytest.mark.parametrize(
    ("fault", "paper"),
    [(None, "ok"), ("paper_near_end", "near_end"), ("paper_out", "out"), ("offline", "unknown")],
)
def test_health_is_json_and_names_the_paper_state(
    rig: PrinterRig, fault: str | None, paper: str
) -> None:
    if fault is not None:
        getattr(rig, fault)()

    health = rig.printer.health()

    json.dumps(health)
    assert health["paper"] == paper
