"""Vouchers: single-use money, each with its own id, registered and redeemed centrally.

A voucher is issued in the same commit as the tx_close record that states it (its id and
expiry are fields of that signed record), registered with the platform after the receipt is
printed (retried with backoff until the platform has it), and paid out only through the
platform's redemption, which succeeds once for all copies and all terminals of the station.
A payout is journaled as an intent before it is asked for, so a crash between the platform's
answer and the journal is settled by asking again with the same key.
"""

import logging
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from kiosk.alerts import AlertKind
from kiosk.clock import Clock, iso
from kiosk.errors import KioskError
from kiosk.events import EventBus
from kiosk.journal import Journal
from kiosk.journal.record_types import RecordType
from kiosk.platform import OutcomeUnknown, PlatformClient, PlatformRefused
from kiosk.receipts.identifiers import VOUCHER_ID_LENGTH, new_voucher_id, read_voucher_id
from kiosk.signing import SignerError
from kiosk.storage import write_transaction
from kiosk.terminal_schema import TERMINAL
from kiosk.transactions.retries import Retries
from kiosk.transactions.store import RetryKind, TxRow, TxStore

log = logging.getLogger(__name__)


class VoucherRefused(KioskError):
    """The voucher cannot be paid out; the message says why (already paid, expired...)."""


@dataclass(frozen=True)
class Payout:
    voucher_id: str
    amount_fen: int
    paid: bool  # False: the platform's answer is not known yet; ask again later


