"""Alerts for the operator that must reach the back office: signed `alert` journal records.

An alert is a journal record (type `alert`), so it commits with the state it describes, is
signed, and travels through the durable outbox (kiosk.telemetry.outbox) exactly once, unlike
an in-memory event. Each is also published on the event bus for the screen and telemetry.
The kinds are one vocabulary shared with the back office.
"""

from enum import StrEnum

from kiosk.events import EventBus
from kiosk.journal import Journal

ALERT_RECORD = "alert"


class AlertKind(StrEnum):
    # A money request's outcome is still unknown after the customer left with a slip.
    TX_IN_DOUBT = "tx_in_doubt"
    # The platform answered with an amount or fee other than what was sent.
    PLATFORM_ANSWER_MISMATCH = "platform_answer_mismatch"
    # A float hold could not be released (the float stays reserved until it is).
    HOLD_NOT_RELEASED = "hold_not_released"
    # A voucher could not be registered with the platform (it cannot be paid out yet).
    VOUCHER_NOT_REGISTERED = "voucher_not_registered"
    # The card moved on without this credit: the operator reverses or refunds.
    CARD_CREDIT_CONFLICT = "card_credit_conflict"
    # The acceptor kept something it could not recognise: counted at the next collection.
    UNRECOGNISED_CASH = "unrecognised_cash"
    # The inlets could not be closed when a payment stopped: later cash becomes a voucher.
    INLETS_NOT_CLOSED = "inlets_not_closed"
    # The clock is earlier than the journal, implausibly far ahead, or far from the platform's.
    CLOCK_WRONG = "clock_wrong"


def append_alert(
    journal: Journal, kind: AlertKind, *, sign: bool = True, **detail: object
) -> dict[str, object]:
    """Journal an alert inside the caller's write transaction (signed when the token works)."""
    return journal.append(ALERT_RECORD, {"alert": str(kind), **detail}, sign=sign)


def announce(events: EventBus, record: dict[str, object]) -> None:
    """Tell the screen and telemetry about an alert once its record is committed."""
    events.publish("alert", alert=record["alert"], seq=record["seq"], tx_id=record.get("tx_id"))
