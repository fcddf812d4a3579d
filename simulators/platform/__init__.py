"""The simulated operator platform: a separate deployable serving the demo and the tests.

It owns its own SQLite ledger (station floats, holds, payments, deposits, certificates),
the sample billers and bills, and fault injection. It speaks the contract written in
kiosk.platform.models; the terminal never imports this package.
"""
