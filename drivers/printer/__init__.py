"""The receipt printer: the ESC/POS serial driver (later), its simulator and paper capabilities.

Both satisfy kiosk.devices.Printer; what a paper width allows is data in capabilities.py.
"""
