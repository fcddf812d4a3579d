"""Simulated residents served by the real terminal core, with the faults a resident brings.

Each resident's journey comes from a generator seeded by (seed, resident number): a bill, a
phone top-up or a prepaid card top-up, paid in notes and coins, sometimes cancelled. Card
residents sometimes pull the card out during the credit (before or after the card applied
it) and top it up at another terminal before it comes back. What happened to each resident
is tallied in the SoakLedger with their progress, so a run killed at any instant and
started again on the same data resumes with the resident it was serving.
"""

import json
import logging
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter

from drivers.cash import CashRejected
from kiosk.catalog import Service
from kiosk.catalog.sample_accounts import valid_account
from kiosk.clock_guard import ClockWrong
from kiosk.devices import PrepaidCard
from kiosk.errors import KioskError
from kiosk.platform import PlatformError
from kiosk.terminal import Terminal
from kiosk.transactions.engine import NotEnoughCash, Outcome, Progress, QrPayment
from kiosk.transactions.kinds import QrStage
from kiosk.transactions.outcomes import PaymentCodeRefused
from kiosk.transactions.states import TxState
from kiosk.transactions.vouchers import VoucherRefused
from tests.fixtures.engine_hook import engine_of
from tests.soak.ledger import SoakLedger
from tests.soak.plan import Intensity

log = logging.getLogger(__name__)

NOTES_FEN = (100_00, 50_00, 20_00, 10_00, 5_00, 1_00)
COINS_FEN = (1_00, 50, 10)
CARD_POOL = 8
OPERATOR = "station-operator"
ELSEWHERE_TERMINAL = "GRID-01"
# How often a resident's screen is refreshed, or a refused note swapped, before they give up.
PATIENCE = 4
# A resident refused for a wrong clock walks away; the next one comes a little later.
CLOCK_REFUSAL_PAUSE_S = 1.0
# A resident paying by phone looks at the screen this often, this many times at most.
QR_POLL_S = 0.05
QR_LOOKS = 24


def card_pool(terminal: Terminal, cards: object, seed: int) -> list[tuple[str, str]]:
    """The soak's prepaid cards (number, top-up service), created in the simulator once."""
    catalog = terminal.catalog()
    pool: list[tuple[str, str]] = []
    for n in range(CARD_POOL):
        service = catalog.service("power-card" if n % 2 == 0 else "gas-card")
        card_no = valid_account(service, random.Random(f"card:{seed}:{n}"))
        pool.append((card_no, service.code))
        if not cards.has_card(card_no):  # type: ignore[attr-defined]
            cards.create_card(card_no, service.utility, f"M{n:06d}")  # type: ignore[attr-defined]
    return pool


def settle_loads_elsewhere(cards: object, ledger: SoakLedger) -> None:
    """A load left asked by a kill happened exactly when the card's log shows it (the card
    had no other load since: the worker settles these before it serves anyone)."""
    for load in ledger.elsewhere_loads("asked"):
        card = cards.card(load.card_no)  # type: ignore[attr-defined]
        applied = [entry for entry in card.load_log if entry.ref == load.ref]
        ledger.elsewhere_settled(load.ref, applied[0].counter if applied else None)


def refusal_name(exc: PlatformError) -> str:
    code = getattr(exc, "code", None)
    return f"{type(exc).__name__} {code}" if code else type(exc).__name__


