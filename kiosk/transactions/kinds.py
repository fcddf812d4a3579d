"""The vocabularies of customer transactions: what kind, how it ended, where a card credit is.

Each is a StrEnum whose values are the strings the journal, the database and the back office
have always used, so records written before these enums existed read the same.
"""

from enum import StrEnum


class TxKind(StrEnum):
    BILL = "bill"
    PHONE_TOPUP = "phone_topup"
    CARD_TOPUP = "card_topup"
    # Cash counted while no payment collected (around a restart): a voucher at once.
    CASH_REFUND = "cash_refund"


class TxOutcome(StrEnum):
    """How finish(), cancel() or recovery left a transaction.

    Every value but IN_DOUBT is the outcome of a signed tx_close record. IN_DOUBT is what a
    caller is told while the platform's answer is still unknown: nothing is closed yet.
    """

    PAID = "paid"
    CANCELLED = "cancelled"  # stopped before any money request was sent
    REFUSED = "refused"  # refused before cash was taken (float, platform, token)
    FAILED = "failed"  # the platform proved the payment will never be posted
    # Paid by phone, never posted (or paid after the resident left): the whole amount went
    # back to the wallet that paid (the close's refunded_fen); never cash, never a voucher.
    REFUNDED = "refunded"
    REFUND = "refund"  # cash counted outside a payment
    IN_DOUBT = "in_doubt"


class CardCreditState(StrEnum):
    PENDING = "pending"  # authorised by the platform, not yet proven on the card
    WRITTEN = "written"  # the card's load log proves it applied this very credit
    CONFLICT = "conflict"  # the card moved on without this credit: the operator decides


class PayMethod(StrEnum):
    """How the resident pays: cash into the acceptor, or by phone (a payment order)."""

    CASH = "cash"
    QR = "qr"  # the order's dynamic code, or the resident's payment code (付款码)


class QrStage(StrEnum):
    """What the screen of a payment by phone shows."""

    WAITING = "waiting"  # the code is shown / the scanner armed; nothing paid yet
    CONFIRMING = "confirming"  # the resident is confirming on the phone (provider pending)
    DONE = "done"  # final: `outcome` is set (paid, cancelled, refunded ...)
    IN_DOUBT = "in_doubt"  # final for the screen: outcome IN_DOUBT with the interim slip
