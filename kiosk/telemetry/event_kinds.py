"""The event kinds of the MQTT contract's `event` topic (docs/mqtt.md section 2).

Owns the vocabulary of the core events the terminal forwards to the back office, and which
core events mean a record may be waiting in the journal for the outbox. Events are QoS 1
but not durable: whatever must not be lost also travels as a journal record through the
outbox (kiosk.journal.record_types). The terminal's client and the back office's alert rules
both import the names from here.
"""

from enum import StrEnum


class EventKind(StrEnum):
    # From the I/O board (also journaled as board_event records, which travel durably).
    TAMPER = "tamper"
    TAMPER_CLEARED = "tamper_cleared"
    DOOR_OPEN = "door_open"
    DOOR_CLOSED = "door_closed"
    WATCHDOG_RESET = "watchdog_reset"
    BOARD_RESTART = "board_restart"
    # From the core.
    MAINTENANCE_ENTERED = "maintenance_entered"
    MAINTENANCE_LEFT = "maintenance_left"
    DEVICE_FAULT = "device_fault"
    LOW_FLOAT = "low_float"
    DAY_CLOSED = "day_closed"
    SIGNER_OUTAGE = "signer_outage"
    SIGNER_RECOVERED = "signer_recovered"
    CARD_CREDIT_PENDING = "card_credit_pending"
    CARD_CREDIT_CONFLICT = "card_credit_conflict"
    RECEIPT_NOT_PRINTED = "receipt_not_printed"
    PAPER_OUT = "paper_out"
    PAPER_NEAR_END = "paper_near_end"
    # From the telemetry client itself.
    COMMAND_REFUSED = "command_refused"


# Core events the back office wants. tx_closed is not among them: closed transactions
# travel as signed records through the outbox.
FORWARDED_EVENTS = frozenset(EventKind) - {EventKind.COMMAND_REFUSED}
# Core events after which a record may wait in the journal for the outbox: a closed
# transaction or day, the end of a signature outage, and anything the board journaled.
JOURNAL_EVENTS = frozenset(
    {
        "tx_closed",
        EventKind.DAY_CLOSED,
        EventKind.SIGNER_RECOVERED,
        EventKind.TAMPER,
        EventKind.TAMPER_CLEARED,
        EventKind.DOOR_OPEN,
        EventKind.DOOR_CLOSED,
        EventKind.WATCHDOG_RESET,
        EventKind.BOARD_RESTART,
        EventKind.CARD_CREDIT_CONFLICT,
    }
)
