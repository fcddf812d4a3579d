"""The cash acceptor behind the I/O board: note and coin inlets counted by pulses.

This package owns the table of denominations a terminal accepts, what a handed-back note is
(CashRejected), how an unrecognised item is described, and the in-process acceptor simulator.
It never decides what counted cash pays for: that is the terminal core's business.
"""

from collections.abc import Mapping

from kiosk.devices import CashKind, DeviceError

# Renminbi the terminal accepts, in fen: notes of 1, 5, 10, 20, 50 and 100 yuan and coins of
# 0.1, 0.5 and 1 yuan. Anything else goes back to the customer. The board's firmware has the
# same channels in its config.json (it cannot import this); a test checks that they agree.
ACCEPTED_DENOMINATIONS_FEN: Mapping[CashKind, frozenset[int]] = {
    CashKind.NOTE: frozenset({100, 500, 1000, 2000, 5000, 10000}),
    CashKind.COIN: frozenset({10, 50, 100}),
}
INLETS = (CashKind.NOTE, CashKind.COIN)


class CashRejected(DeviceError):
    """A note or coin was not counted and went back to the customer; the message says why.

    What a validator does with cash while its inlet is closed, jammed, or inhibited for that
    denomination. Raised by the simulators' and benches' insert(), never by the Protocol.
    """


def unrecognised_detail(inlet: str, pulses: int) -> str:
    """The detail of an unrecognised item, the same text from every acceptor."""
    return f"pulses={pulses} on the {inlet} inlet"


def check_largest_fen(largest_fen: int | None) -> int | None:
    """largest_fen as set_accepting takes it, or ValueError saying what is wrong."""
    if largest_fen is None:
        return None
    if isinstance(largest_fen, bool) or not isinstance(largest_fen, int) or largest_fen < 0:
        raise ValueError(
            f"largest_fen {largest_fen!r} is not a whole number of fen >= 0: "
            "give the largest denomination to accept, or None for all"
        )
    return largest_fen


def denominations_up_to(inlet: CashKind, largest_fen: int | None) -> frozenset[int]:
    """The inlet's denominations an acceptor limited to largest_fen still takes."""
    accepted = ACCEPTED_DENOMINATIONS_FEN[inlet]
    if largest_fen is None:
        return accepted
    return frozenset(value for value in accepted if value <= largest_fen)
