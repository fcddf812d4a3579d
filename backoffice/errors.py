"""The back office's error hierarchy: every error says what was wrong and what to do."""

from kiosk.errors import KioskError


class BackofficeError(KioskError):
    """Base of every error the back office raises on purpose."""


class StoreError(BackofficeError):
    """The back-office database could not be opened or used."""


class PayloadRejected(BackofficeError):
    """An MQTT message broke the contract; it is logged and counted, never stored."""


class CommandRefused(BackofficeError):
    """A remote command could not be signed or sent."""


class StoreUnavailable(StoreError):
    """The database server could not be reached; nothing was committed, try again later."""
