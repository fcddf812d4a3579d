"""The station operator's session at the kiosk: operator card and PIN in, idle timeout out.

Like the technician's card, the operator's card holds a PIN the card itself checks (three
tries, then it blocks: drivers/smartcard/operator_app.py). A verified card opens a session
for its operator id; every login, logout, expiry and refused PIN is a signed
operator_session record naming the operator (a refused PIN is a security event). A session
left alone for the configured time ends by itself: an unattended kiosk must not stay open
to whoever walks up. Sessions live in memory: a restart logs the operator out.
"""

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from kiosk.clock import Clock
from kiosk.devices import CardError, CardReader
from kiosk.errors import TranslatedError
from kiosk.events import EventBus
from kiosk.journal import Journal
from kiosk.journal.record_types import RecordType
from kiosk.operator.roles import Actor, Role
from kiosk.storage import write_transaction

# Operator-facing message ids (Chinese in kiosk/locale/zh_CN/LC_MESSAGES/operator.po).
NOT_LOGGED_IN = "No operator is logged in: insert the operator card and type its PIN."
NO_OPERATOR_CARDS = "This card reader cannot read operator cards."
MESSAGE_IDS = (NOT_LOGGED_IN, NO_OPERATOR_CARDS)


class SessionAction(StrEnum):
    LOGIN = "login"
    LOGOUT = "logout"
    EXPIRED = "expired"  # left alone longer than the session timeout
    REFUSED = "refused"  # the card refused the PIN, or no operator card was found


class NotLoggedIn(TranslatedError):
    """An operator action without an operator session (or after it timed out)."""


@dataclass
class _Session:
    actor: Actor
    started: datetime
    last_seen: datetime


class OperatorSessions:
    def __init__(
        self,
        conn: sqlite3.Connection,
        journal: Journal,
        cards: CardReader,
        clock: Clock,
        events: EventBus,
        *,
        timeout: timedelta,
    ) -> None:
        self._conn = conn
        self._journal = journal
        self._cards = cards
        self._clock = clock
        self._events = events
        self._timeout = timeout
        self._session: _Session | None = None

    def login(self, pin: str) -> Actor:
        """Verify the operator card in the reader with pin and open a session for it.

        Raises OperatorPinWrong (tries left), OperatorCardBlocked, CardError (no operator
        card, or a reader without the operator application); each is journaled.
        """
        verify = getattr(self._cards, "verify_operator", None)
        if verify is None:
            raise NotLoggedIn(NO_OPERATOR_CARDS)
        try:
            operator_id = str(verify(pin))
        except CardError as exc:
            self._journal_action(
                SessionAction.REFUSED,
                None,
                reason=type(exc).__name__,
                tries_left=getattr(exc, "tries_left", None),
            )
            self._events.publish("operator_refused", reason=type(exc).__name__)
            raise
        if self._session is not None and self._session.actor.id != operator_id:
            self.logout()
        actor = Actor(operator_id, Role.OPERATOR)
        now = self._clock.now()
        self._session = _Session(actor, now, now)
        self._journal_action(SessionAction.LOGIN, actor)
        self._events.publish("operator_login", operator=operator_id)
        return actor

    def logout(self, action: SessionAction = SessionAction.LOGOUT) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        self._journal_action(action, session.actor)
        self._events.publish("operator_logout", operator=session.actor.id, action=str(action))

    def current(self) -> Actor | None:
        """The logged-in operator, or None (a session idle past the timeout ends here)."""
        session = self._session
        if session is None:
            return None
        if self._clock.now() - session.last_seen > self._timeout:
            self.logout(SessionAction.EXPIRED)
            return None
        return session.actor

    def require(self) -> Actor:
        """The logged-in operator, whose session this use keeps alive; else NotLoggedIn."""
        actor = self.current()
        if actor is None or self._session is None:
            raise NotLoggedIn(NOT_LOGGED_IN)
        self._session.last_seen = self._clock.now()
        return actor

    def _journal_action(self, action: SessionAction, actor: Actor | None, **detail: object) -> None:
        fields: dict[str, object] = {"action": str(action)}
        if actor is not None:
            fields.update(by=actor.id, role=str(actor.role))
        fields.update(detail)
        with write_transaction(self._conn):
            self._journal.append(RecordType.OPERATOR_SESSION, fields, sign=True)
