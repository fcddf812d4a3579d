"""The terminal core as one object: what the UI, the soak driver and the CLI talk to.

It wires the journal, the transaction engine, the float account and the day closer to one
database and one set of devices, and offers the resident's journeys as plain calls. The
devices, signer, platform client and catalog are given to it (see station.composition).
"""

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TextIO, TypeVar

from kiosk.board_supervisor import BoardSupervisor
from kiosk.catalog import Catalog, CatalogError, Service
from kiosk.clock import Clock
from kiosk.clock_guard import ClockGuard
from kiosk.config import Config
from kiosk.devices import (
    BoardStatus,
    CardError,
    CardReader,
    CashAcceptor,
    DeviceError,
    IoBoard,
    PaymentCodeScanner,
    PrepaidCard,
    Printer,
    ScanPurpose,
)
from kiosk.diagnostics.visit import MaintenanceVisit, journal_visit
from kiosk.errors import KioskError
from kiosk.events import Event, EventBus
from kiosk.instance_lock import DataDirectoryLock
from kiosk.journal import Journal, export_jsonl
from kiosk.ledger.cash_box import CashBox
from kiosk.ledger.deposits import Deposits
from kiosk.ledger.float_account import FloatAccount
from kiosk.operator.desk import OperatorDesk
from kiosk.operator.session import OperatorSessions
from kiosk.platform import Bill, OutcomeUnknown, PlatformClient, PlatformError, PlatformRefused
from kiosk.ratings import RatingStore
from kiosk.receipts import StationInfo
from kiosk.receipts.test_page import printer_test_page
from kiosk.service_faults import Fault, blocking
from kiosk.settlement.calendar import BusinessCalendar
from kiosk.settlement.day_close import DayCloser
from kiosk.signing import Signer, SignerError
from kiosk.storage import open_database, write_transaction
from kiosk.transactions.engine import (
    Outcome,
    PaymentRefused,
    Progress,
    QrPayment,
    TransactionEngine,
)
from kiosk.transactions.kinds import QrStage, TxKind

log = logging.getLogger(__name__)
T = TypeVar("T")
# One platform request of a payment by phone waits at most this long (one attempt): the
# resident's screen polls again (kiosk.runtime's budget, docs/deploy.md).
QR_CALL_S = 4.0


@dataclass(frozen=True)
class Duty:
    """One step of housekeeping; `platform`: it may call the operator platform."""

    name: str
    run: Callable[[], object]
    platform: bool = True


def fault_of(error: BaseException) -> Fault | None:
    """The fault an error at start or in housekeeping proves, if any (else it is logged)."""
    if isinstance(error, SignerError):
        return Fault.TOKEN_UNAVAILABLE
    if isinstance(error, OutcomeUnknown):
        return Fault.PLATFORM_UNREACHABLE
    if isinstance(error, PlatformRefused):
        return Fault.PLATFORM_REFUSED
    if isinstance(error, CatalogError):
        return Fault.CATALOG_UNAVAILABLE
    return None


@dataclass(frozen=True)
class BillQuote:
    """A bill looked up and priced, shown to the resident for confirmation before paying."""

    service: Service
    account: str
    bill: Bill
    fee_fen: int

    @property
    def total_fen(self) -> int:
        return self.bill.amount_due_fen + self.fee_fen


@dataclass(frozen=True)
class TopupQuote:
    """A phone or prepaid card top-up priced, shown to the resident before the inlets open."""

    service: Service
    account: str  # the phone number or the card number, normalised by the catalog's rule
    amount_fen: int
    fee_fen: int

    @property
    def total_fen(self) -> int:
        return self.amount_fen + self.fee_fen


