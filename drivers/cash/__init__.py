"""The cash acceptor behind the I/O board: note and coin inlets counted by pulses.

This package owns the table of denominations a terminal accepts and the acceptor drivers
(the simulator today; the I/O board link later). It never decides what counted cash pays for:
that is the terminal core's business.
"""

from collections.abc import Mapping

# Renminbi the terminal accepts, in fen: notes of 1, 5, 10, 20, 50 and 100 yuan and coins of
# 0.1, 0.5 and 1 yuan. Anything else goes back to the customer.
ACCEPTED_DENOMINATIONS_FEN: Mapping[str, frozenset[int]] = {
    "note": frozenset({100, 500, 1000, 2000, 5000, 10000}),
    "coin": frozenset({10, 50, 100}),
}
