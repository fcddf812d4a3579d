"""The operator's desk: every money action of the station's day, allowed, journaled, printed.

OperatorDesk is what the operator screens, kiosk-tool and the back office's remote commands
call. Each action names its actor: the logged-in operator by default (card and PIN through
the session), or an explicit Actor (a technician at kiosk-tool, the back office by command).
It checks the actor's permission first (kiosk.operator.roles), so a refused action changes
nothing, and every record the action writes names the actor. The rules themselves live
where the money does: deposits in kiosk.ledger.deposits, the cash box in
kiosk.ledger.cash_box, the day close in kiosk.settlement, voucher payout and reprints in
kiosk.transactions; this module decides who may, and in which order.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from kiosk.catalog import Catalog, CatalogError
from kiosk.devices import Printer, PrinterError, ReceiptDocument
from kiosk.errors import TranslatedError
from kiosk.journal import Journal
from kiosk.ledger.cash_box import CashBox, CashCount
from kiosk.ledger.deposits import DepositEntry, Deposits
from kiosk.ledger.float_account import FloatAccount
from kiosk.ledger.policy import is_low
from kiosk.money import format_fen
from kiosk.operator.papers import collection_slip_document, day_sheet_document
from kiosk.operator.roles import Actor, Permission
from kiosk.operator.session import OperatorSessions
from kiosk.platform import OutcomeUnknown, PlatformClient, PlatformRefused, Voucher, VoucherState
from kiosk.platform.models import NOTICE_REFUSED, NOTICE_UNAVAILABLE, RESIDENT_NOTICES, Refusal
from kiosk.receipts.identifiers import read_voucher_id
from kiosk.receipts.model import StationInfo
from kiosk.settlement.calendar import BusinessCalendar
from kiosk.settlement.day_close import DayCloser
from kiosk.signing import SignerError
from kiosk.transactions.engine import TransactionEngine
from kiosk.transactions.vouchers import Payout, VoucherRefused

log = logging.getLogger(__name__)

# Operator-facing message ids (Chinese in kiosk/locale/zh_CN/LC_MESSAGES/operator.po).
PAYMENT_TAKING_CASH = (
    "A resident is paying with cash right now: collect the cash box when the payment is over."
)
NOT_A_VOUCHER = (
    "{text} is not a voucher code: type the 16 letters and digits printed on the voucher."
)
VOUCHER_NOT_PAYABLE = "This voucher cannot be paid out: {reason}"
AMOUNT_DIFFERS = "The voucher is for {voucher}, not {asked}: pay out what the voucher says."
NO_SUCH_DAY = "Business day {day} is not closed yet: close it first."
MESSAGE_IDS = (PAYMENT_TAKING_CASH, NOT_A_VOUCHER, VOUCHER_NOT_PAYABLE, AMOUNT_DIFFERS, NO_SUCH_DAY)


class OperatorRefused(TranslatedError):
    """An operator action that cannot be done now or at all; the message says why.

    code: for a voucher that cannot be paid out, the platform's refusal code
    (kiosk.platform.Refusal: already redeemed, expired...) when it gave one, so a screen can
    choose what to tell the resident; None otherwise (the platform did not answer, or the
    refusal is the desk's own).
    """

    code: str | None = None


@dataclass(frozen=True)
class FloatOverview:
    """What the operator sees on the float screen (余额查询, 续费查询)."""

    balance_fen: int | None  # None: the platform has never answered
    held_fen: int | None
    available_fen: int | None
    fresh: bool  # False: the platform did not answer now; the figures are the last known
    low: bool
    threshold_fen: int
    pending_deposits_fen: int
    business_day: str  # the business day open now
    today: dict[str, Any]  # the open day's business so far (kiosk.settlement.DayCloser.report)
    deposits: list[DepositEntry]  # newest first
    last_closed_day: str | None = (
        None  # the latest closed business day (its 轧帐单 can print again)
    )


@dataclass(frozen=True)
class Printed:
    """What became of a paper: printed, or the printer's problem (it can be printed again)."""

    record: dict[str, object]
    printed: bool
    problem: str | None


class OperatorDesk:
    def __init__(
        self,
        *,
        sessions: OperatorSessions,
        deposits: Deposits,
        float_account: FloatAccount,
        cash_box: CashBox,
        days: DayCloser,
        calendar: BusinessCalendar,
        engine: TransactionEngine,
        journal: Journal,
        platform: PlatformClient,
        catalog: Callable[[], Catalog],
        close_day: Callable[[date | None, str], dict[str, object]],
        now: Callable[[], Any],
        station: StationInfo,
        columns: int,
    ) -> None:
        self.sessions = sessions
        self._deposits = deposits
        self._float = float_account
        self._cash_box = cash_box
        self._days = days
        self._calendar = calendar
        self._engine = engine
        self._journal = journal
        self._platform = platform
        self._catalog = catalog
        self._close_day = close_day
        self._now = now
        self._station = station
        self._columns = columns

    # ------------------------------------------------------------------ who

    def login(self, pin: str) -> Actor:
        """The operator card in the reader and its PIN open a session (see OperatorSessions)."""
        return self.sessions.login(pin)

    def logout(self) -> None:
        self.sessions.logout()

    @property
    def operator(self) -> Actor | None:
        """The logged-in operator, or None."""
        return self.sessions.current()

    def _actor(self, actor: Actor | None, permission: Permission) -> Actor:
        who = self.sessions.require() if actor is None else actor
        who.require(permission)
        return who

    # ------------------------------------------------------------------ float and deposits

    def record_deposit(
        self, amount_fen: int, slip_no: str, *, actor: Actor | None = None
    ) -> DepositEntry:
        """Record a float purchase made at the postal outlet (at least 500 yuan, with its slip
        number); pending until the platform confirms it, then in the float."""
        who = self._actor(actor, Permission.RECORD_DEPOSIT)
        entry = self._deposits.record(amount_fen, slip_no, by=who.id, role=str(who.role))
        if entry.state == "confirmed":
            self._float.refresh()
        return entry

    def check_deposits(self) -> list[DepositEntry]:
        """Housekeeping: ask about pending deposits; refresh the float when one is confirmed."""
        confirmed = self._deposits.check()
        if confirmed:
            self._float.refresh()
        return confirmed

    def float_overview(self, *, actor: Actor | None = None) -> FloatOverview:
        """The float (asked of the platform now, else the last known), holds, pending
        deposits, the open day's business so far and the deposits history."""
        self._actor(actor, Permission.VIEW_FLOAT)
        fresh = self._float.ask()
        state = fresh or self._float.last_known()
        open_day = self._calendar.open_day(self._now())
        return FloatOverview(
            balance_fen=None if state is None else state.balance_fen,
            held_fen=None if state is None else state.held_fen,
            available_fen=None if state is None else state.available_fen,
            fresh=fresh is not None,
            low=state is not None and is_low(state.balance_fen, self._float.threshold_fen),
            threshold_fen=self._float.threshold_fen,
            pending_deposits_fen=self._deposits.pending_fen(),
            business_day=open_day.isoformat(),
            today=self._days.report(open_day),
            deposits=self._deposits.history(),
            last_closed_day=_iso(self._calendar.last_closed()),
        )

    # ------------------------------------------------------------------ the day

    def close_day(
        self, *, actor: Actor | None = None, day: date | None = None, print_sheet: bool = True
    ) -> Printed:
        """Close the business day (日终轧帐; default: the one open now) and print its 轧帐单."""
        who = self._actor(actor, Permission.CLOSE_DAY)
        record = self._close_day(day, f"{who.role}:{who.id}")
        if not print_sheet:
            return Printed(record, False, None)
        printed, problem = self._print(self._day_sheet(record))
        return Printed(record, printed, problem)

    def print_day_sheet(
        self, day: date, *, actor: Actor | None = None, copy_no: int = 1
    ) -> Printed:
        """Print the 轧帐单 of a closed day again (a copy)."""
        self._actor(actor, Permission.CLOSE_DAY)
        seq = self._calendar.closing_seq(day)
        if seq is None:
            raise OperatorRefused(NO_SUCH_DAY, day=day.isoformat())
        record = next(self._journal.records(seq))
        printed, problem = self._print(self._day_sheet(record, copy_no))
        return Printed(record, printed, problem)

    def _day_sheet(self, record: dict[str, object], copy_no: int = 0) -> ReceiptDocument:
        return day_sheet_document(
            record,
            station=self._station,
            columns=self._columns,
            service_name=self._service_name,
            copy_no=copy_no,
        )

    def _service_name(self, code: str) -> str:
        try:
            return self._catalog().service(code).name
        except CatalogError:
            return code

    # ------------------------------------------------------------------ cash box

    def cash_expected_fen(self, *, actor: Actor | None = None) -> int:
        """What should be in the cash box now (cash in minus vouchers paid out since the last
        collection)."""
        self._actor(actor, Permission.VIEW_FLOAT)
        self._engine.drain_cash()
        return self._cash_box.expected_fen()

    def collect_cash(
        self, count: CashCount, *, actor: Actor | None = None, print_slip: bool = True
    ) -> Printed:
        """The box was emptied and counted (清机): journal the count by denomination, what
        the journal expected and the discrepancy (alerted), and print the 清机单.

        Refused while a resident is inserting cash (their notes would land in neither
        count); a payment in doubt does not stop it, its cash is counted already.
        """
        who = self._actor(actor, Permission.COLLECT_CASH)
        self._engine.drain_cash()
        if self._engine.store.collecting() is not None:
            raise OperatorRefused(PAYMENT_TAKING_CASH)
        collection = self._cash_box.collect(count, by=who.id, role=str(who.role))
        record = next(self._journal.records(collection.seq))
        if not print_slip:
            return Printed(record, False, None)
        document = collection_slip_document(record, station=self._station, columns=self._columns)
        printed, problem = self._print(document)
        return Printed(record, printed, problem)

    # ------------------------------------------------------------------ vouchers

    def voucher_lookup(self, text: str, *, actor: Actor | None = None) -> Voucher:
        """The voucher a scanned or typed code names, as the platform knows it (amount,
        state, expiry), for the operator to check before paying it out."""
        self._actor(actor, Permission.PAY_VOUCHER)
        voucher_id = read_voucher_id(text)
        if voucher_id is None:
            raise OperatorRefused(NOT_A_VOUCHER, text=repr(text))
        own = self._engine.store.voucher(voucher_id)
        if own is not None and own["state"] == "issued":
            self._engine.vouchers.register_now(voucher_id)  # printed here, not told yet
        try:
            voucher = self._platform.voucher_status(voucher_id)
        except PlatformRefused as exc:
            raise _not_payable(exc.code) from None
        except (OutcomeUnknown, SignerError):
            raise OperatorRefused(VOUCHER_NOT_PAYABLE, reason=NOTICE_UNAVAILABLE) from None
        if voucher.state is VoucherState.REDEEMED:
            raise _not_payable(Refusal.VOUCHER_ALREADY_REDEEMED)
        if voucher.state is VoucherState.EXPIRED:
            raise _not_payable(Refusal.VOUCHER_EXPIRED)
        return voucher

    def pay_voucher(
        self, text: str, amount_fen: int | None = None, *, actor: Actor | None = None
    ) -> Payout:
        """Pay a voucher out in cash from the box: redeemed once, centrally, then recorded.

        amount_fen: what the operator is about to hand over (None: the voucher's own amount,
        looked up first). Payout.paid False means the platform's answer is not known: hand
        nothing over yet; paying the same code again settles it.
        """
        who = self._actor(actor, Permission.PAY_VOUCHER)
        voucher = self.voucher_lookup(text, actor=who)
        if amount_fen is not None and amount_fen != voucher.amount_fen:
            raise OperatorRefused(
                AMOUNT_DIFFERS, voucher=format_fen(voucher.amount_fen), asked=format_fen(amount_fen)
            )
        try:
            return self._engine.vouchers.redeem(text, voucher.amount_fen, operator=who.id)
        except VoucherRefused as exc:
            log.info("voucher %s not paid out: %s", voucher.voucher_id, exc)
            code = _refusal_code(str(exc))
            raise _not_payable(code) from None

    # ------------------------------------------------------------------ receipts

    def reprint(self, receipt_no: str, *, actor: Actor | None = None) -> tuple[bool, str | None]:
        """Print a resident's receipt again by its number (the original if it was never
        printed, otherwise a marked copy); journaled with who asked."""
        who = self._actor(actor, Permission.REPRINT)
        return self._engine.reprint_by_number(receipt_no, by=who.id)

    # ------------------------------------------------------------------ paper

    def _print(self, document: ReceiptDocument) -> tuple[bool, str | None]:
        printer: Printer = self._engine.printer
        try:
            printer.print_receipt(document)
        except PrinterError as exc:
            return False, str(exc)
        return True, None


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _refusal_code(message: str) -> str | None:
    """The platform refusal code kiosk.transactions.vouchers puts in brackets, if any."""
    start, end = message.rfind("("), message.rfind(")")
    if 0 <= start < end:
        return message[start + 1 : end]
    return None


def _not_payable(code: str | None) -> OperatorRefused:
    notice = RESIDENT_NOTICES.get(code or "", NOTICE_REFUSED)
    refused = OperatorRefused(VOUCHER_NOT_PAYABLE, reason=notice)
    refused.code = code
    return refused
