"""Work the platform still owes an answer to: counted, retried with backoff, alerted once.

Owns the one step every such piece of work takes when an attempt fails (an in-doubt posting,
a hold not released, a voucher not registered): count the attempt, set the next try
(kiosk.transactions.retry_policy), and journal one alert for the operator when it is due,
all in one write transaction. The rows live in the platform_retry table (TxStore).
"""

import sqlite3

from kiosk.alerts import AlertKind, announce, append_alert
from kiosk.clock import Clock, iso
from kiosk.events import EventBus
from kiosk.journal import Journal
from kiosk.storage import write_transaction
from kiosk.transactions.retry_policy import ALERT_AFTER_ATTEMPTS, next_try
from kiosk.transactions.store import Retry, RetryKind, TxStore


class Retries:
    def __init__(
        self,
        conn: sqlite3.Connection,
        store: TxStore,
        journal: Journal,
        clock: Clock,
        events: EventBus,
    ) -> None:
        self._conn = conn
        self._store = store
        self._journal = journal
        self._clock = clock
        self._events = events

    def failed(
        self,
        kind: RetryKind,
        key: str,
        tx_id: str,
        problem: str,
        *,
        alert: AlertKind,
        alert_now: bool = False,
        **detail: object,
    ) -> Retry:
        """One more failed attempt: the next try after a backoff, and the alert once (at
        once with alert_now, else after ALERT_AFTER_ATTEMPTS failures)."""
        earlier = self._store.retry_of(kind, key)
        attempts = 0 if earlier is None else earlier.attempts
        record = None
        with write_transaction(self._conn):
            retry = self._store.retry_later(
                kind,
                key,
                tx_id,
                next_try=iso(next_try(self._clock.now(), attempts + 1)),
                problem=problem,
            )
            if not retry.alerted and (alert_now or retry.attempts >= ALERT_AFTER_ATTEMPTS):
                fields: dict[str, object] = {
                    "tx_id": tx_id,
                    "problem": problem,
                    "attempts": retry.attempts,
                    **detail,
                }
                record = append_alert(self._journal, alert, fields)
                self._store.retry_alerted(kind, key)
        if record is not None:
            announce(self._events, record)
        return retry

    def due(self, kind: RetryKind, key: str) -> bool:
        """Whether the next try is due (always, for work that never failed)."""
        retry = self._store.retry_of(kind, key)
        return retry is None or retry.next_try <= iso(self._clock.now())


def error_name(exc: BaseException) -> str:
    """How a failed attempt's error is named in its retry's problem: the class, and the
    platform's code when it has one (never its message, which can carry an account)."""
    code = getattr(exc, "code", None)
    return f"{type(exc).__name__} {code}" if code else type(exc).__name__
