"""The payment-code scanner: HID-keyboard and serial barcode scanners, and their simulators.

Layered like the printer (transport, then protocol, then device): a line source gives the
characters a scanner sends (serial_source: pyserial; hid_source: key events through evdev,
decoded by keymap); assembly cuts them into scans; line_driver runs a source on its own
thread and keeps what it read in a buffer (buffer: arming, duplicates, misreads), which
kiosk.devices.PaymentCodeScanner reads. simulated is the in-process simulator;
pty_simulator a serial scanner on a pseudo-terminal; hid_simulator a HID scanner typing key
events (through uinput where the kernel has it). factory picks the driver for a port.
"""
