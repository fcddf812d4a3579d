"""What a HID-keyboard scanner types, decoded from its key events with the US keymap.

A barcode scanner in keyboard mode presses and releases one key per character as a US
keyboard would (scanners are set to the US layout; payment codes are digits) and ends
the code with Enter. Written by hand, because the keymaps that exist (the console's, xkb
through libxkbcommon) are the display server's: the terminal grabs the scanner away from
it, and a table of 60 keys is all a scanner needs. Keys outside the table come out as
UNKNOWN_CHAR so that the scan is reported garbled rather than shortened.
"""

from evdev import ecodes

UNKNOWN_CHAR = "\ufffd"
ENTER = "\r"
KEY_DOWN = 1  # value of a key event: 0 released, 1 pressed, 2 auto-repeat

_DIGITS = {getattr(ecodes, f"KEY_{d}"): str(d) for d in range(10)}
_KEYPAD = {getattr(ecodes, f"KEY_KP{d}"): str(d) for d in range(10)}
_LETTERS = {getattr(ecodes, f"KEY_{c}"): c.lower() for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
# key: (unshifted, shifted) on the US layout
_SYMBOLS = {
    ecodes.KEY_MINUS: ("-", "_"),
    ecodes.KEY_EQUAL: ("=", "+"),
    ecodes.KEY_LEFTBRACE: ("[", "{"),
    ecodes.KEY_RIGHTBRACE: ("]", "}"),
    ecodes.KEY_SEMICOLON: (";", ":"),
    ecodes.KEY_APOSTROPHE: ("'", '"'),
    ecodes.KEY_GRAVE: ("`", "~"),
    ecodes.KEY_BACKSLASH: ("\\", "|"),
    ecodes.KEY_COMMA: (",", "<"),
    ecodes.KEY_DOT: (".", ">"),
    ecodes.KEY_SLASH: ("/", "?"),
    ecodes.KEY_SPACE: (" ", " "),
    ecodes.KEY_KPMINUS: ("-", "-"),
    ecodes.KEY_KPPLUS: ("+", "+"),
    ecodes.KEY_KPDOT: (".", "."),
    ecodes.KEY_KPASTERISK: ("*", "*"),
    ecodes.KEY_KPSLASH: ("/", "/"),
}
_SHIFTED_DIGITS = dict(zip("1234567890", "!@#$%^&*()", strict=True))
_SHIFTS = frozenset({ecodes.KEY_LEFTSHIFT, ecodes.KEY_RIGHTSHIFT})
_ENTERS = frozenset({ecodes.KEY_ENTER, ecodes.KEY_KPENTER})
# Pressed by some scanners around a code (a configured prefix, or NumLock for keypad
# digits); they type nothing.
_SILENT = frozenset(
    {
        ecodes.KEY_LEFTCTRL,
        ecodes.KEY_RIGHTCTRL,
        ecodes.KEY_LEFTALT,
        ecodes.KEY_RIGHTALT,
        ecodes.KEY_NUMLOCK,
        ecodes.KEY_CAPSLOCK,
    }
)


class KeyDecoder:
    """Key events in, characters out; keeps only whether Shift is held."""

    def __init__(self) -> None:
        self._shift = False

    def reset(self) -> None:
        self._shift = False

    def key(self, code: int, value: int) -> str:
        """The character one key event types ("" for none: releases, repeats, modifiers)."""
        if code in _SHIFTS:
            self._shift = value != 0
            return ""
        if value != KEY_DOWN or code in _SILENT:
            return ""
        if code in _ENTERS:
            return ENTER
        if code in _DIGITS:
            digit = _DIGITS[code]
            return _SHIFTED_DIGITS[digit] if self._shift else digit
        if code in _KEYPAD:
            return _KEYPAD[code]
        if code in _LETTERS:
            letter = _LETTERS[code]
            return letter.upper() if self._shift else letter
        if code in _SYMBOLS:
            return _SYMBOLS[code][1 if self._shift else 0]
        return UNKNOWN_CHAR


def keys_for(text: str) -> list[tuple[int, bool]]:
    """The (key code, with Shift) a US keyboard presses to type text; for the simulators.

    Only what the table above decodes; ValueError for anything else.
    """
    reverse: dict[str, tuple[int, bool]] = {ENTER: (ecodes.KEY_ENTER, False)}
    for code, digit in _DIGITS.items():
        reverse[digit] = (code, False)
        reverse[_SHIFTED_DIGITS[digit]] = (code, True)
    for code, letter in _LETTERS.items():
        reverse[letter] = (code, False)
        reverse[letter.upper()] = (code, True)
    for code, (plain, shifted) in _SYMBOLS.items():
        reverse.setdefault(plain, (code, False))
        reverse.setdefault(shifted, (code, plain != shifted))
    try:
        return [reverse[char] for char in text]
    except KeyError as exc:
        raise ValueError(f"a US keyboard cannot type {exc.args[0]!r}") from None
