"""The status lamp: what each mode looks like (data) and the colour at a given moment.

Patterns are a table, not code, so a station operator's colour conventions are one edit.
It never drives a pin: the run loop asks colour_at() and writes the LED.
"""

# mode: (red, green, blue), on ms, off ms (0 off ms = steady)
PATTERNS = {
    "in_service": ((0, 255, 0), 1000, 0),
    "out_of_service": ((255, 0, 0), 1000, 0),
    "maintenance": ((255, 160, 0), 1000, 1000),
    "attention": ((255, 0, 0), 250, 250),
}
OFF = (0, 0, 0)


def colour_at(mode: str, now_ms: int) -> tuple[int, int, int]:
    colour, on_ms, off_ms = PATTERNS[mode]
    if off_ms == 0 or now_ms % (on_ms + off_ms) < on_ms:
        return colour
    return OFF
