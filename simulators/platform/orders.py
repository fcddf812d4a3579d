"""The simulated platform's payment orders: residents paying by phone through the aggregated
payment interface, with the provider's behaviour, refunds and the notifications it pushes.

Its own tables in the simulator's SQLite file (WAL, synchronous=FULL), apart from the float
ledger: a paid order does not touch the station's float. Every request is ONE write
transaction (BEGIN IMMEDIATE). Time is the caller's (the simulator's clock): each
transaction first carries out what the provider had scheduled by then (a resident paying
late, confirming or cancelling on the phone, a slow refund finishing, an order expiring),
in time order, so the simulator needs no timers and a test moves the platform's clock
instead of waiting.

The rules that keep money safe (docs/platform-api.md, "Payment orders"):
- an order is paid at most once, whichever way (its dynamic code or a payment code);
- a payment code is charged at most once, anywhere, even if the charge was declined
  (wallets refresh a code after every use);
- a close the platform acknowledged is final: a resident's money that still arrives for a
  closed order (it was on its way at the provider) is refunded automatically, and the
  order stays closed ("paid_after_close" and "late_payment_refunded" notifications);
- a close that finds the money already taken answers the order as paid;
- a refund is in full, to the original method, once per order (a failed one may be retried).

Payment codes are bearer credentials: the book keeps only their SHA-256 digests and masked
forms. It never speaks HTTP and never checks signatures: the server does both before.
"""

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from kiosk.clock import iso
from kiosk.payment_codes import PaymentCodeInvalid, PaymentScheme, mask_code, scheme_of
from kiosk.platform.models import (
    ANY_METHOD,
    MONEY_TAKEN_STATES,
    OPEN_ORDER_STATES,
    ORDER_LIFETIME,
    CloseReason,
    Order,
    OrderState,
    PlatformRefused,
    Refund,
    RefundState,
    Refusal,
)
from kiosk.storage import open_database, write_transaction
from simulators.platform.provider import (
    Behaviour,
    BehaviourKind,
    ProviderPlan,
    Stage,
    one_per_stage,
    parse_behaviour,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS pay_orders (
    key TEXT PRIMARY KEY,
    station TEXT NOT NULL,
    terminal TEXT NOT NULL,
    -- dynamic: order_create; code: made by order_pay; fenced: closed before any request made it
    origin TEXT NOT NULL CHECK (origin IN ('dynamic', 'code', 'fenced')),
    amount_fen INTEGER CHECK ((origin = 'fenced') = (amount_fen IS NULL) AND amount_fen > 0),
    service TEXT,
    description TEXT,
    method TEXT,                       -- wechat, alipay, unionpay or any; NULL when fenced
    state TEXT NOT NULL CHECK (state IN ('created', 'pending', 'paid', 'closed', 'refunding',
                                         'refunded', 'refund_failed')),
    code_url TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT,                   -- UTC, so that text order is time order
    pending_code TEXT,                 -- digest of the payment code awaiting confirmation
    pay_scheme TEXT,                   -- the wallet a scheduled or captured payment comes from
    captured INTEGER NOT NULL DEFAULT 0,  -- the provider took the money; the platform may not know
    paid_with TEXT,
    provider_ref TEXT UNIQUE,
    paid_at TEXT,
    closed_reason TEXT,
    closed_at TEXT,
    close_note TEXT,
    behaviour TEXT NOT NULL DEFAULT '',   -- this order's provider behaviours, specs by spaces
    due_at TEXT,                       -- UTC: when the provider's next event happens
    due_action TEXT CHECK (due_action IN ('pay', 'known', 'cancel')),
    late_paid_at TEXT,                 -- money that arrived after the close (refunded)
    CHECK ((state IN ('paid', 'refunding', 'refunded', 'refund_failed'))
           = (paid_with IS NOT NULL)),
    CHECK ((state = 'closed') = (closed_reason IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS pay_orders_due ON pay_orders(due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS pay_orders_open ON pay_orders(expires_at)
    WHERE state IN ('created', 'pending');
CREATE TABLE IF NOT EXISTS pay_attempts (
    order_key TEXT NOT NULL,
    code_digest TEXT NOT NULL,
    code_masked TEXT NOT NULL,
    scheme TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('charged', 'pending', 'declined', 'invalid')),
    refusal TEXT,
    at TEXT NOT NULL,
    PRIMARY KEY (order_key, code_digest)
);
-- A payment code is used once, anywhere, even when the charge was declined.
CREATE TABLE IF NOT EXISTS pay_used_codes (
    code_digest TEXT PRIMARY KEY,
    order_key TEXT NOT NULL,
    used_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pay_refunds (
    key TEXT PRIMARY KEY,
    order_key TEXT NOT NULL,
    station TEXT NOT NULL,
    terminal TEXT NOT NULL,
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    method TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('processing', 'succeeded', 'failed')),
    failure TEXT,
    reason TEXT NOT NULL,
    automatic INTEGER NOT NULL DEFAULT 0,  -- made by the platform (a payment after the close)
    created_at TEXT NOT NULL,
    due_at TEXT,                       -- UTC: when a processing refund finishes
    finished_at TEXT,
    CHECK ((state = 'failed') = (failure IS NOT NULL))
);
-- One refund of an order under way or done; a failed one may be followed by another.
CREATE UNIQUE INDEX IF NOT EXISTS pay_refunds_once ON pay_refunds(order_key)
    WHERE state IN ('processing', 'succeeded');
CREATE INDEX IF NOT EXISTS pay_refunds_due ON pay_refunds(due_at) WHERE state = 'processing';
-- What the real platform would push to the operator's systems; the terminal never reads it.
CREATE TABLE IF NOT EXISTS pay_notifications (
    seq INTEGER PRIMARY KEY,
    order_key TEXT NOT NULL,
    event TEXT NOT NULL,
    state TEXT NOT NULL,
    amount_fen INTEGER,
    copy INTEGER NOT NULL,             -- 1, or 2... for a duplicate
    occurred_at TEXT NOT NULL,         -- UTC
    deliver_at TEXT NOT NULL           -- UTC: later than occurred_at for a late notification
);
-- Behaviours set for an order key before any request made the order.
CREATE TABLE IF NOT EXISTS pay_preset_behaviours (
    key TEXT PRIMARY KEY,
    behaviour TEXT NOT NULL
);
"""

CODE_URL_BASE = "https://pay.sim.invalid/q/"  # .invalid: a name that never resolves (RFC 2606)
# The wallet a dynamic code of method "any" is paid with when nobody says which.
DEFAULT_WALLET = PaymentScheme.WECHAT
REFUND_FAILURE = "the provider could not return the money to the resident's account (simulated)"


class NotificationEvent(StrEnum):
    PAID = "paid"
    CLOSED = "closed"
    REFUNDED = "refunded"
    REFUND_FAILED = "refund_failed"
    PAID_AFTER_CLOSE = "paid_after_close"  # the resident's money arrived after the close
    LATE_PAYMENT_REFUNDED = "late_payment_refunded"  # ... and went back automatically


class _Due(StrEnum):
    PAY = "pay"  # the resident's payment arrives
    KNOWN = "known"  # the platform learns of a payment the provider already took
    CANCEL = "cancel"  # the resident cancels on the phone


class OrderBook:
    def __init__(
        self,
        path: Path,
        provider: ProviderPlan | None = None,
        *,
        lifetime: timedelta = ORDER_LIFETIME,
    ) -> None:
        if lifetime <= timedelta(0):
            raise ValueError(f"an order lifetime must be positive, not {lifetime}")
        self.path = path
        self.provider = provider or ProviderPlan()
        self.lifetime = lifetime
        with self._connection() as conn:
            conn.executescript(SCHEMA)
            columns = {str(r[1]) for r in conn.execute("PRAGMA table_info(pay_orders)")}
            if "used_by" not in columns:
                # The posting a paid order funds (docs/platform-api.md, "post"); added later.
                conn.execute("ALTER TABLE pay_orders ADD COLUMN used_by TEXT")

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with closing(open_database(self.path)) as conn:
            yield conn

    @contextmanager
    def _transaction(self, now: datetime | None) -> Iterator[sqlite3.Connection]:
        """One write transaction; given the time, it first carries out what is due by then."""
        with self._connection() as conn, write_transaction(conn):
            if now is not None:
                _advance(conn, now)
            yield conn

    # ------------------------------------------------------------ the terminal's requests

    def create(
        self,
        station: str,
        terminal: str,
        key: str,
        *,
        amount_fen: int,
        service: str,
        description: str,
        method: str,
        now: datetime,
    ) -> Order:
        """Open an order for its dynamic code; idempotent by key."""
        details = (station, terminal, "dynamic", amount_fen, service, description, method)
        with self._transaction(now) as conn:
            row = _order_row(conn, key)
            if row is not None:
                _check_not_fenced(row, station)
                if _details(row) != details:
                    raise _key_reused("order", key)
                return _order(row)
            token = hashlib.sha256(f"{station}/{key}".encode()).hexdigest()[:24]
            _insert_order(
                conn,
                key,
                details,
                code_url=CODE_URL_BASE + token,
                expires_at=now + self.lifetime,
                behaviour=self._behaviour_for(conn, key),
                now=now,
            )
            row = _order_row(conn, key)
            assert row is not None
            behaviour = _pay_behaviour(row)
            wallet = DEFAULT_WALLET if method == ANY_METHOD else PaymentScheme(method)
            if behaviour is not None:
                _schedule(conn, row, behaviour, wallet, now)
            return _order(_settle(conn, key, now))

    def pay(
        self,
        station: str,
        terminal: str,
        key: str,
        *,
        auth_code: str,
        amount_fen: int,
        service: str,
        description: str,
        now: datetime,
    ) -> Order:
        """Charge a resident's payment code for the order, making it if needed."""
        digest = hashlib.sha256(auth_code.encode()).hexdigest()
        refusal: PlatformRefused | None = None
        with self._transaction(now) as conn:
            row = _order_row(conn, key)
            if row is not None:
                _check_not_fenced(row, station)
                mine = (station, terminal, amount_fen, service, description)
                if _details(row)[:2] + _details(row)[3:6] != mine:
                    raise _key_reused("order", key)
                attempt = conn.execute(
                    "SELECT * FROM pay_attempts WHERE order_key = ? AND code_digest = ?",
                    (key, digest),
                ).fetchone()
                if attempt is not None:  # this very request again: its first answer
                    if attempt["refusal"] is not None:
                        raise _refusal(attempt["refusal"], auth_code)
                    return _order(row)
            try:
                scheme = scheme_of(auth_code)
            except PaymentCodeInvalid as exc:
                # A string that is no payment code can never have been charged, anywhere.
                raise PlatformRefused(Refusal.AUTH_CODE_INVALID, str(exc)) from None
            if row is None:
                details = (station, terminal, "code", amount_fen, service, description, scheme)
                _insert_order(
                    conn,
                    key,
                    details,
                    code_url=None,
                    expires_at=now + self.lifetime,
                    behaviour=self._behaviour_for(conn, key),
                    now=now,
                )
            row = _settle(conn, key, now)
            if row["captured"]:
                # The provider already holds a payment for this order (its dynamic code, the
                # platform not told yet): it refuses a second one and so the platform learns.
                _mark_paid(conn, key, PaymentScheme(row["pay_scheme"]), now)
                return _order(_settled_row(conn, key))
            state = OrderState(row["state"])
            if state is OrderState.CLOSED:
                raise _refusal(Refusal.ORDER_CLOSED, auth_code)
            if state in MONEY_TAKEN_STATES:
                return _order(row)  # paid already (its dynamic code, or another code)
            if state is OrderState.PENDING:
                raise _refusal(Refusal.ORDER_PENDING, auth_code)
            if row["method"] not in (ANY_METHOD, scheme):
                raise _refusal(Refusal.METHOD_MISMATCH, auth_code, f"{scheme}, not {row['method']}")
            used = conn.execute(
                "SELECT 1 FROM pay_used_codes WHERE code_digest = ?", (digest,)
            ).fetchone()
            behaviour = _pay_behaviour(row)
            if used is not None:
                refusal = _refusal(Refusal.AUTH_CODE_INVALID, auth_code)
            elif behaviour is not None and behaviour.kind is BehaviourKind.DECLINE:
                refusal = _refusal(behaviour.code, auth_code)
            conn.execute(
                "INSERT OR IGNORE INTO pay_used_codes VALUES (?, ?, ?)", (digest, key, iso(now))
            )
            if refusal is not None:
                # Recorded, so that the same request again gets the same refusal.
                outcome = "invalid" if refusal.code == Refusal.AUTH_CODE_INVALID else "declined"
                _attempt(conn, key, digest, auth_code, scheme, outcome, refusal.code, now)
            elif behaviour is None or behaviour.kind is BehaviourKind.PAY_AT_ONCE:
                _attempt(conn, key, digest, auth_code, scheme, "charged", None, now)
                _mark_paid(conn, key, scheme, now)
            else:
                _attempt(conn, key, digest, auth_code, scheme, "pending", None, now)
                conn.execute(
                    "UPDATE pay_orders SET state = 'pending', pending_code = ? WHERE key = ?",
                    (digest, key),
                )
                _schedule(conn, _settled_row(conn, key), behaviour, scheme, now)
            if refusal is None:
                return _order(_settle(conn, key, now))
        raise refusal  # after the commit: the attempt is recorded with its refusal

    def status(self, station: str, key: str, now: datetime) -> Order:
        with self._transaction(now) as conn:
            row = _order_row(conn, key)
            if row is None or row["station"] != station:
                return Order(key, OrderState.NOT_FOUND, None, None, None)
            return _order(row)

    def close(self, station: str, terminal: str, key: str, note: str, now: datetime) -> Order:
        """Close an open order; one the money was taken for answers as paid; an unknown key is
        fenced (closed before any request made it)."""
        with self._transaction(now) as conn:
            row = _order_row(conn, key)
            if row is None:
                conn.execute(
                    "INSERT INTO pay_orders (key, station, terminal, origin, state, created_at, "
                    "closed_reason, closed_at, close_note) "
                    "VALUES (?, ?, ?, 'fenced', 'closed', ?, 'terminal', ?, ?)",
                    (key, station, terminal, iso(now), iso(now), note),
                )
                return _order(_settled_row(conn, key))
            if row["station"] != station:
                raise _key_reused("order", key)
            if OrderState(row["state"]) in OPEN_ORDER_STATES:
                if row["captured"]:
                    # The race: the resident paid just before the close arrived.
                    _mark_paid(conn, key, PaymentScheme(row["pay_scheme"]), now)
                else:
                    _close(conn, key, CloseReason.TERMINAL, now, note)
            return _order(_settled_row(conn, key))

    def refund(
        self,
        station: str,
        terminal: str,
        key: str,
        *,
        order_key: str,
        amount_fen: int,
        reason: str,
        now: datetime,
    ) -> Refund:
        """Refund a paid order in full to its original method; idempotent by refund key."""
        with self._transaction(now) as conn:
            existing = _refund_row(conn, key)
            if existing is not None:
                same = (existing["order_key"], existing["amount_fen"], existing["station"])
                if same != (order_key, amount_fen, station):
                    raise _key_reused("refund", key)
                return _refund(existing)
            row = _order_row(conn, order_key)
            if row is None or row["station"] != station or row["origin"] == "fenced":
                raise PlatformRefused(
                    Refusal.ORDER_NOT_FOUND,
                    f"no payment order {order_key!r} of station {station} is known",
                )
            state = OrderState(row["state"])
            if state not in MONEY_TAKEN_STATES:
                raise PlatformRefused(
                    Refusal.ORDER_NOT_PAID,
                    f"order {order_key} is {state}: nothing was paid, so nothing is refunded",
                )
            if row["amount_fen"] != amount_fen:
                raise PlatformRefused(
                    Refusal.REFUND_AMOUNT_MISMATCH,
                    f"order {order_key} was paid {row['amount_fen']} fen; a refund is of the "
                    f"whole amount, not {amount_fen} fen",
                )
            if row["used_by"] is not None:
                raise PlatformRefused(
                    Refusal.ORDER_USED,
                    f"order {order_key} funds posting {row['used_by']}: reverse it first",
                )
            if state in (OrderState.REFUNDING, OrderState.REFUNDED):
                raise PlatformRefused(
                    Refusal.ORDER_ALREADY_REFUNDED,
                    f"order {order_key} is {state} under another refund key",
                )
            behaviour = _behaviour_of(row, Stage.REFUND)
            failed_before = conn.execute(
                "SELECT COUNT(*) FROM pay_refunds WHERE order_key = ? AND state = 'failed'",
                (order_key,),
            ).fetchone()[0]
            if behaviour is not None and behaviour.kind is BehaviourKind.REFUND_FAIL:
                fails = behaviour.times is None or failed_before < behaviour.times
            else:
                fails = False
            if fails:
                refund_state, failure, due = RefundState.FAILED, REFUND_FAILURE, None
            elif behaviour is not None and behaviour.kind is BehaviourKind.REFUND_AFTER:
                due = now + timedelta(seconds=behaviour.seconds)
                refund_state, failure = RefundState.PROCESSING, None
            else:
                refund_state, failure, due = RefundState.SUCCEEDED, None, None
            conn.execute(
                "INSERT INTO pay_refunds (key, order_key, station, terminal, amount_fen, method, "
                "state, failure, reason, created_at, due_at, finished_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    order_key,
                    station,
                    terminal,
                    amount_fen,
                    row["paid_with"],
                    str(refund_state),
                    failure,
                    reason,
                    iso(now),
                    None if due is None else _utc(due),
                    None if refund_state is RefundState.PROCESSING else iso(now),
                ),
            )
            order_state = {
                RefundState.FAILED: OrderState.REFUND_FAILED,
                RefundState.PROCESSING: OrderState.REFUNDING,
                RefundState.SUCCEEDED: OrderState.REFUNDED,
            }[refund_state]
            conn.execute(
                "UPDATE pay_orders SET state = ? WHERE key = ?", (str(order_state), order_key)
            )
            if refund_state is RefundState.SUCCEEDED:
                _notify(conn, order_key, NotificationEvent.REFUNDED, now)
            elif refund_state is RefundState.FAILED:
                _notify(conn, order_key, NotificationEvent.REFUND_FAILED, now)
            refund_row = _refund_row(conn, key)
            assert refund_row is not None
            return _refund(refund_row)

    def refund_status(self, station: str, key: str, now: datetime) -> Refund:
        with self._transaction(now) as conn:
            row = _refund_row(conn, key)
        if row is None or row["station"] != station or row["automatic"]:
            raise PlatformRefused(Refusal.REFUND_NOT_FOUND, f"no refund with key {key!r} is known")
        return _refund(row)

    # ------------------------------------------------------------ the resident and the tests

    def resident_pays(self, key: str, wallet: PaymentScheme | None, now: datetime) -> Order:
        """The resident scans the order's dynamic code and pays (with wallet, if given)."""
        with self._transaction(now) as conn:
            row = _control_row(conn, key)
            state = OrderState(row["state"])
            if state is OrderState.CLOSED:
                raise PlatformRefused(
                    Refusal.ORDER_CLOSED, f"order {key} is closed: the wallet refuses to pay it"
                )
            if state is OrderState.CREATED:
                method = row["method"]
                chosen = wallet or (DEFAULT_WALLET if method == ANY_METHOD else method)
                if method not in (ANY_METHOD, chosen):
                    raise PlatformRefused(
                        Refusal.METHOD_MISMATCH, f"order {key} is for {method}, not {chosen}"
                    )
                _mark_paid(conn, key, PaymentScheme(chosen), now)
            elif state is OrderState.PENDING:
                raise PlatformRefused(
                    Refusal.ORDER_PENDING, f"order {key} waits for a payment code's confirmation"
                )
            return _order(_settled_row(conn, key))

    def resident_confirms(self, key: str, now: datetime) -> Order:
        """The resident confirms a pending payment-code payment on the phone."""
        with self._transaction(now) as conn:
            row = _control_row(conn, key)
            if row["state"] != OrderState.PENDING:
                raise PlatformRefused(
                    Refusal.ORDER_NOT_PAID, f"order {key} is {row['state']}, not pending"
                )
            _mark_paid(conn, key, PaymentScheme(row["pay_scheme"]), now)
            return _order(_settled_row(conn, key))

    def resident_cancels(self, key: str, now: datetime) -> Order:
        """The resident cancels the payment on the phone: an open order closes."""
        with self._transaction(now) as conn:
            row = _control_row(conn, key)
            if OrderState(row["state"]) in OPEN_ORDER_STATES and not row["captured"]:
                _close(conn, key, CloseReason.RESIDENT, now, "cancelled on the phone")
            return _order(_settled_row(conn, key))

    def set_behaviour(self, key: str, specs: list[str], now: datetime) -> list[str]:
        """The provider behaviours of one order: from now if it exists, else when it is made.

        On an open order nobody has presented a code for, a pay behaviour plans the
        resident's payment of its dynamic code from now on.
        """
        behaviours = one_per_stage([parse_behaviour(spec) for spec in specs])
        text = " ".join(b.spec(with_count=False) for b in behaviours)
        with self._transaction(now) as conn:
            row = _order_row(conn, key)
            if row is not None:
                conn.execute("UPDATE pay_orders SET behaviour = ? WHERE key = ?", (text, key))
                pay = next((b for b in behaviours if b.stage is Stage.PAY), None)
                if pay is not None and row["state"] == OrderState.CREATED:
                    method = row["method"]
                    wallet = DEFAULT_WALLET if method == ANY_METHOD else PaymentScheme(method)
                    _schedule(conn, row, pay, wallet, now)
                    _settle(conn, key, now)
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO pay_preset_behaviours VALUES (?, ?)", (key, text)
                )
        return text.split()

    def notifications(self, now: datetime) -> list[dict[str, Any]]:
        """The notifications pushed by now, in the order they went out (duplicates included)."""
        with self._transaction(now) as conn:
            return _rows(
                conn,
                "SELECT * FROM pay_notifications WHERE deliver_at <= ? ORDER BY deliver_at, seq",
                (_utc(now),),
            )

    def dump(self, now: datetime | None = None) -> dict[str, Any]:
        """Orders, attempts (codes masked), refunds and every notification, pushed or not."""
        with self._transaction(now) as conn:
            return {
                "orders": _rows(conn, "SELECT * FROM pay_orders ORDER BY created_at, key"),
                "attempts": _rows(
                    conn,
                    "SELECT order_key, code_masked, scheme, outcome, refusal, at "
                    "FROM pay_attempts ORDER BY at, order_key",
                ),
                "refunds": _rows(conn, "SELECT * FROM pay_refunds ORDER BY created_at, key"),
                "notifications": _rows(conn, "SELECT * FROM pay_notifications ORDER BY seq"),
            }

    def _behaviour_for(self, conn: sqlite3.Connection, key: str) -> str:
        preset = conn.execute(
            "SELECT behaviour FROM pay_preset_behaviours WHERE key = ?", (key,)
        ).fetchone()
        if preset is not None:
            conn.execute("DELETE FROM pay_preset_behaviours WHERE key = ?", (key,))
            return str(preset["behaviour"])
        return " ".join(b.spec(with_count=False) for b in self.provider.draw())


# ---------------------------------------------------------------- helpers on one connection


def use_order(
    conn: sqlite3.Connection,
    station: str,
    key: str,
    total_fen: int,
    payment_key: str,
    now: datetime,
) -> None:
    """Let payment_key's posting be funded by order key, in the ledger's write transaction:
    a paid order of this station for exactly total_fen that no other posting uses."""
    _advance(conn, now)
    row = _order_row(conn, key)
    if row is None or row["station"] != station or row["origin"] == "fenced":
        raise PlatformRefused(
            Refusal.ORDER_NOT_FOUND, f"no payment order {key!r} of station {station} is known"
        )
    if OrderState(row["state"]) is not OrderState.PAID:
        raise PlatformRefused(
            Refusal.ORDER_NOT_PAID, f"order {key} is {row['state']}: it cannot fund a posting"
        )
    if row["amount_fen"] != total_fen:
        raise PlatformRefused(
            Refusal.ORDER_AMOUNT_MISMATCH,
            f"order {key} was paid {row['amount_fen']} fen, not the {total_fen} fen of amount "
            "and fee",
        )
    if row["used_by"] is not None and row["used_by"] != payment_key:
        raise PlatformRefused(
            Refusal.ORDER_USED, f"order {key} already funds posting {row['used_by']}"
        )
    conn.execute("UPDATE pay_orders SET used_by = ? WHERE key = ?", (payment_key, key))


def release_order(conn: sqlite3.Connection, key: str, payment_key: str) -> None:
    """The posting payment_key was reversed: its order no longer funds anything."""
    conn.execute(
        "UPDATE pay_orders SET used_by = NULL WHERE key = ? AND used_by = ?", (key, payment_key)
    )


def _utc(moment: datetime) -> str:
    return iso(moment.astimezone(UTC))


def _rows(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(sql, args)]


def _order_row(conn: sqlite3.Connection, key: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM pay_orders WHERE key = ?", (key,)
    ).fetchone()
    return row


def _settled_row(conn: sqlite3.Connection, key: str) -> sqlite3.Row:
    row = _order_row(conn, key)
    assert row is not None  # read back inside the transaction that wrote it
    return row


def _control_row(conn: sqlite3.Connection, key: str) -> sqlite3.Row:
    row = _order_row(conn, key)
    if row is None or row["origin"] == "fenced":
        raise PlatformRefused(Refusal.ORDER_NOT_FOUND, f"no payment order {key!r} is known")
    return row


def _refund_row(conn: sqlite3.Connection, key: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM pay_refunds WHERE key = ?", (key,)
    ).fetchone()
    return row


def _details(row: sqlite3.Row) -> tuple[Any, ...]:
    return (
        row["station"],
        row["terminal"],
        row["origin"],
        row["amount_fen"],
        row["service"],
        row["description"],
        row["method"],
    )


def _check_not_fenced(row: sqlite3.Row, station: str) -> None:
    if row["station"] != station:
        raise _key_reused("order", row["key"])
    if row["origin"] == "fenced":
        raise PlatformRefused(
            Refusal.ORDER_CLOSED,
            f"order {row['key']} was closed before it was made: it can never be paid",
        )


def _key_reused(what: str, key: str) -> PlatformRefused:
    return PlatformRefused(
        Refusal.KEY_REUSED,
        f"{what} key {key!r} was already used for a different request: use a new key",
    )


def _refusal(code: str, auth_code: str, detail: str = "") -> PlatformRefused:
    messages: dict[str, str] = {
        Refusal.ORDER_CLOSED: "the order is closed: it can never be paid; start a new one",
        Refusal.ORDER_PENDING: "another payment code of this order waits for the resident's "
        "confirmation: ask the order's status",
        Refusal.METHOD_MISMATCH: f"the code is of another wallet ({detail})",
        Refusal.PAYMENT_DECLINED: "the wallet declined the payment (balance or risk control)",
        Refusal.AUTH_CODE_INVALID: "the payment code has expired or was already used: "
        "the resident must refresh it",
    }
    return PlatformRefused(code, f"payment code {mask_code(auth_code)}: {messages[code]}")


def _insert_order(
    conn: sqlite3.Connection,
    key: str,
    details: tuple[Any, ...],
    *,
    code_url: str | None,
    expires_at: datetime,
    behaviour: str,
    now: datetime,
) -> None:
    conn.execute(
        "INSERT INTO pay_orders (key, station, terminal, origin, amount_fen, service, "
        "description, method, state, code_url, created_at, expires_at, behaviour) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'created', ?, ?, ?, ?)",
        (key, *details, code_url, iso(now), _utc(expires_at), behaviour),
    )


def _attempt(
    conn: sqlite3.Connection,
    key: str,
    digest: str,
    auth_code: str,
    scheme: PaymentScheme,
    outcome: str,
    refusal: str | None,
    now: datetime,
) -> None:
    conn.execute(
        "INSERT INTO pay_attempts VALUES (?, ?, ?, ?, ?, ?, ?)",
        (key, digest, mask_code(auth_code), str(scheme), outcome, refusal, iso(now)),
    )


def _behaviours(row: sqlite3.Row) -> list[Behaviour]:
    return [parse_behaviour(spec) for spec in str(row["behaviour"]).split()]


def _behaviour_of(row: sqlite3.Row, stage: Stage) -> Behaviour | None:
    return next((b for b in _behaviours(row) if b.stage is stage), None)


def _pay_behaviour(row: sqlite3.Row) -> Behaviour | None:
    return _behaviour_of(row, Stage.PAY)


def _schedule(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    behaviour: Behaviour,
    wallet: PaymentScheme,
    now: datetime,
) -> None:
    """Plan what the provider does for an order paid with wallet, by its pay behaviour."""
    later = _utc(now + timedelta(seconds=behaviour.seconds))
    action: _Due | None = {
        BehaviourKind.PAY_AT_ONCE: _Due.PAY,
        BehaviourKind.PAY_AFTER: _Due.PAY,
        BehaviourKind.PROVIDER_TIMEOUT: _Due.KNOWN,
        BehaviourKind.CANCEL_AFTER: _Due.CANCEL,
    }.get(behaviour.kind)
    if action is None:
        return  # decline: decided when a code is presented
    captured = int(behaviour.kind is BehaviourKind.PROVIDER_TIMEOUT)
    at = _utc(now) if behaviour.kind is BehaviourKind.PAY_AT_ONCE else later
    conn.execute(
        "UPDATE pay_orders SET due_at = ?, due_action = ?, pay_scheme = ?, captured = ? "
        "WHERE key = ?",
        (at, str(action), str(wallet), captured, row["key"]),
    )


def _mark_paid(conn: sqlite3.Connection, key: str, wallet: PaymentScheme, now: datetime) -> None:
    reference = "SIMPAY" + hashlib.sha256(key.encode()).hexdigest()[:20].upper()
    conn.execute(
        "UPDATE pay_orders SET state = 'paid', paid_with = ?, provider_ref = ?, paid_at = ?, "
        "pending_code = NULL, captured = 0, due_at = NULL, due_action = NULL WHERE key = ?",
        (str(wallet), reference, iso(now), key),
    )
    _notify(conn, key, NotificationEvent.PAID, now)


def _close(
    conn: sqlite3.Connection, key: str, reason: CloseReason, now: datetime, note: str
) -> None:
    # A payment the resident still sends (pay_after) stays due: it arrives after the close
    # and is refunded automatically. Anything else the provider planned is off.
    conn.execute(
        "UPDATE pay_orders SET state = 'closed', closed_reason = ?, closed_at = ?, "
        "close_note = ?, pending_code = NULL, "
        "due_at = CASE WHEN due_action = 'pay' THEN due_at END, "
        "due_action = CASE WHEN due_action = 'pay' THEN due_action END WHERE key = ?",
        (str(reason), iso(now), note, key),
    )
    _notify(conn, key, NotificationEvent.CLOSED, now)


def _late_payment(conn: sqlite3.Connection, row: sqlite3.Row, now: datetime) -> None:
    """The resident's money arrived for a closed order: the platform sends it straight back."""
    key = row["key"]
    conn.execute(
        "UPDATE pay_orders SET late_paid_at = ?, due_at = NULL, due_action = NULL WHERE key = ?",
        (iso(now), key),
    )
    conn.execute(
        "INSERT INTO pay_refunds (key, order_key, station, terminal, amount_fen, method, state, "
        "reason, automatic, created_at, finished_at) "
        "VALUES (?, ?, ?, ?, ?, ?, 'succeeded', ?, 1, ?, ?)",
        (
            f"{key}/late-payment",
            key,
            row["station"],
            row["terminal"],
            row["amount_fen"],
            row["pay_scheme"],
            "paid after the order was closed",
            iso(now),
            iso(now),
        ),
    )
    _notify(conn, key, NotificationEvent.PAID_AFTER_CLOSE, now)
    _notify(conn, key, NotificationEvent.LATE_PAYMENT_REFUNDED, now)


def _settle(conn: sqlite3.Connection, key: str, now: datetime) -> sqlite3.Row:
    """Carry out, in time order, what the provider had planned for the order by now."""
    while True:
        row = _settled_row(conn, key)
        events: list[tuple[str, str]] = []
        if row["due_at"] is not None and row["due_at"] <= _utc(now):
            events.append((row["due_at"], "due"))
        open_now = OrderState(row["state"]) in OPEN_ORDER_STATES
        if open_now and row["expires_at"] <= _utc(now):
            events.append((row["expires_at"], "expire"))
        if not events:
            return row
        at_text, event = min(events)
        at = datetime.fromisoformat(at_text)
        if event == "expire":
            if row["captured"]:
                _mark_paid(conn, key, PaymentScheme(row["pay_scheme"]), at)
            else:
                _close(conn, key, CloseReason.EXPIRED, at, "nobody paid in time")
            continue
        action = _Due(row["due_action"])
        if action is _Due.PAY and not open_now:
            _late_payment(conn, row, at)
        elif action in (_Due.PAY, _Due.KNOWN) and open_now:
            _mark_paid(conn, key, PaymentScheme(row["pay_scheme"]), at)
        elif action is _Due.CANCEL and open_now:
            _close(conn, key, CloseReason.RESIDENT, at, "cancelled on the phone")
        else:
            conn.execute(
                "UPDATE pay_orders SET due_at = NULL, due_action = NULL WHERE key = ?", (key,)
            )


def _advance(conn: sqlite3.Connection, now: datetime) -> None:
    """Everything due by now: the provider's planned events, expiries, slow refunds."""
    stamp = _utc(now)
    keys = [
        row["key"]
        for row in conn.execute(
            "SELECT key FROM pay_orders WHERE due_at <= ? "
            "OR (state IN ('created', 'pending') AND expires_at <= ?)",
            (stamp, stamp),
        ).fetchall()
    ]
    for key in keys:
        _settle(conn, key, now)
    for refund in conn.execute(
        "SELECT * FROM pay_refunds WHERE state = 'processing' AND due_at <= ? ORDER BY due_at",
        (stamp,),
    ).fetchall():
        at = datetime.fromisoformat(refund["due_at"])
        conn.execute(
            "UPDATE pay_refunds SET state = 'succeeded', finished_at = ? WHERE key = ?",
            (iso(at), refund["key"]),
        )
        conn.execute(
            "UPDATE pay_orders SET state = 'refunded' WHERE key = ?", (refund["order_key"],)
        )
        _notify(conn, refund["order_key"], NotificationEvent.REFUNDED, at)


def _notify(conn: sqlite3.Connection, key: str, event: NotificationEvent, at: datetime) -> None:
    """Record what the platform pushes for this event, as the order's behaviour says."""
    row = _settled_row(conn, key)
    behaviour = _behaviour_of(row, Stage.NOTIFY)
    copies, delay = 1, 0
    if behaviour is not None and behaviour.kind is BehaviourKind.NOTIFY_REPEAT:
        copies = behaviour.repeat
    if behaviour is not None and behaviour.kind is BehaviourKind.NOTIFY_LATE:
        delay = behaviour.seconds
    for copy in range(1, copies + 1):
        conn.execute(
            "INSERT INTO pay_notifications (order_key, event, state, amount_fen, copy, "
            "occurred_at, deliver_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                str(event),
                row["state"],
                row["amount_fen"],
                copy,
                _utc(at),
                _utc(at + timedelta(seconds=delay)),
            ),
        )


def _order(row: sqlite3.Row) -> Order:
    known = row["origin"] != "fenced"
    method = row["method"]
    return Order(
        key=row["key"],
        state=OrderState(row["state"]),
        amount_fen=row["amount_fen"],
        method=None if not known or method == ANY_METHOD else PaymentScheme(method),
        expires_at=datetime.fromisoformat(row["expires_at"]) if known else None,
        code_url=row["code_url"],
        paid_with=None if row["paid_with"] is None else PaymentScheme(row["paid_with"]),
        provider_ref=row["provider_ref"],
        closed_reason=None if row["closed_reason"] is None else CloseReason(row["closed_reason"]),
    )


def _refund(row: sqlite3.Row) -> Refund:
    return Refund(
        key=row["key"],
        order_key=row["order_key"],
        state=RefundState(row["state"]),
        amount_fen=row["amount_fen"],
        method=PaymentScheme(row["method"]),
        failure=row["failure"],
    )
