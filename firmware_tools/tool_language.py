"""The language kiosk-tool speaks: Simplified Chinese unless the shell's locale asks for English.

Owns the choice of language (the first of LANGUAGE, LC_ALL, LC_MESSAGES, LANG that is set,
as gettext reads them; English only when it names English, so `C`, `POSIX` and unset mean
Chinese, the technician's language), translating a message id with its values, and
translating an argparse parser after it is built: every description, help text and group
title, and argparse's own words ("usage:", "show this help message and exit", its errors).
Texts come from the merged gettext catalogs (kiosk/locale/*/LC_MESSAGES/kiosk_tool.po and
the others, through kiosk.i18n); a text without an entry is printed as it is, in English.
"""

import argparse
import os
from collections.abc import Mapping
from typing import Any

from kiosk.i18n import DEFAULT_LANGUAGE, Translate, translator
from kiosk.message_text import MessageText

LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def tool_language(environ: Mapping[str, str] | None = None) -> str:
    """zh_CN or en, from the locale variables in gettext's order."""
    env = os.environ if environ is None else environ
    for name in LOCALE_VARIABLES:
        value = env.get(name, "")
        if value:
            return "en" if value.split(":")[0].lower().startswith("en") else DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def tool_translator(environ: Mapping[str, str] | None = None) -> Translate:
    """The translator of the tool's language (the catalogs are read once per process)."""
    return translator(tool_language(environ))


def say(t: Translate, message_id: str, **values: Any) -> str:
    """The message in the tool's language, its {placeholders} filled.

    A value that is itself a MessageText (a detail, a reason from the core) is said in the
    same language; other values are filled as they are (numbers, paths, amounts)."""
    text = t(message_id)
    if not values:
        return text
    return text.format(**{k: _value(t, v) for k, v in values.items()})


def say_text(t: Translate, text: str) -> str:
    """A text from the core: a MessageText said from its id and values, any other text
    looked up as an id (a fixed English sentence) and printed as it is without an entry."""
    if isinstance(text, MessageText):
        return _said(t, text.message_id, text.values)
    return t(text)


def _said(t: Translate, message_id: str, values: Mapping[str, Any]) -> str:
    # Text values of an error or a core text are labels and reasons: ids in their own right.
    return say(t, message_id, **{k: t(v) if type(v) is str else v for k, v in values.items()})


def _value(t: Translate, value: Any) -> Any:
    return say_text(t, value) if isinstance(value, MessageText) else value


def localized_error(t: Translate, exc: BaseException) -> str:
    """An error's one line: its message id and values when it carries them (VisitRefused,
    CommandError and the like), or a MessageText it was raised with, else its English
    text looked up as an id, else that text as it is."""
    message_id = getattr(exc, "message_id", None)
    values = getattr(exc, "values", None)
    if isinstance(message_id, str) and isinstance(values, dict):
        return _said(t, message_id, values)
    if len(exc.args) == 1 and isinstance(exc.args[0], MessageText):
        return say_text(t, exc.args[0])
    return t(str(exc))


def install_argparse_words(t: Translate) -> None:
    """argparse's own words ("usage: ", "options", "the following arguments are required")
    through the catalogs. argparse looks them up with the gettext function it imported as
    the module global `_`, read at each call: replacing it is the one way in (argparse has
    no parameter for it); kiosk-tool is a process of its own, so nothing else sees it."""
    argparse._ = t  # type: ignore[attr-defined]

    def ngettext(singular: str, plural: str, n: int) -> str:
        return t(singular if n == 1 else plural)

    argparse.ngettext = ngettext  # type: ignore[attr-defined]


def translate_parser(parser: argparse.ArgumentParser, t: Translate) -> None:
    """Every description, help text and group title of the parser and its sub-parsers.

    The command modules write them in English (the message ids); walking the built parser
    (argparse keeps them in its actions and groups, which it has no public accessor for)
    translates them all in one place instead of in every command module."""
    seen: set[int] = set()

    def walk(current: argparse.ArgumentParser) -> None:
        if id(current) in seen:
            return
        seen.add(id(current))
        if current.description:
            current.description = t(current.description)
        for group in current._action_groups:
            if group.title:
                group.title = t(group.title)
            if group.description:
                group.description = t(group.description)
        for action in current._actions:
            _translate_action(action, t)
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    _translate_action(choice, t)
                for sub in action.choices.values():
                    walk(sub)

    walk(parser)


def _translate_action(action: argparse.Action, t: Translate) -> None:
    if action.help and action.help is not argparse.SUPPRESS:
        action.help = t(action.help)
