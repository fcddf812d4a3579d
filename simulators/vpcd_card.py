"""Simulated smartcards served to pcscd through the vsmartcard virtual reader (vpcd) over TCP.

It owns the card side of the real PC/SC stack in tests, on a bench and in the demo: a wallet
of simulated cards kept in a state file (a real card keeps its purchase counter and PIN try
counter whatever happens to the terminal), which one is in the virtual reader, the vpcd link,
the APDU dispatch of both card applications (the utility card's load log included), how the
card transmits (CardProtocol: whole answers as over T=1, or T=0's 61xx / GET RESPONSE and
6Cxx), the faults a test arms (card pulled before or after it applied a credit, an error
status word), and a load made at another terminal (load_elsewhere). The card rules themselves
live in prepaid_card (utility card) and technician_app (technician card). It never uses pyscard:
it is the card, not the host.

vpcd (Debian vsmartcard-vpcd) listens on a TCP port (35963 by default) and the card connects
to it as a client; a connected card is a card in the reader, closing the connection pulls it.
We speak vpcd's protocol ourselves instead of depending on the `vicc` package: it is four
lines (every message is a 2-byte big-endian length then the bytes; a 1-byte message is a
control byte: 00 power off, 01 power on, 02 reset, 04 "send your ATR"; any longer message
is a command APDU answered with a response APDU), and vicc would bring its own card emulators
and a dependency the firmware does not otherwise need.
"""

import dataclasses
import json
import os
import socket
import threading
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Final, TypeVar

from drivers.smartcard import operator_app, prepaid_app, technician_app
from drivers.smartcard.apdu import (
    INS_GET_RESPONSE,
    SW_CLA_NOT_SUPPORTED,
    SW_COMMAND_NOT_ALLOWED,
    SW_CONDITIONS_NOT_SATISFIED,
    SW_FILE_NOT_FOUND,
    SW_INS_NOT_SUPPORTED,
    SW_OK,
    SW_RECORD_NOT_FOUND,
    SW_SECURITY_STATUS_NOT_SATISFIED,
    SW_WRONG_DATA,
    SW_WRONG_LENGTH,
    SW_WRONG_P1P2,
    ApduError,
    CommandApdu,
    ResponseApdu,
)
from drivers.smartcard.operator_app import SimulatedOperatorCard
from drivers.smartcard.prepaid_card import (
    GRID_OFFICE_TERMINAL,
    CardCommandRefused,
    SimulatedPrepaidCard,
    check_status_word,
    error_for_status,
    load_elsewhere,
)
from drivers.smartcard.technician_app import SimulatedTechnicianCard
from kiosk.devices import CardError, PrepaidCard

# A technician or an operator card: the one VERIFY / GET ID flow serves both.
_Holder = TypeVar("_Holder", SimulatedTechnicianCard, SimulatedOperatorCard)

VPCD_DEFAULT_PORT: Final = 35963
CTRL_OFF: Final = 0x00
CTRL_ON: Final = 0x01
CTRL_RESET: Final = 0x02
CTRL_ATR: Final = 0x04

CARD_KINDS: Final = ("utility", "technician", "operator")


class CardProtocol(StrEnum):
    """How a simulated card transmits (ISO/IEC 7816-3), chosen when the simulator starts.

    T1: its ATR offers T=0 and T=1 (pcscd picks T=1) and every command gets its whole
    response APDU. T0: its ATR offers T=0 only and it answers as a T=0 card: the response
    data of a command that carried data waits behind 61xx for GET RESPONSE (00 C0 00 00 xx),
    and a command asking for data with the wrong Le gets 6Cxx (send it again with Le = xx).
    """

    T1 = "t1"
    T0 = "t0"


