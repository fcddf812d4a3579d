"""Who is at the dashboard, what they may do, and the record of what they did.

Owns the staff identity (the user the authenticating reverse proxy names in a header,
believed only from the configured proxy addresses, with the role the configuration gives
that user), the CSRF tokens of the dashboard's forms, and the rows of `staff_actions`
(migration 3 of backoffice.migrations): every acknowledgement, command and registry change
with who did it. The HTTP layer (backoffice.web)
asks it; it never renders a page.
"""

import ipaddress
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from backoffice.config import AuthConfig
from backoffice.errors import BackofficeError
from backoffice.roles import Action, Role
from backoffice.store import Cursor, Row, Store


class NotSignedIn(BackofficeError):
    """The request does not carry a user the dashboard may believe (HTTP 401 or 403)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class NotAllowed(BackofficeError):
    """The user's role does not allow the action (HTTP 403)."""


@dataclass(frozen=True)
class Staff:
    name: str
    role: Role

    def may(self, needed: Role) -> bool:
        return self.role >= needed

    def require(self, needed: Role, what: str) -> None:
        if not self.may(needed):
            raise NotAllowed(
                f"{what} needs the {needed.name.lower()} role; {self.name} is "
                f"{self.role.name.lower()}: ask an admin"
            )


class Identities:
    """Believes the proxy's user header from trusted addresses only, and gives the role."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._proxies = [ipaddress.ip_network(p, strict=False) for p in config.trusted_proxies]
        self._default = Role.named(config.default_role) if config.default_role else None

    def trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._proxies)

    def identify(self, address: str, user: str | None) -> Staff:
        """The staff member the proxy names (its user header's value), or NotSignedIn."""
        if not self.trusted(address):
            raise NotSignedIn(
                f"requests from {address} are refused: open the dashboard through the "
                "operator's sign-in proxy",
                403,
            )
        name = (user or "").strip()
        if not name:
            raise NotSignedIn(
                f"the sign-in proxy did not name a user ({self.config.user_header}): sign in again",
                401,
            )
        if len(name) > 128 or not name.isprintable():
            raise NotSignedIn("the sign-in proxy sent a user name that is not valid", 403)
        role = self.config.users.get(name, self._default)
        if role is None:
            raise NotSignedIn(
                f"{name} has no role on this dashboard: an admin adds them to [auth.users]", 403
            )
        return Staff(name, role)


class CsrfTokens:
    """A token per user in every form, signed and dated: a page of another site cannot
    make one, so it cannot act in a staff member's name even through the proxy."""

    def __init__(self, config: AuthConfig) -> None:
        if config.csrf_secret_file:
            path = Path(config.csrf_secret_file)
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(secrets.token_urlsafe(32))
                path.chmod(0o600)
            secret = path.read_text().strip()
        else:
            secret = secrets.token_urlsafe(32)
        self._serializer = URLSafeTimedSerializer(secret, salt="backoffice-form")
        self._max_age = config.csrf_max_age_s

    def token(self, staff: Staff) -> str:
        return str(self._serializer.dumps(staff.name))

    def check(self, staff: Staff, token: str) -> None:
        try:
            name = self._serializer.loads(token or "", max_age=self._max_age)
        except SignatureExpired:
            raise NotAllowed("the form is too old: reload the page and send it again") from None
        except BadSignature:
            raise NotAllowed(
                "the form's security token is missing or wrong: reload the page and send it again"
            ) from None
        if name != staff.name:
            raise NotAllowed("the form was made for another user: reload the page")


def record_action(
    cursor: Cursor,
    staff: Staff,
    action: Action,
    now: float,
    *,
    station: str | None = None,
    terminal: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Write who did what, in the transaction of the change itself."""
    cursor.execute(
        "INSERT INTO staff_actions (at, staff, role, action, station, terminal, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            now,
            staff.name,
            staff.role.name.lower(),
            str(action),
            station,
            terminal,
            json.dumps(dict(detail or {}), ensure_ascii=False, sort_keys=True),
        ),
    )


def recent_actions(
    store: Store, *, station: str | None = None, terminal: str | None = None, limit: int = 50
) -> list[Row]:
    sql = "SELECT * FROM staff_actions"
    params: list[Any] = []
    if station is not None and terminal is not None:
        sql += " WHERE station = ? AND terminal = ?"
        params = [station, terminal]
    return store.query(sql + " ORDER BY at DESC, id DESC LIMIT ?", (*params, limit))
