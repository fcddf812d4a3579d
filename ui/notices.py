"""One-time notices (一次告知): what happened, what the resident can do, where to get help.

Owns turning an error the core raised into one notice in the resident's language. The
core's messages are English sentences; the ones a resident can meet are message ids in
ui.po, any other falls back to a plain notice for its kind of error. It never decides
whether something is an error (the core does) and never shows anything itself.
"""

from dataclasses import dataclass

from kiosk.devices import CardRemoved, DeviceError
from kiosk.errors import KioskError
from kiosk.i18n import Translate
from kiosk.money import MoneyError
from kiosk.platform import OutcomeUnknown, PlatformRefused
from kiosk.transactions.engine import PaymentRefused

HELP = "For help, ask the station staff or call {phone}."


@dataclass(frozen=True)
class Notice:
    title: str
    what: str  # what happened
    action: str  # what the resident can do now
    help: str  # where to get help


def _known(translate: Translate, message: str) -> str | None:
    """The translation of a core message the catalog knows, else None."""
    translated = translate(message)
    return translated if translated != message or translate("Cancel") == "Cancel" else None


def notice_for(error: Exception, translate: Translate, phone: str) -> Notice:
    help_line = translate(HELP).format(phone=phone)
    message = str(error)
    known = _known(translate, message)
    if isinstance(error, OutcomeUnknown):
        return Notice(
            translate("The service cannot be reached"),
            translate("The operator's platform did not answer."),
            translate("Nothing was charged. Please try again in a few minutes."),
            help_line,
        )
    if isinstance(error, PlatformRefused):
        return Notice(
            translate("The operator could not do this"),
            known or translate("The operator's platform refused the request."),
            translate("Check the number you entered, or try another service."),
            help_line,
        )
    if isinstance(error, CardRemoved):
        return Notice(
            translate("The card was taken out"),
            translate("The card was removed before it could be read."),
            translate("Insert the card again and keep it in until you are told to take it."),
            help_line,
        )
    if isinstance(error, PaymentRefused):
        return Notice(
            translate("This payment cannot start"),
            known or translate("The terminal cannot take this payment now."),
            translate("Nothing was charged. Choose another service or try later."),
            help_line,
        )
    if isinstance(error, MoneyError):
        return Notice(
            translate("The amount is not allowed"),
            known or translate("The amount is outside what this service accepts."),
            translate("Choose another amount."),
            help_line,
        )
    if isinstance(error, DeviceError):
        return Notice(
            translate("A device is not working"),
            known or translate("A device of the terminal did not answer."),
            translate("Nothing was charged. Please try another service or come back later."),
            help_line,
        )
    if isinstance(error, KioskError):
        return Notice(
            translate("This cannot be done now"),
            known or translate("The terminal refused this step."),
            translate("Please start again from the menu."),
            help_line,
        )
    return Notice(
        translate("Something went wrong"),
        translate("The terminal met an unexpected problem."),
        translate("Please start again from the menu; no money is lost."),
        help_line,
    )
