"""The real smartcard reader over PC/SC (pyscard): prepaid utility cards and technician cards.

It owns the host side of the reader: finding the reader (drivers.smartcard.reader_pattern),
connecting to the card, sending the APDUs of drivers.smartcard.prepaid_app and technician_app
with timeouts and T=0's GET RESPONSE, turning status words and PC/SC errors into
kiosk.devices errors, and watching readers and cards (events pushed to observers). A
restarted pcscd or an unplugged reader is recovered by establishing a new PC/SC context (and
the monitor does the same), never by restarting the terminal. It never decides
whether a credit is due (the core does) and never retries a CREDIT on its own.
"""

import collections
import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from smartcard import scard

from drivers.smartcard import operator_app, prepaid_app, technician_app
from drivers.smartcard.apdu import (
    INS_GET_RESPONSE,
    SW_FILE_NOT_FOUND,
    SW_RECORD_NOT_FOUND,
    ApduError,
    CommandApdu,
    ResponseApdu,
)
from drivers.smartcard.prepaid_card import error_for_status
from drivers.smartcard.reader_pattern import choose_reader, reader_matches
from kiosk.devices import (
    CardError,
    CardLoad,
    CardRefused,
    CardRemoved,
    OperatorCardBlocked,
    OperatorPinWrong,
    PrepaidCard,
    TechnicianCardBlocked,
    TechnicianPinWrong,
)

# PC/SC results that mean the context is dead (pcscd restarted or stopped): establish anew.
_SERVICE_GONE: Final = frozenset(
    {
        scard.SCARD_E_NO_SERVICE,
        scard.SCARD_E_SERVICE_STOPPED,
        scard.SCARD_E_INVALID_HANDLE,
        scard.SCARD_F_COMM_ERROR,
    }
)
_NO_CARD: Final = frozenset(
    {scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_REMOVED_CARD, scard.SCARD_W_UNPOWERED_CARD}
)
_READER_GONE: Final = frozenset({scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE})
_PNP_NOTIFICATION: Final = "\\\\?PnP?\\Notification"
# T=0 exchanges one command may take: GET RESPONSEs chained behind 61xx and resends after
# 6Cxx. A response APDU holds at most 256 bytes, so a card past this is misbehaving.
_MAX_T0_EXCHANGES: Final = 16

T = TypeVar("T")


@dataclass(frozen=True)
class _HolderCard:
    """What differs between the technician's and the operator's card, whose applications
    share one VERIFY / GET ID flow (operator_app is technician_app under its own AID)."""

    holder: str  # "technician" or "operator", as the messages name it
    a_card: str  # with its article, for "not a technician card"
    select: Callable[[], CommandApdu]
    verify: Callable[[str], CommandApdu]
    get_id: Callable[[], CommandApdu]
    tries_left_of: Callable[[int], int | None]
    blocked: type[CardError]
    unblock: str  # who unblocks a blocked card, as the blocked message says
    pin_wrong: Callable[[str, int], CardError]


_TECHNICIAN: Final = _HolderCard(
    holder="technician",
    a_card="a technician card",
    select=technician_app.select,
    verify=technician_app.verify,
    get_id=technician_app.get_technician_id,
    tries_left_of=technician_app.tries_left_of,
    blocked=TechnicianCardBlocked,
    unblock="ask the operator to unblock it",
    pin_wrong=TechnicianPinWrong,
)
_OPERATOR: Final = _HolderCard(
    holder="operator",
    a_card="an operator card",
    select=operator_app.select,
    verify=operator_app.verify,
    get_id=operator_app.get_operator_id,
    tries_left_of=operator_app.tries_left_of,
    blocked=OperatorCardBlocked,
    unblock="the operator's office unblocks it",
    pin_wrong=OperatorPinWrong,
)


@dataclass(frozen=True)
class CardReaderEvent:
    """Something the monitor saw. kind: reader_added, reader_removed, card_inserted,
    card_removed, service_lost, service_restored. session numbers card insertions: a
    card_removed carries the session of the card that left."""

    kind: str
    reader: str = ""
    session: int = 0
    atr: str = ""
    at: float = field(default_factory=time.time)


class _ServiceGone(Exception):
    pass


