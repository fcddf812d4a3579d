"""The root of the terminal core's error hierarchy.

Every error a person can see carries a message that says what was wrong and what to do.
"""


class KioskError(Exception):
    """Base of every error the terminal core raises on purpose."""


class ConfigError(KioskError):
    """The configuration is missing, unreadable or has a wrong key or value."""
