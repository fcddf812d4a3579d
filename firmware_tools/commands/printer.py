"""kiosk-tool printer: print a test receipt on an ESC/POS printer, list models, run the simulator.

`test` talks to the printer through the same driver the terminal uses (serial or usblp, the
model's profile, the job confirmation detected or configured), so a technician's verdict is
the terminal's; `models` lists the printer profiles a configuration may name; `simulate` runs
the pseudo-terminal printer, imitating one model, for a bench or the demo until interrupted
(see docs/printer.md for its control FIFO).
"""

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from firmware_tools.tool_language import say, tool_translator
from kiosk.command_line import CommandError, emit
from kiosk.devices import PrinterError, PrinterStatus
from kiosk.message_text import error_text
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

    try:
        printer = EscPosPrinter(
            args.port,
            args.columns,
            model=args.model,
            confirm=args.confirm,
            transport=args.transport,
            timeout_s=args.timeout,
        )
    except ValueError as exc:  # an unknown model, or one that does not take this paper
        raise CommandError(
            "{problem} (see kiosk-tool printer models)", problem=error_text(exc)
        ) from None
    try:
        before = printer.status()
        try:
            printer.print_receipt(printer_test_page(args.columns))
        except PrinterError as exc:
            raise CommandError(
                "test receipt not printed: {problem}", problem=error_text(exc)
            ) from None
        after = printer.status()
        health = printer.health()
    finally:
        printer.close()
    t = tool_translator()
    text = say(
        t,
        "test receipt printed on {port} ({columns} columns, model {model}, jobs confirmed by "
        "{confirmation}); printer ready",
        port=args.port,
        columns=args.columns,
        model=health["model"],
        confirmation=health["confirmation"],
    )
    if after.paper_near_end:
        text += say(t, " (paper nearly used up: load a new roll soon)")
    emit(
        args,
        {
            "printed": True,
            "before": _status_dict(before),
            "after": _status_dict(after),
            "health": health,
        },
        text,
    )
    return 0


def _models(args: argparse.Namespace) -> int:
    from drivers.printer.profiles import AUTO, GENERIC_MODEL, shipped_profiles

    models = [
        {
            "model": profile.name,
            "description": profile.description,
            "paper_widths_mm": [paper.width_mm for paper in profile.paper],
            "confirm": str(profile.confirm),
            "cuts": [str(cut) for cut in profile.cuts],
            "qr": str(profile.qr),
        }
        for profile in shipped_profiles().values()
    ]
    t = tool_translator()
    lines = [
        say(
            t,
            "{model}: {description} ({widths} mm, confirm {confirm})",
            model=m["model"],
            description=t(str(m["description"])),
            widths="/".join(str(w) for w in m["paper_widths_mm"]),
            confirm=m["confirm"],
        )
        for m in models
    ]
    lines.append(
        say(
            t,
            "{auto}: {generic}, its job confirmation detected at first contact",
            auto=AUTO,
            generic=GENERIC_MODEL,
        )
    )
    emit(args, {"models": models}, "\n".join(lines))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from drivers.printer.profiles import UnknownPrinterModel
    from drivers.printer.pty_simulator import PtyPrinterSimulator

    logging.basicConfig(level=logging.INFO, format="printer simulator: %(message)s")
    if args.link.exists() and not args.link.is_symlink():
        raise CommandError(
            "{path} exists and is not a link: choose another --link path", path=args.link
        )
    if args.print_speed is not None and args.print_speed <= 0:
        raise CommandError(
            "--print-speed {value:g} must be more than 0 mm/s", value=args.print_speed
        )
    try:
        simulator = PtyPrinterSimulator(
            args.link,
            args.out,
            args.columns,
            control=args.control,
            model=args.model,
            print_speed_mm_s=args.print_speed,
        )
    except UnknownPrinterModel as exc:
        raise CommandError(
            "{problem} (see kiosk-tool printer models)", problem=error_text(exc)
        ) from None
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        simulator.start()
    except (OSError, ValueError) as exc:
        raise CommandError(
            "cannot start the printer simulator: {problem}", problem=error_text(exc)
        ) from None
    t = tool_translator()
    started = say(
        t,
        "printer simulator ({model}) on {link}, receipts in {out}",
        model=simulator.profile.name,
        link=args.link,
        out=args.out,
    )
    if args.control:
        started += say(t, ", faults through {control}", control=args.control)
    print(started, flush=True)
    try:
        stop.wait()
    finally:
        simulator.stop()
    stopped = say(
        t, "printer simulator stopped after {count} receipts", count=len(simulator.receipts)
    )
    print(stopped, file=sys.stderr)
    return 0


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = groups.add_parser("printer", help="test the receipt printer or run its simulator")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    test = sub.add_parser("test", help="print a test receipt and report the printer's status")
    test.add_argument(
        "--port", required=True, help="the printer's device, e.g. /dev/ttyUSB0 or /dev/usb/lp0"
    )
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
    test.add_argument(
        "--model", default="auto", help="printer model (kiosk-tool printer models; default auto)"
    )
    test.add_argument(
        "--confirm",
        choices=("auto", "process_id", "status_poll"),
        default="auto",
        help="how a job is confirmed (default: the model's, detected for model auto)",
    )
    test.add_argument(
        "--transport",
        choices=("auto", "serial", "usblp"),
        default="auto",
        help="serial port or USB printer class (default: usblp for /dev/usb/lp*)",
    )
    test.add_argument("--json", action="store_true", help="print the result as JSON")
    test.set_defaults(handler=_test)
    models = sub.add_parser("models", help="list the printer models a configuration may name")
    models.add_argument("--json", action="store_true", help="print the list as JSON")
    models.set_defaults(handler=_models)
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
        "--model",
        default="epson-compatible",
        help="the printer model it imitates, e.g. clone-58 (ignores GS ( H)",
    )
    simulate.add_argument(
        "--print-speed",
        type=float,
        metavar="MM_PER_S",
        help="print at this paper speed instead of at once",
    )
    simulate.add_argument(
        "--control", type=Path, help="FIFO to create for fault commands (see docs/printer.md)"
    )
    simulate.set_defaults(handler=_simulate)