class PcscCardReader:
    """A PC/SC reader (satisfies kiosk.devices.CardReader and TechnicianCards).

    reader_name selects the reader (drivers.smartcard.reader_pattern: a name prefix or a
    glob, exactly one reader must match; "" takes the first reader); timeout_s bounds
    every PC/SC call that talks to the card; removal_grace_s is how long a failed command
    waits for pcscd to confirm the card left before calling it removed.
    """

    kind = "pcsc"

    def __init__(
        self,
        reader_name: str = "",
        *,
        timeout_s: float = 5.0,
        removal_grace_s: float = 2.0,
        monitor: bool = True,
        poll_s: float = 0.5,
    ) -> None:
        self.reader_name = reader_name
        self.timeout_s = timeout_s
        self.removal_grace_s = removal_grace_s
        self.poll_s = poll_s
        self._lock = threading.Lock()  # one command at a time on the card
        self._context: Any = None
        self._last_error: str | None = None
        self._events: collections.deque[CardReaderEvent] = collections.deque(maxlen=200)
        self._observers: list[Callable[[CardReaderEvent], None]] = []
        self._observer_lock = threading.Lock()
        self._session = 0
        self._card_session: int | None = None  # session of the card in the reader, if any
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        if monitor:
            self._monitor = threading.Thread(
                target=self._monitor_loop, name="pcsc-reader-monitor", daemon=True
            )
            self._monitor.start()

    # ------------------------------------------------------------ CardReader

    def read_prepaid(self) -> PrepaidCard | None:
        with self._lock:
            connection = self._connect("reading the card")
            if connection is None:
                return None
            try:
                self._select_prepaid(connection, "the read")
                card = self._read_record(connection, "the read")
                return self._with_last_load(connection, card, "the read")
            finally:
                self._disconnect(connection)

    def credit_prepaid(
        self,
        card_no: str,
        amount_fen: int,
        new_counter: int,
        mac: bytes,
        *,
        terminal: str,
        ref: str,
    ) -> PrepaidCard:
        doing = f"the credit to card {card_no}"
        try:
            command = prepaid_app.credit(amount_fen, new_counter, mac, terminal, ref)
        except ApduError as exc:
            raise CardRefused(f"{doing} cannot be sent ({exc}): nothing reached the card") from None
        with self._lock:
            connection = self._connect(doing)
            if connection is None:
                raise CardRemoved(
                    f"no card in the reader for {doing}: ask the resident to insert it"
                )
            try:
                self._select_prepaid(connection, doing)
                inserted = self._read_record(connection, doing)
                if inserted.card_no != card_no:
                    raise CardRemoved(
                        f"the card in the reader is {inserted.card_no}, not {card_no}: "
                        "ask the resident to insert the card being topped up"
                    )
                response = self._transmit(connection, command, doing)
                if not response.ok:
                    raise error_for_status(response.status_word, doing)
                # The card appended the load with the credit; reading it back is the proof
                # the core keeps. A card pulled now raises CardRemoved: the core reads it
                # again when it returns, and the load log then shows the credit applied.
                credited = self._decode_record(response.data, doing)
                return self._with_last_load(connection, credited, doing)
            finally:
                self._disconnect(connection)

    def load_log(self) -> list[CardLoad]:
        """The load log of the prepaid card in the reader, newest first (CardRemoved if none)."""
        doing = "reading the load log"
        with self._lock:
            connection = self._connect(doing)
            if connection is None:
                raise CardRemoved("no card in the reader to read the load log of: insert it")
            try:
                self._select_prepaid(connection, doing)
                loads: list[CardLoad] = []
                for number in range(1, prepaid_app.LOAD_LOG_RECORDS + 1):
                    load = self._read_load(connection, number, doing)
                    if load is None:
                        break
                    loads.append(load)
                return loads
            finally:
                self._disconnect(connection)

    def health(self) -> dict[str, object]:
        with self._lock:
            try:
                context = self._ensure_context()
                reader = self._find_reader(context)
                state = _status_change(context, reader, 0)
                present: bool | None = bool(state[1] & scard.SCARD_STATE_PRESENT)
                atr = bytes(state[2]).hex().upper() if present else ""
                connected: bool | None = True
            except (CardError, _ServiceGone) as exc:
                if isinstance(exc, _ServiceGone):
                    self._release_context()
                self._last_error = str(exc)
                connected, present, atr, reader = False, None, "", ""
        return {
            "device": "card reader (PC/SC)",
            "connected": connected,
            # A reader we cannot reach cannot say whether a card is in it: unknown, never "no".
            "card_present": present,
            "reader": reader,
            "atr": atr,
            "monitoring": self._monitor is not None and self._monitor.is_alive(),
            "last_error": self._last_error,
        }

    # ------------------------------------------------------------ TechnicianCards

    def verify_technician(self, pin: str) -> str:
        return self._verify_holder(_TECHNICIAN, pin)

    # ------------------------------------------------------------ OperatorCards

    def verify_operator(self, pin: str) -> str:
        """The station operator's card: the technician card's commands under its own AID."""
        return self._verify_holder(_OPERATOR, pin)

    def _verify_holder(self, card: _HolderCard, pin: str) -> str:
        """SELECT the holder's application, VERIFY the PIN, GET its holder's id."""
        doing = f"the {card.holder} PIN check"
        try:
            verify = card.verify(pin)
        except ApduError as exc:
            raise CardError(str(exc)) from None
        with self._lock:
            connection = self._connect(doing)
            if connection is None:
                raise CardError(
                    f"no {card.holder} card in the reader: insert the {card.holder} card"
                )
            try:
                selected = self._transmit(connection, card.select(), doing)
                if selected.sw == SW_FILE_NOT_FOUND:
                    raise CardError(
                        f"the card in the reader is not {card.a_card}: "
                        f"insert the {card.holder} card"
                    )
                if not selected.ok:
                    raise error_for_status(selected.status_word, doing)
                answer = self._transmit(connection, verify, doing)
                tries_left = card.tries_left_of(answer.sw)
                if tries_left == 0 or answer.sw == 0x6983:
                    raise card.blocked(
                        f"the {card.holder} card is blocked after too many wrong PINs "
                        f"(status 6983): {card.unblock}"
                    )
                if tries_left is not None:
                    raise card.pin_wrong(
                        f"wrong {card.holder} PIN (status {answer.status_word}): "
                        f"{tries_left} {'try' if tries_left == 1 else 'tries'} left before the "
                        "card blocks",
                        tries_left,
                    )
                if not answer.ok:
                    raise error_for_status(answer.status_word, doing)
                identity = self._transmit(connection, card.get_id(), doing)
                if not identity.ok:
                    raise error_for_status(identity.status_word, doing)
                try:
                    return identity.data.decode("ascii")
                except UnicodeDecodeError:
                    raise CardError(
                        f"the {card.holder} card's id is not ASCII: replace the card"
                    ) from None
            finally:
                self._disconnect(connection)

    # ------------------------------------------------------------ waiting and events

    def wait_for_card(self, present: bool, timeout_s: float) -> bool:
        """Wait until a card is (present=True) or is not (False) in the reader; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                try:
                    context = self._ensure_context()
                    reader = self._find_reader(context)
                    state = _status_change(context, reader, 0)
                    now_present = bool(state[1] & scard.SCARD_STATE_PRESENT)
                except _ServiceGone:
                    self._release_context()
                    now_present = False
                except CardError:
                    now_present = False
            if now_present == present:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def add_observer(self, observer: Callable[[CardReaderEvent], None]) -> None:
        """Call observer (from the monitor thread) with every event from now on."""
        with self._observer_lock:
            self._observers.append(observer)

    def events(self) -> list[CardReaderEvent]:
        """The latest events (up to 200), oldest first."""
        with self._observer_lock:
            return list(self._events)

    def close(self) -> None:
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(timeout=self.poll_s * 4 + 1)
        with self._lock:
            self._release_context()

    # ------------------------------------------------------------ PC/SC plumbing

    def _ensure_context(self) -> Any:
        if self._context is None:
            result, context = self._bounded(scard.SCardEstablishContext, scard.SCARD_SCOPE_USER)
            if result != scard.SCARD_S_SUCCESS:
                raise CardError(
                    f"the PC/SC service is not running ({_message(result)}): "
                    "check that pcscd is running; the card's contents are unchanged"
                )
            self._context = context
        return self._context

    def _release_context(self) -> None:
        if self._context is not None:
            context, self._context = self._context, None
            try:
                scard.SCardReleaseContext(context)
            except Exception:  # a dead context may fail to release; it is gone
                pass

    def _find_reader(self, context: Any) -> str:
        result, readers = scard.SCardListReaders(context, [])
        if result in _SERVICE_GONE:
            self._release_context()
            raise _ServiceGone(_message(result))
        if result not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_NO_READERS_AVAILABLE):
            raise CardError(f"cannot list the card readers ({_message(result)}): check pcscd")
        return choose_reader(self.reader_name, [str(r) for r in readers or []])

    def _connect(self, doing: str) -> tuple[Any, int] | None:
        """A connection to the card, or None when the reader is empty.

        Tries twice: the first failure of a dead context (pcscd restarted) establishes a new
        one. Nothing has been sent to the card yet, so trying again is safe.
        """
        for attempt in (1, 2):
            try:
                context = self._ensure_context()
                reader = self._find_reader(context)
                result, card, protocol = self._bounded(
                    scard.SCardConnect,
                    context,
                    reader,
                    scard.SCARD_SHARE_SHARED,
                    scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
                )
            except _ServiceGone:
                if attempt == 2:
                    raise CardError(
                        f"the PC/SC service stopped during {doing}: check that pcscd is running"
                    ) from None
                continue
            if result == scard.SCARD_S_SUCCESS:
                self._last_error = None
                return card, protocol
            if result in _NO_CARD:
                return None
            if result in _SERVICE_GONE and attempt == 1:
                self._release_context()
                continue
            if result in _READER_GONE:
                raise CardError(f"the card reader went away during {doing}: check its USB cable")
            raise CardError(f"cannot reach the card for {doing} ({_message(result)})")
        raise CardError(f"cannot reach the card for {doing}: check that pcscd is running")

    def _disconnect(self, connection: tuple[Any, int]) -> None:
        # In a worker that is not waited for long: after a timed-out command pcscd holds the
        # card until the hung call ends, and leaving must not hang the terminal meanwhile.
        def disconnect() -> None:
            try:
                scard.SCardDisconnect(connection[0], scard.SCARD_LEAVE_CARD)
            except Exception:  # a handle of a removed card may not disconnect
                pass

        worker = threading.Thread(target=disconnect, name="pcsc-disconnect", daemon=True)
        worker.start()
        worker.join(min(self.timeout_s, 1.0))

    def _transmit(
        self, connection: tuple[Any, int], command: CommandApdu, doing: str
    ) -> ResponseApdu:
        """The whole response APDU to command, T=0's status words 61xx and 6Cxx handled.

        Written here because pyscard (2.3) leaves them to the caller: CardConnection.transmit
        returns 61xx and 6Cxx as they come, and its ErrorCheckingChain only turns status
        words into exceptions; and this driver calls scard directly (with a timeout on
        every call) rather than through CardConnection. pcsc-lite does not fetch either.
        61xx: xx more bytes wait, fetched with GET RESPONSE (a card may chain further 61xx
        behind them, so the data are joined); 6Cxx: wrong Le, the same command is sent again
        with Le = xx (ISO/IEC 7816-3 12.2, ISO/IEC 7816-4 5.3.4). A T=1 card sends neither.
        """
        card, protocol = connection
        current = command
        data = b""
        for _ in range(_MAX_T0_EXCHANGES):
            raw = current.encode()
            result, response = self._bounded(scard.SCardTransmit, card, protocol, list(raw))
            if result == scard.SCARD_S_SUCCESS and len(response) < 2:
                # vpcd (and some readers) report a card that left mid-command as an empty
                # answer rather than an error: no status word means no answer.
                result = scard.SCARD_E_NOT_TRANSACTED
            if result != scard.SCARD_S_SUCCESS:
                raise self._lost_card(result, doing)
            answer = ResponseApdu.decode(bytes(response))
            sw1, sw2 = answer.sw >> 8, answer.sw & 0xFF
            if sw1 == 0x61:
                data += answer.data
                current = CommandApdu(0x00, INS_GET_RESPONSE, 0x00, 0x00, le=sw2 or 256)
                continue
            if sw1 == 0x6C:
                current = dataclasses.replace(current, le=sw2 or 256)
                continue
            return ResponseApdu(data + answer.data, answer.sw)
        raise CardError(
            f"the card kept asking for GET RESPONSE or another Le during {doing} (more than "
            f"{_MAX_T0_EXCHANGES} exchanges): take it out and put it back in; read it again "
            "before deciding whether a credit was loaded"
        )

    def _lost_card(self, result: int, doing: str) -> CardError:
        """The error for a command that got no answer: removed if pcscd sees the card gone."""
        if result in _SERVICE_GONE:
            self._release_context()
            return CardError(
                f"the PC/SC service stopped during {doing}: check that pcscd is running; "
                "read the card again before deciding whether a credit was loaded"
            )
        removed = CardRemoved(
            f"the card was pulled out during {doing}: ask the resident to put it back in; "
            "read it again before deciding whether a credit was loaded"
        )
        if result in _NO_CARD or result == scard.SCARD_W_RESET_CARD:
            return removed
        deadline = time.monotonic() + self.removal_grace_s
        while time.monotonic() < deadline:
            try:
                context = self._ensure_context()
                reader = self._find_reader(context)
                state = _status_change(context, reader, 0)
            except (CardError, _ServiceGone):
                self._release_context()
                return removed
            if not state[1] & scard.SCARD_STATE_PRESENT:
                return removed
            time.sleep(0.05)
        return CardError(
            f"the card did not answer during {doing} ({_message(result)}): take it out and put "
            "it back in; read it again before deciding whether a credit was loaded"
        )

    def _select_prepaid(self, connection: tuple[Any, int], doing: str) -> None:
        selected = self._transmit(connection, prepaid_app.select(), doing)
        if not selected.ok:
            if selected.sw == SW_FILE_NOT_FOUND:
                raise error_for_status(selected.status_word, "selecting the prepaid application")
            raise error_for_status(selected.status_word, doing)

    def _read_record(self, connection: tuple[Any, int], doing: str) -> PrepaidCard:
        response = self._transmit(connection, prepaid_app.read_card(), doing)
        if not response.ok:
            raise error_for_status(response.status_word, doing)
        return self._decode_record(response.data, doing)

    def _read_load(self, connection: tuple[Any, int], number: int, doing: str) -> CardLoad | None:
        """Load-log record number (1 = newest), None when the log has no such record."""
        response = self._transmit(connection, prepaid_app.read_load_record(number), doing)
        if response.sw == SW_RECORD_NOT_FOUND:
            return None
        if not response.ok:
            raise error_for_status(response.status_word, doing)
        try:
            return prepaid_app.decode_load_record(response.data)
        except ApduError as exc:
            raise CardError(f"the card answered {doing} with a malformed load: {exc}") from None

    def _with_last_load(
        self, connection: tuple[Any, int], card: PrepaidCard, doing: str
    ) -> PrepaidCard:
        return dataclasses.replace(card, last_load=self._read_load(connection, 1, doing))

    @staticmethod
    def _decode_record(data: bytes, doing: str) -> PrepaidCard:
        try:
            return prepaid_app.decode_card_record(data)
        except ApduError as exc:
            raise CardError(f"the card answered {doing} with a malformed record: {exc}") from None

    def _bounded(self, call: Callable[..., T], *args: Any) -> T:
        """call(*args) in a worker thread, or CardError after timeout_s.

        pcsc-lite has no timeout on SCardConnect or SCardTransmit, and a card or reader
        that hangs must not hang the terminal; the abandoned call ends when pcscd gives up,
        and its context is dropped so the next command starts on a fresh one.
        """
        outcome: list[T] = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                outcome.append(call(*args))
            except BaseException as exc:  # handed to the caller's thread
                failure.append(exc)

        worker = threading.Thread(target=run, name="pcsc-call", daemon=True)
        worker.start()
        worker.join(self.timeout_s)
        if worker.is_alive():
            self._context = None  # abandoned: released by nobody rather than raced
            raise CardError(
                f"the card reader did not answer within {self.timeout_s:g} s: take the card out "
                "and put it back in; read it again before deciding whether a credit was loaded"
            )
        if failure:
            raise CardError(f"the card reader failed: {failure[0]}")
        return outcome[0]

    # ------------------------------------------------------------ monitor

    def _monitor_loop(self) -> None:
        # Our own loop on SCardGetStatusChange rather than pyscard's CardMonitor and
        # ReaderMonitor: those are process-wide singletons whose threads stop for good when
        # pcscd goes away (SCARD_E_NO_SERVICE), which is exactly what must be survived here.
        context: Any = None
        service_up = True
        states: dict[str, tuple[int, str]] = {}  # reader -> (event state, atr)
        while not self._stop.is_set():
            if context is None:
                result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
                if result != scard.SCARD_S_SUCCESS:
                    context = None
                    if service_up:
                        service_up = False
                        self._forget_readers(states)
                        self._emit(CardReaderEvent("service_lost"))
                    self._stop.wait(self.poll_s)
                    continue
                if not service_up:
                    service_up = True
                    self._emit(CardReaderEvent("service_restored"))
            try:
                self._monitor_once(context, states)
            except _ServiceGone:
                try:
                    scard.SCardReleaseContext(context)
                except Exception:  # the context died with pcscd
                    pass
                context = None
        if context is not None:
            scard.SCardReleaseContext(context)

    def _monitor_once(self, context: Any, states: dict[str, tuple[int, str]]) -> None:
        result, readers = scard.SCardListReaders(context, [])
        if result in _SERVICE_GONE:
            raise _ServiceGone(_message(result))
        wanted = [r for r in (readers or []) if reader_matches(self.reader_name, r)]
        for gone in [r for r in states if r not in wanted]:
            self._forget_readers({gone: states.pop(gone)})
        for reader in wanted:
            if reader not in states:
                states[reader] = (scard.SCARD_STATE_UNAWARE, "")
                self._emit(CardReaderEvent("reader_added", reader))
        query = [(r, states[r][0]) for r in wanted] + [(_PNP_NOTIFICATION, len(wanted) << 16)]
        result, changes = scard.SCardGetStatusChange(context, int(self.poll_s * 1000), query)
        if result in _SERVICE_GONE:
            raise _ServiceGone(_message(result))
        if result != scard.SCARD_S_SUCCESS:
            if result != scard.SCARD_E_TIMEOUT:
                self._stop.wait(self.poll_s)  # e.g. a reader vanished mid-call: list again
            return
        for reader, event_state, atr in changes:
            if reader not in states:
                continue
            old_state, _ = states[reader]
            was_present = bool(old_state & scard.SCARD_STATE_PRESENT)
            now_present = bool(event_state & scard.SCARD_STATE_PRESENT)
            # pcsc-lite counts card events in the upper 16 bits: a card swapped between two
            # polls shows as present both times with a new count.
            swapped = was_present and now_present and (old_state >> 16) != (event_state >> 16)
            atr_hex = bytes(atr).hex().upper()
            if was_present and (not now_present or swapped):
                self._emit(CardReaderEvent("card_removed", reader, self._card_session or 0))
            if now_present and (not was_present or swapped):
                self._session += 1
                self._card_session = self._session
                self._emit(CardReaderEvent("card_inserted", reader, self._session, atr_hex))
            states[reader] = (event_state & ~scard.SCARD_STATE_CHANGED, atr_hex)

    def _forget_readers(self, gone: dict[str, tuple[int, str]]) -> None:
        for reader, (state, _) in gone.items():
            if state & scard.SCARD_STATE_PRESENT:
                self._emit(CardReaderEvent("card_removed", reader, self._card_session or 0))
            self._emit(CardReaderEvent("reader_removed", reader))
        gone.clear()

    def _emit(self, event: CardReaderEvent) -> None:
        if event.kind == "card_removed":
            if event.session != self._card_session:
                return  # the card session it belongs to has ended already: ignored
            self._card_session = None
        with self._observer_lock:
            self._events.append(event)
            observers = list(self._observers)
        for observer in observers:
            observer(event)


def _status_change(context: Any, reader: str, timeout_ms: int) -> tuple[str, int, list[int]]:
    result, states = scard.SCardGetStatusChange(
        context, timeout_ms, [(reader, scard.SCARD_STATE_UNAWARE)]
    )
    if result in _SERVICE_GONE:
        raise _ServiceGone(_message(result))
    if result in _READER_GONE:
        raise CardError(f"card reader {reader!r} went away: check its USB cable")
    if result not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT):
        raise CardError(f"cannot ask the card reader for its state ({_message(result)})")
    reader_name, event_state, atr = states[0]
    return str(reader_name), int(event_state), list(atr)


def _message(result: int) -> str:
    return f"{scard.SCardGetErrorMessage(result).strip().rstrip('.')} (0x{result & 0xFFFFFFFF:08X})"
