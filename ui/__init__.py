"""The touchscreen app (Kivy): the resident's journeys and the technician's maintenance mode.

A client of kiosk.terminal.Terminal: it shows what the core decides (amounts, fees,
validation, availability) and holds no business rule and no money state of its own.
Core calls run on the runtime's thread (kiosk.runtime, through ui.worker); the Kivy main
thread only draws and follows the core's events.
"""

import os

# Kivy parses sys.argv at import unless told not to; the app has its own arguments.
os.environ.setdefault("KIVY_NO_ARGS", "1")
