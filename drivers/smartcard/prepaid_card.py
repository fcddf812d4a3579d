"""The simulated prepaid utility card application: its data and the rules it enforces.

It owns what the card itself decides: whether a credit is authorised (the issuer's MAC from
drivers.smartcard.prepaid_mac, over the terminal and reference too), whether it is the next
one (the purchase counter), the load log it appends in the same write, and the ISO 7816-4
status word it answers with. It knows nothing about readers, slots or links, so the
in-process reader simulator and the PC/SC virtual card (vsmartcard) can both run it.
"""

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any, Final

from drivers.smartcard.prepaid_app import LOAD_LOG_RECORDS, MAX_REF_BYTES, MAX_TERMINAL_BYTES
from drivers.smartcard.prepaid_mac import check_credit_mac, credit_mac
from kiosk.devices import CardError, CardLoad, CardRefused, PrepaidCard
from kiosk.money import format_fen

UTILITIES: Final = ("electricity", "gas", "water")

# The card keeps its balance in a signed 32-bit fen field, as common utility cards do.
MAX_CARD_BALANCE_FEN: Final = 2**31 - 1

# ISO/IEC 7816-4 status words this card answers with (four upper-case hex digits).
SW_OK: Final = "9000"
SW_MEMORY_FAILURE: Final = "6581"  # the write to the card's memory failed
SW_AUTHENTICATION_BLOCKED: Final = "6983"  # the card is blocked by its issuer
SW_CONDITIONS_NOT_SATISFIED: Final = "6985"  # the credit is not the next one (counter)
SW_SECURE_MESSAGING_WRONG: Final = "6988"  # the MAC does not match
SW_WRONG_DATA: Final = "6A80"  # the amount is not one a card can hold
SW_FILE_NOT_FOUND: Final = "6A82"  # no prepaid utility application on this card
SW_RECORD_NOT_FOUND: Final = "6A83"  # the load log has no such record (yet)

STATUS_MEANINGS: Final = {
    SW_OK: "done",
    SW_MEMORY_FAILURE: "memory failure",
    "6982": "security status not satisfied",
    SW_AUTHENTICATION_BLOCKED: "card blocked",
    SW_CONDITIONS_NOT_SATISFIED: "conditions of use not satisfied",
    SW_SECURE_MESSAGING_WRONG: "wrong MAC",
    SW_WRONG_DATA: "wrong data",
    SW_FILE_NOT_FOUND: "application not found",
    SW_RECORD_NOT_FOUND: "record not found",
    "6700": "wrong length",
}


class CardStatusError(CardError):
    """The card answered a command with an error status word (it did not carry it out)."""

    def __init__(self, status_word: str, message: str) -> None:
        super().__init__(message)
        self.status_word = status_word


class CardCommandRefused(CardRefused):
    """The card refused a command on purpose; status_word is what it answered."""

    def __init__(self, status_word: str, message: str) -> None:
        super().__init__(message)
        self.status_word = status_word


def check_status_word(status_word: str) -> str:
    """Return status_word in canonical form (four upper-case hex digits) or raise ValueError."""
    canonical = status_word.strip().upper()
    if len(canonical) != 4 or any(c not in "0123456789ABCDEF" for c in canonical):
        raise ValueError(f"status word {status_word!r} is not four hex digits such as 6581")
    return canonical


def error_for_status(status_word: str, doing: str) -> CardError:
    """The exception a host raises when the card answers `doing` with an error status word.

    Status words of class 69 and 6A say the card refused the command (CardCommandRefused);
    others, such as 6581, say it failed (CardStatusError). Neither changed the card.
    """
    status_word = check_status_word(status_word)
    if status_word == SW_OK:
        raise ValueError("9000 is success, not an error")
    meaning = STATUS_MEANINGS.get(status_word, "error")
    if status_word.startswith(("69", "6A")):
        return CardCommandRefused(
            status_word,
            f"the card refused {doing} (status {status_word}: {meaning}); "
            "nothing was changed on the card",
        )
    return CardStatusError(
        status_word,
        f"the card failed {doing} (status {status_word}: {meaning}); "
        "nothing was changed: take the card out, put it back in and try again",
    )


def _load_text_problem(value: object, what: str, max_bytes: int) -> str | None:
    """Why value cannot be stored in a load-log text field, or None when it can."""
    if not isinstance(value, str) or not value:
        return f"the {what} is empty"
    if not value.isascii() or not value.isprintable() or " " in value:
        return f"the {what} {value!r} is not printable ASCII without spaces"
    if len(value) > max_bytes:
        return f"the {what} has {len(value)} bytes, more than the card's {max_bytes}"
    return None


