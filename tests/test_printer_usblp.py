"""The ESC/POS driver over the USB printer-class transport (the kernel's /dev/usb/lp* device).

What stands in for /dev/usb/lp0: the slave of the simulator's pseudo-terminal, in raw mode,
opened by UsblpTransport exactly as it opens usblp (os.open O_RDWR|O_NONBLOCK, select, read,
write; no termios, no pyserial). Both are character devices with the same file semantics
for this use: write() hands bytes to the device, read() returns what the printer sent back,
poll says when there is something, and an unplugged device fails its I/O and its node
disappears. A real usblp node needs the usblp kernel module and a USB printer (or the
dummy_hcd + g_printer gadget modules), which this machine and CI cannot load. Where the two
differ (usblp: ENODEV after an unplug, zero-length reads on an empty USB packet; pty: end of
file once hung up) the transport handles both, as docs/printer.md says.
"""

import os
import socket
from pathlib import Path

import pytest
import serial

from drivers.printer.transport import LinkError, TransportKind, UsblpTransport, resolve_kind
from kiosk.devices import PaperOut, PrinterOffline
from tests.fixtures.pty_printer import PtyPrinterBench
from tests.test_printer_escpos import simple


@pytest.fixture(autouse=True)
def no_serial(monkeypatch: pytest.MonkeyPatch) -> None:
    """A guard, not a stand-in: pyserial must not be what reaches the device here."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the usblp transport opened the device with pyserial")

    monkeypatch.setattr(serial, "Serial", refuse)


def test_a_receipt_prints_and_the_status_reads_through_plain_file_io(
    pty_printer: PtyPrinterBench,
) -> None:
    printer = pty_printer.driver(transport="usblp")

    assert printer.status().ready
    printer.print_receipt(simple())

    assert len(pty_printer.complete_prints("R-1/0")) == 1
    health = printer.health()
    assert health["transport"] == "usblp" and health["confirmation"] == "process_id"


def test_a_clone_on_usblp_is_detected_and_confirmed_by_status(pty_clone: PtyPrinterBench) -> None:
    printer = pty_clone.driver(transport="usblp", job_timeout_s=30.0)

    printer.print_receipt(simple())

    assert printer.confirmation()[0] == "status_poll"
    assert len(pty_clone.complete_prints("R-1/0")) == 1


def test_paper_out_mid_job_is_caught_over_usblp(pty_printer_58: PtyPrinterBench) -> None:
    printer = pty_printer_58.driver(transport="usblp")
    pty_printer_58.simulator.paper_out_mid_job(after_rows=3)

    with pytest.raises(PaperOut, match="part-way through a receipt"):
        printer.print_receipt(simple())


def test_an_unplugged_usblp_device_is_unknown_and_works_again_when_replugged(
    pty_printer_58: PtyPrinterBench,
) -> None:
    printer = pty_printer_58.driver(transport="usblp")
    assert printer.status().ready

    pty_printer_58.simulator.unplug()
    assert printer.status().online is None
    assert printer.health()["link"] == "down"
    with pytest.raises(PrinterOffline):
        printer.print_receipt(simple())

    pty_printer_58.simulator.replug()
    printer.print_receipt(simple())
    assert len(pty_printer_58.complete_prints("R-1/0")) == 1


def test_a_brief_drop_mid_job_over_usblp_resends_the_receipt_marked(
    pty_printer_58: PtyPrinterBench,
) -> None:
    printer = pty_printer_58.driver(transport="usblp")
    pty_printer_58.simulator.drop_link_mid_job(after_rows=3, down_s=0.3)

    printer.print_receipt(simple())

    (whole,) = pty_printer_58.complete_prints("R-1/0")
    assert "重打 REPRINT 2" in whole.text


# ------------------------------------------------------------------ the transport itself


def test_auto_picks_usblp_for_a_udev_link_to_a_usb_printer_node(tmp_path: Path) -> None:
    link = tmp_path / "kiosk-printer"
    link.symlink_to("/dev/usb/lp0")
    serial_link = tmp_path / "kiosk-printer-serial"
    serial_link.symlink_to("/dev/ttyUSB0")

    assert resolve_kind(str(link), TransportKind.AUTO) is TransportKind.USBLP
    assert resolve_kind("/dev/usb/lp3", TransportKind.AUTO) is TransportKind.USBLP
    assert resolve_kind(str(serial_link), TransportKind.AUTO) is TransportKind.SERIAL
    assert resolve_kind(str(link), TransportKind.SERIAL) is TransportKind.SERIAL


def test_a_missing_device_cannot_be_opened_and_says_which(tmp_path: Path) -> None:
    with pytest.raises(LinkError, match="cannot open .*lp9"):
        UsblpTransport(str(tmp_path / "lp9")).open()


def test_one_empty_read_is_an_empty_packet_and_a_closed_peer_is_a_hang_up() -> None:
    # A socket pair behaves like a device whose far end closes: every read returns b"". It
    # cannot be opened by path, so its descriptor is handed to the transport as open() would.
    ours, theirs = socket.socketpair()
    transport = UsblpTransport("socketpair")
    transport._fd = os.dup(ours.fileno())
    theirs.sendall(b"\x12")
    assert transport.read(0.5) == b"\x12"
    theirs.close()

    assert transport.read(0.5) == b""
    with pytest.raises(LinkError, match="hung up"):
        transport.read(0.5)
    transport.close()
    ours.close()
