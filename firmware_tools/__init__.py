"""The technician's command-line toolkit (kiosk-tool): config, token, journal, receipts, day.

Each subcommand group is one module in firmware_tools/commands with a register(subparsers)
function; the toolkit calls kiosk/ and never holds business rules of its own.
"""
