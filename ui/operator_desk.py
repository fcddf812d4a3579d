"""The station operator's screens' logic: operator card and PIN, the six money actions.

Owns the operator's session on screen (who is logged in, what is being typed, the desk's
last answer) and turning each action into calls of kiosk.operator.OperatorDesk on the
runtime's thread: login, record a deposit, the float and deposits, close the day, collect
the cash box, pay a voucher out (its code typed, or scanned: the voucher screen asks the
terminal for voucher codes while it is open, Terminal.want_codes), reprint a receipt,
logout, and the session's timeout.
Every refusal is one line on the screen that asked: the desk's own messages through
operator.po, the screens' texts through operator_ui.po. It never imports Kivy.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING, TypeVar

from kiosk.devices import CardError, OperatorCardBlocked, OperatorPinWrong, ScanPurpose
from kiosk.errors import TranslatedError
from kiosk.i18n import Translate
from kiosk.ledger.cash_box import CashCount, Denomination
from kiosk.ledger.deposits import DepositEntry
from kiosk.money import MAX_FEN, format_fen, parse_yuan
from kiosk.operator.desk import FloatOverview, OperatorDesk, Printed
from kiosk.operator.roles import Actor
from kiosk.operator.session import NotLoggedIn, SessionAction
from kiosk.platform import OutcomeUnknown, Voucher
from kiosk.receipts.identifiers import VOUCHER_ID_LENGTH, grouped_voucher_id
from kiosk.transactions.vouchers import Payout
from ui.journey import Journey
from ui.screen_ids import ScreenId

if TYPE_CHECKING:
    from ui.controller import KioskController

log = logging.getLogger(__name__)
T = TypeVar("T")
# A line on screen, made in the language shown whenever the screen is drawn (a language
# switch redraws it in the other language).
Line = Callable[[Translate], str]


def no_line(_t: Translate) -> str:
    return ""


class OperatorAction(StrEnum):
    """The operator home's buttons (their action ids are op-<value>)."""

    DEPOSIT = "deposit"
    FLOAT = "float"
    CLOSE_DAY = "close_day"
    COLLECT_CASH = "collect_cash"
    PAY_VOUCHER = "pay_voucher"
    REPRINT = "reprint"


# The buttons' labels (message ids of operator_ui.po), in the home page's order.
LABELS: dict[OperatorAction, str] = {
    OperatorAction.DEPOSIT: "Record a deposit",
    OperatorAction.FLOAT: "Float and deposits",
    OperatorAction.CLOSE_DAY: "Close the day",
    OperatorAction.COLLECT_CASH: "Collect the cash box",
    OperatorAction.PAY_VOUCHER: "Pay out a voucher",
    OperatorAction.REPRINT: "Reprint a resident's receipt",
}
SCREEN_OF: dict[OperatorAction, ScreenId] = {
    OperatorAction.DEPOSIT: ScreenId.OPERATOR_DEPOSIT,
    OperatorAction.FLOAT: ScreenId.OPERATOR_FLOAT,
    OperatorAction.CLOSE_DAY: ScreenId.OPERATOR_CLOSE_DAY,
    OperatorAction.COLLECT_CASH: ScreenId.OPERATOR_CASH,
    OperatorAction.PAY_VOUCHER: ScreenId.OPERATOR_VOUCHER,
    OperatorAction.REPRINT: ScreenId.OPERATOR_REPRINT,
}


class Entry(StrEnum):
    """The field the keys type into."""

    AMOUNT = "amount"  # yuan, at most two decimals
    SLIP = "slip"  # the outlet's deposit slip number: letters, digits, '-'
    VOUCHER = "voucher"  # a voucher code: letters and digits
    RECEIPT = "receipt"  # the number after the dash on a receipt
    COUNT = "count"  # pieces of the chosen denomination


