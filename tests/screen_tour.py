"""A tour of every screen of the app, in both languages and every reading mode, checked.

Owns the script of the tour: it drives the real app (tests.ui_harness) on simulated devices
through every journey and device state that has a screen of its own — bill, phone top-up
with its confirmation, prepaid card top-up with the card pulled mid-credit, unrecognised
cash, a receipt that could not be printed, a payment left in doubt, rating and complaint,
help and the fee list, reprint, a refused service, out of service (printer, tamper),
maintenance — and at each stop renders the screen in Chinese and English, in normal,
large-text and high-contrast mode, runs the layout check (ui.layout_check) and saves
`<screen>[-<variant>]-<lang>[-<mode>].png`. It fails when a screen of ui.screens.SCREENS
was never reached, so a new screen cannot be left out. Used by `python -m tests.ui_screens`
(`make screens`) and its test; it never decides anything about the journeys themselves.
"""

import functools
import json
import random
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.catalog.sample_accounts import valid_account
from kiosk.transactions.retry_policy import FIRST_RETRY
from tests.ui_harness import UiHarness
from ui.screen_ids import ScreenId
from ui.screens import SCREENS

LANGUAGES = ("zh_CN", "en")
# The station operator's card the tour issues on the simulated reader.
OPERATOR_CARD = "8700000099"
OPERATOR_PIN = "135790"
FIRST_RETRY_S = FIRST_RETRY.total_seconds()
# (file name suffix, large text, high contrast)
MODES: tuple[tuple[str, bool, bool], ...] = (
    ("", False, False),
    ("large", True, False),
    ("contrast", False, True),
)


@dataclass
class TourDevices:
    """What the tour does to the simulated devices (station.composition.SimulatedDevices)."""

    sims: Any
    prepaid_card_no: str  # an electricity card known to the simulated reader
    technician_pin: str
    insert_technician_card: Callable[[], None]
    platform_url: str  # the platform simulator's, for its /sim/faults control
    # Lets the terminal's clock move on by that many seconds (a retry's backoff): a fixed
    # clock is advanced; on the system clock the tour waits.
    let_time_pass: Callable[[float], None] = time.sleep


