"""Every sentence the terminal speaks, as templates, and the sentences built from them.

Owns the list of spoken phrases (`Phrase`: each value is a message id of the gettext
catalogs, with a placeholder per amount) and how they are filled and joined: amounts are
always integer fen, read as money by kiosk.speech.amounts. The touchscreen's controller
builds what it says only through `clause`, `sentence` and `result_sentence`, so the tests and
the diagnose check can go through every sentence the app can say.
"""

import string
from collections.abc import Iterable, Iterator
from enum import StrEnum

from kiosk.i18n import translator
from kiosk.speech.amounts import speak_amount


class Phrase(StrEnum):
    """The spoken templates; the value is the message id (kiosk/locale/<lang>/.../ui.po)."""

    PLEASE_INSERT = "Please insert {amount}"
    RECEIVED_STILL_DUE = "Received {received}, still due {due}"
    RECEIVED = "Received {amount}"
    PAID = "paid {amount}"
    VOUCHER = "voucher {amount}"
    CREDITED = "credited {amount}"
    # Paying by phone (ui/qr_payment.py; Chinese in qr_ui.po):
    PLEASE_SCAN = "Please scan to pay {amount}"
    REFUNDED = "refunded to your wallet {amount}"

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.value) if f)


# Clauses of one announcement are joined with the language's comma: the Chinese comma is a
# pause for the Mandarin voice and punctuation, not text, so it is not in the catalogs.
CLAUSE_SEPARATOR = {"zh_CN": "，", "en": ", "}

# Amounts every phrase is tried with (tests, diagnose): each 零 rule, 0 and the largest amount.
SAMPLE_FEN = (0, 5, 50, 100, 1005, 1050, 2000, 10000, 20256, 100050, 110000, 1000001, 100000000)

# What a Mandarin sentence may hold besides Chinese characters: pauses.
_ZH_PUNCTUATION = set("，。、；： ")


def clause(phrase: Phrase, lang: str, **amounts_fen: int) -> str:
    """One phrase in the language, each placeholder filled with an amount read as money."""
    if set(amounts_fen) != set(phrase.fields):
        raise ValueError(
            f"phrase {phrase.name} takes the amounts {', '.join(phrase.fields)}, "
            f"not {', '.join(sorted(amounts_fen)) or 'none'}"
        )
    template = translator(lang)(phrase.value)
    return template.format(**{name: speak_amount(fen, lang) for name, fen in amounts_fen.items()})


def sentence(clauses: Iterable[str], lang: str) -> str:
    """Clauses said in one breath, joined with the language's comma."""
    return CLAUSE_SEPARATOR.get(lang, ", ").join(clauses)


def result_sentence(
    lang: str,
    *,
    received_fen: int,
    paid_fen: int | None = None,
    voucher_fen: int = 0,
    credited_fen: int = 0,
) -> str:
    """唱付 at the end: what was received, then what was paid, given as a voucher, credited.

    paid_fen is None when nothing was paid (a cancelled payment); a zero voucher or credit
    is not said.
    """
    parts = [clause(Phrase.RECEIVED, lang, amount=received_fen)]
    if paid_fen is not None:
        parts.append(clause(Phrase.PAID, lang, amount=paid_fen))
    if voucher_fen:
        parts.append(clause(Phrase.VOUCHER, lang, amount=voucher_fen))
    if credited_fen:
        parts.append(clause(Phrase.CREDITED, lang, amount=credited_fen))
    return sentence(parts, lang)


def every_sentence(lang: str, amounts_fen: Iterable[int] = SAMPLE_FEN) -> Iterator[str]:
    """Every phrase with every amount, then the longest result sentence with each amount."""
    amounts = tuple(amounts_fen)
    for phrase in Phrase:
        for fen in amounts:
            yield clause(phrase, lang, **{name: fen for name in phrase.fields})
    for fen in amounts:
        yield result_sentence(
            lang, received_fen=fen, paid_fen=fen, voucher_fen=fen, credited_fen=fen
        )


def foreign_characters(text: str, lang: str) -> str:
    """The characters of text the language's voice would not read in that language.

    A Mandarin sentence must be Chinese characters and pauses only (a Latin letter or a digit
    would be read by other rules); an English one must hold no Chinese character.
    """
    if lang == "zh_CN":
        found = (c for c in text if not _is_hanzi(c) and c not in _ZH_PUNCTUATION)
    else:
        found = (c for c in text if _is_hanzi(c) or not c.isascii())
    return "".join(dict.fromkeys(found))


def _is_hanzi(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff"
