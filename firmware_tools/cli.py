# PYTHON_ARGCOMPLETE_OK
"""kiosk-tool: the entry point that gathers every command group in firmware_tools/commands.

Chinese first: help, messages and the error line come from the catalogs in the language
firmware_tools.tool_language picks. Shell completion is argcomplete's (docs/diagnostics.md,
"Shell completion"): `eval "$(register-python-argcomplete kiosk-tool)"`.
"""

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import argcomplete

from firmware_tools import commands
from firmware_tools.tool_language import (
    install_argparse_words,
    localized_error,
    tool_translator,
    translate_parser,
)
from kiosk.command_line import Handler
from kiosk.errors import KioskError
from kiosk.i18n import Translate


def build_parser(t: Translate | None = None) -> argparse.ArgumentParser:
    t = t or tool_translator()
    install_argparse_words(t)  # before the parsers exist: add_help's text is read at once
    parser = argparse.ArgumentParser(
        prog="kiosk-tool",
        description="Provision, inspect and diagnose a self-service payment terminal.",
    )
    groups = parser.add_subparsers(title="command groups", metavar="GROUP")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(groups)
    translate_parser(parser, t)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """As kiosk.command_line.run_command, with every word of it in the tool's language."""
    t = tool_translator()
    parser = build_parser(t)
    argcomplete.autocomplete(parser)  # answers a completing shell and exits; else nothing
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except KioskError as exc:
        print(f"kiosk-tool: {t('error')}: {localized_error(t, exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"kiosk-tool: {t('interrupted')}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
