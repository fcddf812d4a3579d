"""Float deposits (续费): recorded with their slip, pending until the platform confirms them.

Seed 002: the station buys float (信誉额度) at a postal outlet by its 机构号, at least 500
yuan each time, as often as it likes, and keeps the outlet's deposit slip (存款凭证). The
station operator (or a technician, or the back office) records each purchase here: its
amount and slip number, and who recorded it. A deposit is durable and journaled as pending
before the platform is told; it counts only once the platform confirms it, and then the
float mirror is refreshed. A deposit the platform refuses (its slip already behind another
deposit) is journaled as refused with an alert. Owns the float_deposit table; never
changes the float itself (the platform does).
"""

import logging
import sqlite3
import uuid
from dataclasses import dataclass
from enum import StrEnum

from kiosk.alerts import AlertKind, announce, append_alert
from kiosk.clock import Clock, iso
from kiosk.errors import TranslatedError
from kiosk.events import EventBus
from kiosk.journal import Journal
from kiosk.journal.record_types import RecordType
from kiosk.money import MAX_FEN, format_fen
from kiosk.platform import Deposit, OutcomeUnknown, PlatformClient, PlatformRefused, Refusal
from kiosk.platform.models import MIN_DEPOSIT_FEN, SLIP_NO_PATTERN
from kiosk.signing import SignerError
from kiosk.storage import write_transaction
from kiosk.terminal_schema import TERMINAL

log = logging.getLogger(__name__)

# Operator-facing message ids (Chinese in kiosk/locale/zh_CN/LC_MESSAGES/operator.po).
TOO_SMALL = (
    "A deposit is at least {minimum}; {amount} is less. Buy at least {minimum} of float "
    "at the postal outlet."
)
TOO_LARGE = "A deposit of {amount} is more than one payment can be; check the amount."
NOT_A_SLIP = (
    "{slip} is not a deposit slip number: type the 4 to 32 letters and digits printed on "
    "the outlet's slip."
)
SLIP_RECORDED = "Deposit slip {slip} is already recorded; one slip is one deposit."
PLATFORM_REFUSED = "The platform refused the deposit on slip {slip} ({code}); ask the operator."
MESSAGE_IDS = (TOO_SMALL, TOO_LARGE, NOT_A_SLIP, SLIP_RECORDED, PLATFORM_REFUSED)

# Deposits recorded by earlier versions (no slip, no who) are carried over once.
_CARRY_OVER = """
INSERT OR IGNORE INTO float_deposit
    (key, amount_fen, slip_no, state, announced, recorded_by, role, recorded_at)
SELECT key, amount_fen, 'NOSLIP-' || rowid, state, 1, 'unknown', 'unknown', ''
FROM deposit
"""


class DepositState(StrEnum):
    PENDING = "pending"  # recorded; the platform has not confirmed it (or not heard of it)
    CONFIRMED = "confirmed"  # in the float
    REFUSED = "refused"  # the platform will never count it


class DepositRefused(TranslatedError):
    """A deposit that cannot be recorded or that the platform refused; says why."""


@dataclass(frozen=True)
class DepositEntry:
    key: str
    amount_fen: int
    slip_no: str
    state: DepositState
    announced: bool
    recorded_by: str
    role: str
    recorded_at: str
    settled_at: str | None
    refusal: str | None

    @classmethod
    def of(cls, row: sqlite3.Row) -> "DepositEntry":
        return cls(
            key=row["key"],
            amount_fen=row["amount_fen"],
            slip_no=row["slip_no"],
            state=DepositState(row["state"]),
            announced=bool(row["announced"]),
            recorded_by=row["recorded_by"],
            role=row["role"],
            recorded_at=row["recorded_at"],
            settled_at=row["settled_at"],
            refusal=row["refusal"],
        )


def normalise_slip(text: str) -> str:
    """The slip number as the platform stores it (spaces a person typed removed, upper case);
    DepositRefused when it is not one."""
    slip = "".join(text.split()).upper()
    if not SLIP_NO_PATTERN.match(slip):
        raise DepositRefused(NOT_A_SLIP, slip=repr(text))
    return slip


def check_deposit_amount(amount_fen: int) -> int:
    """amount_fen if it may be a deposit (seed 002: at least 500 yuan); DepositRefused."""
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int):
        raise TypeError(f"a deposit amount is whole fen, not {amount_fen!r}")
    if amount_fen < MIN_DEPOSIT_FEN:
        raise DepositRefused(
            TOO_SMALL, minimum=format_fen(MIN_DEPOSIT_FEN), amount=format_fen(max(amount_fen, 0))
        )
    if amount_fen > MAX_FEN:
        raise DepositRefused(TOO_LARGE, amount=format_fen(amount_fen))
    return amount_fen