def answer_to_reset(historical: bytes, protocol: CardProtocol = CardProtocol.T1) -> bytes:
    """An ATR with historical bytes (ISO/IEC 7816-3 section 8.2).

    T1: 3B (direct convention), T0 = 8k (TD1 follows, k historical bytes), TD1 = 80 (TD2
    follows, T=0), TD2 = 01 (T=1), the historical bytes, then TCK: the XOR of T0..last byte,
    required because a protocol other than T=0 is offered. T0: 3B, T0 = 0k (no interface
    bytes: T=0 only), the historical bytes, and no TCK (T=0 alone has none).
    """
    if len(historical) > 15:
        raise ValueError("an ATR carries at most 15 historical bytes")
    if protocol is CardProtocol.T0:
        return b"\x3b" + bytes((len(historical),)) + historical
    body = bytes((0x80 | len(historical), 0x80, 0x01)) + historical
    tck = 0
    for byte in body:
        tck ^= byte
    return b"\x3b" + body + bytes((tck,))


PREPAID_HISTORICAL: Final = b"KIOSK-PREPAID"
TECHNICIAN_HISTORICAL: Final = b"KIOSK-TECH"
OPERATOR_HISTORICAL: Final = b"KIOSK-OPER"
PREPAID_ATR: Final = answer_to_reset(PREPAID_HISTORICAL)  # as T1 cards send it
TECHNICIAN_ATR: Final = answer_to_reset(TECHNICIAN_HISTORICAL)

# Faults: the pull strikes the next CREDIT or VERIFY, as a resident pulls a card while it
# is being written; an armed status word answers the next command other than SELECT.
_PULL_BEFORE = "pull-before-apply"
_PULL_AFTER = "pull-after-apply"


class _Pulled(Exception):
    """The card left the reader in the middle of a command: nothing is answered."""