class Terminal:
    def __init__(
        self,
        config: Config,
        *,
        signer: Signer,
        platform: PlatformClient,
        catalog: Callable[[], Catalog],
        cash: CashAcceptor,
        cards: CardReader,
        printer: Printer,
        clock: Clock,
        events: EventBus | None = None,
        board: IoBoard | None = None,
        instance_lock: DataDirectoryLock | None = None,
        scanner: PaymentCodeScanner | None = None,
    ) -> None:
        # First: nothing of a terminal another process runs may be touched.
        self.instance_lock = instance_lock or DataDirectoryLock(config.data_path)
        self.config = config
        self.clock = clock
        self.events = events or EventBus()
        self.platform = platform
        self.catalog = catalog
        self._conn = open_database(config.database_path)
        station = config.station
        self.journal = Journal(
            self._conn,
            signer,
            station=station.institution_no,
            terminal=station.terminal_id,
            clock=clock,
        )
        self.calendar = BusinessCalendar(self._conn, self.journal, config.business.cutoff_time())
        self.signer = signer
        # Reads residents' payment codes while a payment by phone waits, and voucher slips'
        # codes while the operator's voucher screen is open (want_codes; kiosk.runtime).
        self.scanner = scanner
        self._codes_wanted: set[ScanPurpose] = set()
        self._scanner_armed: ScanPurpose | None = None
        self.clock_guard = ClockGuard(
            self._conn, self.journal, clock, self.events, skew=platform.clock_skew
        )
        self._engine = TransactionEngine(
            conn=self._conn,
            journal=self.journal,
            platform=platform,
            catalog=catalog,
            cash=cash,
            cards=cards,
            printer=printer,
            clock=clock,
            calendar=self.calendar,
            terminal_id=station.terminal_id,
            station=StationInfo.from_config(station),
            columns=config.devices.receipt_columns,
            events=self.events,
            guard=self.clock_guard,
            voucher_valid_days=config.business.voucher_valid_days,
            collect_timeout=timedelta(seconds=config.business.collect_timeout_s),
        )
        self.float_account = FloatAccount(
            self._conn,
            self.journal,
            platform,
            self.events,
            config.business.low_float_threshold_fen,
        )
        self.cash_box = CashBox(self._conn, self.journal, self.events)
        self.days = DayCloser(
            self._conn,
            self.journal,
            self.calendar,
            self.float_account,
            self.clock_guard,
            cash_box=self.cash_box,
            events=self.events,
            open_transactions=lambda: [r.tx_id for r in self._engine.store.open_transactions()],
        )
        # The station operator's day (kiosk.operator): deposits, day close, cash box,
        # vouchers, reprints; the screens, kiosk-tool and remote commands call it.
        self.operator = OperatorDesk(
            sessions=OperatorSessions(
                self._conn,
                self.journal,
                cards,
                clock,
                self.events,
                timeout=timedelta(seconds=config.operator.session_timeout_s),
            ),
            deposits=Deposits(self._conn, self.journal, platform, clock, self.events),
            float_account=self.float_account,
            cash_box=self.cash_box,
            days=self.days,
            calendar=self.calendar,
            engine=self._engine,
            journal=self.journal,
            platform=platform,
            catalog=catalog,
            close_day=lambda day, by: self.close_day(day, closed_by=by),
            now=clock.now,
            station=StationInfo.from_config(station),
            columns=config.devices.receipt_columns,
        )
        self.board = BoardSupervisor(
            self._conn, self.journal, board, self.events, service_state=self.service_state
        )
        # Causes found by start() and housekeeping that keep the terminal out of service.
        self.faults: dict[Fault, str] = {}
        self.registered = False
        self.events.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        # A payment or a refusal changes what the float can cover: notice a low balance
        # now, before it stops business.
        if event.kind == "tx_closed" and event.data.get("outcome") in ("paid", "refused"):
            try:
                self.float_account.refresh()
            except (SignerError, PlatformError) as exc:
                # Housekeeping asks again; a token or platform outage is reported elsewhere.
                log.warning("float balance not refreshed after a payment: %s", exc)
        if event.kind == "board_restart":
            # The board forgets in RAM whether its inlets were open: a restart in the middle
            # of a payment must not hand the resident's next notes back.
            self._engine.reassert_inlets()

    # ------------------------------------------------------------------ life cycle

    def start(self) -> list[Outcome]:
        """Open the journal, resolve what a restart left open, catch up missed days.

        Only a journal that cannot open raises: without it nothing may happen. Every later
        step is guarded: a missing token, a refusing or silent platform or a failing device
        leaves the terminal started with the cause in `faults` (kiosk.service_faults), and
        housekeeping (`housekeeping_duties`) tries again until the cause clears.
        """
        self.journal.open()
        self.faults.clear()
        self.check_token()
        outcomes = self.guarded("recovery", self._engine.recover, recovery=True) or []
        self.guarded("registration", self._register)
        self.guarded("float balance", self._refresh_float)
        self.guarded("deposits", self.operator.check_deposits)
        self.guarded("day close", self.close_due_days)
        return outcomes

    def guarded(self, step: str, call: Callable[[], T], *, recovery: bool = False) -> T | None:
        """call(), or None with its cause recorded in `faults` when it fails.

        A step that succeeds clears nothing by itself: each fault is cleared by the step
        that proves it gone (check_token, a platform answer, a recovery run to its end).
        """
        try:
            result = call()
        except KioskError as exc:  # token, platform, catalog, device: all say what failed
            fault = fault_of(exc)
            log.warning("%s did not complete (%s): %s", step, fault or "logged only", exc)
            if fault is not None:
                self.faults[fault] = f"{step}: {exc}"
            if recovery:
                self.faults[Fault.RECOVERY_INCOMPLETE] = f"{step}: {exc}"
            return None
        if recovery:
            self.faults.pop(Fault.RECOVERY_INCOMPLETE, None)
        return result

    def check_token(self) -> bool:
        """Whether the token can sign now, by its own health report; clears or sets the fault."""
        try:
            health = self.signer.health()
        except Exception as exc:  # a broken driver is an unavailable token, not a crash
            health = {"present": False, "last_error": f"{type(exc).__name__}: {exc}"}
        usable = bool(health.get("present")) and health.get("logged_in", True) is not False
        if usable:
            self.faults.pop(Fault.TOKEN_UNAVAILABLE, None)
        else:
            detail = health.get("last_error") or "the token is not present"
            self.faults[Fault.TOKEN_UNAVAILABLE] = f"token: {detail}"
        return usable

    def _register(self) -> None:
        self.platform.register()
        self.registered = True
        self.faults.pop(Fault.PLATFORM_UNREACHABLE, None)
        self.faults.pop(Fault.PLATFORM_REFUSED, None)

    def _refresh_float(self) -> None:
        # FloatAccount.refresh keeps the last balance when the platform is silent; the
        # direct query first is what tells whether the platform answers (or refuses).
        self.platform.float_state()
        self.float_account.refresh()
        self.faults.pop(Fault.PLATFORM_UNREACHABLE, None)
        if self.registered:  # a refused registration stays until registration succeeds
            self.faults.pop(Fault.PLATFORM_REFUSED, None)

    def close_due_days(self, *, confirmed_by: str | None = None) -> list[dict[str, object]]:
        """Close the business days due; refused (ClockWrong, CatchUpRefused) while the clock
        is not trusted or too many are due without a technician's confirmation."""
        return self.days.close_due_days(self.clock.now(), confirmed_by=confirmed_by)

    def _close_due_days_quietly(self) -> None:
        try:
            self.close_due_days()
        except KioskError as exc:
            log.warning("business days not closed now: %s", exc)

    def close_day(
        self,
        day: date | None = None,
        *,
        confirmed_by: str | None = None,
        closed_by: str | None = None,
    ) -> dict[str, object]:
        """Close a business day on demand (default: the current one), and any open before it.

        Transactions that close afterwards belong to the next day (kiosk.settlement.calendar).
        closed_by names who asked (journaled in the report); default: the technician in
        maintenance mode, if any. The station operator closes through self.operator.
        """
        if closed_by is None:
            technician = self.board.technician
            closed_by = "terminal" if technician is None else f"technician:{technician}"
        now = self.clock.now()
        today = self.calendar.day_of(now)
        if day is None:
            day = today
        open_now = self._engine.store.open_transactions()
        if open_now and day >= today:
            raise KioskError(
                "a transaction is still open: finish it before closing the day "
                f"({', '.join(r.tx_id for r in open_now)})"
            )
        record = self.days.close(day, now, confirmed_by=confirmed_by, closed_by=closed_by)
        self.events.publish("day_closed", business_day=day.isoformat())
        return record

    def service_state(self) -> str:
        """What the lamp shows: maintenance, out_of_service, attention or in_service.

        Out of service: a latched tamper, no working signature device (no payment can
        start) or a fault found at start or in housekeeping that stops payments
        (kiosk.service_faults). Attention: the printer is not ready or its paper runs low,
        or the float is low.
        """
        if self.board.technician is not None:
            return "maintenance"
        if (
            self.board.tamper_latched
            or not self.journal.signing_available()
            or blocking(self.faults)
        ):
            return "out_of_service"
        if not self.clock_guard.check().ok:
            return "out_of_service"
        try:
            printer = self._engine.printer.status()
            printer_fine = printer.ready and not printer.paper_near_end
        except DeviceError:
            printer_fine = False
        float_state = self.float_account.last_known()
        float_low = float_state is not None and (
            float_state.balance_fen < self.config.business.low_float_threshold_fen
        )
        return "in_service" if printer_fine and not float_low else "attention"

    def _admit(self) -> None:
        """Refuse a new payment in maintenance mode or after a tamper alarm."""
        if self.board.technician is not None:
            raise PaymentRefused("the terminal is in maintenance: please come back shortly")
        if self.board.tamper_latched:
            raise PaymentRefused(
                "the terminal is out of service after a tamper alarm: the station staff"
                " have been told"
            )

    def enter_maintenance(self, technician_id: str) -> None:
        """Maintenance mode for a technician whose card and PIN were verified."""
        self.board.enter_maintenance(technician_id)

    def technician_login(self, pin: str) -> str:
        """Verify the technician card in the reader with pin, then enter maintenance mode.

        Returns the technician id. Raises TechnicianPinWrong (tries left),
        TechnicianCardBlocked, CardError (no technician card, or a reader that has no
        technician application). A refused PIN is journaled: it is a security event.
        """
        verify = getattr(self._engine.cards, "verify_technician", None)
        if verify is None:
            raise CardError("this card reader cannot read technician cards")
        try:
            technician_id = str(verify(pin))
        except CardError as exc:
            with write_transaction(self._conn):
                self.journal.append(
                    "technician_refused",
                    {"reason": type(exc).__name__, "tries_left": getattr(exc, "tries_left", None)},
                )
            self.events.publish("technician_refused", reason=type(exc).__name__)
            raise
        self.enter_maintenance(technician_id)
        return technician_id

    def leave_maintenance(self) -> None:
        self.board.leave_maintenance()

    def clear_tamper(self) -> None:
        self.board.clear_tamper()

    @property
    def tamper_latched(self) -> bool:
        return self.board.tamper_latched

    def drain_cash(self) -> None:
        """Journal every note and coin counted; cash counted while idle becomes a voucher."""
        self._engine.drain_cash()

    def print_test_receipt(self) -> None:
        """The printer test page (maintenance mode); raises the printer's error if it fails."""
        self._engine.printer.print_receipt(printer_test_page(self.config.devices.receipt_columns))

    def board_status(self) -> BoardStatus | None:
        """The I/O board's status, or None when this terminal has no board."""
        if self.board.board is None:
            return None
        return self.board.board.board_status()

    def read_card(self) -> PrepaidCard | None:
        """The prepaid card in the reader, after finishing any credit still owed to it."""
        self._engine.card_inserted()
        return self._engine.cards.read_prepaid()

    def device_health(self) -> dict[str, dict[str, object]]:
        """Every device's own health report, for the status page, diagnostics and telemetry.

        A device whose health() itself fails is reported with that error, never skipped.
        """
        devices: dict[str, object] = {
            "printer": self._engine.printer,
            "card_reader": self._engine.cards,
            "cash": self._engine.cash,
            "token": self.signer,
        }
        board: object = self.board.board
        if board is not None and board is not self._engine.cash:  # a real board is both
            devices["ioboard"] = board
        report: dict[str, dict[str, object]] = {}
        for name, device in devices.items():
            try:
                report[name] = dict(device.health())  # type: ignore[attr-defined]
            except Exception as exc:  # a broken driver must not hide the others
                report[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return report

    def tick(self) -> None:
        """Periodic housekeeping, every duty in turn: signer outage, board, in-doubt
        postings, holds, deposits, days. The runtime (kiosk.runtime) runs the same duties
        one at a time, each bounded, so that it never holds the terminal's thread long."""
        for duty in self.housekeeping_duties():
            duty.run()

    def housekeeping_duties(self) -> list[Duty]:
        """The housekeeping due now, in order; `platform` marks the duties that call it.

        Retries of what start could not finish come first (token, recovery, registration,
        float), then the regular duties.
        """
        duties = [Duty("signer", self._signer_duty, platform=False)]
        duties.append(Duty("clock", self._clock_duty, platform=False))
        duties.append(Duty("board", self.board.tick, platform=False))
        if Fault.RECOVERY_INCOMPLETE in self.faults:
            duties.append(
                Duty(
                    "recovery",
                    lambda: self.guarded("recovery", self._engine.recover, recovery=True),
                )
            )
        if not self.registered:
            duties.append(
                Duty("registration", lambda: self.guarded("registration", self._register))
            )
        if self.faults.keys() & {Fault.PLATFORM_UNREACHABLE, Fault.PLATFORM_REFUSED}:
            duties.append(
                Duty("float balance", lambda: self.guarded("float balance", self._refresh_float))
            )
        duties.append(Duty("abandoned payment", self._engine.void_abandoned))
        for tx_id in self._engine.settling():
            duties.append(Duty(f"in-doubt {tx_id}", functools.partial(self._engine.settle, tx_id)))
        duties.append(Duty("holds", self._engine.release_holds))
        duties.append(Duty("vouchers", self._engine.register_vouchers))
        duties.append(Duty("deposits", self.operator.check_deposits))
        duties.append(Duty("day close", self._close_due_days_quietly))
        return duties

    def _clock_duty(self) -> None:
        if self.clock_guard.check().ok:
            self.faults.pop(Fault.CLOCK_WRONG, None)
        else:
            self.faults[Fault.CLOCK_WRONG] = "clock: see the clock_wrong alert"

    def _signer_duty(self) -> None:
        if self.check_token() and not self.journal.signing_available():
            if self.journal.try_recover_signing():
                # The outage's collective record is written as soon as the token works again.
                self.events.publish("signer_recovered")

    def card_present(self) -> bool | None:
        """Whether a card is in the slot, by the reader's status (no APDU); None: unknown."""
        try:
            present = self._engine.cards.health().get("card_present")
        except Exception as exc:  # a reader that fails its status says so in device health
            log.debug("card slot not read: %s", exc)
            return None
        return present if isinstance(present, bool) else None

    def close(self) -> None:
        self._conn.close()
        self.instance_lock.release()

    # ------------------------------------------------------------------ journeys

    def quote_bill(self, service_code: str, account: str) -> BillQuote:
        service = self.catalog().service(service_code)
        if service.kind != "bill":
            raise KioskError(f"{service.name} is not a bill payment")
        account = service.validate_account(account)
        bill = self.platform.lookup_bill(service.biller, account)
        fee = service.fee_on(self.clock.now().date(), bill.amount_due_fen)
        return BillQuote(service, account, bill, fee)

    def pay_bill(self, quote: BillQuote) -> Progress:
        self._admit()
        return self._engine.begin(
            kind=TxKind.BILL,
            service=quote.service,
            account=quote.account,
            due_fen=quote.bill.amount_due_fen,
            bill_id=quote.bill.bill_id,
        )

    def quote_topup(self, service_code: str, account: str, amount_fen: int) -> TopupQuote:
        """The fee and total of a phone or card top-up today, for the confirmation screen.

        Checks the number against the catalog's rule and the amount against the service's
        bounds (AccountInvalid, MoneyError); nothing is held or journaled.
        """
        service = self.catalog().service(service_code)
        if service.kind not in ("phone_topup", "card_topup"):
            raise KioskError(f"{service.name} is not a top-up")
        account = service.validate_account(account)
        service.check_amount(amount_fen)
        fee = service.fee_on(self.clock.now().date(), amount_fen)
        return TopupQuote(service, account, amount_fen, fee)

    def start_phone_topup(self, service_code: str, phone: str, amount_fen: int) -> Progress:
        self._admit()
        service = self.catalog().service(service_code)
        if service.kind != "phone_topup":
            raise KioskError(f"{service.name} is not a phone top-up")
        phone = service.validate_account(phone)
        return self._engine.begin(
            kind=TxKind.PHONE_TOPUP, service=service, account=phone, due_fen=amount_fen
        )

    def start_card_topup(self, service_code: str, amount_fen: int) -> Progress:
        service, card = self._card_for(service_code)
        return self._engine.begin(
            kind=TxKind.CARD_TOPUP,
            service=service,
            account=card.card_no,
            due_fen=amount_fen,
            card=card,
        )

    def _card_for(self, service_code: str) -> tuple[Service, PrepaidCard]:
        """The card top-up service and the card in the reader, checked for a top-up."""
        self._admit()
        service = self.catalog().service(service_code)
        if service.kind != "card_topup":
            raise KioskError(f"{service.name} is not a prepaid card top-up")
        self._engine.card_inserted()  # an earlier credit for this card comes first
        card = self._engine.cards.read_prepaid()
        if card is None:
            raise PaymentRefused("please insert your prepaid card")
        if card.utility != service.utility:
            raise PaymentRefused(
                f"this is a {card.utility} card; choose the matching top-up service"
            )
        service.validate_account(card.card_no)
        if self._engine.store.card_credits(card.card_no):
            raise PaymentRefused(
                "an earlier top-up of this card is not written yet: keep the card inserted"
            )
        return service, card

    def collect(self, tx_id: str) -> Progress:
        return self._engine.collect(tx_id)

    def collect_cash(self, tx_id: str) -> Progress:
        """collect() for the cash screen, which must tell the resident when the acceptor
        stops answering: collect() only logs it (the runtime drains again), this raises
        the DeviceError. Nothing is lost either way: the acceptor keeps counted cash until
        it is journaled, and the payment stays open for the resident to finish or cancel."""
        self._engine.cash.pending()  # a read: it changes nothing on the acceptor
        return self._engine.collect(tx_id)

    def finish(self, tx_id: str) -> Outcome:
        return self._engine.finish(tx_id)

    def cancel(self, tx_id: str) -> Outcome:
        return self._engine.cancel(tx_id)

    def reprint(self, token: str) -> tuple[bool, str | None]:
        """Print what the token on a resident's paper entitles to (docs/transactions.md)."""
        return self._engine.reprint(token)

    def reprint_by_number(self, receipt_no: str, *, by: str) -> tuple[bool, str | None]:
        """Station staff reprint (or hand over a result never printed) by receipt number."""
        return self._engine.reprint_by_number(receipt_no, by=by)

    # ------------------------------------------------------------------ the facade
    # What callers outside the core need of the engine and the database; the engine and the
    # connection themselves are private (_engine, _conn).

    def card_inserted(self) -> list[str]:
        """Complete every credit still owed to the card in the slot (one pulled out while it
        was being written and brought back); the ids of the transactions it completed."""
        return self._engine.card_inserted()

    def open_transaction_ids(self) -> list[str]:
        """The transactions not closed yet (in progress, in doubt, awaiting the platform)."""
        return [row.tx_id for row in self._engine.store.open_transactions()]

    def export_journal(self, out: TextIO, *, upto: int | None = None) -> int:
        """Write the journal (up to seq upto) as JSON Lines, as kiosk-tool journal export
        does; the number of records written."""
        return export_jsonl(self._conn, out, upto=upto)

    def record_maintenance_visit(self, visit: MaintenanceVisit) -> int:
        """Journal a technician's visit (设备维护记录单) as a signed record; its seq."""
        return journal_visit(self._conn, self.journal, visit)

    def rating_store(self) -> RatingStore:
        """The residents' ratings and complaints, kept in this terminal's database and
        journal (use it on the terminal's thread, as every call of the core)."""
        return RatingStore(self._conn, self.journal)

    # ------------------------------------------------------------------ paying by phone
    # docs/transactions.md, "Payments by phone". Each call makes at most a few platform
    # requests, each one attempt of at most QR_CALL_S (the runtime's budget, kiosk.runtime):
    # what is not answered in time is settled by the next poll or by housekeeping.

    def pay_bill_by_qr(self, quote: BillQuote) -> QrPayment:
        self._admit()
        return self._qr(
            lambda: self._engine.begin_qr(
                kind=TxKind.BILL,
                service=quote.service,
                account=quote.account,
                due_fen=quote.bill.amount_due_fen,
                bill_id=quote.bill.bill_id,
            )
        )

    def start_phone_topup_by_qr(self, service_code: str, phone: str, amount_fen: int) -> QrPayment:
        self._admit()
        service = self.catalog().service(service_code)
        if service.kind != "phone_topup":
            raise KioskError(f"{service.name} is not a phone top-up")
        phone = service.validate_account(phone)
        return self._qr(
            lambda: self._engine.begin_qr(
                kind=TxKind.PHONE_TOPUP, service=service, account=phone, due_fen=amount_fen
            )
        )

    def start_card_topup_by_qr(self, service_code: str, amount_fen: int) -> QrPayment:
        """The card is written after the posting exactly as for a cash top-up."""
        service, card = self._card_for(service_code)
        return self._qr(
            lambda: self._engine.begin_qr(
                kind=TxKind.CARD_TOPUP,
                service=service,
                account=card.card_no,
                due_fen=amount_fen,
                card=card,
            )
        )

    def qr_waiting(self) -> bool:
        """Whether a payment by phone waits for the resident (the runtime reads the scanner)."""
        return self._engine.qr_waiting()

    def present_payment_code(self, tx_id: str, code: str) -> QrPayment:
        """A scanned payment code (付款码). Not a payment code: PaymentCodeInvalid (one line,
        nothing sent); refused by the wallet: PaymentCodeRefused (nothing charged)."""
        return self._qr(lambda: self._engine.qr_present_code(tx_id, code))

    def qr_payment(self, tx_id: str) -> QrPayment:
        """Poll: asks the order's status once and moves the payment on."""
        return self._qr(lambda: self._engine.qr_poll(tx_id))

    def cancel_qr_payment(self, tx_id: str) -> QrPayment:
        return self._qr(lambda: self._engine.qr_cancel(tx_id))

    def _qr(self, call: Callable[[], QrPayment]) -> QrPayment:
        """Run a QR journey call bounded in time; arm the scanner while the payment waits."""
        bounded = getattr(self.platform, "bounded", None)
        if bounded is None:  # a platform stand-in without limits (a unit test's)
            payment = call()
        else:
            with bounded(QR_CALL_S):
                payment = call()
        self._scanner_for(payment.stage is QrStage.WAITING or payment.stage is QrStage.CONFIRMING)
        return payment

    def _scanner_for(self, waiting: bool) -> None:
        self.want_codes(ScanPurpose.PAYMENT, waiting)

    # ------------------------------------------------------------------ the scanner's owner

    def want_codes(self, purpose: ScanPurpose, wanted: bool = True) -> None:
        """A screen wants codes of purpose read (wanted) or no longer; the terminal arms the
        scanner for the one purpose that applies (code_purpose) and the runtime publishes
        what it reads under that purpose only.

        Payments say so themselves (a payment by phone waiting); the operator's voucher
        screen calls this with ScanPurpose.VOUCHER when it opens and wanted=False when it
        closes. Armed once per change of purpose: asking again for the purpose armed keeps
        a code read in between; a change re-arms, which forgets every scan read for the
        other purpose, so a resident's payment code is never taken for a voucher or the
        reverse.
        """
        if wanted:
            self._codes_wanted.add(purpose)
        else:
            self._codes_wanted.discard(purpose)
        self._arm_for(self.code_purpose())

    def code_purpose(self) -> ScanPurpose | None:
        """What the scanner is read for now, if anything: a waiting payment by phone first
        (the resident is at the screen and the order runs out); a voucher only while an
        operator is logged in: a session that ended takes the voucher screen's wish with it,
        and the scanner is disarmed then)."""
        if ScanPurpose.PAYMENT in self._codes_wanted:
            return ScanPurpose.PAYMENT
        if ScanPurpose.VOUCHER in self._codes_wanted:
            if self.operator.sessions.current() is not None:
                return ScanPurpose.VOUCHER
            self._codes_wanted.discard(ScanPurpose.VOUCHER)
            self._arm_for(None)
        return None

    def _arm_for(self, purpose: ScanPurpose | None) -> None:
        if self.scanner is None or purpose == self._scanner_armed:
            return
        try:
            if purpose is None:
                self.scanner.disarm()
            else:
                self.scanner.arm(purpose)
        except DeviceError as exc:  # the dynamic code and typing still work without it
            log.warning("code scanner not armed for %s: %s", purpose or "nothing", exc)
            return  # tried again by the next call
        self._scanner_armed = purpose
