"""Transaction states and the one table of legal transitions."""

from enum import StrEnum


class TxState(StrEnum):
    # Created and persisted; the float hold is being requested (outcome may be unknown).
    NEW = "new"
    # Paid by phone: the order key is committed; the order's dynamic code is shown or the
    # scanner armed, and the platform's order says whether the resident paid.
    AWAITING_PAYMENT = "awaiting_payment"
    # Float held at the platform; the inlets are open and every note or coin is journaled.
    COLLECTING = "collecting"
    # The posting intent (idempotency key, amounts) is committed; the platform's answer may
    # be unknown. Only a status query may decide what happened.
    POSTING = "posting"
    # The platform accepted the payment (reference known); closing and, for prepaid cards,
    # writing the credit to the card remain.
    POSTED = "posted"
    # Not posted and never will be: the hold is being released and the cash becomes a voucher.
    VOIDING = "voiding"
    # Paid by phone and never posted (or paid after the resident left): the order is being
    # refunded to the wallet that paid (refund key committed before each refund request).
    REFUNDING = "refunding"
    # Final: a signed (or outage-marked) tx_close record exists.
    CLOSED = "closed"


TRANSITIONS: dict[TxState, frozenset[TxState]] = {
    TxState.NEW: frozenset({TxState.COLLECTING, TxState.AWAITING_PAYMENT, TxState.VOIDING}),
    TxState.COLLECTING: frozenset({TxState.POSTING, TxState.VOIDING}),
    TxState.AWAITING_PAYMENT: frozenset({TxState.POSTING, TxState.VOIDING, TxState.REFUNDING}),
    TxState.POSTING: frozenset({TxState.POSTED, TxState.VOIDING, TxState.REFUNDING}),
    TxState.POSTED: frozenset({TxState.CLOSED}),
    TxState.VOIDING: frozenset({TxState.CLOSED}),
    TxState.REFUNDING: frozenset({TxState.CLOSED}),
    TxState.CLOSED: frozenset(),
}

FINAL = frozenset({TxState.CLOSED})


class IllegalTransition(RuntimeError):
    """A programming error: the engine tried a transition the table does not allow."""


def check_transition(current: TxState, target: TxState) -> None:
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"transaction cannot go from {current} to {target}")
