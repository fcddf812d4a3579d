"""kiosk-tool printer: print a test receipt on an ESC/POS printer, list models, run the simulator.

`test` talks to the printer through the same driver the terminal uses (serial or usblp, the
model's profile, the job confirmation detected or configured), so a technician's verdict is
the terminal's; `models` lists the printer profiles a configuration may name; `simulate` runs
the pseudo-terminal printer, imitating one model, for a bench or the demo until interrupted
(see docs/printer.md for its control FIFO).
"""

import argparse
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


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = groups.add_parser("printer", help="test the receipt printer or list the models")
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