class VpcdCardSimulator:
    """A wallet of simulated cards and the vpcd slot one of them can be inserted into."""

    def __init__(
        self,
        state_path: Path,
        *,
        host: str = "127.0.0.1",
        port: int = VPCD_DEFAULT_PORT,
        protocol: CardProtocol = CardProtocol.T1,
        t0_chunk: int = 256,
    ) -> None:
        """t0_chunk: in T0, the most response bytes one 61xx announces and one GET RESPONSE
        returns (a card with a small I/O buffer chains the rest behind further 61xx)."""
        if not 1 <= t0_chunk <= 256:
            raise ValueError(f"t0_chunk {t0_chunk} is not 1 to 256 bytes")
        self.state_path = state_path
        self.host, self.port = host, port
        self.protocol = protocol
        self.t0_chunk = t0_chunk
        self._t0_pending: ResponseApdu | None = None  # T0: the answer GET RESPONSE fetches
        self._lock = threading.RLock()
        self._prepaid: dict[str, SimulatedPrepaidCard] = {}
        self._technician: dict[str, SimulatedTechnicianCard] = {}
        self._operator: dict[str, SimulatedOperatorCard] = {}
        self._load()
        self._inserted: str | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._reader_seen = threading.Event()
        self._stop = threading.Event()
        self._fault: str | None = None
        self._fault_sw: int | None = None
        self._selected: str | None = None  # volatile: lost at power off, reset or removal
        self._pin_verified = False
        self.commands_answered = 0

    # ------------------------------------------------------------ wallet

    def issue_prepaid(
        self, card_no: str, utility: str, meter_no: str, balance_fen: int = 0
    ) -> SimulatedPrepaidCard:
        card = SimulatedPrepaidCard(card_no, utility, meter_no, balance_fen=balance_fen)
        with self._lock:
            self._require_new(card_no)
            self._prepaid[card_no] = card
            self._save()
        return card

    def issue_technician(
        self, card_no: str, technician_id: str, pin: str
    ) -> SimulatedTechnicianCard:
        card = SimulatedTechnicianCard.issue(card_no, technician_id, pin)
        with self._lock:
            self._require_new(card_no)
            self._technician[card_no] = card
            self._save()
        return card

    def issue_operator(self, card_no: str, operator_id: str, pin: str) -> SimulatedOperatorCard:
        card = SimulatedOperatorCard.issue(card_no, operator_id, pin)
        with self._lock:
            self._require_new(card_no)
            self._operator[card_no] = card
            self._save()
        return card

    def has_card(self, card_no: str) -> bool:
        with self._lock:
            return (
                card_no in self._prepaid or card_no in self._technician or card_no in self._operator
            )

    def state_card_numbers(self) -> list[str]:
        """Every card number in the wallet, utility, technician and operator cards alike."""
        with self._lock:
            return sorted([*self._prepaid, *self._technician, *self._operator])

    def card_kind(self, card_no: str) -> str | None:
        """One of CARD_KINDS for a card of the wallet, None for an unknown number."""
        with self._lock:
            if card_no in self._prepaid:
                return "utility"
            if card_no in self._technician:
                return "technician"
            return "operator" if card_no in self._operator else None

    def is_utility_card(self, card_no: str) -> bool:
        with self._lock:
            return card_no in self._prepaid

    def prepaid(self, card_no: str) -> SimulatedPrepaidCard:
        with self._lock:
            if card_no not in self._prepaid:
                raise ValueError(f"there is no simulated utility card {card_no}: issue it first")
            return self._prepaid[card_no]

    def technician(self, card_no: str) -> SimulatedTechnicianCard:
        with self._lock:
            if card_no not in self._technician:
                raise ValueError(f"there is no simulated technician card {card_no}: issue it first")
            return self._technician[card_no]

    def operator(self, card_no: str) -> SimulatedOperatorCard:
        with self._lock:
            if card_no not in self._operator:
                raise ValueError(f"there is no simulated operator card {card_no}: issue it first")
            return self._operator[card_no]

    def block_prepaid(self, card_no: str, blocked: bool = True) -> None:
        """The issuer blocks (or unblocks) a utility card: it refuses every credit (6983)."""
        with self._lock:
            card = self.prepaid(card_no)
            self._prepaid[card_no] = dataclasses.replace(card, blocked=blocked)
            self._save()

    def load_elsewhere(
        self,
        card_no: str,
        amount_fen: int,
        terminal: str = GRID_OFFICE_TERMINAL,
        ref: str | None = None,
    ) -> PrepaidCard:
        """The resident tops the card up at another terminal (the utility's counter).

        A genuine load: the simulated issuer's MAC for that terminal and reference, applied
        by the card's own rules, so the counter moves and the load log names that terminal.
        The card must be out of the virtual reader. Returns the card as read afterwards;
        raises ValueError for an unknown card or one in the reader, CardCommandRefused as
        the card refuses (blocked, amount, too long a terminal id or reference).
        """
        with self._lock:
            card = self.prepaid(card_no)
            if self._inserted == card_no:
                raise ValueError(
                    f"card {card_no} is in the virtual reader: remove it before loading it "
                    "elsewhere"
                )
            loaded = load_elsewhere(card, amount_fen, terminal, ref)
            self._prepaid[card_no] = loaded
            self._save()
        return loaded.as_read()

    # ------------------------------------------------------------ slot

    @property
    def inserted(self) -> str | None:
        """The card number in the virtual reader (None after a remove or a pull)."""
        return self._inserted

    def insert(self, card_no: str, *, wait_s: float | None = 10.0) -> None:
        """Put card_no into the virtual reader: connect to vpcd and answer it from now on.

        With wait_s, wait until vpcd has talked to the card (pcscd polls about every 0.4 s);
        with None, return at once and keep trying to reach vpcd in the background (pcscd may
        not run yet). Raises ValueError for an unknown card or a full slot, TimeoutError if
        vpcd did not answer in time (is pcscd running with the vpcd reader on this port?).
        """
        with self._lock:
            if not self.has_card(card_no):
                raise ValueError(f"there is no simulated card {card_no}: issue it first")
            if self._inserted == card_no:
                return
            if self._inserted is not None:
                raise ValueError(f"card {self._inserted} is in the reader already: remove it")
            self._inserted = card_no
            self._reset_session()
            self._reader_seen.clear()
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._serve, args=(card_no,), name=f"vpcd-card-{card_no}", daemon=True
            )
            self._thread.start()
        if wait_s is not None and not self._reader_seen.wait(wait_s):
            self.remove()
            raise TimeoutError(
                f"the virtual reader on {self.host}:{self.port} did not talk to card {card_no}"
                f" within {wait_s:g} s: start pcscd with the vpcd reader on that port"
            )

    def remove(self) -> None:
        """Take the card out of the reader (harmless when the slot is empty)."""
        with self._lock:
            self._inserted = None
            self._stop.set()
            self._drop_socket()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def close(self) -> None:
        self.remove()

    # ------------------------------------------------------------ faults

    def pull_during_next_command(self, after_apply: bool) -> None:
        """The card is pulled in the middle of the next CREDIT or VERIFY.

        after_apply=False: pulled before the card changed anything; True: the card applied
        it (credit loaded, PIN try counted) but its answer never reached the reader.
        """
        with self._lock:
            self._fault, self._fault_sw = (_PULL_AFTER if after_apply else _PULL_BEFORE), None

    def answer_error(self, status_word: str) -> None:
        """The next command other than SELECT is answered with status_word (e.g. 6581)."""
        canonical = check_status_word(status_word)
        error_for_status(canonical, "a command")  # refuses 9000: it is not an error
        with self._lock:
            self._fault, self._fault_sw = "status-word", int(canonical, 16)

    # ------------------------------------------------------------ vpcd link

    def _serve(self, card_no: str) -> None:
        # Reconnects while the card is meant to be in the reader: a restarted pcscd (or a
        # reader unplugged and plugged back) finds the card still inserted, as a real one.
        while not self._stop.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=2.0)
            except OSError:
                self._stop.wait(0.2)
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stop.is_set():
                    sock.close()
                    return
                self._socket = sock
            try:
                self._converse(sock, card_no)
            except _Pulled:
                with self._lock:
                    if self._inserted == card_no:
                        self._inserted = None
                    self._stop.set()
                    self._drop_socket()
                return
            except OSError:
                pass
            with self._lock:
                self._drop_socket()
                self._reset_session()
            self._stop.wait(0.2)

    def _converse(self, sock: socket.socket, card_no: str) -> None:
        while True:
            header = _recv_exact(sock, 2)
            if header is None:
                return
            message = _recv_exact(sock, int.from_bytes(header, "big"))
            if message is None:
                return
            self._reader_seen.set()
            if len(message) == 1:
                reply = self._control(message[0], card_no)
            else:
                reply = self.answer(card_no, message)
            if reply is not None:
                sock.sendall(len(reply).to_bytes(2, "big") + reply)

    def _control(self, control: int, card_no: str) -> bytes | None:
        if control == CTRL_ATR:
            if card_no in self._prepaid:
                historical = PREPAID_HISTORICAL
            elif card_no in self._operator:
                historical = OPERATOR_HISTORICAL
            else:
                historical = TECHNICIAN_HISTORICAL
            return answer_to_reset(historical, self.protocol)
        if control in (CTRL_OFF, CTRL_ON, CTRL_RESET):
            with self._lock:
                self._reset_session()
        return None

    def _drop_socket(self) -> None:
        if self._socket is not None:
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._socket.close()
            self._socket = None

    # ------------------------------------------------------------ APDU dispatch

    def answer(self, card_no: str, raw: bytes) -> bytes:
        """The response APDU of card_no to the command APDU raw (raises _Pulled on a pull)."""
        with self._lock:
            try:
                command = CommandApdu.decode(raw)
            except ApduError:
                return _sw(SW_WRONG_LENGTH)
            self.commands_answered += 1
            if self.protocol is not CardProtocol.T0:
                return self._dispatch(card_no, command)
            # T=0: an answer waiting for GET RESPONSE is lost to any other command.
            pending, self._t0_pending = self._t0_pending, None
            if command.cla == 0x00 and command.ins == INS_GET_RESPONSE:
                return self._get_response(pending, command)
            return self._t0_transmit(command, self._dispatch(card_no, command))

    def _dispatch(self, card_no: str, command: CommandApdu) -> bytes:
        if command.cla == 0x00 and command.ins == 0xA4:
            return self._select(card_no, command)
        if self._fault == "status-word":
            sw, self._fault, self._fault_sw = self._fault_sw, None, None
            assert sw is not None
            return _sw(sw)
        if self._selected == "prepaid":
            return self._prepaid_command(card_no, command)
        if self._selected == "technician":
            return self._technician_command(card_no, command)
        if self._selected == "operator":
            return self._operator_command(card_no, command)
        return _sw(SW_COMMAND_NOT_ALLOWED)

    # ------------------------------------------------------------ T=0 transmission

    def _t0_transmit(self, command: CommandApdu, raw: bytes) -> bytes:
        """The answer a T=0 card gives in place of the whole response APDU raw.

        A T=0 command carries data or asks for data, never both (ISO/IEC 7816-3 12.2): after
        a command with data the card announces its response data with 61xx and keeps it
        for GET RESPONSE; a command asking for Le bytes when it has another number gets
        6Cxx with the right number (ISO/IEC 7816-4 5.3.4). Status words alone pass as they are.
        """
        response = ResponseApdu.decode(raw)
        if not response.data:
            return raw
        if command.data:
            self._t0_pending = response
            return _sw(0x6100 | self._t0_announce(len(response.data)))
        if command.le != len(response.data):
            return _sw(0x6C00 | len(response.data) % 256)
        return raw

    def _get_response(self, pending: ResponseApdu | None, command: CommandApdu) -> bytes:
        if (command.p1, command.p2) != (0x00, 0x00):
            return _sw(SW_WRONG_P1P2)
        if pending is None:
            return _sw(SW_CONDITIONS_NOT_SATISFIED)  # no response data waiting
        if command.le is None:
            self._t0_pending = pending
            return _sw(SW_WRONG_LENGTH)
        if command.le > min(len(pending.data), self.t0_chunk):
            self._t0_pending = pending  # still waiting: ask again with the right Le
            return _sw(0x6C00 | self._t0_announce(len(pending.data)))
        chunk, rest = pending.data[: command.le], pending.data[command.le :]
        if not rest:
            return chunk + pending.sw.to_bytes(2, "big")
        self._t0_pending = ResponseApdu(rest, pending.sw)
        return chunk + _sw(0x6100 | self._t0_announce(len(rest)))

    def _t0_announce(self, available: int) -> int:
        """SW2 of a 61xx or 6Cxx: the bytes one GET RESPONSE can fetch (00 means 256)."""
        return min(available, self.t0_chunk) % 256

    def _select(self, card_no: str, command: CommandApdu) -> bytes:
        if command.p1 != 0x04:
            return _sw(SW_WRONG_P1P2)
        self._pin_verified = False
        if command.data == prepaid_app.AID and card_no in self._prepaid:
            self._selected = "prepaid"
        elif command.data == technician_app.AID and card_no in self._technician:
            self._selected = "technician"
        elif command.data == operator_app.AID and card_no in self._operator:
            self._selected = "operator"
        else:
            self._selected = None
            return _sw(SW_FILE_NOT_FOUND)
        return _sw(SW_OK)

    def _prepaid_command(self, card_no: str, command: CommandApdu) -> bytes:
        card = self._prepaid[card_no]
        if command.cla == 0x00 and command.ins == prepaid_app.INS_READ_RECORD:
            return self._read_load_record(card, command)
        if command.cla != prepaid_app.CLA_PROPRIETARY:
            return _sw(SW_CLA_NOT_SUPPORTED)
        if command.ins == prepaid_app.INS_READ_CARD:
            return prepaid_app.encode_card_record(card.as_read()) + _sw(SW_OK)
        if command.ins != prepaid_app.INS_CREDIT:
            return _sw(SW_INS_NOT_SUPPORTED)
        if len(command.data) < prepaid_app.CREDIT_FIXED_LENGTH:
            return _sw(SW_WRONG_LENGTH)
        try:
            request = prepaid_app.parse_credit(command.data)
        except ApduError:
            return _sw(SW_WRONG_DATA)  # the terminal and reference TLVs are malformed
        pull = self._take_pull()
        if pull == _PULL_BEFORE:
            raise _Pulled
        try:
            credited = card.apply_credit(
                request.amount_fen, request.new_counter, request.mac, request.terminal, request.ref
            )
        except CardCommandRefused as refusal:
            if pull is not None:
                raise _Pulled from None
            return _sw(int(refusal.status_word, 16))
        self._prepaid[card_no] = credited
        self._save()  # the card's memory is written before it answers
        if pull is not None:
            raise _Pulled
        return prepaid_app.encode_card_record(credited.as_read()) + _sw(SW_OK)

    @staticmethod
    def _read_load_record(card: SimulatedPrepaidCard, command: CommandApdu) -> bytes:
        if command.p2 & 0x07 != 0x04:
            return _sw(SW_WRONG_P1P2)  # only "record number in P1" is supported
        if command.p2 != prepaid_app.P2_LOAD_LOG_RECORD:
            return _sw(SW_FILE_NOT_FOUND)  # no file with that short identifier
        if not 1 <= command.p1 <= len(card.load_log):
            return _sw(SW_RECORD_NOT_FOUND)
        return prepaid_app.encode_load_record(card.load_log[command.p1 - 1]) + _sw(SW_OK)

    def _technician_command(self, card_no: str, command: CommandApdu) -> bytes:
        card = self._technician[card_no]
        return self._holder_command(
            self._technician,
            card_no,
            command,
            id_p1p2=technician_app.P1P2_TECHNICIAN_ID,
            holder_id=card.technician_id,
        )

    def _operator_command(self, card_no: str, command: CommandApdu) -> bytes:
        """The technician application's commands under the operator's AID (operator_app)."""
        card = self._operator[card_no]
        return self._holder_command(
            self._operator,
            card_no,
            command,
            id_p1p2=operator_app.P1P2_OPERATOR_ID,
            holder_id=card.operator_id,
        )

    def _holder_command(
        self,
        cards: dict[str, _Holder],
        card_no: str,
        command: CommandApdu,
        *,
        id_p1p2: tuple[int, int],
        holder_id: str,
    ) -> bytes:
        """VERIFY and GET ID of a technician or operator card: one command layout (operator_app
        names technician_app's values) and one PIN rule; only the id's P1 P2 differ."""
        card = cards[card_no]
        if command.cla == 0x00 and command.ins == technician_app.INS_VERIFY:
            if command.p1 != 0x00 or command.p2 != technician_app.P2_TECHNICIAN_PIN:
                return _sw(SW_WRONG_P1P2)
            if not command.data:  # ISO 7816-4: VERIFY without data asks for the tries left
                if card.blocked:
                    return _sw(0x6983)
                return _sw(SW_OK if self._pin_verified else 0x63C0 | card.tries_left)
            pull = self._take_pull()
            if pull == _PULL_BEFORE:
                raise _Pulled
            after, sw = card.verify(command.data)
            cards[card_no] = after
            self._save()
            if pull is not None:
                raise _Pulled
            self._pin_verified = sw == SW_OK
            return _sw(sw)
        if command.cla != technician_app.CLA_PROPRIETARY:
            return _sw(SW_CLA_NOT_SUPPORTED)
        if command.ins != technician_app.INS_GET_TECHNICIAN_ID:
            return _sw(SW_INS_NOT_SUPPORTED)
        if (command.p1, command.p2) != id_p1p2:
            return _sw(SW_WRONG_P1P2)
        if not self._pin_verified:
            return _sw(SW_SECURITY_STATUS_NOT_SATISFIED)
        return holder_id.encode("ascii") + _sw(SW_OK)

    def _take_pull(self) -> str | None:
        if self._fault in (_PULL_BEFORE, _PULL_AFTER):
            fault, self._fault = self._fault, None
            return fault
        return None

    def _reset_session(self) -> None:
        self._selected = None
        self._pin_verified = False
        self._t0_pending = None

    # ------------------------------------------------------------ state file

    def _require_new(self, card_no: str) -> None:
        if card_no in self._prepaid or card_no in self._technician or card_no in self._operator:
            raise ValueError(f"a simulated card {card_no} exists already: use another number")

    def _load(self) -> None:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the card state file {self.state_path}: {exc}") from None
        self._prepaid = {n: SimulatedPrepaidCard.from_state(c) for n, c in state["utility"].items()}
        self._technician = {n: SimulatedTechnicianCard(**c) for n, c in state["technician"].items()}
        # State files written before operator cards have none.
        self._operator = {
            n: SimulatedOperatorCard(**c) for n, c in state.get("operator", {}).items()
        }

    def _save(self) -> None:
        # Written to a temporary file, flushed to disk and renamed: a killed simulator leaves
        # the old or the new state, never half of one, as a card's EEPROM write.
        state = {
            "utility": {n: c.to_state() for n, c in self._prepaid.items()},
            "technician": {n: asdict(c) for n, c in self._technician.items()},
            "operator": {n: asdict(c) for n, c in self._operator.items()},
        }
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state_path.with_name(self.state_path.name + ".tmp")
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(state, out, indent=2, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.state_path)