class Vouchers:
    def __init__(
        self,
        conn: sqlite3.Connection,
        store: TxStore,
        journal: Journal,
        platform: PlatformClient,
        clock: Clock,
        events: EventBus,
        retries: Retries,
        *,
        terminal_id: str,
        valid_days: int,
    ) -> None:
        self._conn = conn
        self._store = store
        self._journal = journal
        self._platform = platform
        self._clock = clock
        self._events = events
        self._retries = retries
        self._terminal = terminal_id
        self._valid_days = valid_days
        TERMINAL.migrate(conn)

    def issue(self, row: TxRow, voucher_fen: int) -> dict[str, object]:
        """Inside the closing write transaction: the voucher's fields for the tx_close record."""
        voucher_id = new_voucher_id()
        expires = (self._clock.now().date() + timedelta(days=self._valid_days)).isoformat()
        self._store.add_voucher(voucher_id, row.tx_id, voucher_fen, expires)
        self._store.retry_later(
            RetryKind.VOUCHER, voucher_id, row.tx_id, next_try=iso(self._clock.now()), problem=""
        )
        return {"voucher_id": voucher_id, "voucher_expires": expires}

    def register_due(self, max_calls: int | None = None, *, only: str | None = None) -> int:
        """Register with the platform every voucher whose registration is due (or the one
        voucher `only`, due or not)."""
        registered = calls = 0
        now = iso(self._clock.now())
        for retry in self._store.retries(RetryKind.VOUCHER):
            if only is not None and retry.key != only:
                continue
            if only is None and retry.next_try > now:
                break
            if max_calls is not None and calls >= max_calls:
                break
            calls += 1
            voucher = self._store.voucher(retry.key)
            row = self._store.get(retry.tx_id)
            if voucher is None or row.receipt_no is None:
                continue
            try:
                self._platform.issue_voucher(
                    retry.key,
                    amount_fen=int(voucher["amount_fen"]),
                    receipt_no=row.receipt_no,
                    expires=date.fromisoformat(str(voucher["expires"])),
                )
            except (OutcomeUnknown, SignerError, PlatformRefused) as exc:
                self._later(retry.key, retry.tx_id, _problem(exc))
                if not isinstance(exc, PlatformRefused):
                    break
                continue
            with write_transaction(self._conn):
                self._store.set_voucher_state(retry.key, "registered")
                self._store.retry_done(RetryKind.VOUCHER, retry.key)
            registered += 1
        return registered

    def _later(self, voucher_id: str, tx_id: str, problem: str) -> None:
        self._retries.failed(
            RetryKind.VOUCHER,
            voucher_id,
            tx_id,
            problem,
            alert=AlertKind.VOUCHER_NOT_REGISTERED,
            voucher_id=voucher_id,
        )

    # ------------------------------------------------------------------ payout

    def redeem(self, voucher_text: str, amount_fen: int, *, operator: str) -> Payout:
        """Pay out a voucher once, centrally. Raises VoucherRefused with the reason.

        The payout is journaled as asked before the platform is asked; an unknown answer
        leaves it asked (Payout.paid False): asking again later with the same key settles it.
        """
        voucher_id = read_voucher_id(voucher_text)
        if voucher_id is None:
            raise VoucherRefused(
                f"{voucher_text!r} is not a voucher code: type the {VOUCHER_ID_LENGTH} "
                "letters and digits printed on the voucher (XXXX-XXXX-XXXX-XXXX)"
            )
        key = self._payout_key(voucher_id)
        with write_transaction(self._conn):
            self._conn.execute(
                "INSERT OR IGNORE INTO voucher_payout (key, voucher_id, amount_fen, operator, "
                "state) VALUES (?, ?, ?, ?, 'asked')",
                (key, voucher_id, amount_fen, operator),
            )
            self._journal.append(
                RecordType.VOUCHER_PAYOUT,
                {
                    "voucher_id": voucher_id,
                    "amount_fen": amount_fen,
                    "operator": operator,
                    "state": "asked",
                },
            )
        own = self._store.voucher(voucher_id)
        if own is not None and own["state"] == "issued":
            self.register_now(voucher_id)
        try:
            answer = self._platform.redeem_voucher(
                key, voucher_id=voucher_id, amount_fen=amount_fen
            )
        except PlatformRefused as exc:
            self._settle(key, voucher_id, amount_fen, operator, paid=False, refusal=exc.code)
            raise VoucherRefused(f"the voucher cannot be paid out ({exc.code})") from None
        except (OutcomeUnknown, SignerError) as exc:
            log.warning("voucher payout %s not known yet: %s", key, exc)
            return Payout(voucher_id, amount_fen, paid=False)
        if answer.state != "redeemed":
            raise VoucherRefused(f"the platform answered {answer.state!r} for this voucher")
        self._settle(key, voucher_id, amount_fen, operator, paid=True, refusal=None)
        return Payout(voucher_id, amount_fen, paid=True)

    def _payout_key(self, voucher_id: str) -> str:
        """The key of this payout: the one still unsettled if there is one (asking again
        settles it), else a new one. A voucher already paid here is refused at once."""
        rows = self._conn.execute(
            "SELECT key, state FROM voucher_payout WHERE voucher_id = ?", (voucher_id,)
        ).fetchall()
        if any(state == "paid" for _, state in rows):
            raise VoucherRefused(
                "this voucher was already paid out at this terminal (voucher_already_redeemed)"
            )
        for key, state in rows:
            if state == "asked":
                return str(key)
        return f"R-{voucher_id}-{self._terminal}-{uuid.uuid4().hex[:8]}"

    def register_now(self, voucher_id: str) -> None:
        self.register_due(max_calls=1, only=voucher_id)

    def _settle(
        self,
        key: str,
        voucher_id: str,
        amount_fen: int,
        operator: str,
        *,
        paid: bool,
        refusal: str | None,
    ) -> None:
        state = "paid" if paid else "refused"
        with write_transaction(self._conn):
            self._conn.execute("UPDATE voucher_payout SET state = ? WHERE key = ?", (state, key))
            if paid and self._store.voucher(voucher_id) is not None:
                self._store.set_voucher_state(voucher_id, "redeemed")
            fields: dict[str, object] = {
                "voucher_id": voucher_id,
                "amount_fen": amount_fen,
                "operator": operator,
                "state": state,
            }
            if refusal is not None:
                fields["refusal"] = refusal
            self._journal.append(RecordType.VOUCHER_PAYOUT, fields, sign=True)
        self._events.publish(RecordType.VOUCHER_PAYOUT, voucher_id=voucher_id, state=state)


def _problem(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return f"{type(exc).__name__} {code}" if code else type(exc).__name__
