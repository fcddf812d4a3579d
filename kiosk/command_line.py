"""What every console script of the project shares: one clear error line and an exit code.

A KioskError (or a wrong argument) becomes a single line on stderr and exit code 1 (2 for
usage); a person never sees a traceback. --json output is written by the commands.
"""

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from kiosk.errors import KioskError
from kiosk.message_text import MessageText

Handler = Callable[[argparse.Namespace], int]


class CommandError(KioskError):
    """A command could not do what was asked; the message says what to do instead.

    message_id is the English text with {named} places (a gettext message id), values fill
    them: str() is the English line, kiosk-tool prints it in the technician's language."""

    def __init__(self, message_id: str, **values: Any) -> None:
        if isinstance(message_id, MessageText) and not values:  # a text the core wrote
            core_text: MessageText = message_id
            message_id, values = core_text.message_id, dict(core_text.values)
        super().__init__(MessageText(message_id, **values))
        self.message_id = message_id
        self.values = values


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print data as JSON when --json was given, else the human text."""
    if getattr(args, "json", False):
        print(json.dumps(data, ensure_ascii=False, sort_keys=True, indent=2))
    else:
        print(text)


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    prog = parser.prog
    try:
        return handler(args)
    except KioskError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