@dataclass
class ScreenTour:
    ui: UiHarness
    devices: TourDevices
    out: Path
    written: list[Path] = field(default_factory=list)
    seen: set[ScreenId] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)  # what the layout check found

    @property
    def sims(self) -> Any:
        return self.devices.sims

    def snap(self, variant: str = "") -> None:
        ui = self.ui
        ui.settle()
        screen = ui.controller.screen
        display = ui.controller.display
        for lang in LANGUAGES:
            for mode, large, contrast in MODES:
                display.set_language(lang)
                display.set_modes(large_text=large, high_contrast=contrast)
                ui.pump(2)
                name = "-".join(part for part in (screen, variant, lang, mode) if part)
                self.problems += [f"{name}: {problem}" for problem in ui.layout_problems()]
                path = self.out / f"{name}.png"
                ui.screenshot(path)
                self.written.append(path)
        display.set_modes(large_text=False, high_contrast=False)
        display.set_language(LANGUAGES[0])
        ui.pump(1)
        self.seen.add(screen)

    def go(self, *taps: str, then: str) -> None:
        for action_id in taps:
            self.ui.tap(action_id)
        self.ui.wait_screen(then)

    def start_service(self, code: str, then: str) -> None:
        ui = self.ui
        if ui.controller.screen not in ("idle", "menu"):
            ui.controller.go_idle()
            ui.wait_screen("idle")
        if ui.controller.screen == "idle":
            self.go("start", then="menu")
        self.go(f"service-{code}", then=then)

    def pay_cash(self, snap: bool = False) -> None:
        """From a confirmation: Pay, the method choice, cash."""
        self.go("pay", then="pay_method")
        if snap:
            self.snap()
        self.go("pay-cash", then="cash")

    def insert_until_paid(self, note_fen: int = 100_00) -> None:
        ui = self.ui
        while ui.controller.screen == "cash":
            before = ui.controller.resident.cash_inserted_fen
            progress = ui.controller.journey.progress
            largest = progress.largest_fen if progress is not None else None
            self.sims.cash.insert("note", min(note_fen, largest or note_fen))
            ui.wait_for(functools.partial(self._counted, before), "the note to be counted")

    def _counted(self, before: int) -> bool:
        controller = self.ui.controller
        return controller.screen != "cash" or controller.resident.cash_inserted_fen > before

    def platform_faults(self, *specs: str) -> None:
        request = urllib.request.Request(
            self.devices.platform_url + "/sim/faults",
            data=json.dumps({"faults": list(specs), "seed": None}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5):
            pass

    def operator_screens(self, voucher_id: str) -> None:
        """The station operator's card and PIN, home and every action's screen, filled in."""
        ui, cards = self.ui, self.sims.cards
        cards.create_operator_card(OPERATOR_CARD, "OP-0001", OPERATOR_PIN)
        cards.insert_operator_card(OPERATOR_CARD)
        self.go("operator", then="operator_login")
        ui.type_digits(OPERATOR_PIN)
        self.snap()
        self.go("confirm", then="operator_home")
        self.go("op-deposit", then="operator_deposit")
        self.snap()
        self.go("field-slip", *(f"key-{key}" for key in "PS"), "key-dash", then="operator_deposit")
        ui.type_digits("1001")
        self.snap("slip")
        self.go("record", then="operator_deposit")  # nothing typed as amount: one line
        self.snap("refused")
        self.go("field-amount", then="operator_deposit")
        ui.type_digits("500")
        self.go("record", then="operator_home")
        self.snap()
        self.go("op-float", then="operator_float")
        self.snap()
        self.go("back", "op-close_day", then="operator_close_day")
        self.snap()
        self.go("close-day", then="operator_home")
        self.go("op-close_day", then="operator_close_day")
        self.snap("closed")  # with the closed day's sheet to print again
        self.go("back", "op-collect_cash", then="operator_cash")
        self.go("count-note-100", then="operator_cash")
        ui.type_digits("12")
        self.snap()
        self.go("back", "op-pay_voucher", then="operator_voucher")
        for key in voucher_id:
            ui.tap(f"key-{key}")
        self.snap()
        self.go("look-up", then="operator_voucher")
        self.snap("found")
        self.go("back", "op-reprint", then="operator_reprint")
        ui.type_digits("1")
        self.snap()
        self.go("back", "logout", then="idle")
        cards.remove_card()

    def sim_control(self, path: str, body: dict[str, Any]) -> None:
        """POST to the platform simulator's /sim controls (provider, the resident's phone)."""
        request = urllib.request.Request(
            self.devices.platform_url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5):
            pass

    def start_by_phone(self, service: str, account: str) -> None:
        """From idle: a bill or a phone top-up confirmed, then scan to pay: the code shows."""
        self.start_service(service, then="account")
        self.ui.type_digits(account)
        if service == "water-bill":
            self.go("confirm", then="confirm")
        else:
            self.go("confirm", then="amount")
            self.go("amount-5000", then="topup_confirm")
        self.go("pay", then="pay_method")
        self.go("pay-qr", then="qr_pay")

    def resident_pays(self) -> None:
        """The resident scans the dynamic code with Alipay and pays (the simulator's phone)."""
        ui = self.ui
        qr = ui.controller.journey.qr
        assert qr is not None
        self.sim_control(f"/sim/orders/{self.order_key(qr.code_url)}/pay", {"wallet": "alipay"})

    def order_key(self, code_url: str) -> str:
        """The key of the order the screen shows, found by its code in the simulator's book."""
        url = self.devices.platform_url + "/sim/orders"
        with urllib.request.urlopen(url, timeout=5) as answer:
            orders = json.load(answer)["orders"]
        return str(next(o["key"] for o in orders if o["code_url"] == code_url))

    def pay_by_phone_tour(self) -> None:
        """Paying by phone: the code, paid, cancelled, refunded to the wallet."""
        ui = self.ui
        water = ui.controller.terminal.catalog().service("water-bill")
        account = valid_account(water, random.Random(7))
        self.start_by_phone("water-bill", account)
        self.snap()
        self.resident_pays()
        ui.wait_screen("qr_result")
        self.snap("paid")
        ui.controller.go_idle()
        ui.wait_screen("idle")

        self.start_by_phone("mobile-topup", "13800138000")
        self.go("cancel", then="qr_result")
        self.snap("cancelled")
        ui.controller.go_idle()
        ui.wait_screen("idle")

        # Paid, but the platform refuses the posting: the money goes back to the wallet.
        self.start_by_phone("water-bill", valid_account(water, random.Random(8)))
        self.platform_faults("post:refuse:code=bill_already_paid:status=409")
        self.resident_pays()
        ui.wait_screen("qr_result")
        self.snap("refunded")
        self.platform_faults()
        ui.controller.go_idle()
        ui.wait_screen("idle")

        # Paid, the posting refused and the first refund failing: in doubt (the interim
        # slip). Settled before the tour goes on: the refund is retried after its backoff.
        self.sim_control("/sim/provider", {"behaviours": ["refund_fail:times=1"]})
        self.start_by_phone("water-bill", valid_account(water, random.Random(9)))
        self.platform_faults("post:refuse:code=bill_already_paid:status=409")
        self.resident_pays()
        ui.wait_screen("qr_in_doubt")
        self.snap()
        self.platform_faults()
        self.sim_control("/sim/provider", {"behaviours": []})
        self.go("done", then="rating")
        ui.controller.go_idle()
        ui.wait_screen("idle")
        terminal = ui.controller.terminal
        self.devices.let_time_pass(FIRST_RETRY_S + 1)
        ui.core(terminal.tick)
        open_payments = ui.core(terminal.open_transaction_ids)
        assert open_payments == [], (
            f"the payment by phone in doubt was not settled: {open_payments}"
        )

    def run(self) -> list[Path]:
        ui = self.ui
        terminal = ui.controller.terminal
        ui.wait_screen("idle")
        self.snap()
        self.go("start", then="menu")
        self.snap()
        self.go("service-help", then="help")
        self.snap()
        self.go("fees", then="tariffs")
        self.snap()
        ui.controller.go_idle()
        ui.wait_screen("idle")

        # A water bill: keypad, confirmation, cash, result, rating, complaint.
        water = terminal.catalog().service("water-bill")
        self.start_service("water-bill", then="account")
        ui.type_digits(valid_account(water, random.Random(1)))
        self.snap()
        self.go("confirm", then="confirm")
        self.snap()
        self.pay_cash(snap=True)
        self.sims.cash.insert("note", 10_00)
        ui.wait_for(lambda: ui.controller.resident.cash_inserted_fen > 0, "the note")
        self.snap()
        self.insert_until_paid()
        ui.wait_screen("result")
        self.snap()
        outcome = ui.controller.journey.outcome
        assert outcome is not None and outcome.token is not None
        reprint_code = outcome.token
        self.go("done", then="rating")
        self.snap()
        self.go("rate-bad", then="rating_reason")
        self.snap()
        self.go("reason-other", then="complaint")
        ui.type_digits("13800138000")
        self.snap()
        self.go("send-complaint", then="thanks")
        self.snap()
        self.go("done", then="idle")

        # A phone top-up: its confirmation, then a receipt that cannot be printed (QR code).
        self.start_service("mobile-topup", then="account")
        ui.type_digits("13800138000")
        self.go("confirm", then="amount")
        self.snap()
        self.go("amount-5000", then="topup_confirm")
        self.snap()
        self.pay_cash()
        self.sims.printer.paper_out()
        self.insert_until_paid(50_00)
        ui.wait_screen("result")
        self.snap("unprinted")
        self.sims.printer.restore()
        ui.controller.go_idle()
        ui.wait_screen("idle")

        # Something the acceptor cannot recognise while a top-up collects.
        self.start_service("mobile-topup", then="account")
        ui.type_digits("13800138000")
        self.go("confirm", then="amount")
        self.go("amount-3000", then="topup_confirm")
        self.pay_cash()
        self.sims.cash.insert("note", 10_00)
        ui.wait_for(lambda: ui.controller.resident.cash_inserted_fen > 0, "the note")
        self.sims.cash.insert_unrecognised("note")
        ui.wait_for(
            lambda: bool(
                ui.controller.journey.progress and ui.controller.journey.progress.suspense
            ),
            "the unrecognised item to be reported",
        )
        self.snap("unrecognised")
        self.go("cancel", then="result")
        self.snap("voucher")
        voucher = ui.controller.journey.outcome
        voucher_id = str((voucher.record or {}).get("voucher_id", "")) if voucher else ""
        ui.controller.go_idle()
        ui.wait_screen("idle")

        # A prepaid card top-up whose card is pulled while the credit is written.
        cards = self.sims.cards
        self.start_service("power-card", then="card_insert")
        self.snap()
        cards.insert_card(self.devices.prepaid_card_no)
        ui.wait_screen("amount")
        self.snap("card")
        self.go("amount-10000", then="topup_confirm")
        self.snap("card")
        self.pay_cash()
        cards.pull_during_next_command(after_apply=False)
        self.sims.cash.insert("note", 100_00)
        ui.wait_screen("card_reinsert")
        self.snap()
        cards.insert_card(self.devices.prepaid_card_no)
        ui.wait_screen("result")
        self.snap("card")
        cards.remove_card()
        ui.controller.go_idle()
        ui.wait_screen("idle")

        self.pay_by_phone_tour()

        # A receipt reprinted with the reprint code printed on it.
        self.start_service("reprint", then="reprint")
        ui.type_digits(reprint_code)
        self.snap()
        self.go("confirm", then="reprinted")
        self.snap()
        self.go("done", then="idle")

        # The busy screen only lasts as long as a core call: shown here with its message.
        ui.controller.busy_message = ui.controller.t("Looking up your bill...")
        ui.controller.show(ScreenId.BUSY)
        self.snap()
        ui.controller.go_idle()
        ui.wait_screen("idle")

        # A service whose device fails: a one-time notice; then nothing works: out of service.
        cards.unplug()
        ui.wait_for(lambda: ui.controller.status == "partial", "the reader to be missed")
        self.start_service("power-card", then="notice")
        self.snap()
        self.go("ok", then="idle")
        cards.replug()
        self.sims.printer.paper_out()
        ui.wait_screen("out_of_service")
        self.snap()
        self.sims.printer.restore()
        ui.wait_screen("idle")
        if self.sims.board is not None:
            self.sims.board.open_enclosure()
            ui.wait_screen("out_of_service")
            self.snap("tamper")
            self.sims.board.close_enclosure()

        # Maintenance: technician card and PIN, the pages, tamper cleared, leave.
        self.devices.insert_technician_card()
        self.go("technician", then="maintenance_login")
        ui.type_digits(self.devices.technician_pin)
        self.snap()
        self.go("confirm", then="maintenance")
        self.snap()
        for action in ("device_status", "io_status", "clear_tamper"):
            self.go(f"maint-{action}", then="maintenance")
            self.snap(action.replace("_", ""))
        self.go("leave", then="idle")
        cards.remove_card()
        self.operator_screens(voucher_id)

        # Last, as it stays open: a payment the platform leaves in doubt (the interim slip).
        self.start_service("mobile-topup", then="account")
        ui.type_digits("13800138000")
        self.go("confirm", then="amount")
        self.go("amount-2000", then="topup_confirm")
        self.pay_cash()
        self.platform_faults("post:alter_amount", "status:alter_amount")
        self.insert_until_paid(20_00)
        ui.wait_screen("in_doubt")
        self.snap()
        self.platform_faults()
        self.go("done", then="rating")
        ui.controller.go_idle()
        ui.wait_screen("idle")

        missing = sorted(set(SCREENS) - self.seen)
        if missing:
            raise AssertionError(
                f"the screen tour never reached {', '.join(missing)}: add them to tests.screen_tour"
            )
        return self.written
