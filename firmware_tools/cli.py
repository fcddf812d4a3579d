"""kiosk-tool: the entry point that gathers every command group in firmware_tools/commands."""

import argparse
import importlib
import pkgutil
from collections.abc import Sequence

from firmware_tools import commands
from kiosk.command_line import run_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiosk-tool",
        description="Provision, inspect and diagnose a self-service payment terminal.",
    )
    groups = parser.add_subparsers(title="command groups", metavar="GROUP")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
