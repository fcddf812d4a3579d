"""The I/O board's MicroPython firmware: the logic that runs on the board, and nothing else.

Every module here runs unchanged on MicroPython (on the board, and in the WebAssembly port in
the tests) and on CPython (the host harness). They use only what MicroPython has, reach the
hardware only through the small HAL the run loop hands them (see rp2.py for the real one,
simulators/ioboard_board.py for the host one) and never import host-side code.
"""

FIRMWARE_VERSION = "2.0.0"
