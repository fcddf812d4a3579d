"""The station's prepaid float (信誉额度) as the terminal sees it.

The float is an account at the operator: money deposited in advance, credit line zero,
never negative. The platform is the authority (it holds and debits); this package keeps
the last known state, notices a low balance before it stops business, and tracks
deposits until the platform confirms them. Must never: decide a payment on its own.
"""
