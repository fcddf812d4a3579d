"""Who acts when kiosk-tool does the station operator's work, and the terminal it acts on.

kiosk-tool runs on the terminal itself, in a technician's shell: by default it acts as the
technician (--by names them), whose role may record a deposit, close the day and look at the
float (kiosk.operator.roles). The station's cash (collection, voucher payout) needs the
operator: --pin-file logs in with the operator card in the terminal's reader and its PIN,
as the operator screen does. The PIN is read from a file so that it never appears in the
process list or the shell's history.
"""

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kiosk.command_line import CommandError
from kiosk.config import load_config
from kiosk.devices import CardError
from kiosk.message_text import error_text
from kiosk.money import MAX_FEN
from kiosk.operator import Actor, Role
from kiosk.terminal import Terminal
from station.composition import build_terminal


def add_actor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument(
        "--by", default="kiosk-tool", help="the technician's name, journaled (default kiosk-tool)"
    )
    parser.add_argument(
        "--pin-file",
        type=Path,
        help="act as the station operator: the operator card in the reader and this file's PIN",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


@contextmanager
def operator_terminal(args: argparse.Namespace) -> Iterator[tuple[Terminal, Actor]]:
    """The started terminal of --config and the actor of this command; closed after."""
    terminal, _ = build_terminal(load_config(args.config))
    try:
        terminal.start()
        yield terminal, _actor(terminal, args)
    finally:
        terminal.close()


def _actor(terminal: Terminal, args: argparse.Namespace) -> Actor:
    if args.pin_file is None:
        try:
            return Actor(args.by, Role.TECHNICIAN)
        except ValueError as exc:
            raise CommandError("--by: {problem}", problem=error_text(exc)) from None
    try:
        pin = args.pin_file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(
            "cannot read the operator PIN from {path}: {problem}",
            path=args.pin_file,
            problem=error_text(exc),
        ) from None
    try:
        return terminal.operator.login(pin)
    except CardError as exc:
        raise CommandError(
            "the operator card did not open a session: {problem}", problem=error_text(exc)
        ) from None


def whole_fen(text: str, option: str) -> int:
    """A --*-fen option's value, or one line saying what is wrong."""
    if not text.isascii() or not text.isdigit() or int(text) > MAX_FEN:
        raise CommandError(
            "{option} {value!r} is not a whole number of fen (1 yuan = 100 fen): e.g. 50000",
            option=option,
            value=text,
        )
    return int(text)