@dataclass(frozen=True)
class SimulatedPrepaidCard:
    """The state of one prepaid utility card's application, and the credits it accepts.

    load_log holds the newest loads first, at most LOAD_LOG_RECORDS of them (older ones
    are overwritten, as a cyclic record file on a CPU card).
    """

    card_no: str
    utility: str
    meter_no: str
    purchase_counter: int = 0
    last_credit_fen: int = 0
    balance_fen: int = 0
    blocked: bool = False
    load_log: tuple[CardLoad, ...] = ()

    def __post_init__(self) -> None:
        if not self.card_no.isascii() or not self.card_no.isdigit():
            raise ValueError(f"card number {self.card_no!r} must be digits only")
        if self.utility not in UTILITIES:
            raise ValueError(f"utility {self.utility!r} is not one of {', '.join(UTILITIES)}")
        if not self.meter_no.isascii() or not self.meter_no.replace("-", "").isalnum():
            raise ValueError(f"meter number {self.meter_no!r} must be ASCII letters, digits or '-'")
        for name in ("purchase_counter", "last_credit_fen", "balance_fen"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number of 0 or more, not {value!r}")
        if self.balance_fen > MAX_CARD_BALANCE_FEN:
            raise ValueError(f"balance {self.balance_fen} fen does not fit on a card")
        if len(self.load_log) > LOAD_LOG_RECORDS:
            raise ValueError(f"a card keeps at most {LOAD_LOG_RECORDS} loads in its log")

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "SimulatedPrepaidCard":
        """The card from its state-file form (to_state); a state without a log has none."""
        loads = tuple(CardLoad(**load) for load in state.get("load_log", ()))
        return cls(**{**state, "load_log": loads})

    def to_state(self) -> dict[str, Any]:
        """The card as JSON-ready data (dataclasses.asdict turns the loads into dicts)."""
        state = dataclasses.asdict(self)
        state["load_log"] = [dataclasses.asdict(load) for load in self.load_log]
        return state

    def apply_credit(
        self, amount_fen: int, new_counter: int, mac: bytes, terminal: str, ref: str
    ) -> "SimulatedPrepaidCard":
        """The card after applying one issuer-authorised credit; raises CardCommandRefused.

        The card checks, in this order: not blocked (6983), the terminal id and reference
        fitting their load-log fields (6A80), the MAC over card number, new counter, amount,
        terminal and reference (6988), the counter being exactly the next one (6985), and
        the amount fitting the balance field (6A80). A refused credit changes nothing; an
        applied one moves balance, counter and load log together.
        """
        if self.blocked:
            raise CardCommandRefused(
                SW_AUTHENTICATION_BLOCKED,
                f"prepaid card {self.card_no} is blocked by its issuer (status 6983): "
                "the resident must take it to the utility's service counter",
            )
        problem = _load_text_problem(terminal, "terminal id", MAX_TERMINAL_BYTES) or (
            _load_text_problem(ref, "transaction reference", MAX_REF_BYTES)
        )
        if problem is not None:
            raise CardCommandRefused(
                SW_WRONG_DATA,
                f"prepaid card {self.card_no} refused the credit: {problem} (status 6A80); "
                "nothing was loaded",
            )
        if not isinstance(mac, bytes) or not check_credit_mac(
            self.card_no, new_counter, amount_fen, terminal, ref, mac
        ):
            raise CardCommandRefused(
                SW_SECURE_MESSAGING_WRONG,
                f"prepaid card {self.card_no} refused the credit: its MAC is wrong "
                "(status 6988); nothing was loaded, ask the platform for a new authorisation",
            )
        if new_counter != self.purchase_counter + 1:
            raise CardCommandRefused(
                SW_CONDITIONS_NOT_SATISFIED,
                f"prepaid card {self.card_no} refused the credit for purchase {new_counter}: "
                f"the card is at purchase {self.purchase_counter} (status 6985); "
                "read the card again before deciding whether the credit was loaded",
            )
        if amount_fen <= 0 or self.balance_fen + amount_fen > MAX_CARD_BALANCE_FEN:
            raise CardCommandRefused(
                SW_WRONG_DATA,
                f"prepaid card {self.card_no} cannot hold a credit of {format_fen(amount_fen)} "
                f"on a balance of {format_fen(self.balance_fen)} (status 6A80)",
            )
        load = CardLoad(counter=new_counter, amount_fen=amount_fen, terminal=terminal, ref=ref)
        return dataclasses.replace(
            self,
            purchase_counter=new_counter,
            last_credit_fen=amount_fen,
            balance_fen=self.balance_fen + amount_fen,
            load_log=(load, *self.load_log)[:LOAD_LOG_RECORDS],
        )

    @property
    def last_load(self) -> CardLoad | None:
        return self.load_log[0] if self.load_log else None

    def as_read(self) -> PrepaidCard:
        """What a reader returns to the terminal core when it reads this card."""
        return PrepaidCard(
            card_no=self.card_no,
            utility=self.utility,
            meter_no=self.meter_no,
            purchase_counter=self.purchase_counter,
            last_credit_fen=self.last_credit_fen,
            last_load=self.last_load,
        )


GRID_OFFICE_TERMINAL: Final = "GRID-01"


def load_elsewhere(
    card: SimulatedPrepaidCard, amount_fen: int, terminal: str, ref: str | None
) -> SimulatedPrepaidCard:
    """The card after a genuine load made at another terminal (a utility's service counter).

    The simulated issuer authorises it (a valid MAC for that terminal and reference) and the
    card applies it by its own rules, so it moves the counter and lands in the load log
    exactly as a load at this kiosk would. ref None: a fresh reference for that terminal.
    Raises CardCommandRefused as the card would (blocked, amount, field bounds).
    """
    if ref is None:
        ref = f"{terminal}-{uuid.uuid4().hex[:12].upper()}"
    new_counter = card.purchase_counter + 1
    try:
        mac = credit_mac(card.card_no, new_counter, amount_fen, terminal, ref)
    except ValueError:
        mac = b""  # text the issuer cannot MAC: the card refuses it (6A80) before the MAC
    return card.apply_credit(amount_fen, new_counter, mac, terminal, ref)
