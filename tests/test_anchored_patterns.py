r"""Patterns that validate a whole value end at its end, not before a final newline.

In Python's re, "$" also matches just before a newline that ends the string, so
re.compile(r"^[0-9]+$").match("123\n") accepts; r"\Z" (or fullmatch) does not. A value
with a trailing newline passed several such checks (topic ids, command nonces, update
paths); these tests hold the fix, and the last one keeps the pattern from coming back.
"""

import re
from pathlib import Path

import pytest

from kiosk.telemetry.topics import parse_topic, terminal_identity

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kiosk", "station", "backoffice", "drivers", "firmware_tools", "ui")


def test_a_topic_whose_ids_end_in_a_newline_is_not_the_contracts() -> None:
    assert parse_topic("kiosk/v1/31000000/T-01/health") == ("31000000", "T-01", "health")
    assert parse_topic("kiosk/v1/31000000\n/T-01/health") is None
    assert parse_topic("kiosk/v1/31000000/T-01\n/health") is None
    with pytest.raises(ValueError, match="must be digits"):
        terminal_identity("31000000\n", "T-01")
    with pytest.raises(ValueError, match="1-32 letters"):
        terminal_identity("31000000", "T-01\n")


def test_no_whole_value_pattern_ends_in_a_dollar() -> None:
    anchored = re.compile(r"""re\.compile\(r?["']\^[^"']*\$["']\)""")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if anchored.search(line)
    ]
    assert found == [], f"end these with \\Z (or use fullmatch): {found}"
