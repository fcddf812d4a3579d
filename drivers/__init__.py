"""Device drivers: one small package per device kind, each with a real driver and a simulator
that satisfy the same interface from kiosk.devices or kiosk.signing."""
