"""The simulated operator's books: station floats, holds, payments, deposits, vouchers,
certificates.

One SQLite file (WAL, synchronous=FULL). Every request is ONE write transaction (BEGIN
IMMEDIATE), so concurrent requests are serialised by SQLite itself and the money invariant
(balance - held >= 0, the credit line is zero) is checked inside the transaction that could
break it. Idempotency keys are unique across the whole platform. Time is the caller's
(the simulator's clock, which may differ from the terminal's): each transaction first
expires the holds and vouchers whose time is up, so expiry needs no timer. The ledger never
speaks HTTP and never checks signatures: the server does both before calling it.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from drivers.smartcard.prepaid_mac import credit_mac
from kiosk.clock import iso
from kiosk.platform.models import (
    HOLD_LIFETIME,
    MIN_DEPOSIT_FEN,
    SLIP_NO_PATTERN,
    CardCredit,
    Deposit,
    FloatState,
    FloatStatement,
    PaymentState,
    PaymentStatus,
    PlatformRefused,
    Posting,
    Refusal,
    Voucher,
    VoucherState,
)
from kiosk.storage import open_database, write_transaction
from simulators.platform import sample_data
from simulators.platform.orders import release_order, use_order

# A new station's float: the credit line is zero (seed 002: 信誉额度必须为零), so nothing can be
# sold until a deposit is confirmed. A larger opening balance models a station whose balance
# was carried over from an earlier system; it is shown as such in every statement.
DEFAULT_OPENING_FLOAT_FEN = 0

SCHEMA = """
CREATE TABLE IF NOT EXISTS stations (
    station TEXT PRIMARY KEY,
    balance_fen INTEGER NOT NULL CHECK (balance_fen >= 0),
    created_at TEXT NOT NULL,
    opening_fen INTEGER NOT NULL DEFAULT 0 CHECK (opening_fen >= 0)
);
CREATE TABLE IF NOT EXISTS terminals (
    station TEXT NOT NULL REFERENCES stations(station),
    terminal TEXT NOT NULL,
    certificate_pem TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    PRIMARY KEY (station, terminal)
);
CREATE TABLE IF NOT EXISTS holds (
    hold_id TEXT PRIMARY KEY,
    station TEXT NOT NULL REFERENCES stations(station),
    terminal TEXT NOT NULL,
    amount_fen INTEGER NOT NULL CHECK (amount_fen >= 0),
    state TEXT NOT NULL CHECK (state IN ('active', 'released', 'consumed', 'expired')),
    payment_key TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    expires_at TEXT NOT NULL           -- UTC, so that text order is time order
);
CREATE INDEX IF NOT EXISTS holds_active ON holds(station) WHERE state = 'active';
CREATE INDEX IF NOT EXISTS holds_expiry ON holds(expires_at) WHERE state = 'active';
CREATE TABLE IF NOT EXISTS payments (
    seq INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    station TEXT NOT NULL REFERENCES stations(station),
    terminal TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('bill', 'card_credit')),
    service TEXT NOT NULL,
    biller TEXT NOT NULL,
    account TEXT NOT NULL,             -- the card number for a card credit
    bill_id TEXT,
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    fee_fen INTEGER NOT NULL CHECK (fee_fen >= 0),
    card_counter INTEGER,              -- the card's purchase counter before the credit
    hold_id TEXT NOT NULL,
    reference TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('posted', 'reversed')),
    posted_at TEXT NOT NULL,
    reversed_at TEXT,
    reverse_reason TEXT
);
-- A bill is paid once; a card counter is credited once (until reversed).
CREATE UNIQUE INDEX IF NOT EXISTS payments_bill_once
    ON payments(bill_id) WHERE state = 'posted' AND bill_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS payments_card_counter_once
    ON payments(biller, account, card_counter) WHERE state = 'posted' AND kind = 'card_credit';