class Residents:
    def __init__(
        self,
        terminal: Terminal,
        sims: object,
        ledger: SoakLedger,
        seed: int,
        intensity: Intensity,
    ) -> None:
        self.terminal = terminal
        self.sims = sims
        self.ledger = ledger
        self.seed = seed
        self.intensity = intensity
        self.cards = sims.cards  # type: ignore[attr-defined]
        self.cash = sims.cash  # type: ignore[attr-defined]
        self.pool = card_pool(terminal, self.cards, seed)

    # ------------------------------------------------------------ loads elsewhere

    def load_elsewhere(self, card_no: str, amount_fen: int, ref: str) -> None:
        self.ledger.elsewhere_asked(ref, card_no, amount_fen)
        card: PrepaidCard = self.cards.load_elsewhere(
            card_no, amount_fen, terminal=ELSEWHERE_TERMINAL, ref=ref
        )
        self.ledger.elsewhere_settled(ref, card.purchase_counter)

    # ------------------------------------------------------------ serving

    def run(self, residents: int) -> None:
        for number in range(self.ledger.next_resident(self.seed), residents):
            tallies: Counter[str] = Counter()
            rng = random.Random(f"{self.seed}:{number}")
            self.ask_about_open_payments(tallies)
            try:
                outcome = self.serve(rng, number, tallies)
            except ClockWrong:
                tallies["refusal:clock_wrong"] += 1
                outcome = None
                time.sleep(CLOCK_REFUSAL_PAUSE_S)
            except PlatformError as exc:
                tallies[f"walked_away:{refusal_name(exc)}"] += 1
                outcome = None
            except KioskError as exc:
                # PaymentRefused and the device errors a resident is shown (one line each).
                tallies[f"refusal:{type(exc).__name__}"] += 1
                outcome = None
            if outcome is not None:
                tallies[f"outcome:{outcome.outcome}"] += 1
            self.walk_away(tallies)
            if rng.random() < self.intensity.payout_p:
                self.pay_out_a_voucher(rng, tallies)
            tallies["residents"] += 1
            self.ledger.served(self.seed, number, dict(tallies))
            self.terminal.tick()

    def pay_out_a_voucher(self, rng: random.Random, tallies: Counter[str]) -> None:
        """The station operator pays out a voucher a resident brings back (any issued so
        far, perhaps one paid already): once, centrally, whatever the faults."""
        vouchers: list[tuple[str, int]] = []
        for record in self.terminal.journal.records():
            amount = record.get("voucher_fen")
            if record["type"] == "tx_close" and isinstance(amount, int) and amount:
                vouchers.append((str(record["voucher_id"]), amount))
        if not vouchers:
            return
        voucher_id, amount = rng.choice(vouchers)
        try:
            payout = engine_of(self.terminal).vouchers.redeem(voucher_id, amount, operator=OPERATOR)
        except VoucherRefused as exc:
            tallies[f"voucher_payout:refused {str(exc).rsplit('(', 1)[-1].rstrip(')')}"] += 1
            return
        tallies["voucher_payout:paid" if payout.paid else "voucher_payout:not_known_yet"] += 1

    def walk_away(self, tallies: Counter[str]) -> None:
        """A resident stopped by an error leaves; the screen's own timeout cancels what they
        left collecting (the engine's backstop would wait collect_timeout_s)."""
        row = engine_of(self.terminal).store.collecting()
        if row is not None:
            tallies["left_collecting"] += 1
            self.terminal.cancel(row.tx_id)
        for row in engine_of(self.terminal).store.open_transactions():
            if row.tx_state is TxState.AWAITING_PAYMENT and not row.resident_left:
                tallies["left_awaiting_payment"] += 1
                self.terminal.cancel_qr_payment(row.tx_id)  # the screen's timeout

    def ask_about_open_payments(self, tallies: Counter[str]) -> None:
        """A payment still in doubt keeps the kiosk from starting another: its resident asks
        about it now (as they would at the screen), without waiting for the retry's backoff.
        Nothing is asked while the clock is wrong (the engine sends nothing then)."""
        engine = engine_of(self.terminal)
        for _ in range(3):
            open_rows = [
                row
                for row in engine.store.open_transactions()
                if row.tx_state
                in (TxState.POSTING, TxState.POSTED, TxState.VOIDING, TxState.REFUNDING)
            ]
            if not open_rows or not self.terminal.clock_guard.check().ok:
                return
            for row in open_rows:
                tallies["asked_now"] += 1
                engine.advance(row, ask_now=True)

    def serve(self, rng: random.Random, number: int, tallies: Counter[str]) -> Outcome | None:
        catalog = self.terminal.catalog()
        journey = rng.choices(["bill", "phone", "card"], weights=[50, 20, 30])[0]
        by_phone = rng.random() < self.intensity.qr_p
        if by_phone:
            tallies[f"qr:{journey}"] += 1
        card_no = None
        started: Progress | QrPayment
        if journey == "bill":
            service = rng.choice(catalog.services_of_kind("bill"))
            try:
                quote = self.terminal.quote_bill(service.code, valid_account(service, rng))
            except PlatformError as exc:
                tallies[f"walked_away:{refusal_name(exc)}"] += 1
                return None  # no bill due, a skewed clock refused, the platform not answering
            if by_phone:
                started = self.terminal.pay_bill_by_qr(quote)
            else:
                started = self.terminal.pay_bill(quote)
        elif journey == "phone":
            service = catalog.services_of_kind("phone_topup")[0]
            phone, amount = valid_account(service, rng), rng.choice(service.presets_fen)
            if by_phone:
                started = self.terminal.start_phone_topup_by_qr(service.code, phone, amount)
            else:
                started = self.terminal.start_phone_topup(service.code, phone, amount)
        else:
            card_no, code = rng.choice(self.pool)
            self.cards.remove_card()
            self.cards.insert_card(card_no)
            service = catalog.service(code)
            amount = rng.choice(service.presets_fen)
            if by_phone:
                started = self.terminal.start_card_topup_by_qr(code, amount)
            else:
                started = self.terminal.start_card_topup(code, amount)
            if rng.random() < self.intensity.card_pull_p:
                after_apply = rng.random() < 0.5
                self.cards.pull_during_next_command(after_apply=after_apply)
                tallies[f"fault:card_pulled_{'after' if after_apply else 'before'}_apply"] += 1
        if isinstance(started, QrPayment):
            outcome = self.pay_by_phone(rng, started, tallies)
        else:
            outcome = self.pay(rng, started, service, tallies)
        if card_no is not None:
            self.cards.remove_card()
            if rng.random() < self.intensity.elsewhere_p:
                amount = rng.choice(service.presets_fen)
                self.load_elsewhere(card_no, amount, f"GRID-{self.seed}-{number}")
                tallies["fault:card_loaded_elsewhere"] += 1
        return outcome

    def pay(
        self, rng: random.Random, progress: Progress, service: Service, tallies: Counter[str]
    ) -> Outcome:
        cancel_after = rng.randint(1, 3) if rng.random() < 0.08 else None
        inserted = refused = 0
        while progress.still_due_fen > 0:
            if (cancel_after is not None and inserted >= cancel_after) or refused >= PATIENCE:
                return self.terminal.cancel(progress.tx_id)
            largest = progress.largest_fen or max(NOTES_FEN)
            if progress.still_due_fen >= 1_00 and rng.random() < 0.85:
                kind, value = "note", rng.choice([n for n in NOTES_FEN if n <= largest] or [1_00])
            else:
                kind, value = "coin", rng.choice(COINS_FEN)
            try:
                self.cash.insert(kind, value)
            except CashRejected:
                refused += 1  # handed back (inlets closed or narrowed): try again
                tallies["cash_handed_back"] += 1
                progress = self.terminal.collect(progress.tx_id)
                continue
            inserted += 1
            progress = self.refreshed(progress, inserted_fen=value)
        for _ in range(PATIENCE):
            try:
                return self.terminal.finish(progress.tx_id)
            except ClockWrong:
                # Nothing is sent while the clock is wrong: the resident cancels and leaves
                # with an interim slip; the voucher is signed once the clock is right.
                tallies["refusal:clock_wrong_mid_payment"] += 1
                return self.terminal.cancel(progress.tx_id)
            except NotEnoughCash:
                # The board's answer was lost: the screen has not counted the last note yet.
                tallies["finish_retried"] += 1
                progress = self.terminal.collect(progress.tx_id)
        return self.terminal.cancel(progress.tx_id)

    def pay_by_phone(
        self, rng: random.Random, payment: QrPayment, tallies: Counter[str]
    ) -> Outcome | None:
        """The resident scans the dynamic code (the provider's behaviour decides what their
        phone does) or shows a payment code, sometimes cancels, and watches the screen."""
        tx_id = payment.tx_id
        for _ in range(QR_LOOKS):
            if payment.stage in (QrStage.DONE, QrStage.IN_DOUBT):
                return payment.outcome
            draw = rng.random()
            if draw < 0.05:
                tallies["qr:cancelled"] += 1
                payment = self.terminal.cancel_qr_payment(tx_id)
            elif payment.stage is QrStage.WAITING and draw < 0.2:
                self.scan_dynamic_code(tx_id, rng, tallies)
                time.sleep(QR_POLL_S)
                payment = self.terminal.qr_payment(tx_id)
            elif payment.stage is QrStage.WAITING and draw < 0.4:
                # A WeChat payment code (18 digits from 13): fresh for each scan.
                code = f"13{rng.randrange(10**16):016d}"
                try:
                    payment = self.terminal.present_payment_code(tx_id, code)
                    tallies["qr:code_presented"] += 1
                except PaymentCodeRefused as exc:
                    tallies[f"qr:code_refused {exc.code}"] += 1
            else:
                time.sleep(QR_POLL_S)
                payment = self.terminal.qr_payment(tx_id)
        if payment.stage not in (QrStage.DONE, QrStage.IN_DOUBT):
            tallies["qr:screen_timed_out"] += 1
            payment = self.terminal.cancel_qr_payment(tx_id)
        return payment.outcome

    def scan_dynamic_code(self, tx_id: str, rng: random.Random, tallies: Counter[str]) -> None:
        """The resident scans the code on the screen with their wallet and pays (the
        simulator's resident side, POST /sim/orders/{key}/pay; refused once it closed)."""
        key = engine_of(self.terminal).store.get(tx_id).order_key
        wallet = rng.choice(["wechat", "alipay", "unionpay"])
        url = f"{self.terminal.config.platform.url}/sim/orders/{urllib.parse.quote(str(key))}/pay"
        request = urllib.request.Request(
            url, data=json.dumps({"wallet": wallet}).encode(), method="POST"
        )
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=2):
                tallies["qr:dynamic_code_paid"] += 1
        except urllib.error.HTTPError as exc:
            tallies[f"qr:dynamic_code_refused {exc.code}"] += 1
        except OSError:
            tallies["qr:dynamic_code_not_answered"] += 1

    def refreshed(self, before: Progress, *, inserted_fen: int) -> Progress:
        """The screen after a note: collect until it shows the note (a link error may hide
        it for a moment; counted cash stays buffered on the board)."""
        progress = before
        for _ in range(PATIENCE):
            progress = self.terminal.collect(before.tx_id)
            if progress.cash_in_fen >= before.cash_in_fen + inserted_fen:
                break
        return progress
