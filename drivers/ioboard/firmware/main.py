"""The board's boot file (/main.py): start the I/O board firmware's main loop (rp2.py)."""

from ioboard.rp2 import run  # the package as laid out on the board

run()
