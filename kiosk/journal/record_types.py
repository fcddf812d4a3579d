"""The journal record types that travel to the back office through the durable outbox.

Owns the record-type vocabulary of the outbox wire (docs/mqtt.md section 3): which types
the terminal publishes (OUTBOX_TYPES, read by kiosk.telemetry.outbox), the kinds a terminal
`alert` record names, the states of a voucher payout, and the one rule both ends share on
signatures: which records may legitimately travel unsigned. The terminal journals these
records and the back office stores them; both import the names from here, and
tests/test_telemetry_contract.py fails on a record-type literal spelled elsewhere.
"""

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class RecordType(StrEnum):
    # Closed customer transactions and end-of-day reports (signed).
    TX_CLOSE = "tx_close"
    DAY_CLOSE = "day_close"
    # Security-relevant facts the terminal journals (signed unless may_travel_unsigned).
    ALERT = "alert"
    RECEIPT_CLAIMED = "receipt_claimed"
    VOUCHER_PAYOUT = "voucher_payout"
    CASH_SUSPENSE = "cash_suspense"
    CARD_CREDIT_CONFLICT = "card_credit_conflict"
    DAYS_CAUGHT_UP = "days_caught_up"
    # The I/O board's tamper and door events (kiosk/board_supervisor.py journals them).
    BOARD_EVENT = "board_event"
    # The end of a signature-device outage (kiosk/journal/store.py writes it, signed).
    SIGNATURE_RECOVERED = "signature_recovered"
    # A resident's rating (好差评) and complaint (kiosk/ratings.py writes them, signed).
    RATING = "rating"
    COMPLAINT = "complaint"
    # The station operator's money cycle (kiosk/ledger, kiosk/operator), each naming who:
    # a float deposit recorded, confirmed or refused; a cash collection (清机) with its count;
    # an operator's login, logout or refused PIN.
    FLOAT_DEPOSIT = "float_deposit"
    CASH_COLLECTION = "cash_collection"
    OPERATOR_SESSION = "operator_session"
    # A technician's maintenance visit (设备维护记录单, seed 002): fault found, repair done,
    # spare unit lent, who bears the cost, next inspection due (kiosk/diagnostics/visit.py).
    MAINTENANCE_VISIT = "maintenance_visit"


# Every type the outbox carries, in the order they were added to the contract.
OUTBOX_TYPES: tuple[str, ...] = tuple(RecordType)


class TerminalAlertKind(StrEnum):
    """What an `alert` record's `alert` field names (the terminal's AlertKind on the wire)."""

    TX_IN_DOUBT = "tx_in_doubt"
    PLATFORM_ANSWER_MISMATCH = "platform_answer_mismatch"
    HOLD_NOT_RELEASED = "hold_not_released"
    VOUCHER_NOT_REGISTERED = "voucher_not_registered"
    CARD_CREDIT_CONFLICT = "card_credit_conflict"
    UNRECOGNISED_CASH = "unrecognised_cash"
    INLETS_NOT_CLOSED = "inlets_not_closed"
    CLOCK_WRONG = "clock_wrong"
    # The day's 日终轧帐 does not balance: opening + deposits - debits is not the platform's
    # closing float, or the platform could not be asked (kiosk/settlement/float_check.py).
    DAY_NOT_BALANCED = "day_not_balanced"
    # Cash counted at a collection differs from what the journal says is in the box.
    CASH_COUNT_DISCREPANCY = "cash_count_discrepancy"
    # A deposit recorded at the terminal was refused by the platform (its slip is already
    # behind another deposit, say): the float will not grow by it.
    DEPOSIT_REFUSED = "deposit_refused"
    # Money paid by phone could not be refunded to its wallet yet (failed at the provider,
    # or refused): the terminal tries again under a new refund key (kiosk.transactions.orders).
    REFUND_FAILED = "refund_failed"


class VoucherPayoutState(StrEnum):
    ASKED = "asked"
    PAID = "paid"
    REFUSED = "refused"


class BoardEventKind(StrEnum):
    """The board events a board_event record's `kind` names that matter to the back office."""

    TAMPER = "tamper"
    TAMPER_CLEARED = "tamper_cleared"
    DOOR_OPEN = "door_open"
    DOOR_CLOSED = "door_closed"
    WATCHDOG_RESET = "watchdog_reset"
    BOARD_RESTART = "board_restart"


def may_travel_unsigned(record: Mapping[str, Any]) -> bool:
    """Whether a record without a signature is legitimate (stored flagged, not quarantined).

    sig_failed: the signature device failed while the terminal kept serving (an outage,
    docs/journal-format.md). A clock_wrong alert is journaled unsigned on purpose: a wrong
    clock is what the terminal reports without trusting itself. A voucher payout is signed
    once paid or refused, not while asked. Board events are journaled unsigned by the
    terminal today (kiosk/board_supervisor.py).
    """
    if record.get("sig_failed") is True:
        return True
    kind = record.get("type")
    if kind == RecordType.ALERT:
        return record.get("alert") == TerminalAlertKind.CLOCK_WRONG
    if kind == RecordType.VOUCHER_PAYOUT:
        return record.get("state") == VoucherPayoutState.ASKED
    return kind == RecordType.BOARD_EVENT
