"""Which PC/SC reader the terminal uses: the configured pattern against the readers present.

It owns the rule of `[devices] reader_name` (docs/smartcard.md, "Choosing the reader"): a
reader matches when its name starts with the pattern as written (the key's first meaning, so
existing configurations and names with brackets keep working) or when its whole name matches
the pattern as a shell-style glob (fnmatch, case-sensitive: `ACS ACR39U*`, `* 00 00`). An empty
pattern takes the first reader pcscd lists. A pattern must match exactly one reader: none or
several is an error naming the readers present. Pure: it never talks to pcscd.
"""

from collections.abc import Sequence
from fnmatch import fnmatchcase

from kiosk.devices import CardError


def reader_matches(pattern: str, reader: str) -> bool:
    return reader.startswith(pattern) or fnmatchcase(reader, pattern)


def choose_reader(pattern: str, readers: Sequence[str]) -> str:
    """The one reader of readers that pattern selects; CardError naming the readers otherwise."""
    present = ", ".join(repr(r) for r in readers) or "none"
    if not pattern:
        if readers:
            return readers[0]
        raise CardError(
            "no card reader is connected (readers present: none): check its USB cable; "
            "the card's contents are unchanged"
        )
    matching = [r for r in readers if reader_matches(pattern, r)]
    if len(matching) == 1:
        return matching[0]
    if not matching:
        raise CardError(
            f"no card reader matches {pattern!r} (readers present: {present}): check the "
            "reader's USB cable or set [devices] reader_name to match one of them"
        )
    raise CardError(
        f"{len(matching)} card readers match {pattern!r} ({', '.join(map(repr, matching))}): "
        "set [devices] reader_name to a pattern that matches only one of them"
    )
