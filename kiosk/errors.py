"""The root of the terminal core's error hierarchy.

Every error a person can see carries a message that says what was wrong and what to do.
"""

from collections.abc import Callable


class KioskError(Exception):
    """Base of every error the terminal core raises on purpose."""


class ConfigError(KioskError):
    """The configuration is missing, unreadable or has a wrong key or value."""


class TranslatedError(KioskError):
    """An error a person reads on a screen in their language.

    message_id is the English text with {named} places (a message id of the gettext
    catalogs, kiosk/locale); values fill the places, already formatted (amounts with
    kiosk.money.format_fen). str() is the English line; translated(t) the same through t.
    """

    def __init__(self, message_id: str, **values: object) -> None:
        super().__init__(message_id.format(**values))
        self.message_id = message_id
        self.values = values

    def translated(self, translate: Callable[[str], str]) -> str:
        """The message through translate; a text value that is itself a message id (a
        reason, a label) is translated too, and any other text has no entry and stays."""
        values = {k: translate(v) if isinstance(v, str) else v for k, v in self.values.items()}
        return translate(self.message_id).format(**values)
