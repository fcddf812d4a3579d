"""Terminal core: business rules, money, transactions, journal, float, end of day.

kiosk/ owns every business decision of the terminal. It never imports Kivy or a hardware
library; devices are reached through the small interfaces in kiosk.devices and kiosk.signing.
"""

__version__ = "0.1.0"
