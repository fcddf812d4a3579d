"""Customer transactions as explicit, persisted state machines.

Owns: the transaction table, the legal state transitions, cash attribution, posting,
vouchers, closing records and restart recovery. Every transition is committed (together
with its journal record) before the side effect it enables; recover() resolves every
non-final state. Must never: keep money state only in memory, talk to a device library
directly, or decide a fee (the catalog does).
"""

from kiosk.transactions.states import TxState

__all__ = ["TxState"]
