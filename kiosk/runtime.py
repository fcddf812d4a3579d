"""The one runtime that hosts a terminal: the touchscreen app and `kiosk run` both use it.

Owns the terminal's thread and its loop: the guarded start (recovery first), the inbox of
calls other threads hand to the core (kiosk.core_inbox), cash draining, watching the card
slot, bounded housekeeping, the service state and its reasons, systemd's READY and
WATCHDOG, telemetry and remote commands (kiosk.fleet_link), and asking the privileged
updater to confirm a software version on trial (kiosk.updates.link: this process never
writes the slots). The core's events (cash counted, card
inserted or removed, device and service state) go out on the terminal's EventBus, which
the touchscreen subscribes to. It never imports Kivy and never decides what a screen shows.

Budget (docs/deploy.md): the loop feeds the watchdog itself, so nothing on the terminal's
thread may hold it for long. Housekeeping runs one duty at a time, with the inbox served
between duties; inside a duty every platform call gets one attempt of at most
Cadence.platform_call_s, and after one call went unanswered the other platform calls of
that duty fail at once and platform duties pause for Cadence.platform_retry_s. So a
resident's call waits at most one bounded duty, however dead the network is.
"""

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from kiosk.availability import need_problems, snapshot_of
from kiosk.clock import Clock
from kiosk.config import Config
from kiosk.core_inbox import TerminalThreadInbox
from kiosk.devices import DeviceError, ScanMisread, ScannedCode, ScannedVoucher, ScanPurpose
from kiosk.errors import KioskError
from kiosk.events import Event
from kiosk.fleet_link import FleetLink
from kiosk.service_faults import Fault, blocking
from kiosk.service_notify import ServiceNotifier
from kiosk.terminal import Duty, Terminal, fault_of
from kiosk.transactions.engine import Outcome
from kiosk.updates.link import updates_for_config

log = logging.getLogger(__name__)
T = TypeVar("T")


class RuntimeEvent:
    """Event kinds the runtime publishes on the terminal's EventBus (for the UI)."""

    CASH_COUNTED = "cash_counted"  # data: seq (the journal head after the cash was journaled)
    CARD_INSERTED = "card_inserted"
    CARD_REMOVED = "card_removed"
    DEVICE_STATE = "device_state"  # data: problems {need: reason}
    SERVICE_STATE = "service_state"  # data: state, faults [codes]
    STARTED = "runtime_started"  # data: state, faults, recovered
    # Only while a payment by phone waits (the scanner is read then; kiosk.transactions):
    PAYMENT_CODE_SCANNED = "payment_code_scanned"  # data: code (the screen presents it)
    PAYMENT_CODE_MISREAD = "payment_code_misread"  # data: problem (kiosk.payment_codes)
    # Only while the operator's voucher screen is open (Terminal.want_codes):
    VOUCHER_CODE_SCANNED = "voucher_code_scanned"  # data: voucher_id (the screen looks it up)
    VOUCHER_CODE_MISREAD = "voucher_code_misread"  # data: problem (kiosk.payment_codes)
    # Published by the engine as a payment by phone moves (kiosk.transactions.orders):
    ORDER_PAID = "order_paid"  # data: tx_id, paid_with
    ORDER_CLOSED = "order_closed"  # data: tx_id, reason


# What a scan that is not the code wanted is published as, by the scanner's purpose.
MISREAD_EVENT = {
    ScanPurpose.PAYMENT: RuntimeEvent.PAYMENT_CODE_MISREAD,
    ScanPurpose.VOUCHER: RuntimeEvent.VOUCHER_CODE_MISREAD,
}


