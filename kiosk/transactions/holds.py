"""Float holds: reserved before any cash is taken, released once their transaction closed.

Owns the platform's hold and release requests. A hold is remembered (TxStore.add_hold) before
it is requested, so a crash after the request still releases it; it is forgotten only when
the platform confirmed the release or the posting consumed it. A release the platform refuses
or does not answer keeps its row and is retried with backoff: a leaked hold would shrink the
usable float for good.
"""

import logging
import sqlite3

from kiosk.alerts import AlertKind
from kiosk.clock import Clock, iso
from kiosk.platform import InsufficientFloat, OutcomeUnknown, PlatformClient, PlatformRefused
from kiosk.signing import SignerError
from kiosk.storage import write_transaction
from kiosk.transactions.retries import Retries
from kiosk.transactions.store import RetryKind, TxRow, TxStore

log = logging.getLogger(__name__)


class FloatHolds:
    def __init__(
        self,
        conn: sqlite3.Connection,
        store: TxStore,
        platform: PlatformClient,
        clock: Clock,
        retries: Retries,
    ) -> None:
        self._conn = conn
        self._store = store
        self._platform = platform
        self._clock = clock
        self._retries = retries

    def reserve(self, row: TxRow, total_fen: int, margin_fen: int) -> tuple[TxRow, int]:
        """Hold total_fen + margin_fen of the float for row, or exactly total_fen if only
        that is available. Returns the row (its hold id may have changed) and the amount held.

        Raises InsufficientFloat, PlatformRefused, OutcomeUnknown or SignerError: the caller
        voids the transaction (no cash was taken yet) and its holds are released after.
        """
        assert row.hold_id is not None
        try:
            self._platform.hold_float(row.hold_id, total_fen + margin_fen)
            return row, total_fen + margin_fen
        except InsufficientFloat:
            if margin_fen == 0:
                raise
        # Enough for the payment but not for an overpayment credit: hold exactly the total
        # under a second id (the first is released with the transaction's other holds).
        hold_id = f"{row.tx_id}-h2"
        with write_transaction(self._conn):
            self._store.add_hold(hold_id, row.tx_id)
            row = self._store.update(row.tx_id, iso(self._clock.now()), hold_id=hold_id)
        self._platform.hold_float(hold_id, total_fen)
        return row, total_fen

    def release_due(self, max_calls: int | None = None) -> int:
        """Release every hold of a closed transaction whose retry is due; returns the count.

        Stops at the first answer that says the platform or the token is not working (the
        rest wait for the next round), and after max_calls requests.
        """
        released = calls = 0
        for hold_id, tx_id in self._store.holds_to_release(iso(self._clock.now())):
            if max_calls is not None and calls >= max_calls:
                break
            calls += 1
            try:
                self._platform.release_float(hold_id)
            except (OutcomeUnknown, SignerError) as exc:
                self._later(hold_id, tx_id, f"no answer: {type(exc).__name__}", refused=False)
                break
            except PlatformRefused as exc:
                log.warning("hold %s release refused: %s", hold_id, exc.code)
                self._later(hold_id, tx_id, f"refused: {exc.code}", refused=True)
                continue
            with write_transaction(self._conn):
                self._store.hold_released(hold_id)
            released += 1
        return released

    def _later(self, hold_id: str, tx_id: str, problem: str, *, refused: bool) -> None:
        # A refusal is alerted at once: it will not go away by waiting.
        self._retries.failed(
            RetryKind.HOLD,
            hold_id,
            tx_id,
            problem,
            alert=AlertKind.HOLD_NOT_RELEASED,
            alert_now=refused,
            hold_id=hold_id,
        )
