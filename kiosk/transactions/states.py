"""Transaction states and the one table of legal transitions."""

from enum import StrEnum


class TxState(StrEnum):
    # Created and persisted; the float hold is being requested (outcome may be unknown).
    NEW = "new"
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
    # Final: a signed (or outage-marked) tx_close record exists.
    CLOSED = "closed"


TRANSITIONS: dict[TxState, frozenset[TxState]] = {
    TxState.NEW: frozenset({TxState.COLLECTING, TxState.VOIDING}),
    TxState.COLLECTING: frozenset({TxState.POSTING, TxState.VOIDING}),
    TxState.POSTING: frozenset({TxState.POSTED, TxState.VOIDING}),
    TxState.POSTED: frozenset({TxState.CLOSED}),
    TxState.VOIDING: frozenset({TxState.CLOSED}),
    TxState.CLOSED: frozenset(),
}

FINAL = frozenset({TxState.CLOSED})


class IllegalTransition(RuntimeError):
    """A programming error: the engine tried a transition the table does not allow."""


def check_transition(current: TxState, target: TxState) -> None:
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"transaction cannot go from {current} to {target}")