-- Keys reversed before any posting reached the platform: a late post with one is refused.
CREATE TABLE IF NOT EXISTS fenced_keys (
    key TEXT PRIMARY KEY,
    station TEXT NOT NULL,
    terminal TEXT NOT NULL,
    reason TEXT NOT NULL,
    fenced_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deposits (
    key TEXT PRIMARY KEY,
    station TEXT NOT NULL REFERENCES stations(station),
    terminal TEXT NOT NULL,            -- who announced it; 'outlet' when the outlet recorded it
    amount_fen INTEGER NOT NULL CHECK (amount_fen >= 50000),
    state TEXT NOT NULL CHECK (state IN ('pending', 'confirmed')),
    created_at TEXT NOT NULL,
    confirmed_at TEXT,
    slip_no TEXT NOT NULL              -- the outlet's deposit slip (存款凭证)
);
-- A voucher is registered by the terminal that printed it and paid out once, centrally.
CREATE TABLE IF NOT EXISTS vouchers (
    voucher_id TEXT PRIMARY KEY,
    station TEXT NOT NULL REFERENCES stations(station),
    terminal TEXT NOT NULL,            -- the terminal that issued it
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    receipt_no TEXT NOT NULL,
    expires TEXT NOT NULL,             -- the last day it can be redeemed, YYYY-MM-DD
    state TEXT NOT NULL CHECK (state IN ('issued', 'redeemed', 'expired')),
    issued_at TEXT NOT NULL,
    redeem_key TEXT UNIQUE,
    redeemed_at TEXT,
    redeemed_by TEXT,                  -- the terminal that paid it out
    CHECK ((state = 'redeemed') = (redeem_key IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS vouchers_issued ON vouchers(expires) WHERE state = 'issued';
-- One slip is one deposit: the same slip announced twice would be credited twice.
CREATE UNIQUE INDEX IF NOT EXISTS deposits_slip_once ON deposits(station, slip_no);
"""
# Who recorded a deposit that no terminal announced: the outlet's own record (/sim endpoint).
OUTLET = "outlet"


class LedgerInvariantBroken(RuntimeError):
    """A programming error: a change would have let holds exceed the balance."""


class Ledger:
    def __init__(
        self,
        path: Path,
        *,
        opening_float_fen: int = DEFAULT_OPENING_FLOAT_FEN,
        hold_lifetime: timedelta = HOLD_LIFETIME,
    ) -> None:
        if hold_lifetime <= timedelta(0):
            raise ValueError(f"a hold lifetime must be positive, not {hold_lifetime}")
        self.path = path
        self.opening_float_fen = opening_float_fen
        self.hold_lifetime = hold_lifetime
        with self._connection() as conn:
            _add_hold_expiry(conn, hold_lifetime)
            _add_slips_and_opening(conn)
            conn.executescript(SCHEMA)
            _add_order_funding(conn)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        # One connection per request: requests run in their own threads, and SQLite's
        # BEGIN IMMEDIATE (not a Python lock) is what serialises them.
        with closing(open_database(self.path)) as conn:
            yield conn

    @contextmanager
    def _transaction(self, now: datetime | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction; given the time, it first expires what is due by then."""
        with self._connection() as conn, write_transaction(conn):
            if now is not None:
                _expire(conn, now)
            yield conn

    # ------------------------------------------------------------ stations and terminals

    def register(self, station: str, terminal: str, certificate_pem: str, now: datetime) -> None:
        with self._transaction() as conn:
            _open_account(conn, station, self.opening_float_fen, now)
            row = conn.execute(
                "SELECT certificate_pem FROM terminals WHERE station = ? AND terminal = ?",
                (station, terminal),
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO terminals VALUES (?, ?, ?, ?)",
                    (station, terminal, certificate_pem, iso(now)),
                )
            elif row["certificate_pem"] != certificate_pem and _same_key(
                row["certificate_pem"], certificate_pem
            ):
                # A renewal re-certifies the same station key (kiosk-tool provision renew);
                # the request was signed with that key, so it is the same terminal.
                conn.execute(
                    "UPDATE terminals SET certificate_pem = ? WHERE station = ? AND terminal = ?",
                    (certificate_pem, station, terminal),
                )
            elif row["certificate_pem"] != certificate_pem:
                raise PlatformRefused(
                    Refusal.CERTIFICATE_CONFLICT,
                    f"terminal {terminal} of station {station} is registered with another "
                    "certificate: ask the operator to revoke the old one first",
                )

    def certificate(self, station: str, terminal: str) -> str | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT certificate_pem FROM terminals WHERE station = ? AND terminal = ?",
                (station, terminal),
            ).fetchone()
        return None if row is None else str(row["certificate_pem"])

    def float_state(self, station: str, now: datetime) -> FloatState:
        with self._transaction(now) as conn:
            return _float_state(conn, station)

    def statement(self, station: str, terminal: str, now: datetime) -> FloatStatement:
        """The account's cumulative figures, read in one transaction with its balance."""
        with self._transaction(now) as conn:
            state = _float_state(conn, station)
            opening = conn.execute(
                "SELECT opening_fen FROM stations WHERE station = ?", (station,)
            ).fetchone()[0]
            deposits = conn.execute(
                "SELECT COALESCE(SUM(amount_fen), 0) FROM deposits "
                "WHERE station = ? AND state = 'confirmed'",
                (station,),
            ).fetchone()[0]
            moved = conn.execute(
                "SELECT COALESCE(SUM(amount_fen + fee_fen), 0), "
                "COALESCE(SUM(CASE WHEN state = 'reversed' THEN amount_fen + fee_fen END), 0), "
                "COALESCE(SUM(CASE WHEN terminal = ? THEN amount_fen + fee_fen END), 0), "
                "COALESCE(SUM(CASE WHEN terminal = ? AND state = 'reversed' "
                "THEN amount_fen + fee_fen END), 0) FROM payments "
                # A posting funded by a paid order never touched the float.
                "WHERE station = ? AND order_key IS NULL",
                (terminal, terminal, station),
            ).fetchone()
            outstanding = conn.execute(
                "SELECT COALESCE(SUM(amount_fen), 0) FROM vouchers "
                "WHERE station = ? AND state = 'issued'",
                (station,),
            ).fetchone()[0]
            return FloatStatement(
                balance_fen=state.balance_fen,
                held_fen=state.held_fen,
                opening_fen=int(opening),
                deposits_fen=int(deposits),
                debits_fen=int(moved[0]),
                refunds_fen=int(moved[1]),
                terminal_debits_fen=int(moved[2]),
                terminal_refunds_fen=int(moved[3]),
                vouchers_outstanding_fen=int(outstanding),
            )

    # ------------------------------------------------------------ holds

    def hold(
        self, station: str, terminal: str, hold_id: str, amount_fen: int, now: datetime
    ) -> FloatState:
        with self._transaction(now) as conn:
            row = conn.execute("SELECT * FROM holds WHERE hold_id = ?", (hold_id,)).fetchone()
            if row is not None:
                if row["station"] != station:
                    raise _key_reused("hold", hold_id)
                if row["state"] == "active" and row["amount_fen"] != amount_fen:
                    raise _key_reused("hold", hold_id)
                # The same hold again (a retry), or one already released, consumed or expired:
                # a hold id is used once and never reserves twice.
                return _float_state(conn, station)
            state = _float_state(conn, station)
            if state.available_fen < amount_fen:
                raise PlatformRefused(
                    Refusal.INSUFFICIENT_FLOAT,
                    f"the float of station {station} has {state.available_fen} fen available, "
                    f"less than the {amount_fen} fen asked: deposit to the float first",
                )
            conn.execute(
                "INSERT INTO holds VALUES (?, ?, ?, ?, 'active', NULL, ?, ?, ?)",
                (
                    hold_id,
                    station,
                    terminal,
                    amount_fen,
                    iso(now),
                    iso(now),
                    _utc(now + self.hold_lifetime),
                ),
            )
            return _checked_float_state(conn, station)

    def release(self, station: str, terminal: str, hold_id: str, now: datetime) -> FloatState:
        with self._transaction(now) as conn:
            row = conn.execute("SELECT * FROM holds WHERE hold_id = ?", (hold_id,)).fetchone()
            if row is None:
                # Fence the id: a hold request still on its way must not reserve float later.
                conn.execute(
                    "INSERT INTO holds VALUES (?, ?, ?, 0, 'released', NULL, ?, ?, ?)",
                    (hold_id, station, terminal, iso(now), iso(now), _utc(now)),
                )
            elif row["station"] != station:
                raise _key_reused("hold", hold_id)
            elif row["state"] == "active":
                conn.execute(
                    "UPDATE holds SET state = 'released', updated_at = ? WHERE hold_id = ?",
                    (iso(now), hold_id),
                )
            return _checked_float_state(conn, station)

    # ------------------------------------------------------------ payments

    def post_payment(
        self,
        station: str,
        terminal: str,
        key: str,
        *,
        hold_id: str | None,
        order_key: str | None = None,
        service: str,
        biller: str,
        account: str,
        amount_fen: int,
        fee_fen: int,
        bill_id: str | None,
        now: datetime,
    ) -> Posting:
        request = {
            "station": station,
            "terminal": terminal,
            "kind": "bill",
            "service": service,
            "biller": biller,
            "account": account,
            "bill_id": bill_id,
            "amount_fen": amount_fen,
            "fee_fen": fee_fen,
            "card_counter": None,
            # A posting funded by a paid order keeps no hold ('': the column predates orders).
            "hold_id": hold_id or "",
            "order_key": order_key,
        }
        with self._transaction(now) as conn:
            existing = _existing_payment(conn, key, request)
            if existing is not None:
                return _posting(existing)
            found = sample_data.find_biller(biller)
            sample_data.check_account(found, account)
            if bill_id is not None:
                bill = sample_data.find_bill(biller, account, now.date())
                if bill.bill_id != bill_id:
                    raise PlatformRefused(
                        Refusal.UNKNOWN_BILL,
                        f"bill {bill_id} is not the bill due on {biller} account {account} "
                        f"(that is {bill.bill_id}): look the bill up again",
                    )
                paid = conn.execute(
                    "SELECT key FROM payments WHERE bill_id = ? AND state = 'posted'", (bill_id,)
                ).fetchone()
                if paid is not None:
                    raise PlatformRefused(
                        Refusal.BILL_ALREADY_PAID, f"bill {bill_id} has already been paid"
                    )
            return _posting(_insert_payment(conn, key, request, now))

    def authorize_card_credit(
        self,
        station: str,
        terminal: str,
        key: str,
        *,
        hold_id: str | None,
        order_key: str | None = None,
        service: str,
        biller: str,
        card_no: str,
        counter: int,
        amount_fen: int,
        fee_fen: int,
        now: datetime,
    ) -> CardCredit:
        request = {
            "station": station,
            "terminal": terminal,
            "kind": "card_credit",
            "service": service,
            "biller": biller,
            "account": card_no,
            "bill_id": None,
            "amount_fen": amount_fen,
            "fee_fen": fee_fen,
            "card_counter": counter,
            # A posting funded by a paid order keeps no hold ('': the column predates orders).
            "hold_id": hold_id or "",
            "order_key": order_key,
        }
        with self._transaction(now) as conn:
            existing = _existing_payment(conn, key, request)
            if existing is not None:
                return _card_credit(existing)
            sample_data.check_card(sample_data.find_biller(biller), card_no)
            used = conn.execute(
                "SELECT key FROM payments WHERE kind = 'card_credit' AND state = 'posted' "
                "AND biller = ? AND account = ? AND card_counter = ?",
                (biller, card_no, counter),
            ).fetchone()
            if used is not None:
                raise PlatformRefused(
                    Refusal.CARD_COUNTER_USED,
                    f"card {card_no} already has a credit authorised to counter {counter + 1}: "
                    "write that credit to the card first",
                )
            return _card_credit(_insert_payment(conn, key, request, now))

    def payment_status(self, station: str, key: str) -> PaymentStatus:
        with self._connection() as conn:
            return _payment_status(conn, station, key)

    def reverse_payment(
        self, station: str, terminal: str, key: str, reason: str, now: datetime
    ) -> PaymentStatus:
        with self._transaction(now) as conn:
            row = conn.execute("SELECT * FROM payments WHERE key = ?", (key,)).fetchone()
            if row is None:
                fenced = conn.execute(
                    "SELECT station FROM fenced_keys WHERE key = ?", (key,)
                ).fetchone()
                if fenced is not None and fenced["station"] != station:
                    raise _key_reused("payment", key)
                conn.execute(
                    "INSERT OR IGNORE INTO fenced_keys VALUES (?, ?, ?, ?, ?)",
                    (key, station, terminal, reason, iso(now)),
                )
            elif row["station"] != station:
                raise _key_reused("payment", key)
            elif row["state"] == "posted":
                conn.execute(
                    "UPDATE payments SET state = 'reversed', reversed_at = ?, reverse_reason = ? "
                    "WHERE key = ?",
                    (iso(now), reason, key),
                )
                if row["order_key"] is not None:
                    # Funded by a paid order: the order is free again (to be refunded).
                    release_order(conn, row["order_key"], key)
                else:
                    conn.execute(
                        "UPDATE stations SET balance_fen = balance_fen + ? WHERE station = ?",
                        (row["amount_fen"] + row["fee_fen"], station),
                    )
            _checked_float_state(conn, station)
            return _payment_status(conn, station, key)

    # ------------------------------------------------------------ deposits

    def deposit(
        self,
        station: str,
        terminal: str,
        key: str,
        amount_fen: int,
        now: datetime,
        *,
        slip_no: str,
        auto_confirm: bool = False,
    ) -> Deposit:
        if amount_fen < MIN_DEPOSIT_FEN:
            raise PlatformRefused(
                Refusal.DEPOSIT_TOO_SMALL,
                f"a float deposit must be at least {MIN_DEPOSIT_FEN} fen, not {amount_fen}",
            )
        _check_slip(slip_no)
        with self._transaction() as conn:
            row = conn.execute("SELECT * FROM deposits WHERE key = ?", (key,)).fetchone()
            if row is not None:
                if (row["station"], row["amount_fen"], row["slip_no"]) != (
                    station,
                    amount_fen,
                    slip_no,
                ):
                    raise _key_reused("deposit", key)
                return _deposit(row)
            _refuse_recorded_slip(conn, station, slip_no)
            conn.execute(
                "INSERT INTO deposits (key, station, terminal, amount_fen, state, created_at, "
                "slip_no) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                (key, station, terminal, amount_fen, iso(now), slip_no),
            )
            if auto_confirm:
                return self._confirm(conn, key, now)
            return Deposit(key=key, state="pending", amount_fen=amount_fen, slip_no=slip_no)

    def outlet_deposit(self, station: str, amount_fen: int, slip_no: str, now: datetime) -> Deposit:
        """A deposit the postal outlet recorded by 机构号 and the operator confirmed, which no
        terminal announced (the station bought float and did not record it at a kiosk).

        Opens the station's account (at zero) if it has none yet: the operator sets the
        account up before the station opens (seed 002).
        """
        if amount_fen < MIN_DEPOSIT_FEN:
            raise PlatformRefused(
                Refusal.DEPOSIT_TOO_SMALL,
                f"a float deposit must be at least {MIN_DEPOSIT_FEN} fen, not {amount_fen}",
            )
        _check_slip(slip_no)
        key = f"{OUTLET}-{station}-{slip_no}"
        with self._transaction() as conn:
            _open_account(conn, station, 0, now)
            _refuse_recorded_slip(conn, station, slip_no)
            conn.execute(
                "INSERT INTO deposits (key, station, terminal, amount_fen, state, created_at, "
                "slip_no) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                (key, station, OUTLET, amount_fen, iso(now), slip_no),
            )
            return self._confirm(conn, key, now)

    def deposit_status(self, station: str, key: str) -> Deposit:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT * FROM deposits WHERE key = ? AND station = ?", (key, station)
            ).fetchone()
        if row is None:
            raise _deposit_not_found(key)
        return _deposit(row)

    def confirm_deposit(self, key: str, now: datetime) -> Deposit:
        """The operator saw the money arrive: credit the station's float (idempotent)."""
        with self._transaction() as conn:
            return self._confirm(conn, key, now)

    def _confirm(self, conn: sqlite3.Connection, key: str, now: datetime) -> Deposit:
        row = conn.execute("SELECT * FROM deposits WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise _deposit_not_found(key)
        if row["state"] == "pending":
            conn.execute(
                "UPDATE deposits SET state = 'confirmed', confirmed_at = ? WHERE key = ?",
                (iso(now), key),
            )
            conn.execute(
                "UPDATE stations SET balance_fen = balance_fen + ? WHERE station = ?",
                (row["amount_fen"], row["station"]),
            )
        return Deposit(
            key=key, state="confirmed", amount_fen=row["amount_fen"], slip_no=row["slip_no"]
        )

    # ------------------------------------------------------------ vouchers

    def issue_voucher(
        self,
        station: str,
        terminal: str,
        voucher_id: str,
        *,
        amount_fen: int,
        receipt_no: str,
        expires: date,
        now: datetime,
    ) -> Voucher:
        """Register a printed voucher; idempotent by its id, key_reused for other details."""
        with self._transaction(now) as conn:
            row = _voucher_row(conn, voucher_id)
            if row is not None:
                same = (row["station"], row["terminal"], row["amount_fen"], row["receipt_no"])
                if (
                    same != (station, terminal, amount_fen, receipt_no)
                    or row["expires"] != expires.isoformat()
                ):
                    raise _key_reused("voucher", voucher_id)
                return _voucher(row)
            if expires < now.date():
                raise PlatformRefused(
                    Refusal.BAD_REQUEST,
                    f"voucher {voucher_id} would expire on {expires}, before today "
                    f"({now.date()}): give a later expiry date",
                )
            conn.execute(
                "INSERT INTO vouchers (voucher_id, station, terminal, amount_fen, receipt_no, "
                "expires, state, issued_at) VALUES (?, ?, ?, ?, ?, ?, 'issued', ?)",
                (
                    voucher_id,
                    station,
                    terminal,
                    amount_fen,
                    receipt_no,
                    expires.isoformat(),
                    iso(now),
                ),
            )
            return _voucher(_voucher_row(conn, voucher_id))

    def redeem_voucher(
        self,
        station: str,
        terminal: str,
        key: str,
        *,
        voucher_id: str,
        amount_fen: int,
        now: datetime,
    ) -> Voucher:
        """Pay a voucher out once, at any terminal of its station; idempotent by key."""
        with self._transaction(now) as conn:
            redeemed = conn.execute(
                "SELECT * FROM vouchers WHERE redeem_key = ?", (key,)
            ).fetchone()
            if redeemed is not None:
                if (redeemed["voucher_id"], redeemed["amount_fen"], redeemed["station"]) != (
                    voucher_id,
                    amount_fen,
                    station,
                ):
                    raise _key_reused("redemption", key)
                return _voucher(redeemed)
            row = _voucher_row(conn, voucher_id)
            if row is None or row["station"] != station:
                raise PlatformRefused(
                    Refusal.VOUCHER_NOT_FOUND,
                    f"no voucher {voucher_id!r} was issued at station {station}: "
                    "check the voucher number",
                )
            if row["state"] == VoucherState.REDEEMED:
                raise PlatformRefused(
                    Refusal.VOUCHER_ALREADY_REDEEMED,
                    f"voucher {voucher_id} was paid out at {row['redeemed_at']} by terminal "
                    f"{row['redeemed_by']}: it cannot be paid out again",
                )
            if row["state"] == VoucherState.EXPIRED:
                raise PlatformRefused(
                    Refusal.VOUCHER_EXPIRED,
                    f"voucher {voucher_id} expired after {row['expires']}: it cannot be paid out",
                )
            if row["amount_fen"] != amount_fen:
                raise PlatformRefused(
                    Refusal.VOUCHER_AMOUNT_MISMATCH,
                    f"voucher {voucher_id} is for {row['amount_fen']} fen, not {amount_fen}: "
                    "check the voucher",
                )
            conn.execute(
                "UPDATE vouchers SET state = 'redeemed', redeem_key = ?, redeemed_at = ?, "
                "redeemed_by = ? WHERE voucher_id = ?",
                (key, iso(now), terminal, voucher_id),
            )
            return _voucher(_voucher_row(conn, voucher_id))

    def voucher_status(self, station: str, voucher_id: str, now: datetime) -> Voucher:
        with self._transaction(now) as conn:
            row = _voucher_row(conn, voucher_id)
        if row is None or row["station"] != station:
            raise PlatformRefused(
                Refusal.VOUCHER_NOT_FOUND,
                f"no voucher {voucher_id!r} was issued at station {station}",
            )
        return _voucher(row)

    def vouchers(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Every voucher with its issuer and redemption, as of now (default: as stored)."""
        with self._transaction(now) as conn:
            return _rows(conn, "SELECT * FROM vouchers ORDER BY issued_at, voucher_id")

    # ------------------------------------------------------------ dump

    def dump(self, now: datetime | None = None) -> dict[str, Any]:
        """Everything the platform holds, for tests, the soak test and a curious operator.

        Given the time, holds and vouchers due to expire by then are expired first;
        without it (`kiosk-platform-sim dump`) the ledger is shown as last written.
        """
        with self._transaction(now) as conn:
            stations = [
                {
                    "station": row["station"],
                    "opening_fen": row["opening_fen"],
                    **_float_state(conn, row["station"]).to_json(),
                }
                for row in conn.execute(
                    "SELECT station, opening_fen FROM stations ORDER BY station"
                )
            ]
            for entry in stations:
                entry["available_fen"] = entry["balance_fen"] - entry["held_fen"]
            payments = [
                {
                    "key": row["key"],
                    "station": row["station"],
                    "terminal": row["terminal"],
                    "kind": row["kind"],
                    "service": row["service"],
                    "biller": row["biller"],
                    "account": row["account"],
                    "bill_id": row["bill_id"],
                    "amount_fen": row["amount_fen"],
                    "fee_fen": row["fee_fen"],
                    "card_counter": row["card_counter"],
                    "hold_id": row["hold_id"],
                    "order_key": row["order_key"],  # funded by a paid order (no float)
                    "reference": row["reference"],
                    "state": row["state"],
                    "posted_at": row["posted_at"],
                    "reversed_at": row["reversed_at"],
                    "reverse_reason": row["reverse_reason"],
                }
                for row in conn.execute("SELECT * FROM payments ORDER BY seq")
            ]
            return {
                "stations": stations,
                "terminals": _rows(
                    conn, "SELECT station, terminal, registered_at FROM terminals ORDER BY 1, 2"
                ),
                "payments": payments,
                "fenced_keys": _rows(conn, "SELECT * FROM fenced_keys ORDER BY fenced_at, key"),
                "holds": _rows(conn, "SELECT * FROM holds ORDER BY created_at, hold_id"),
                "deposits": _rows(conn, "SELECT * FROM deposits ORDER BY created_at, key"),
                "vouchers": _rows(conn, "SELECT * FROM vouchers ORDER BY issued_at, voucher_id"),
            }


# ---------------------------------------------------------------- helpers on one connection


def _rows(conn: sqlite3.Connection, sql: str) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(sql)]


def _utc(moment: datetime) -> str:
    return iso(moment.astimezone(UTC))


def _expire(conn: sqlite3.Connection, now: datetime) -> None:
    """Expire the holds whose lifetime is over (their float is free again) and the vouchers
    past their last day (judged by the date of the simulator's clock)."""
    conn.execute(
        "UPDATE holds SET state = 'expired', updated_at = ? "
        "WHERE state = 'active' AND expires_at <= ?",
        (iso(now), _utc(now)),
    )
    conn.execute(
        "UPDATE vouchers SET state = 'expired' WHERE state = 'issued' AND expires < ?",
        (now.date().isoformat(),),
    )


def _add_hold_expiry(conn: sqlite3.Connection, lifetime: timedelta) -> None:
    """Bring a ledger written before holds expired up to date: its holds table gains
    expires_at and the 'expired' state; each hold lives `lifetime` from when it was made."""
    columns = {row["name"] for row in conn.execute("PRAGMA table_info(holds)")}
    if not columns or "expires_at" in columns:
        return
    create_holds = SCHEMA[SCHEMA.index("CREATE TABLE IF NOT EXISTS holds") :]
    create_holds = create_holds[: create_holds.index(";") + 1]
    with write_transaction(conn):
        conn.execute("ALTER TABLE holds RENAME TO holds_before_expiry")
        conn.execute("DROP INDEX IF EXISTS holds_active")
        conn.execute(create_holds)
        for row in conn.execute("SELECT * FROM holds_before_expiry").fetchall():
            expires = datetime.fromisoformat(row["created_at"]) + lifetime
            conn.execute(
                "INSERT INTO holds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*tuple(row), _utc(expires)),
            )
        conn.execute("DROP TABLE holds_before_expiry")


def _voucher_row(conn: sqlite3.Connection, voucher_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM vouchers WHERE voucher_id = ?", (voucher_id,)
    ).fetchone()
    return row


def _voucher(row: sqlite3.Row | None) -> Voucher:
    assert row is not None  # read back inside the transaction that wrote it
    return Voucher(
        voucher_id=row["voucher_id"],
        state=VoucherState(row["state"]),
        amount_fen=row["amount_fen"],
        receipt_no=row["receipt_no"],
        expires=date.fromisoformat(row["expires"]),
        redeemed_at=None
        if row["redeemed_at"] is None
        else datetime.fromisoformat(row["redeemed_at"]),
        redeemed_by=row["redeemed_by"],
    )


def _float_state(conn: sqlite3.Connection, station: str) -> FloatState:
    row = conn.execute(
        "SELECT balance_fen, (SELECT COALESCE(SUM(amount_fen), 0) FROM holds "
        "WHERE station = ? AND state = 'active') AS held_fen FROM stations WHERE station = ?",
        (station, station),
    ).fetchone()
    if row is None:
        raise PlatformRefused(
            Refusal.NOT_REGISTERED, f"station {station} is not registered: register first"
        )
    return FloatState(balance_fen=row["balance_fen"], held_fen=row["held_fen"])


def _checked_float_state(conn: sqlite3.Connection, station: str) -> FloatState:
    state = _float_state(conn, station)
    if state.available_fen < 0:
        # Raising rolls the whole request back: the float never goes negative on disk.
        raise LedgerInvariantBroken(
            f"station {station}: holds {state.held_fen} fen exceed balance {state.balance_fen}"
        )
    return state


def _key_reused(what: str, key: str) -> PlatformRefused:
    return PlatformRefused(
        Refusal.KEY_REUSED,
        f"{what} key {key!r} was already used for a different request: use a new key",
    )


def _deposit_not_found(key: str) -> PlatformRefused:
    return PlatformRefused(Refusal.DEPOSIT_NOT_FOUND, f"no deposit with key {key!r} is known")


def _existing_payment(
    conn: sqlite3.Connection, key: str, request: dict[str, Any]
) -> sqlite3.Row | None:
    """The payment already made with this key (a retry), or None for a new key."""
    if (request["hold_id"] == "") == (request["order_key"] is None):
        raise PlatformRefused(
            Refusal.BAD_REQUEST,
            "a posting is funded by exactly one of 'hold_id' and 'order_key': give one",
        )
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM payments WHERE key = ?", (key,)
    ).fetchone()
    if row is None:
        fenced = conn.execute("SELECT station FROM fenced_keys WHERE key = ?", (key,)).fetchone()
        if fenced is not None:
            raise PlatformRefused(
                Refusal.PAYMENT_REVERSED,
                f"payment {key!r} was reversed before it was posted: it will never be posted",
            )
        return None
    if any(row[name] != value for name, value in request.items()):
        raise _key_reused("payment", key)
    if row["state"] == "reversed":
        raise PlatformRefused(
            Refusal.PAYMENT_REVERSED, f"payment {key!r} was posted and then reversed"
        )
    return row


def _insert_payment(
    conn: sqlite3.Connection, key: str, request: dict[str, Any], now: datetime
) -> sqlite3.Row:
    station, hold_id = request["station"], request["hold_id"]
    total_fen = request["amount_fen"] + request["fee_fen"]
    if request["order_key"] is not None:
        # Funded by a paid payment order (the resident paid by phone): no float moves.
        use_order(conn, station, request["order_key"], total_fen, key, now)
        return _insert_posting(conn, key, request, now)
    hold = conn.execute("SELECT * FROM holds WHERE hold_id = ?", (hold_id,)).fetchone()
    if hold is None or hold["station"] != station or hold["state"] != "active":
        raise PlatformRefused(
            Refusal.HOLD_MISSING,
            f"hold {hold_id!r} is not an active hold of station {station}: hold the float first",
        )
    if hold["amount_fen"] < total_fen:
        raise PlatformRefused(
            Refusal.HOLD_TOO_SMALL,
            f"hold {hold_id!r} covers {hold['amount_fen']} fen, less than the {total_fen} fen "
            "of amount and fee: hold enough float first",
        )
    # Consuming the hold frees it; the debit takes only amount + fee from the balance, so
    # an unused part of the hold is available again.
    conn.execute(
        "UPDATE holds SET state = 'consumed', payment_key = ?, updated_at = ? WHERE hold_id = ?",
        (key, iso(now), hold_id),
    )
    conn.execute(
        "UPDATE stations SET balance_fen = balance_fen - ? WHERE station = ?", (total_fen, station)
    )
    return _insert_posting(conn, key, request, now)


def _insert_posting(
    conn: sqlite3.Connection, key: str, request: dict[str, Any], now: datetime
) -> sqlite3.Row:
    station = request["station"]
    seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM payments").fetchone()[0]
    reference = f"SIM{now:%Y%m%d}{seq:08d}"
    conn.execute(
        "INSERT INTO payments (seq, key, station, terminal, kind, service, biller, account, "
        "bill_id, amount_fen, fee_fen, card_counter, hold_id, order_key, reference, state, "
        "posted_at) VALUES (:seq, :key, :station, :terminal, :kind, :service, :biller, "
        ":account, :bill_id, :amount_fen, :fee_fen, :card_counter, :hold_id, :order_key, "
        ":reference, 'posted', :now)",
        {**request, "seq": seq, "key": key, "reference": reference, "now": iso(now)},
    )
    _checked_float_state(conn, station)
    row: sqlite3.Row = conn.execute("SELECT * FROM payments WHERE key = ?", (key,)).fetchone()
    return row


def _posting(row: sqlite3.Row) -> Posting:
    return Posting(
        key=row["key"], ref=row["reference"], amount_fen=row["amount_fen"], fee_fen=row["fee_fen"]
    )


def _card_credit(row: sqlite3.Row) -> CardCredit:
    # The MAC is derived, not stored: the same key always yields the same counter and MAC.
    new_counter = row["card_counter"] + 1
    return CardCredit(
        key=row["key"],
        ref=row["reference"],
        card_no=row["account"],
        new_counter=new_counter,
        amount_fen=row["amount_fen"],
        fee_fen=row["fee_fen"],
        mac=credit_mac(row["account"], new_counter, row["amount_fen"], row["terminal"], row["key"]),
    )


def _payment_status(conn: sqlite3.Connection, station: str, key: str) -> PaymentStatus:
    row = conn.execute(
        "SELECT state, reference, amount_fen, fee_fen FROM payments WHERE key = ? AND station = ?",
        (key, station),
    ).fetchone()
    if row is not None:
        return PaymentStatus(
            key=key,
            state=PaymentState(row["state"]),
            ref=row["reference"],
            amount_fen=row["amount_fen"],
            fee_fen=row["fee_fen"],
        )
    fenced = conn.execute(
        "SELECT 1 FROM fenced_keys WHERE key = ? AND station = ?", (key, station)
    ).fetchone()
    state = PaymentState.REVERSED if fenced else PaymentState.NOT_FOUND
    return PaymentStatus(key=key, state=state, ref=None)


def _deposit(row: sqlite3.Row) -> Deposit:
    return Deposit(
        key=row["key"], state=row["state"], amount_fen=row["amount_fen"], slip_no=row["slip_no"]
    )


def _check_slip(slip_no: str) -> None:
    if not SLIP_NO_PATTERN.match(slip_no):
        raise PlatformRefused(
            Refusal.BAD_REQUEST,
            f"field 'slip_no' {slip_no!r} is not 4 to 32 letters, digits or '-'",
        )


def _refuse_recorded_slip(conn: sqlite3.Connection, station: str, slip_no: str) -> None:
    """Decided after the key was looked up: a slip already behind another deposit."""
    found = conn.execute(
        "SELECT key FROM deposits WHERE station = ? AND slip_no = ?", (station, slip_no)
    ).fetchone()
    if found is not None:
        raise PlatformRefused(
            Refusal.SLIP_ALREADY_RECORDED,
            f"deposit slip {slip_no} of station {station} is already recorded: one slip is "
            "one deposit",
        )


def _open_account(conn: sqlite3.Connection, station: str, opening_fen: int, now: datetime) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO stations (station, balance_fen, created_at, opening_fen) "
        "VALUES (?, ?, ?, ?)",
        (station, opening_fen, iso(now), opening_fen),
    )


def _add_order_funding(conn: sqlite3.Connection) -> None:
    """A posting may be funded by a paid payment order instead of a hold (added later)."""
    columns = {str(r[1]) for r in conn.execute("PRAGMA table_info(payments)")}
    if "order_key" not in columns:
        conn.execute("ALTER TABLE payments ADD COLUMN order_key TEXT")


def _add_slips_and_opening(conn: sqlite3.Connection) -> None:
    """Bring a ledger written before slips and statements up to date: deposits gain a slip
    number (NOSLIP-n for those recorded without one) and stations the balance they opened
    with (what their balance is when every recorded movement is taken back out)."""

    def columns(table: str) -> set[str]:
        return {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}

    deposit_columns, station_columns = columns("deposits"), columns("stations")
    with write_transaction(conn):
        if deposit_columns and "slip_no" not in deposit_columns:
            conn.execute("ALTER TABLE deposits ADD COLUMN slip_no TEXT NOT NULL DEFAULT ''")
            conn.execute("UPDATE deposits SET slip_no = 'NOSLIP-' || rowid")
        if not station_columns or "opening_fen" in station_columns:
            return
        conn.execute("ALTER TABLE stations ADD COLUMN opening_fen INTEGER NOT NULL DEFAULT 0")
        taken_back = ["balance_fen"]
        if deposit_columns:
            taken_back.append(
                "(SELECT COALESCE(SUM(amount_fen), 0) FROM deposits d "
                "WHERE d.station = stations.station AND d.state = 'confirmed')"
            )
        posted = "0"
        if columns("payments"):
            posted = (
                "(SELECT COALESCE(SUM(amount_fen + fee_fen), 0) FROM payments p "
                "WHERE p.station = stations.station AND p.state = 'posted')"
            )
        conn.execute(f"UPDATE stations SET opening_fen = {' - '.join(taken_back)} + {posted}")


def _same_key(old_pem: str, new_pem: str) -> bool:
    """Whether two certificates hold the same public key (a renewal, not a new terminal)."""
    from cryptography import x509

    from kiosk.station_keys import certificate_spki

    def key(pem: str) -> bytes:
        # Any station key type, SM2 included (which cryptography cannot load as a key).
        return certificate_spki(x509.load_pem_x509_certificate(pem.encode("ascii")))

    return key(old_pem) == key(new_pem)