# What each field takes, and how much of it (the core checks the value itself).
NUMERIC_ENTRIES = frozenset({Entry.AMOUNT, Entry.RECEIPT, Entry.COUNT})
MAX_LENGTH: dict[Entry, int] = {
    Entry.AMOUNT: 10,  # 7 yuan digits, the point, 2 decimals (at most kiosk.money.MAX_FEN)
    Entry.SLIP: 32,
    Entry.VOUCHER: VOUCHER_ID_LENGTH,
    Entry.RECEIPT: 6,
    Entry.COUNT: 5,
}
POINT = "."
DASH = "-"

# Screen texts built here (message ids of operator_ui.po).
WRONG_PIN = "Wrong operator PIN: {tries} tries left"
CARD_BLOCKED = "This operator card is blocked: the operator's office unblocks it."
NO_OPERATOR_CARD = "Insert the operator card first, then type its PIN."
TYPE_PIN = "Type the operator card's PIN."
TYPE_AMOUNT = "Type the amount in yuan."
TYPE_SLIP = "Type the slip number printed on the outlet's deposit slip."
TYPE_VOUCHER = "Type the 16 letters and digits of the voucher's code."
TYPE_RECEIPT = "Type the number after the dash on the receipt"
NO_ANSWER = "The platform did not answer: nothing was changed. Try again in a moment."
FAILED = "The action failed: {problem}"
DEPOSIT_RECORDED = "Deposit of {amount} on slip {slip} recorded: {state}."
DAY_CLOSED = "Business day {day} closed: {result}."
SHEET_PRINTED = "The day sheet (轧帐单) was printed."
SHEET_NOT_PRINTED = "The day sheet could not be printed: {problem}"
COLLECTED = "Cash box collected: counted {counted}, expected {expected}, discrepancy {difference}."
SLIP_PRINTED = "The collection slip was printed."
SLIP_NOT_PRINTED = "The collection slip could not be printed: {problem}"
VOUCHER_PAID = "Paid: hand {amount} to the resident."
VOUCHER_UNKNOWN = (
    "The platform's answer is not known: do NOT hand over cash yet. Pay the same code again "
    "in a moment to settle it."
)
VOUCHER_SUMMARY = "Voucher {code}: {amount}, {state}, valid until {day}"
# The voucher screen with a scanner (message ids of operator_scan.po).
SCAN_VOUCHER = "Or hold the voucher slip's QR code under the scanner."
VOUCHER_MISREAD = (
    "The scanner could not read a voucher: hold the original voucher slip's QR code under "
    "it again, or type the voucher number."
)
SCAN_MESSAGE_IDS = (SCAN_VOUCHER, VOUCHER_MISREAD)
REPRINTED = "Receipt {number} reprinted."
NOT_REPRINTED = "Receipt {number} could not be printed: {problem}"
BALANCED_TEXT = {True: "balanced", False: "NOT balanced", None: "not checked"}
STATE_TEXT = {"pending": "pending", "confirmed": "confirmed", "refused": "refused"}
VOUCHER_STATE_TEXT = {"issued": "can be paid out", "redeemed": "paid out", "expired": "expired"}
MESSAGE_IDS = (
    *LABELS.values(),
    WRONG_PIN,
    CARD_BLOCKED,
    NO_OPERATOR_CARD,
    TYPE_PIN,
    TYPE_AMOUNT,
    TYPE_SLIP,
    TYPE_VOUCHER,
    TYPE_RECEIPT,
    NO_ANSWER,
    FAILED,
    DEPOSIT_RECORDED,
    DAY_CLOSED,
    SHEET_PRINTED,
    SHEET_NOT_PRINTED,
    COLLECTED,
    SLIP_PRINTED,
    SLIP_NOT_PRINTED,
    VOUCHER_PAID,
    VOUCHER_UNKNOWN,
    VOUCHER_SUMMARY,
    REPRINTED,
    NOT_REPRINTED,
    *BALANCED_TEXT.values(),
    *STATE_TEXT.values(),
    *VOUCHER_STATE_TEXT.values(),
)