@dataclass(frozen=True)
class Cadence:
    """How often the loop does what (seconds); the defaults are the terminal's."""

    idle_s: float = 0.1  # the loop's sleep when no call arrives (cash is drained each turn)
    card_s: float = 0.3  # the card slot is looked at
    round_s: float = 1.0  # a new housekeeping round, after the last one ended
    slice_s: float = 0.5  # housekeeping started in one turn, before the loop turns again
    status_s: float = 2.0  # the service state and device problems are recomputed
    health_s: float = 5.0  # telemetry's health facts are refreshed
    platform_call_s: float = 4.0  # one housekeeping platform call, one attempt, at most
    platform_retry_s: float = 15.0  # platform duties pause this long after no answer
    telemetry_grace_s: float = 30.0  # the broker may take this long before it is a fault
    confirm_after_s: float = 5.0  # healthy this long before a version on trial is confirmed


class Runtime:
    """Hosts one Terminal on one thread; every other thread reaches it through submit()."""

    def __init__(
        self,
        terminal: Terminal,
        *,
        config: Config | None = None,
        clock: Clock | None = None,
        notifier: ServiceNotifier | None = None,
        cadence: Cadence = Cadence(),
        telemetry: bool = False,
        started: bool = False,
        owns_terminal: bool = False,
        wait_for_ui: bool = False,
        fleet_factory: Callable[..., FleetLink] = FleetLink,
    ) -> None:
        self.terminal = terminal
        self.config = config or terminal.config
        self.clock = clock or terminal.clock
        self.notifier = notifier or ServiceNotifier(environ={})
        self.cadence = cadence
        self.inbox = TerminalThreadInbox()
        self.fleet: FleetLink | None = None
        self.updates = updates_for_config(self.config)
        self.recovered: list[Outcome] = []
        self.confirmed_version: str | None = None
        self.stop_reason: str | None = None
        self.turns = 0
        self.rounds = 0
        self._telemetry = telemetry
        self._fleet_factory = fleet_factory
        self._terminal_started = started
        self._owns_terminal = owns_terminal
        self._ui_ready = threading.Event() if wait_for_ui else None
        self._stop = threading.Event()
        self.started = threading.Event()  # start() returned (or raised: start_error)
        self.ready = threading.Event()  # READY sent (or would have been, outside systemd)
        self.start_error: BaseException | None = None
        self._started_at = 0.0
        self._stop_listeners: list[Callable[[str], None]] = []
        self._thread: threading.Thread | None = None
        self._round: list[Duty] = []
        self._round_platform = True
        self._platform_paused_until = 0.0
        self._next_round = 0.0
        self._next_card = 0.0
        self._next_status = 0.0
        self._next_health = 0.0
        self._next_watchdog = 0.0
        interval = self.notifier.watchdog_interval
        self._watchdog_s = None if interval is None else interval.total_seconds()
        self._card_present: bool | None = None
        self._last_service: tuple[str, tuple[str, ...]] | None = None
        self._last_problems: dict[str, str] | None = None
        self._confirm_done = False
        self._broker_since: float | None = None
        terminal.events.subscribe(self._on_core_event)

    # ------------------------------------------------------------------ other threads

    def submit(self, call: Callable[[], T]) -> "Future[T]":
        """Run call on the terminal's thread, in order with every other call."""
        return self.inbox.submit(call)

    def ui_ready(self) -> None:
        """The touchscreen shows its first screen: READY and confirmation may follow."""
        if self._ui_ready is not None:
            self._ui_ready.set()

    def on_stop_requested(self, listener: Callable[[str], None]) -> None:
        """listener(reason) when a remote command asks for a restart (it runs on any thread)."""
        self._stop_listeners.append(listener)

    def request_stop(self, reason: str) -> None:
        log.warning("stopping: %s", reason)
        self.stop_reason = reason
        self._stop.set()
        for listener in list(self._stop_listeners):
            listener(reason)

    def stop(self) -> None:
        """Ask the loop to end (from any thread, or a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start_thread(self) -> threading.Thread:
        """start() and the loop on a new thread, which becomes the terminal's thread."""
        self._thread = threading.Thread(target=self._thread_main, name="kiosk-core", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout_s: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _thread_main(self) -> None:
        try:
            self.start()
        except BaseException as exc:  # the caller (the app) reports it in one line
            self.start_error = exc
            self.started.set()
            self._finish()
            return
        self.started.set()
        self.run()

    # ------------------------------------------------------------------ the terminal's thread

    def start(self) -> None:
        """Start the terminal guarded: only a journal that cannot open raises.

        Recovery comes first (Terminal.start); its platform calls are bounded as in
        housekeeping, so a silent platform costs seconds, not minutes. Then telemetry; a
        broken telemetry set-up is a fault, not a reason to stop.
        """
        self._started_at = time.monotonic()
        if not self._terminal_started:
            with self._bounded_platform():
                self.recovered = self.terminal.start()
            self._terminal_started = True
        if self._telemetry and self.config.telemetry.enabled:
            self._start_fleet()
        self._update_service_state(time.monotonic(), force=True)
        self._report_update_events()
        state, faults = self._service()
        self.terminal.events.publish(
            RuntimeEvent.STARTED, state=state, faults=list(faults), recovered=len(self.recovered)
        )

    def run(self, *, once: bool = False) -> None:
        """The loop, on the calling thread, until stop() (or one turn with once)."""
        try:
            while True:
                self.turn()
                if once or self._stop.is_set():
                    break
                self.inbox.wait(self.cadence.idle_s)
        finally:
            self._finish()

    def turn(self) -> None:
        """One turn: calls handed over, cash, card slot, housekeeping, state, watchdog."""
        now = time.monotonic()
        self.turns += 1
        self._serve()
        self._drain_cash()
        self._read_scanner()
        if now >= self._next_card:
            self._next_card = now + self.cadence.card_s
            self._watch_card()
        self._housekeeping()
        now = time.monotonic()
        if now >= self._next_status:
            self._next_status = now + self.cadence.status_s
            self._update_service_state(now)
        if self.fleet is not None and now >= self._next_health:
            self._next_health = now + self.cadence.health_s
            self._guard("telemetry health", self.fleet.refresh)
        self._maybe_ready()
        self._maybe_confirm(now)
        self._feed_watchdog()

    def _finish(self) -> None:
        self.notifier.stopping()
        if self.fleet is not None:
            self._guard("telemetry stop", self.fleet.stop)
            self.fleet = None
        self.inbox.run_pending()  # nobody is left waiting for an answer that never comes
        if self._owns_terminal:
            self.terminal.close()

    # ------------------------------------------------------------------ duties of a turn

    def _serve(self) -> None:
        if self.inbox.run_pending():
            # A call may have moved the card (a credit the resident interrupted): look at
            # the slot now, before the screens act on the call's result.
            self._watch_card()

    def _on_core_event(self, event: Event) -> None:
        # On the terminal's thread. A credit left pending means the card left the slot
        # during it, however briefly: its return must be announced even if the slot was
        # never seen empty between two looks.
        if event.kind == "card_credit_pending":
            self._card_present = False

    def _drain_cash(self) -> None:
        journal = self.terminal.journal
        before = journal.head()[0]
        self._guard("cash", self.terminal.drain_cash)
        after = journal.head()[0]
        if after != before:
            self.terminal.events.publish(RuntimeEvent.CASH_COUNTED, seq=after)

    def _read_scanner(self) -> None:
        """Hand each code read to the screens under the purpose the terminal armed the
        scanner for (Terminal.code_purpose): while a payment by phone waits, payment codes
        (the screen presents it: the code goes to the platform once, through the terminal);
        while the operator's voucher screen is open, vouchers (the screen looks one up; the
        operator confirms the payout). A code of the other kind never gets through: the
        scanner judges each scan for its arming's purpose, and is checked again here."""
        scanner = self.terminal.scanner
        if scanner is None:
            return
        purpose = self._guard("scanner purpose", self.terminal.code_purpose)
        if purpose is None:
            return
        if purpose is ScanPurpose.PAYMENT and not self._guard(
            "payment waiting", self.terminal.qr_waiting
        ):
            return
        try:
            scanned = scanner.read(0)
        except ScanMisread as exc:
            self.terminal.events.publish(MISREAD_EVENT[purpose], problem=str(exc.problem))
            return
        except DeviceError as exc:  # unplugged: the dynamic code and typing still work
            log.debug("code scanner not read: %s", exc)
            return
        if isinstance(scanned, ScannedCode) and purpose is ScanPurpose.PAYMENT:
            self.terminal.events.publish(RuntimeEvent.PAYMENT_CODE_SCANNED, code=scanned.code)
        elif isinstance(scanned, ScannedVoucher) and purpose is ScanPurpose.VOUCHER:
            log.info("voucher %s scanned on the operator's screen", scanned.masked)
            self.terminal.events.publish(
                RuntimeEvent.VOUCHER_CODE_SCANNED, voucher_id=scanned.voucher_id
            )
        elif scanned is not None:  # read under an arming the terminal has since changed
            log.warning("dropped %r: the scanner is read for %s now", scanned, purpose)

    def _watch_card(self) -> None:
        # One place looks at the slot (a status query, no APDU), and the screens are told;
        # the PC/SC driver's own monitor loop keeps the reader itself alive (smartcard.md).
        present = self.terminal.card_present()
        if present is None or present == self._card_present:
            return
        first = self._card_present is None
        self._card_present = present
        if first and not present:
            return
        kind = RuntimeEvent.CARD_INSERTED if present else RuntimeEvent.CARD_REMOVED
        self.terminal.events.publish(kind)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if not self._round:
            if now < self._next_round:
                return
            self._round = self._guard("housekeeping", self.terminal.housekeeping_duties) or []
            self._round_platform = now >= self._platform_paused_until
        deadline = now + self.cadence.slice_s
        while self._round:
            duty = self._round.pop(0)
            self._run_duty(duty)
            self._feed_watchdog()
            if self.inbox.waiting:
                self._serve()  # a resident's call waits for one duty at most
            if time.monotonic() >= deadline or self._stop.is_set():
                break
        if not self._round:
            self.rounds += 1
            self._next_round = time.monotonic() + self.cadence.round_s

    def _run_duty(self, duty: Duty) -> None:
        if duty.platform and not self._round_platform:
            log.debug("%s skipped: the platform did not answer just now", duty.name)
            return
        with self._bounded_platform() as window:
            self._guard(duty.name, duty.run)
        if window is not None and window.unanswered:
            log.warning("%s: the platform did not answer; platform duties pause", duty.name)
            self._round_platform = False
            self._platform_paused_until = time.monotonic() + self.cadence.platform_retry_s

    @contextlib.contextmanager
    def _bounded_platform(self) -> Iterator[Any]:
        bounded = getattr(self.terminal.platform, "bounded", None)
        if bounded is None:  # a platform stand-in without limits (a unit test's)
            yield None
            return
        with bounded(self.cadence.platform_call_s) as window:
            yield window

    def _guard(self, what: str, call: Callable[[], T]) -> T | None:
        """call(), or None: nothing raises out of the loop (the log has the cause)."""
        try:
            return call()
        except Exception as exc:
            fault = fault_of(exc)
            if fault is Fault.TOKEN_UNAVAILABLE:
                self.terminal.faults[fault] = f"{what}: {exc}"
            # A KioskError says what went wrong in its message; anything else is a bug.
            log.warning("%s failed: %s", what, exc, exc_info=not isinstance(exc, KioskError))
            return None

    # ------------------------------------------------------------------ state and telemetry

    def _service(self) -> tuple[str, tuple[str, ...]]:
        state = self.terminal.service_state()
        return state, tuple(str(f) for f in sorted(self.terminal.faults))

    def _update_service_state(self, now: float, *, force: bool = False) -> None:
        self._check_broker(now)
        service = self._guard("service state", self._service)
        if service is not None and (force or service != self._last_service):
            self._last_service = service
            state, faults = service
            self.notifier.status(status_line(self.terminal))
            self.terminal.events.publish(RuntimeEvent.SERVICE_STATE, state=state, faults=faults)
        problems = self._guard("device state", self._problems)
        if problems is not None and problems != self._last_problems:
            first = self._last_problems is None
            self._last_problems = problems
            if not first:
                self.terminal.events.publish(RuntimeEvent.DEVICE_STATE, problems=problems)

    def _problems(self) -> dict[str, str]:
        return {str(k): v for k, v in need_problems(snapshot_of(self.terminal)).items()}

    def _start_fleet(self) -> None:
        try:
            self.fleet = self._fleet_factory(
                self.config,
                self.terminal,
                self.clock,
                request_restart=self.request_stop,
                inbox=self.inbox,
                updates=self.updates,
            )
            self.fleet.start()
        except Exception as exc:
            self.fleet = None
            log.warning("telemetry did not start: %s", exc)
            self.terminal.faults[Fault.TELEMETRY_DOWN] = f"telemetry: {exc}"
            return
        self._broker_since = time.monotonic()

    def _check_broker(self, now: float) -> None:
        if self.fleet is None or self._broker_since is None:
            return
        if self.fleet.client.connected:
            self._broker_since = now
            self.terminal.faults.pop(Fault.TELEMETRY_DOWN, None)
        elif now - self._broker_since >= self.cadence.telemetry_grace_s:
            self.terminal.faults[Fault.TELEMETRY_DOWN] = (
                f"telemetry: the MQTT broker {self.config.telemetry.broker_host} is not connected"
            )

    # ------------------------------------------------------------------ systemd and updates

    def _ui_shown(self) -> bool:
        return self._ui_ready is None or self._ui_ready.is_set()

    def _maybe_ready(self) -> None:
        if self.ready.is_set() or not self._ui_shown():
            return
        self.notifier.ready(status_line(self.terminal))
        self.ready.set()
        self._next_watchdog = 0.0  # and a ping at once: the watchdog runs from READY on

    def _feed_watchdog(self) -> None:
        if self._watchdog_s is None:
            return
        now = time.monotonic()
        if now >= self._next_watchdog:
            # Only a loop that still turns feeds systemd's watchdog: a hang gets a restart.
            self._next_watchdog = now + self._watchdog_s
            self.notifier.watchdog()

    def _maybe_confirm(self, now: float) -> None:
        """Confirm a version on trial once this start proved healthy (docs/updates.md):
        READY sent (the journal opened, recovery ran, the screen is up), at least one
        housekeeping round done and the loop turning for Cadence.confirm_after_s. Faults
        outside the software (a missing token, a silent platform) do not hold it back."""
        if self._confirm_done or not self.ready.is_set() or self.rounds < 1:
            return
        if now - self._started_at < self.cadence.confirm_after_s:
            return
        self._confirm_done = True
        self.confirmed_version = self._guard("update confirmation", self._confirm)
        if self.confirmed_version:
            log.info("software version %s healthy: confirmation asked", self.confirmed_version)
        self._report_update_events()

    def _confirm(self) -> str | None:
        # None without A/B slots (a development checkout or a bench), or when this process
        # does not run the version on trial; otherwise the updater is asked to confirm it.
        return self.updates.confirm(self.clock.now())

    def _report_update_events(self) -> None:
        if self.fleet is None or not self.updates.installed():
            return
        fleet, updates = self.fleet, self.updates

        def report() -> None:
            pending = updates.pending_events()
            if pending:
                updates.mark_reported(fleet.report_update_events(pending))

        self._guard("update events", report)


def status_line(terminal: Terminal) -> str:
    """One line for systemd's STATUS= and the headless log: the state and its causes."""
    state = terminal.service_state()
    faults = blocking(terminal.faults)
    text = f"terminal {terminal.config.station.terminal_id} {state.replace('_', ' ')}"
    if faults:
        text += ": " + "; ".join(terminal.faults[f] for f in faults)
    return text.replace("\n", " ")[:400]
