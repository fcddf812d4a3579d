"""A text a person reads, kept with its message id and values so a tool can translate it.

Owns MessageText: a str that is the English line (its message id with the values filled),
so every caller that prints, logs or puts it in JSON keeps working unchanged, and that also
carries message_id and values, so kiosk-tool (firmware_tools.tool_language.say_text) can
look the id up in the gettext catalogs and fill the values in the technician's language.
The core raises and returns these instead of f-strings wherever a person reads the text.
"""

from typing import Any


class MessageText(str):
    """The English text of message_id with values; message_id and values kept beside it.

    A str subclass rather than a pair: details, progress lines and errors travel through
    code (JSON reports, telemetry events, logs) that expects a str and must not change."""

    message_id: str
    values: dict[str, Any]

    def __new__(cls, message_id: str, **values: Any) -> "MessageText":
        text = super().__new__(cls, message_id.format(**values) if values else message_id)
        text.message_id = message_id
        text.values = values
        return text


def error_text(exc: BaseException) -> str:
    """An error's line as a MessageText when it carries a message id (a TranslatedError,
    an error raised with a MessageText), else its English text: the reason to put in
    another message's values without losing its translation."""
    message_id = getattr(exc, "message_id", None)
    values = getattr(exc, "values", None)
    if isinstance(message_id, str) and isinstance(values, dict):
        return MessageText(message_id, **values)
    if len(exc.args) == 1 and isinstance(exc.args[0], MessageText):
        return exc.args[0]
    return str(exc)