class Deposits:
    def __init__(
        self,
        conn: sqlite3.Connection,
        journal: Journal,
        platform: PlatformClient,
        clock: Clock,
        events: EventBus,
    ) -> None:
        self._conn = conn
        self._journal = journal
        self._platform = platform
        self._clock = clock
        self._events = events
        TERMINAL.migrate(conn)
        with write_transaction(conn):
            if conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'deposit'"
            ).fetchone():
                conn.execute(_CARRY_OVER)
                conn.execute("DROP TABLE deposit")

    # ------------------------------------------------------------------ recording

    def record(self, amount_fen: int, slip_no: str, *, by: str, role: str) -> DepositEntry:
        """Record a float purchase and announce it to the platform.

        Refused with one line (DepositRefused) before anything is written: less than 500
        yuan, not a slip number, a slip already recorded here. Otherwise the deposit is
        journaled as pending first, then announced; the platform refusing it (its slip is
        behind another deposit of the station) journals it as refused and raises; a platform
        that does not answer leaves it pending, announced again by check().
        """
        amount_fen = check_deposit_amount(amount_fen)
        slip = normalise_slip(slip_no)
        key = f"dep-{uuid.uuid4().hex[:16]}"
        with write_transaction(self._conn):
            if self._by_slip(slip) is not None:
                raise DepositRefused(SLIP_RECORDED, slip=slip)
            self._conn.execute(
                "INSERT INTO float_deposit (key, amount_fen, slip_no, state, announced, "
                "recorded_by, role, recorded_at) VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)",
                (key, amount_fen, slip, by, role, iso(self._clock.now())),
            )
            self._journal_state(key, DepositState.PENDING)
        self._announce(key, sent_before=False)
        return self.entry(key)

    def entry(self, key: str) -> DepositEntry:
        row = self._conn.execute("SELECT * FROM float_deposit WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return DepositEntry.of(row)

    def history(self, limit: int = 50) -> list[DepositEntry]:
        """The deposits recorded here, newest first (续费查询)."""
        rows = self._conn.execute(
            "SELECT * FROM float_deposit ORDER BY recorded_at DESC, rowid DESC LIMIT ?", (limit,)
        ).fetchall()
        return [DepositEntry.of(row) for row in rows]

    def pending_fen(self) -> int:
        """Deposits recorded here that the platform has not confirmed yet."""
        found = self._conn.execute(
            "SELECT COALESCE(SUM(amount_fen), 0) FROM float_deposit WHERE state = 'pending'"
        ).fetchone()[0]
        return int(found)

    # ------------------------------------------------------------------ confirmation

    def check(self) -> list[DepositEntry]:
        """Ask the platform about every pending deposit; journal what it confirmed or
        refused. Returns the deposits confirmed now (the float mirror needs a refresh)."""
        confirmed: list[DepositEntry] = []
        pending = self._conn.execute(
            "SELECT key, announced FROM float_deposit WHERE state = 'pending' ORDER BY rowid"
        ).fetchall()
        for key, announced in pending:
            if not announced:
                if not self._announce(key, sent_before=True, quietly=True):
                    break
            else:
                try:
                    status = self._platform.deposit_status(key)
                except PlatformRefused as exc:
                    if exc.code != Refusal.DEPOSIT_NOT_FOUND:
                        break
                    # Announced, yet unknown to the platform: announce again (same key).
                    if not self._announce(key, sent_before=True, quietly=True):
                        break
                except (OutcomeUnknown, SignerError) as exc:
                    log.warning("deposit %s not checked: %s", key, exc)
                    break
                else:
                    self._settle(key, status)
            entry = self.entry(key)
            if entry.state is DepositState.CONFIRMED:
                confirmed.append(entry)
        return confirmed

    def _announce(self, key: str, *, sent_before: bool, quietly: bool = False) -> bool:
        """Tell the platform; False when it did not answer (the deposit stays pending).

        A refusal is journaled with an alert, then raised as DepositRefused unless quietly
        (housekeeping: the alert tells the operator)."""
        entry = self.entry(key)
        try:
            answer = self._platform.deposit(
                key, entry.amount_fen, slip_no=entry.slip_no, sent_before=sent_before
            )
        except PlatformRefused as exc:
            self._refuse(key, exc.code)
            if quietly:
                return True
            raise DepositRefused(PLATFORM_REFUSED, slip=entry.slip_no, code=exc.code) from None
        except (OutcomeUnknown, SignerError) as exc:
            log.warning("deposit %s recorded; the platform has not answered yet: %s", key, exc)
            return False
        with write_transaction(self._conn):
            self._conn.execute("UPDATE float_deposit SET announced = 1 WHERE key = ?", (key,))
        self._settle(key, answer)
        return True

    def _settle(self, key: str, status: Deposit) -> None:
        if status.state != DepositState.CONFIRMED:
            return
        with write_transaction(self._conn):
            changed = self._conn.execute(
                "UPDATE float_deposit SET state = 'confirmed', announced = 1, settled_at = ? "
                "WHERE key = ? AND state = 'pending'",
                (iso(self._clock.now()), key),
            ).rowcount
            if changed:
                self._journal_state(key, DepositState.CONFIRMED)
        if changed:
            entry = self.entry(key)
            self._events.publish(
                "deposit_confirmed", amount_fen=entry.amount_fen, slip_no=entry.slip_no
            )

    def _refuse(self, key: str, code: str) -> None:
        with write_transaction(self._conn):
            self._conn.execute(
                "UPDATE float_deposit SET state = 'refused', announced = 1, settled_at = ?, "
                "refusal = ? WHERE key = ?",
                (iso(self._clock.now()), code, key),
            )
            self._journal_state(key, DepositState.REFUSED, refusal=code)
            entry = self.entry(key)
            alert = append_alert(
                self._journal,
                AlertKind.DEPOSIT_REFUSED,
                deposit_key=key,
                slip_no=entry.slip_no,
                amount_fen=entry.amount_fen,
                refusal=code,
            )
        announce(self._events, alert)

    # ------------------------------------------------------------------ helpers

    def _by_slip(self, slip: str) -> DepositEntry | None:
        row = self._conn.execute(
            "SELECT * FROM float_deposit WHERE slip_no = ? AND state != 'refused'", (slip,)
        ).fetchone()
        return None if row is None else DepositEntry.of(row)

    def _journal_state(self, key: str, state: DepositState, **extra: object) -> None:
        entry = self.entry(key)
        self._journal.append(
            RecordType.FLOAT_DEPOSIT,
            {
                "deposit_key": key,
                "amount_fen": entry.amount_fen,
                "slip_no": entry.slip_no,
                "state": str(state),
                "by": entry.recorded_by,
                "role": entry.role,
                **extra,
            },
            sign=True,
        )
