"""Shared fixtures: every module in tests/fixtures is loaded as a pytest plugin."""

import os
import pkgutil
from pathlib import Path

# kiosk-tool speaks Chinese unless the locale names English (firmware_tools.tool_language).
# The tests written against its English texts run in English, here and in the kiosk-tool
# processes they start; tests/test_kiosk_tool_language.py runs it in both languages.
os.environ["LANGUAGE"] = "en"

pytest_plugins = [
    f"tests.fixtures.{m.name}"
    for m in pkgutil.iter_modules([str(Path(__file__).parent / "fixtures")])
]
