"""Which of an inlet's channels the validator may take: its inhibit lines, as levels.

A pulse validator has one inhibit line for the whole inlet and, on most models, one per
channel (denomination). This module owns turning the host's setting (inlets open or not, the
largest denomination to let in) and the wiring (which channels have a line of their own) into
what each line shows. The rule that keeps a limit safe: a channel above the limit that has no
line of its own cannot be refused alone, so the whole inlet closes rather than take it.
It never drives a pin: the HAL applies the result (rp2.py on the board).
"""


def enabled_channels(
    channels_fen: list[int],
    open_: bool,
    largest_fen: int | None,
    wired_fen: list[int],
) -> list[int]:
    """The channel values the inlet lets in (empty: the whole inlet is inhibited).

    channels_fen: the inlet's channel values; open_: the inlet may take cash at all;
    largest_fen: the host's limit (None: no limit); wired_fen: channels with their own line.
    """
    if not open_:
        return []
    allowed = [value for value in channels_fen if largest_fen is None or value <= largest_fen]
    for value in channels_fen:
        if value not in allowed and value not in wired_fen:
            # Excluded but not separately inhibitable: refuse everything on this inlet.
            return []
    return sorted(allowed)


def wired_channels(pins: dict[str, object], inlet: str) -> list[int]:
    """The channel values with an inhibit line of their own in config.json's pins."""
    lines = pins.get(inlet + "_channel_inhibit") or {}
    if not isinstance(lines, dict):
        return []
    return sorted(int(value) for value in lines)
