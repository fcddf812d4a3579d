"""Alerts for the operator that must reach the back office: signed `alert` journal records.

An alert is a journal record (type `alert`), so it commits with the state it describes, is
signed, and travels through the durable outbox (kiosk.telemetry.outbox) exactly once, unlike
an in-memory event. Each is also published on the event bus for the screen and telemetry.
The kinds are one vocabulary shared with the back office.
"""

from collections.abc import Mapping

from kiosk.events import EventBus
from kiosk.journal import Journal
from kiosk.journal.record_types import RecordType, TerminalAlertKind

ALERT_RECORD = RecordType.ALERT


# The kinds are one vocabulary with the back office: kiosk.journal.record_types holds it.
AlertKind = TerminalAlertKind


def append_alert(
    journal: Journal,
    kind: AlertKind,
    fields: Mapping[str, object] | None = None,
    *,
    sign: bool = True,
    **detail: object,
) -> dict[str, object]:
    """Journal an alert inside the caller's write transaction (signed when the token works).

    Its detail: fields, and the keyword arguments."""
    return journal.append(ALERT_RECORD, {"alert": str(kind), **(fields or {}), **detail}, sign=sign)


def announce(events: EventBus, record: dict[str, object]) -> None:
    """Tell the screen and telemetry about an alert once its record is committed."""
    events.publish("alert", alert=record["alert"], seq=record["seq"], tx_id=record.get("tx_id"))
