"""kiosk-tool printer: print a test receipt on a serial ESC/POS printer, or run the pty simulator.

`test` talks to the printer through the same driver the terminal uses, so a technician's
verdict is the terminal's; `simulate` runs the pseudo-terminal printer for a bench or the
demo until interrupted (see docs/printer.md for its control FIFO).
"""

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from kiosk.command_line import CommandError, emit
from kiosk.devices import PrinterError, PrinterStatus
from kiosk.receipts.test_page import printer_test_page


def _status_dict(status: PrinterStatus) -> dict[str, Any]:
    return {
        "ready": status.ready,
        "online": status.online,
        "cover_open": status.cover_open,
        "paper_near_end": status.paper_near_end,
        "paper_out": status.paper_out,
        "error": status.error,
    }


def _test(args: argparse.Namespace) -> int:
    from drivers.printer.escpos_driver import EscPosPrinter

    printer = EscPosPrinter(args.port, args.columns, timeout_s=args.timeout)
    try:
        before = printer.status()
        try:
            printer.print_receipt(printer_test_page(args.columns))
        except PrinterError as exc:
            raise CommandError(f"test receipt not printed: {exc}") from None
        after = printer.status()
        health = printer.health()
    finally:
        printer.close()
    near_end = " (paper nearly used up: load a new roll soon)" if after.paper_near_end else ""
    emit(
        args,
        {
            "printed": True,
            "before": _status_dict(before),
            "after": _status_dict(after),
            "health": health,
        },
        f"test receipt printed on {args.port} ({args.columns} columns); printer ready" + near_end,
    )
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from drivers.printer.pty_simulator import PtyPrinterSimulator

    logging.basicConfig(level=logging.INFO, format="printer simulator: %(message)s")
    if args.link.exists() and not args.link.is_symlink():
        raise CommandError(f"{args.link} exists and is not a link: choose another --link path")
    simulator = PtyPrinterSimulator(args.link, args.out, args.columns, control=args.control)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        simulator.start()
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot start the printer simulator: {exc}") from None
    control = f", faults through {args.control}" if args.control else ""
    print(f"printer simulator on {args.link}, receipts in {args.out}{control}", flush=True)
    try:
        stop.wait()
    finally:
        simulator.stop()
    print(f"printer simulator stopped after {len(simulator.receipts)} receipts", file=sys.stderr)
    return 0


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = groups.add_parser("printer", help="test the receipt printer or run its simulator")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    test = sub.add_parser("test", help="print a test receipt and report the printer's status")
    test.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
    test.add_argument(
        "--columns",
        type=int,
        choices=(32, 48),
        default=32,
        help="32 for 58 mm paper, 48 for 80 mm (default 32)",
    )
    test.add_argument(
        "--timeout",
        type=float,
        default=0.5,
        help="seconds to wait for each status reply (default 0.5)",
    )
    test.add_argument("--json", action="store_true", help="print the result as JSON")
    test.set_defaults(handler=_test)
    simulate = sub.add_parser(
        "simulate", help="run an ESC/POS printer on a pseudo-terminal until interrupted"
    )
    simulate.add_argument(
        "--link",
        type=Path,
        required=True,
        help="path of the link to the pseudo-terminal (the 'serial port')",
    )
    simulate.add_argument(
        "--out", type=Path, required=True, help="directory for the printed receipts (.txt and .png)"
    )
    simulate.add_argument("--columns", type=int, choices=(32, 48), default=32)
    simulate.add_argument(
        "--control", type=Path, help="FIFO to create for fault commands (see docs/printer.md)"
    )
    simulate.set_defaults(handler=_simulate)
