"""The touchscreen app (Kivy): the resident's journeys and the technician's maintenance mode.

A client of kiosk.terminal.Terminal: it shows what the core decides (amounts, fees,
validation, availability) and holds no business rule and no money state of its own.
Blocking core calls run on one worker thread (ui.worker); the Kivy main thread only draws.
"""

import os

# Kivy parses sys.argv at import unless told not to; the app has its own arguments.
os.environ.setdefault("KIVY_NO_ARGS", "1")
