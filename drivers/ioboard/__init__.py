"""The MicroPython I/O board: its firmware, the link protocol, the host driver and benches.

firmware/ is what runs on the board (firmware/link.py is the one frame and message codec that
both the board and the host import); host.py is the terminal's driver; harness.py and
simulated.py run the real firmware logic on the host for tests, benches and the demo;
build.py compiles and flashes the firmware. Nothing here decides what cash pays for.
"""
