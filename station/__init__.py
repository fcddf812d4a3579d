"""The assembled station: the composition root that picks concrete drivers and simulators
for a configuration, and the process entry points that run what it builds (`kiosk run`).

It depends on kiosk/ and drivers/; ui/, firmware_tools/ and the tests use it. kiosk/ never
imports it (tests/test_import_direction.py holds the rule).
"""
