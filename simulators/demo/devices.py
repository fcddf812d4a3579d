"""What a person does to the demo's simulated devices, as actions with a key each.

Owns the demo actions (insert notes and coins or a note the acceptor cannot value, insert
and pull prepaid, technician and operator cards, run the printer out of paper, jam the
acceptor, open the door, open the case to trip the tamper switch) and the demo's card
numbers and the staff cards' PINs. It acts on the simulators only
(station.composition.SimulatedDevices), never on the terminal core: the core sees what
happened through its devices, exactly as with real hardware. No Kivy here (it is imported
before Kivy is configured); simulators.demo.sim_panel shows these actions on screen. The
labels are for the developer at the demo, not for a resident, so they are English, not translated.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kiosk.catalog.account_rules import luhn_check_digit

log = logging.getLogger(__name__)

# The demo's prepaid cards (their numbers end in a Luhn check digit) and technician card.
DEMO_CARD_PREFIXES = {"electricity": "90000000000", "gas": "70000000000"}
TECHNICIAN_CARD = "8600000007"
TECHNICIAN_ID = "TECH-007"
TECHNICIAN_PIN = "2468"
# The demo's station operator card (经办人员: deposits, cash box, vouchers, day close).
OPERATOR_CARD = "8700000007"
OPERATOR_ID = "OP-0007"
OPERATOR_PIN = "135790"
TOGGLE_KEY = "h"


@dataclass(frozen=True)
class SimAction:
    key: str  # the keyboard key
    name: str  # action id of the panel's button: "sim-<name>"
    label: str
    short: str  # on the panel's small button
    run: Callable[[Any], str]  # simulators -> what happened, one line


class _Switches:
    """The door and case switches as the panel last set them (the board latches tamper)."""

    def __init__(self) -> None:
        self.door_open = False
        self.case_open = False

    def door(self, sims: Any) -> str:
        board = _board(sims)
        self.door_open = not self.door_open
        (board.open_door if self.door_open else board.close_door)()
        return "door opened" if self.door_open else "door closed"

    def case(self, sims: Any) -> str:
        board = _board(sims)
        self.case_open = not self.case_open
        (board.open_enclosure if self.case_open else board.close_enclosure)()
        return (
            "case opened: tamper alarm" if self.case_open else "case closed (tamper stays latched)"
        )


def _board(sims: Any) -> Any:
    if sims.board is None:
        raise RuntimeError('no simulated I/O board: set devices.ioboard = "sim"')
    return sims.board


def _insert_card(card_no: str) -> Callable[[Any], str]:
    def run(sims: Any) -> str:
        sims.cards.remove_card()
        sims.cards.insert_card(card_no)
        return f"card {card_no} inserted"

    return run


def _insert_technician_card(sims: Any) -> str:
    sims.cards.remove_card()
    sims.cards.insert_technician_card(TECHNICIAN_CARD)
    return f"technician card inserted (PIN {TECHNICIAN_PIN})"


def _insert_operator_card(sims: Any) -> str:
    try:
        sims.cards.operator_card(OPERATOR_CARD)
    except ValueError:  # issued on first use: the demo's data directory may be older
        sims.cards.create_operator_card(OPERATOR_CARD, OPERATOR_ID, OPERATOR_PIN)
    sims.cards.remove_card()
    sims.cards.insert_operator_card(OPERATOR_CARD)
    return f"operator card inserted (PIN {OPERATOR_PIN})"


def _cash(kind: str, value_fen: int) -> Callable[[Any], str]:
    def run(sims: Any) -> str:
        sims.cash.insert(kind, value_fen)
        return f"{kind} of ¥{value_fen // 100} inserted"

    return run


def _unrecognised_note(sims: Any) -> str:
    event = sims.cash.insert_unrecognised("note")
    return f"unrecognised note taken ({event.detail})"


def _call(what: str, method: str, device: str) -> Callable[[Any], str]:
    def run(sims: Any) -> str:
        getattr(getattr(sims, device), method)()
        return what

    return run


def demo_actions() -> list[SimAction]:
    switches = _Switches()
    return [
        SimAction("1", "coin-1", "¥1 coin", "¥1", _cash("coin", 100)),
        SimAction("2", "note-10", "¥10 note", "¥10", _cash("note", 10_00)),
        SimAction("3", "note-20", "¥20 note", "¥20", _cash("note", 20_00)),
        SimAction("4", "note-50", "¥50 note", "¥50", _cash("note", 50_00)),
        SimAction("5", "note-100", "¥100 note", "¥100", _cash("note", 100_00)),
        SimAction(
            "u", "unrecognised", "note the acceptor cannot value", "unknown", _unrecognised_note
        ),
        SimAction(
            "e",
            "card-electricity",
            "electricity card in",
            "elec. card",
            _insert_card_for("electricity"),
        ),
        SimAction("g", "card-gas", "gas card in", "gas card", _insert_card_for("gas")),
        SimAction(
            "t", "card-technician", "technician card in", "tech. card", _insert_technician_card
        ),
        SimAction("y", "card-operator", "operator card in", "op. card", _insert_operator_card),
        SimAction(
            "x",
            "card-out",
            "pull the card",
            "card out",
            _call("card pulled", "remove_card", "cards"),
        ),
        SimAction(
            "p",
            "paper-out",
            "printer: no paper",
            "no paper",
            _call("paper out", "paper_out", "printer"),
        ),
        SimAction(
            "o",
            "paper-in",
            "printer: paper",
            "paper",
            _call("printer restored", "restore", "printer"),
        ),
        SimAction("j", "jam", "acceptor jam", "jam", _call("acceptor jammed", "jam", "cash")),
        SimAction(
            "k", "unjam", "clear the jam", "unjam", _call("jam cleared", "clear_jam", "cash")
        ),
        SimAction("d", "door", "door open/close", "door", switches.door),
        SimAction("c", "case", "case open/close (tamper)", "case", switches.case),
    ]


def demo_card_number(utility: str) -> str:
    prefix = DEMO_CARD_PREFIXES[utility]
    return prefix + luhn_check_digit(prefix)


def _insert_card_for(utility: str) -> Callable[[Any], str]:
    return _insert_card(demo_card_number(utility))


def keys_help(actions: list[SimAction]) -> str:
    """One line for the terminal the demo was started from."""
    keys = ", ".join(f"{a.key} = {a.label}" for a in actions)
    return f"demo keys: {keys}; {TOGGLE_KEY} = show/hide the simulator panel"


def run_action(action: SimAction, sims: Any) -> str:
    """Apply one action; a refusal (slot not empty, inlets closed...) is reported, not raised."""
    try:
        what = action.run(sims)
    except Exception as exc:  # a demo action must never take the app down
        what = f"{action.label}: not done ({type(exc).__name__}: {exc})"
    log.info("demo: %s", what)
    return what