def typed(entry: Entry, current: str, key: str) -> str:
    """current with key typed into an entry of that kind; a key the entry does not take, or
    one past its length, changes nothing. Amounts take digits and one point with at most
    two digits after it, so what is typed always reads as whole fen (parse_yuan)."""
    key = key.upper()
    if len(current) >= MAX_LENGTH[entry]:
        return current
    if entry is Entry.AMOUNT:
        if key == POINT:
            return current if POINT in current else (current or "0") + POINT
        if not key.isdigit() or not key.isascii():
            return current
        whole, point, decimals = current.partition(POINT)
        if point and len(decimals) >= 2:
            return current
        after = key if current == "0" else current + key
        return after if _typed_fen(after) <= MAX_FEN else current
    if entry in NUMERIC_ENTRIES:
        return current + key if key.isdigit() and key.isascii() else current
    if entry is Entry.SLIP and key == DASH:
        return current + key if current else current
    return current + key if key.isascii() and key.isalnum() else current


def _typed_fen(text: str) -> int:
    """Fen of a partly typed amount (digits, at most one point, at most two decimals)."""
    whole, _, decimals = text.partition(POINT)
    return int(whole or "0") * 100 + int(decimals.ljust(2, "0"))


def amount_fen(text: str) -> int | None:
    """Integer fen of an amount typed in yuan ("500", "500.5", "500.05"); None: nothing typed.
    Exact: parse_yuan splits yuan and fen as digits, no float is ever made."""
    text = text.rstrip(POINT)
    if not text:
        return None
    return parse_yuan(text)


@dataclass
class OperatorForm:
    """What the operator typed and what the desk answered, on the screen now; replaced when
    another action opens, and on logout or timeout."""

    entry: Entry = Entry.AMOUNT
    values: dict[Entry, str] = field(default_factory=dict)
    counts: dict[Denomination, str] = field(default_factory=dict)
    denomination: Denomination = Denomination.NOTE_100
    error: Line = no_line  # one line: what was wrong and what to do
    outcome: Line = no_line  # the desk's last answer on this screen
    refusal_code: str | None = None  # a voucher refused: the platform's code
    voucher: Voucher | None = None
    paid: bool | None = None  # a payout: True paid, False unknown (hand nothing over)
    overview: FloatOverview | None = None
    expected_fen: int | None = None

    def value(self, entry: Entry) -> str:
        if entry is Entry.COUNT:
            return self.counts.get(self.denomination, "")
        return self.values.get(entry, "")

    def set_value(self, entry: Entry, text: str) -> None:
        if entry is Entry.COUNT:
            self.counts[self.denomination] = text
        else:
            self.values[entry] = text

    def count(self) -> CashCount:
        return CashCount({d: int(v) for d, v in self.counts.items() if v})

    def counted_fen(self) -> int:
        return sum(d.value_fen * int(v) for d, v in self.counts.items() if v)


def refusal_line(t: Translate, error: Exception) -> str:
    """One line for an error of the desk or the card, in the screen's language."""
    if isinstance(error, OperatorPinWrong):
        return t(WRONG_PIN).format(tries=error.tries_left)
    if isinstance(error, OperatorCardBlocked):
        return t(CARD_BLOCKED)
    if isinstance(error, CardError):
        return t(NO_OPERATOR_CARD)
    if isinstance(error, TranslatedError):
        return error.translated(t)
    if isinstance(error, OutcomeUnknown):
        return t(NO_ANSWER)
    return t(FAILED).format(problem=str(error))


