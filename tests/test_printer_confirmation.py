"""How the ESC/POS driver confirms a job, per printer model, against the pseudo-terminal printer.

The simulator runs as a generic Epson-compatible printer (answers GS ( H) or as the clone-58
model (parses GS ( H and ignores it, as many clone printers do). Before profiles, every
receipt on a clone failed when the job timeout ran out; here the driver detects the clone at
first contact and confirms its jobs by polling the real-time status instead.
"""

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.printer.escpos_driver import EscPosPrinter
from kiosk.devices import CoverOpen, PaperOut, PrinterError, PrinterOffline, ReceiptDocument
from tests.fixtures.pty_printer import PtyPrinterBench, pty_printer_on
from tests.test_printer_escpos import simple

MODELS = ["epson-compatible", "clone-58"]


@pytest.fixture(params=MODELS)
def either(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PtyPrinterBench]:
    """The simulator as each model in turn: the faults must work in both modes."""
    with pty_printer_on(tmp_path / "printer", model=request.param) as bench:
        yield bench


def production_driver(bench: PtyPrinterBench, **options: object) -> EscPosPrinter:
    """A driver with the production job timeout (30 s) and the default model "auto"."""
    return bench.driver(job_timeout_s=30.0, **options)


# ------------------------------------------------------------------ detection at first contact


def test_a_clone_is_detected_at_first_contact_and_its_receipt_confirmed_by_status(
    pty_clone: PtyPrinterBench,
) -> None:
    printer = production_driver(pty_clone)

    printer.print_receipt(simple())  # raised PrinterError after 30 s before status polling

    assert printer.confirmation()[0] == "status_poll"
    assert printer.health()["confirmation_source"] == "detected"
    assert len(pty_clone.complete_prints("R-1/0")) == 1
    # GS ( H went out once, as the probe; the jobs themselves carry none.
    printer.print_receipt(simple("R-2/0"))
    assert pty_clone.simulator.process_id_requests == 1


def test_a_model_answering_gs_paren_h_is_detected_and_confirms_each_job_by_process_id(
    pty_printer_58: PtyPrinterBench,
) -> None:
    printer = production_driver(pty_printer_58)

    assert printer.status().ready
    assert printer.health()["confirmation"] == "process_id"
    printer.print_receipt(simple("R-1/0"))
    printer.print_receipt(simple("R-2/0"))

    assert pty_printer_58.simulator.process_id_requests == 1 + 2  # the probe and one per job


def test_a_printer_stopped_at_first_contact_is_probed_only_once_it_is_ready(
    pty_printer_58: PtyPrinterBench,
) -> None:
    # GS ( H is answered in turn: a printer without paper would answer the probe only once
    # paper is loaded, and a probe sent then would take an Epson for a clone.
    pty_printer_58.simulator.paper_out()
    printer = production_driver(pty_printer_58)

    with pytest.raises(PaperOut):
        printer.print_receipt(simple())
    assert printer.health()["confirmation"] == "undetected"
    assert pty_printer_58.simulator.process_id_requests == 0

    pty_printer_58.simulator.restore()
    printer.print_receipt(simple())
    assert printer.confirmation() == ("process_id", "detected")


def test_a_printer_swapped_for_a_clone_behind_the_same_port_is_detected_again(
    pty_printer_58: PtyPrinterBench,
) -> None:
    simulator = pty_printer_58.simulator
    printer = production_driver(pty_printer_58, reconnect_s=0.2)
    printer.print_receipt(simple("R-1/0"))
    assert printer.confirmation()[0] == "process_id"

    simulator.unplug()
    assert printer.status().online is None
    simulator.set_model("clone-58")
    simulator.replug()
    printer.print_receipt(simple("R-2/0"))

    assert printer.confirmation() == ("status_poll", "detected")
    assert len(pty_printer_58.complete_prints("R-2/0")) == 1


# ------------------------------------------------------------------ named models and overrides


def test_a_named_clone_model_is_confirmed_by_status_without_any_probe(
    pty_clone: PtyPrinterBench,
) -> None:
    printer = production_driver(pty_clone, model="clone-58")

    printer.print_receipt(simple())

    assert printer.confirmation() == ("status_poll", "profile")
    assert pty_clone.simulator.process_id_requests == 0
    (receipt,) = pty_clone.complete_prints("R-1/0")
    assert receipt.page.cut == "partial"  # the clone's only cut, asked for as full


