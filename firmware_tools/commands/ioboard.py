"""kiosk-tool ioboard: build and flash the I/O board firmware, open its console, show its status.

Talks to the board only through drivers/ioboard (the link driver, and mpremote for flashing);
never changes the terminal's journal or configuration.
"""

import argparse
import subprocess
import sys
from pathlib import Path

from drivers.ioboard.build import MPREMOTE, build_firmware, flash_firmware
from drivers.ioboard.host import IoBoardNotAnswering, SerialIoBoard
from firmware_tools.tool_language import say, say_text, tool_translator
from kiosk.command_line import CommandError, emit


def _build(args: argparse.Namespace) -> int:
    out: Path = args.out
    try:
        manifest = build_firmware(out)
    except OSError as exc:
        raise CommandError(
            "cannot write the build to {path}: {problem}", path=out, problem=exc.strerror
        ) from None
    text = say(
        tool_translator(),
        "built I/O board firmware {version} (link protocol v{protocol}, {compiler}): "
        "{count} files in {path}",
        version=manifest["firmware_version"],
        protocol=manifest["protocol_version"],
        compiler=manifest["mpy_cross"],
        count=len(manifest["files"]),
        path=out,
    )
    emit(args, manifest, text)
    return 0


def _stop_link_loop(port: str) -> None:
    """Ask a running firmware to hand the port to the REPL; a board already there is fine."""
    board = SerialIoBoard(port, reply_timeout_s=0.3, attempts=2)
    try:
        board.stop_for_repl()
    except IoBoardNotAnswering:
        pass  # no firmware answering the link: the REPL (or a blank board) has the port
    finally:
        board.close()


def _flash(args: argparse.Namespace) -> int:
    _stop_link_loop(args.port)

    t = tool_translator()

    def progress(line: str) -> None:
        print(say_text(t, line), file=sys.stderr if args.json else sys.stdout, flush=True)

    manifest = flash_firmware(args.build, args.port, progress)
    text = say(
        t,
        "flashed and verified firmware {version} on {port}",
        version=manifest["firmware_version"],
        port=args.port,
    )
    emit(
        args,
        {"port": args.port, "firmware_version": manifest["firmware_version"], "verified": True},
        text,
    )
    return 0


def _console(args: argparse.Namespace) -> int:
    _stop_link_loop(args.port)
    print(
        say(
            tool_translator(),
            "opening the REPL on {port}; press Ctrl-] to leave, "
            "then reset the board to resume service",
            port=args.port,
        ),
        file=sys.stderr,
    )
    return subprocess.call([*MPREMOTE, "connect", args.port, "repl"])


def _status(args: argparse.Namespace) -> int:
    board = SerialIoBoard(args.port)
    try:
        health = board.health()
        if not health["online"]:
            raise CommandError(
                "the I/O board on {port} does not answer: {problem}; check its cable and power",
                port=args.port,
                problem=str(health.get("error")),
            )
        health["identity"] = board.identify()
        status = board.board_status()
    finally:
        board.close()
    t = tool_translator()
    text = say(
        t,
        "I/O board {board} on {port}: firmware {firmware}, door {door}, tamper {tamper}, "
        "lamp {lamp}, temperature {temperature} C, {waiting} cash events waiting",
        board=health["board_id"],
        port=args.port,
        firmware=status.firmware_version,
        door=t("open" if status.door_open else "closed"),
        tamper=t("LATCHED" if status.tamper_latched else "clear"),
        lamp=t(str(status.lamp)),
        temperature=status.temperature_c if status.temperature_c is not None else "?",
        waiting=status.unacknowledged_cash,
    )
    emit(args, health, text)
    return 0


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    ioboard = groups.add_parser(
        "ioboard",
        help="the MicroPython I/O board: build, flash, console, status",
        description="Build and flash the I/O board firmware, open its REPL, show its status.",
    )
    commands = ioboard.add_subparsers(title="commands", metavar="COMMAND")

    build = commands.add_parser(
        "build",
        help="compile the firmware with mpy-cross and write a hashed manifest",
        description=(
            "Compile every firmware file with mpy-cross into DIR and write DIR/manifest.json"
            " (firmware and protocol version, mpy-cross version, SHA-256 of every file)."
        ),
    )
    build.add_argument("--out", type=Path, required=True, help="the build directory")
    build.add_argument("--json", action="store_true", help="print the manifest as JSON")
    build.set_defaults(handler=_build)

    flash = commands.add_parser(
        "flash",
        help="install a build on the board with mpremote and verify it",
        description=(
            "Stop the running firmware, install the build's micropython-lib dependencies and"
            " files with mpremote, read every file's SHA-256 back from the board, then reset it."
        ),
    )
    flash.add_argument("--port", required=True, help="the board's serial port, e.g. /dev/ttyACM0")
    flash.add_argument(
        "--build", type=Path, default=Path("build/ioboard"), help="the build directory"
    )
    flash.add_argument("--json", action="store_true", help="print the result as JSON")
    flash.set_defaults(handler=_flash)

    console = commands.add_parser(
        "console",
        help="open the board's MicroPython REPL",
        description="Stop the firmware's link loop and open the MicroPython REPL with mpremote.",
    )
    console.add_argument("--port", required=True, help="the board's serial port")
    console.set_defaults(handler=_console)

    status = commands.add_parser(
        "status",
        help="show the board's firmware, switches, lamp, temperature and waiting events",
        description="Handshake with the board and show its status. Exit code 0 when it answers.",
    )
    status.add_argument("--port", required=True, help="the board's serial port")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(handler=_status)
