"""收费公示: the published fee schedule as residents read it, and announced fee changes.

Owns putting the catalog's fee rules into words in the resident's language (message ids in
kiosk/locale/*/LC_MESSAGES/tariffs.po): the fee in force for each service with the day it
took effect, and every announced change with the day it takes effect. A change is announced
on the idle screen from the moment a catalog carrying it is in force (the catalog's install
rules keep it at least 5 working days ahead: kiosk.catalog.fees). Pure: no Kivy, no I/O.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from kiosk.catalog import FeeRule, Service
from kiosk.i18n import Translate
from kiosk.money import MAX_FEN, format_fen


@dataclass(frozen=True)
class TariffLine:
    service: str  # translated name
    fee: str  # the rule in words
    since: str  # the day it took effect (or takes effect), in words
    upcoming: bool  # announced, not yet in force


def day_text(t: Translate, day: date) -> str:
    return t("{year}-{month}-{day}").format(year=day.year, month=day.month, day=day.day)


def fee_text(t: Translate, rule: FeeRule) -> str:
    """A fee rule in words: free, a fixed amount per payment, or a share with its limits."""
    if rule.rate_bp == 0:
        constant = max(rule.min_fen, min(rule.max_fen, rule.flat_fen))
        if constant == 0:
            return t("Free")
        return t("{amount} per payment").format(amount=format_fen(constant))
    whole, hundredths = divmod(rule.rate_bp, 100)
    rate = f"{whole}.{hundredths:02d}".rstrip("0").rstrip(".")
    text = t("{rate}% of the amount").format(rate=rate)
    if rule.flat_fen:
        text = t("{flat} plus {share}").format(flat=format_fen(rule.flat_fen), share=text)
    limits = []
    if rule.min_fen:
        limits.append(t("at least {amount}").format(amount=format_fen(rule.min_fen)))
    if rule.max_fen < MAX_FEN:
        limits.append(t("at most {amount}").format(amount=format_fen(rule.max_fen)))
    if limits:
        text = t("{fee} ({limits})").format(fee=text, limits=t(", ").join(limits))
    return text


def tariff_lines(t: Translate, services: Iterable[Service], today: date) -> list[TariffLine]:
    """For each service: the rule in force today, then each announced change."""
    lines: list[TariffLine] = []
    for service in services:
        name = t(service.name)
        current = service.fee_rule_on(today)
        if current is not None:
            since = t("since {day}").format(day=day_text(t, current.effective_from))
            lines.append(TariffLine(name, fee_text(t, current), since, upcoming=False))
        for rule in service.fees:
            if rule.effective_from > today:
                since = t("from {day}").format(day=day_text(t, rule.effective_from))
                lines.append(TariffLine(name, fee_text(t, rule), since, upcoming=True))
    return lines


def fee_announcements(t: Translate, services: Iterable[Service], today: date) -> list[str]:
    """One sentence per announced fee change, for the idle screen."""
    found = []
    for service in services:
        change = service.upcoming_fee_change(today)
        if change is None:
            continue
        current = service.fee_rule_on(today)
        found.append(
            t("Fee change: {service} from {day}: {fee} (now {current})").format(
                service=t(service.name),
                day=day_text(t, change.effective_from),
                fee=fee_text(t, change),
                current=fee_text(t, current) if current is not None else t("not offered"),
            )
        )
    return found