def test_the_configuration_can_force_status_polling_on_a_model_that_answers(
    pty_printer_58: PtyPrinterBench,
) -> None:
    printer = production_driver(pty_printer_58, confirm="status_poll")

    printer.print_receipt(simple())

    assert printer.confirmation() == ("status_poll", "config")
    assert pty_printer_58.simulator.process_id_requests == 0
    assert len(pty_printer_58.complete_prints("R-1/0")) == 1


def test_forcing_process_id_on_a_clone_fails_the_job_when_the_timeout_runs_out(
    pty_clone: PtyPrinterBench,
) -> None:
    # What every receipt on a clone did before: printed, but never confirmed.
    printer = pty_clone.driver(confirm="process_id", job_timeout_s=1.5)

    with pytest.raises(PrinterError, match="did not confirm receipt job R-1/0 within 1.5 s"):
        printer.print_receipt(simple())

    assert pty_clone.simulator.process_id_requests == 1


def test_an_unknown_model_or_confirmation_is_refused_when_the_driver_is_built(
    pty_printer_58: PtyPrinterBench,
) -> None:
    with pytest.raises(ValueError, match="printer model 'tm-t88' is not known"):
        pty_printer_58.driver(model="tm-t88")
    with pytest.raises(ValueError, match="'kiosk-80' takes 80 mm paper, not 58 mm"):
        pty_printer_58.driver(model="kiosk-80")
    with pytest.raises(ValueError, match="'poll' is not a valid Confirmation"):
        pty_printer_58.driver(confirm="poll")


# ------------------------------------------------------------------ faults in both modes


def test_paper_running_out_mid_job_fails_it_in_both_modes_and_the_retry_is_marked(
    either: PtyPrinterBench,
) -> None:
    printer = production_driver(either)
    assert printer.status().ready
    either.simulator.paper_out_mid_job(after_rows=4)

    with pytest.raises(PaperOut, match="part-way through a receipt"):
        printer.print_receipt(simple())

    either.simulator.restore()
    printer.print_receipt(simple())
    (whole,) = either.complete_prints("R-1/0")
    assert [r.truncated for r in either.simulator.receipts] == [True, False]
    assert "重打 REPRINT 2" in whole.text


@pytest.mark.parametrize(
    ("fault", "error"),
    [("cover_open", CoverOpen), ("offline", PrinterOffline), ("paper_out", PaperOut)],
)
def test_a_fault_before_the_job_refuses_it_in_both_modes(
    either: PtyPrinterBench, fault: str, error: type[PrinterError]
) -> None:
    printer = production_driver(either)
    printer.print_receipt(simple("R-0/0"))
    getattr(either.simulator, fault)()

    with pytest.raises(error):
        printer.print_receipt(simple())

    assert either.complete_prints("R-1/0") == []


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    ("fault", "error"), [("cover_open", CoverOpen), ("offline", PrinterOffline)]
)
def test_a_fault_while_a_slow_printer_prints_fails_the_job_in_both_modes(
    tmp_path: Path, model: str, fault: str, error: type[PrinterError]
) -> None:
    # The printer takes the time real paper takes (here slowed to 20 mm/s, several seconds
    # for the receipt), and the fault strikes after the job was handed over: a driver that
    # looked at the status only once, right after sending, would call the job printed.
    with pty_printer_on(tmp_path / "printer", model=model, print_speed_mm_s=20.0) as bench:
        printer = production_driver(bench)
        assert printer.status().ready
        document = long_receipt()
        timer = threading.Timer(1.0, getattr(bench.simulator, fault))
        timer.start()
        try:
            with pytest.raises(error, match="part-way through a receipt"):
                printer.print_receipt(document)
        finally:
            timer.cancel()
        assert bench.complete_prints(document.job_id) == []


def test_a_slow_clone_is_confirmed_only_after_its_paper_had_time_to_print(
    tmp_path: Path,
) -> None:
    # The clone prints at the speed its profile promises; the status poll must not return
    # before the cut, or a paper-out at the end of the receipt would go unnoticed.
    with pty_printer_on(tmp_path / "printer", model="clone-58", print_speed_mm_s=60.0) as bench:
        printer = production_driver(bench)
        document = long_receipt()

        printer.print_receipt(document)

        assert len(bench.complete_prints(document.job_id)) == 1


def long_receipt() -> ReceiptDocument:
    base = simple("R-long/0")
    return ReceiptDocument(base.job_id, base.lines * 3, base.qr_payload, base.cut)