def _sw(sw: int) -> bytes:
    return ResponseApdu(b"", sw).encode()


def _recv_exact(sock: socket.socket, length: int) -> bytes | None:
    data = bytearray()
    while len(data) < length:
        chunk = sock.recv(length - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


# ---------------------------------------------------------------- control socket (CLI)


def serve_control(simulator: VpcdCardSimulator, path: Path) -> threading.Thread:
    """Accept one JSON request per connection on a Unix socket at path (simulators.cards).

    Requests: {"do": "insert", "card_no": ...}, {"do": "remove"}, {"do": "pull",
    "after_apply": bool}, {"do": "answer-error", "status_word": "6581"}, {"do": "status"},
    {"do": "load-elsewhere", "card_no": ..., "amount_fen": int, "terminal": ..., "ref": ...}
    (terminal and ref optional). Each gets {"ok": true, "inserted": ...} (load-elsewhere adds
    "card": the card as read, last_load included) or {"ok": false, "error": "..."}.
    """
    if path.exists():
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)

    def handle(request: dict[str, object]) -> dict[str, object]:
        action = request.get("do")
        if action == "insert":
            simulator.insert(str(request["card_no"]), wait_s=None)
        elif action == "remove":
            simulator.remove()
        elif action == "pull":
            simulator.pull_during_next_command(bool(request.get("after_apply")))
        elif action == "answer-error":
            simulator.answer_error(str(request["status_word"]))
        elif action == "load-elsewhere":
            amount_fen = request["amount_fen"]
            if isinstance(amount_fen, bool) or not isinstance(amount_fen, int):
                raise ValueError(f"amount_fen {amount_fen!r} is not a whole number of fen")
            ref = request.get("ref")
            card = simulator.load_elsewhere(
                str(request["card_no"]),
                amount_fen,
                str(request.get("terminal") or GRID_OFFICE_TERMINAL),
                None if ref is None else str(ref),
            )
            return {"ok": True, "inserted": simulator.inserted, "card": asdict(card)}
        elif action != "status":
            raise ValueError(f"unknown control request {action!r}")
        return {"ok": True, "inserted": simulator.inserted}

    def run() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                try:
                    line = connection.makefile("r", encoding="utf-8").readline()
                    reply = handle(json.loads(line))
                except (ValueError, KeyError, TimeoutError, CardError) as exc:
                    reply = {"ok": False, "error": str(exc)}
                connection.sendall(json.dumps(reply).encode() + b"\n")

    thread = threading.Thread(target=run, name="vpcd-card-control", daemon=True)
    thread.start()
    return thread


def send_control(
    path: Path, request: dict[str, object], timeout_s: float = 5.0
) -> dict[str, object]:
    """Send one control request to a running `python -m simulators.cards simulate`; its reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(path))
        sock.sendall(json.dumps(request).encode() + b"\n")
        reply: dict[str, object] = json.loads(sock.makefile("r", encoding="utf-8").readline())
    return reply