class OperatorConsole:
    """The operator's screens' state and actions, held by the controller as `operator`."""

    def __init__(self, controller: "KioskController") -> None:
        self.c = controller
        self.actor: Actor | None = None
        self.form = OperatorForm()
        self._message: Line = no_line  # the home page's line: the last action's result
        self._codes_wanted = False  # the terminal was asked for voucher codes
        self._scanned: str | None = None  # a voucher scanned while a call was under way
        controller.listeners.append(self._screen_shown)

    @property
    def message(self) -> str:
        return self._message(self.c.t)

    @property
    def error(self) -> str:
        """The form's refusal line in the language shown."""
        return self.form.error(self.c.t)

    @property
    def outcome(self) -> str:
        return self.form.outcome(self.c.t)

    def say(self, line: Line) -> None:
        """The home page's line from now on."""
        self._message = line

    @property
    def desk(self) -> OperatorDesk:
        return self.c.terminal.operator

    def session_timeout_s(self) -> float | None:
        """The operator session's timeout while logged in (the configuration's
        [operator] session_timeout_s), else None (the resident's idle timeout applies)."""
        if self.actor is None:
            return None
        return float(self.c.terminal.config.operator.session_timeout_s)

    # ------------------------------------------------------------------ session

    def open_login(self) -> None:
        self.c.journey = Journey()
        self.form = OperatorForm()
        self.c.show(ScreenId.OPERATOR_LOGIN)

    def submit_pin(self) -> None:
        """OperatorDesk.login: the card in the reader verifies the PIN (3 tries); the core
        journals the login or the refusal (a security event)."""
        c = self.c
        pin = c.journey.digits
        c.journey.digits = ""
        if not pin:
            c.journey.error = c.t(TYPE_PIN)
            c.refresh()
            return
        desk = self.desk

        def verified(actor: Actor) -> None:
            self.actor = actor
            self._message = no_line
            self.home()

        def refused(error: Exception) -> None:
            c.journey.error = refusal_line(c.t, error)
            c.show(ScreenId.OPERATOR_LOGIN)

        c.run(
            lambda: desk.login(pin),
            verified,
            busy=c.t("Checking the operator card..."),
            failed=refused,
        )

    def logout(self) -> None:
        self._end(SessionAction.LOGOUT)

    def timed_out(self) -> None:
        """Left alone past the session timeout: the session ends (journaled as expired)."""
        self._end(SessionAction.EXPIRED)

    def card_removed(self) -> None:
        """The operator card left the reader: the session ends with it (logout), so nobody
        who walks up after the operator finds the money screens open."""
        if self.actor is not None:
            self._end(SessionAction.LOGOUT)

    def _end(self, action: SessionAction) -> None:
        c = self.c
        sessions = self.desk.sessions

        def ended(_: object) -> None:
            self.actor = None
            self.form = OperatorForm()
            self._message = no_line
            c.go_idle()

        c.run(lambda: sessions.logout(action), ended, busy=c.t("Please wait"), failed=ended)

    def home(self) -> None:
        self.form = OperatorForm()
        self.c.journey = Journey()
        self.c.show(ScreenId.OPERATOR_HOME)

    # ------------------------------------------------------------------ typing

    def choose(self, entry: Entry) -> None:
        self.form.entry = entry
        self.form.error = no_line
        self.c.refresh()

    def choose_denomination(self, denomination: Denomination) -> None:
        self.form.denomination = denomination
        self.form.entry = Entry.COUNT
        self.form.error = no_line
        self.c.refresh()

    def press(self, key: str) -> None:
        form = self.form
        form.set_value(form.entry, typed(form.entry, form.value(form.entry), key))
        form.error = no_line
        self.c.refresh()

    def delete(self) -> None:
        form = self.form
        form.set_value(form.entry, form.value(form.entry)[:-1])
        form.error = no_line
        self.c.refresh()

    def clear(self) -> None:
        self.form.set_value(self.form.entry, "")
        self.form.error = no_line
        self.c.refresh()

    # ------------------------------------------------------------------ doing

    def _call(
        self,
        call: Callable[[], T],
        done: Callable[[T], None],
        *,
        back_to: ScreenId,
        busy: str = "Please wait",
    ) -> None:
        """call() on the runtime's thread; a refusal becomes the form's one line on back_to,
        a session the core ended (timeout) goes back to the login screen."""
        c = self.c

        def failed(error: Exception) -> None:
            if isinstance(error, NotLoggedIn):
                self.actor = None
                self.form = OperatorForm()
                c.journey = Journey()
                c.journey.error = error.translated(c.t)
                c.show(ScreenId.OPERATOR_LOGIN)
                return
            self.form.error = lambda t: refusal_line(t, error)
            self.form.refusal_code = getattr(error, "code", None)
            c.show(back_to)

        c.run(call, done, busy=c.t(busy), failed=failed)

    def open(self, action: OperatorAction) -> None:
        """A home page button: its screen, with what it shows asked of the desk first."""
        self.form = OperatorForm()
        desk, c = self.desk, self.c
        screen = SCREEN_OF[action]
        if action in (OperatorAction.FLOAT, OperatorAction.CLOSE_DAY):

            def overview(result: FloatOverview) -> None:
                self.form.overview = result
                c.show(screen)

            self._call(desk.float_overview, overview, back_to=ScreenId.OPERATOR_HOME)
            return
        if action is OperatorAction.COLLECT_CASH:

            def expected(result: int) -> None:
                self.form.expected_fen = result
                self.form.entry = Entry.COUNT
                c.show(screen)

            self._call(desk.cash_expected_fen, expected, back_to=ScreenId.OPERATOR_HOME)
            return
        self.form.entry = {
            OperatorAction.DEPOSIT: Entry.AMOUNT,
            OperatorAction.PAY_VOUCHER: Entry.VOUCHER,
            OperatorAction.REPRINT: Entry.RECEIPT,
        }[action]
        c.show(screen)

    def _invalid(self, message_id: str) -> None:
        self.form.error = lambda t: t(message_id)
        self.c.refresh()

    def record_deposit(self) -> None:
        """OperatorDesk.record_deposit: at least 500 yuan with the slip's number; pending
        until the platform confirms it (the float screen shows when)."""
        form, desk = self.form, self.desk
        fen = amount_fen(form.value(Entry.AMOUNT))
        slip = form.value(Entry.SLIP)
        if fen is None:
            self._invalid(TYPE_AMOUNT)
            return
        if not slip:
            self._invalid(TYPE_SLIP)
            return

        def recorded(entry: DepositEntry) -> None:
            self.say(
                lambda t: t(DEPOSIT_RECORDED).format(
                    amount=format_fen(entry.amount_fen),
                    slip=entry.slip_no,
                    state=t(STATE_TEXT.get(str(entry.state), str(entry.state))),
                )
            )
            self.home()

        self._call(
            lambda: desk.record_deposit(fen, slip), recorded, back_to=ScreenId.OPERATOR_DEPOSIT
        )

    def refresh_float(self) -> None:
        """Ask the platform about pending deposits now, then show the float again."""
        desk, c = self.desk, self.c

        def read() -> FloatOverview:
            desk.check_deposits()
            return desk.float_overview()

        def shown(result: FloatOverview) -> None:
            self.form.overview = result
            c.show(ScreenId.OPERATOR_FLOAT)

        self._call(read, shown, back_to=ScreenId.OPERATOR_FLOAT)

    def close_day(self) -> None:
        """OperatorDesk.close_day: the open business day closed (日终轧帐), its 轧帐单 printed."""
        desk = self.desk

        def closed(result: Printed) -> None:
            record = result.record
            balanced = record.get("balanced")
            key = balanced if isinstance(balanced, bool) else None

            def line(t: Translate) -> str:
                day = t(DAY_CLOSED).format(
                    day=record.get("business_day"), result=t(BALANCED_TEXT[key])
                )
                return f"{day} {printed_line(t, result, SHEET_PRINTED, SHEET_NOT_PRINTED)}"

            self.say(line)
            self.home()

        self._call(
            desk.close_day, closed, back_to=ScreenId.OPERATOR_CLOSE_DAY, busy="Closing the day..."
        )

    def print_day_sheet(self) -> None:
        """OperatorDesk.print_day_sheet: the latest closed day's 轧帐单 again (a copy), e.g.
        after the printer ran out of paper at the close."""
        desk = self.desk
        overview = self.form.overview
        day = None if overview is None else overview.last_closed_day
        if day is None:
            return
        closed = date.fromisoformat(day)

        def printed(result: Printed) -> None:
            self.say(lambda t: printed_line(t, result, SHEET_PRINTED, SHEET_NOT_PRINTED))
            self.home()

        self._call(
            lambda: desk.print_day_sheet(closed),
            printed,
            back_to=ScreenId.OPERATOR_CLOSE_DAY,
            busy="Printing your receipt...",
        )

    def collect_cash(self) -> None:
        """OperatorDesk.collect_cash: the count by denomination journaled with what was
        expected and the discrepancy, the 清机单 printed."""
        desk, c = self.desk, self.c
        try:
            count = self.form.count()
        except TranslatedError as exc:
            refused = exc
            self.form.error = lambda t: refused.translated(t)
            c.refresh()
            return

        def collected(result: Printed) -> None:
            record = result.record

            def line(t: Translate) -> str:
                counted = t(COLLECTED).format(
                    counted=_fen(record.get("counted_fen")),
                    expected=_fen(record.get("expected_fen")),
                    difference=_fen(record.get("discrepancy_fen")),
                )
                return f"{counted} {printed_line(t, result, SLIP_PRINTED, SLIP_NOT_PRINTED)}"

            self.say(line)
            self.home()

        self._call(lambda: desk.collect_cash(count), collected, back_to=ScreenId.OPERATOR_CASH)

    def look_up_voucher(self) -> None:
        """OperatorDesk.voucher_lookup: amount and state shown before anything is paid."""
        form, c, desk = self.form, self.c, self.desk
        code = form.value(Entry.VOUCHER)
        form.voucher, form.paid, form.outcome, form.refusal_code = None, None, no_line, None
        if not code:
            self._invalid(TYPE_VOUCHER)
            return

        def found(voucher: Voucher) -> None:
            form.voucher = voucher
            c.show(ScreenId.OPERATOR_VOUCHER)

        self._call(lambda: desk.voucher_lookup(code), found, back_to=ScreenId.OPERATOR_VOUCHER)

    def pay_voucher(self) -> None:
        """OperatorDesk.pay_voucher for the amount shown: "paid" only when the desk says
        paid; an unknown answer says to hand nothing over yet."""
        form, c, desk = self.form, self.c, self.desk
        voucher = form.voucher
        if voucher is None:
            self.look_up_voucher()
            return
        code, amount = voucher.voucher_id, voucher.amount_fen

        def answered(payout: Payout) -> None:
            form.paid = payout.paid
            if payout.paid:
                form.voucher = None
                form.set_value(Entry.VOUCHER, "")
                paid = format_fen(payout.amount_fen)
                form.outcome = lambda t: t(VOUCHER_PAID).format(amount=paid)
            else:
                form.outcome = lambda t: t(VOUCHER_UNKNOWN)
            c.show(ScreenId.OPERATOR_VOUCHER)

        self._call(
            lambda: desk.pay_voucher(code, amount), answered, back_to=ScreenId.OPERATOR_VOUCHER
        )

    def reprint(self) -> None:
        """OperatorDesk.reprint by the receipt's number (the digits after the dash)."""
        form, c, desk = self.form, self.c, self.desk
        digits = form.value(Entry.RECEIPT)
        if not digits:
            self._invalid(TYPE_RECEIPT)
            return
        number = f"{c.terminal.config.station.terminal_id}-{int(digits):06d}"

        def printed(result: tuple[bool, str | None]) -> None:
            ok, problem = result
            if ok:
                self.say(lambda t: t(REPRINTED).format(number=number))
            else:
                self.say(lambda t: t(NOT_REPRINTED).format(number=number, problem=t(problem or "")))
            self.home()

        self._call(
            lambda: desk.reprint(number),
            printed,
            back_to=ScreenId.OPERATOR_REPRINT,
            busy="Printing your receipt...",
        )

    # ------------------------------------------------------------------ scanned vouchers

    @property
    def scanner_present(self) -> bool:
        return self.c.terminal.scanner is not None

    def _screen_shown(self, screen: ScreenId) -> None:
        """Voucher codes are wanted while the voucher screen is open (and through the busy
        screen of its own calls); any other screen gives them up."""
        if screen == ScreenId.BUSY:
            return
        self._want_codes(screen == ScreenId.OPERATOR_VOUCHER and self.actor is not None)
        if screen == ScreenId.OPERATOR_VOUCHER and self._scanned is not None:
            voucher_id, self._scanned = self._scanned, None
            self.voucher_scanned(voucher_id)
        elif screen != ScreenId.OPERATOR_VOUCHER:
            self._scanned = None

    def _want_codes(self, wanted: bool) -> None:
        if wanted == self._codes_wanted or self.c.terminal.scanner is None:
            return
        self._codes_wanted = wanted
        terminal = self.c.terminal

        def failed(error: Exception) -> None:  # typing the code still works
            self._codes_wanted = False
            log.warning("voucher codes not wanted from the scanner: %s", error)

        self.c.worker.submit(
            lambda: terminal.want_codes(ScanPurpose.VOUCHER, wanted), lambda _: None, failed
        )

    def voucher_scanned(self, voucher_id: object) -> None:
        """The runtime's VOUCHER_CODE_SCANNED: the code fills the field and is looked up at
        once; the operator confirms the payout as when it is typed. A scan that arrives
        while a call is under way waits for the voucher screen to come back."""
        if self.actor is None or not isinstance(voucher_id, str):
            return
        c = self.c
        if c.screen == ScreenId.BUSY and self._codes_wanted:
            self._scanned = voucher_id
            return
        if c.screen != ScreenId.OPERATOR_VOUCHER:
            return
        voucher = self.form.voucher
        if voucher is not None and voucher.voucher_id == voucher_id:
            return  # the slip shown, read again
        c.touched()
        self.form.entry = Entry.VOUCHER
        self.form.error = no_line
        self.form.set_value(Entry.VOUCHER, voucher_id)
        self.look_up_voucher()

    def voucher_misread(self) -> None:
        """The runtime's VOUCHER_CODE_MISREAD: one line on the voucher screen, nothing sent."""
        if self.actor is None or self.c.screen != ScreenId.OPERATOR_VOUCHER:
            return
        self.c.touched()
        self._invalid(VOUCHER_MISREAD)

    # ------------------------------------------------------------------ what screens show

    def voucher_summary(self) -> str:
        """The voucher looked up, in one line: code, amount, state, last day."""
        voucher, t = self.form.voucher, self.c.t
        if voucher is None:
            return ""
        return t(VOUCHER_SUMMARY).format(
            code=grouped_voucher_id(voucher.voucher_id),
            amount=format_fen(voucher.amount_fen),
            state=t(VOUCHER_STATE_TEXT.get(str(voucher.state), str(voucher.state))),
            day=voucher.expires.isoformat(),
        )


def printed_line(t: Translate, result: Printed, printed: str, not_printed: str) -> str:
    """Whether a paper printed, or the printer's problem."""
    if result.printed:
        return t(printed)
    return t(not_printed).format(problem=t(result.problem or ""))


def _fen(value: object) -> str:
    return format_fen(value) if isinstance(value, int) and not isinstance(value, bool) else "-"
