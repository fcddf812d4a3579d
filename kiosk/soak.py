"""Simulated customers driven through the real terminal core, headless (`kiosk soak`).

Each customer's choices come from a generator seeded by (seed, customer number), so a run
is reproducible; progress is committed after every customer, so a soak killed at any
instant and started again on the same data directory resumes where it stopped (after the
terminal's own recovery has resolved whatever the kill interrupted).
"""

import random
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kiosk.catalog import Service
from kiosk.errors import KioskError
from kiosk.platform import PlatformError, PlatformRefused
from kiosk.storage import open_database, write_transaction
from kiosk.terminal import Terminal
from kiosk.transactions.engine import Outcome, PaymentRefused

NOTES_FEN = (100_00, 50_00, 20_00, 10_00, 5_00, 1_00)
COINS_FEN = (1_00, 50, 10)
CARD_POOL = 6


@dataclass
class SoakReport:
    customers: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "customers": self.customers,
            "outcomes": dict(self.outcomes),
            "refusals": dict(self.refusals),
        }


def valid_account(service: Service, rng: random.Random) -> str:
    """A random account number the service's rule accepts (its check digit found by trying)."""
    rule = service.account_rule
    prefix = rng.choice(rule.prefixes)
    for _ in range(100):
        body = prefix + "".join(
            rng.choice("0123456789") for _ in range(rule.length - len(prefix) - 1)
        )
        for digit in "0123456789":
            try:
                return service.validate_account(body + digit)
            except KioskError:
                continue
    raise RuntimeError(f"cannot make an account number for {service.code}")


class Soak:
    def __init__(self, terminal: Terminal, sims: Any, seed: int) -> None:
        self.terminal = terminal
        self.sims = sims
        self.seed = seed
        path = terminal.config.data_path / "soak.sqlite3"
        self._db: sqlite3.Connection = open_database(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS progress (seed INTEGER PRIMARY KEY, next INTEGER NOT NULL)"
        )
        self.report = SoakReport()

    def next_customer(self) -> int:
        row = self._db.execute("SELECT next FROM progress WHERE seed = ?", (self.seed,)).fetchone()
        return 0 if row is None else int(row[0])

    def _done(self, number: int) -> None:
        with write_transaction(self._db):
            self._db.execute(
                "INSERT INTO progress (seed, next) VALUES (?, ?) "
                "ON CONFLICT(seed) DO UPDATE SET next = excluded.next",
                (self.seed, number + 1),
            )

    def cards(self) -> list[tuple[str, str]]:
        """The soak's pool of prepaid cards, created in the simulated reader once."""
        catalog = self.terminal.catalog()
        pool: list[tuple[str, str]] = []
        for n in range(CARD_POOL):
            service = catalog.service("power-card" if n % 2 == 0 else "gas-card")
            rng = random.Random(f"card:{self.seed}:{n}")
            card_no = valid_account(service, rng)
            pool.append((card_no, service.code))
            if not self.sims.cards.has_card(card_no):
                self.sims.cards.create_card(card_no, service.utility, f"M{n:06d}")
        return pool

    def run(self, customers: int) -> SoakReport:
        pool = self.cards()
        for number in range(self.next_customer(), customers):
            rng = random.Random(f"{self.seed}:{number}")
            try:
                outcome = self.serve(rng, pool)
            except PaymentRefused as exc:
                self.report.refusals[type(exc).__name__] += 1
                outcome = None
            except PlatformError as exc:
                self.report.refusals[type(exc).__name__] += 1
                outcome = None
            if outcome is not None:
                self.report.outcomes[outcome.outcome] += 1
            self.report.customers += 1
            self._done(number)
        self.terminal.tick()
        return self.report

    def serve(self, rng: random.Random, pool: list[tuple[str, str]]) -> Outcome | None:
        catalog = self.terminal.catalog()
        journey = rng.choices(["bill", "phone", "card"], weights=[55, 20, 25])[0]
        if journey == "bill":
            service = rng.choice(catalog.services_of_kind("bill"))
            try:
                quote = self.terminal.quote_bill(service.code, valid_account(service, rng))
            except PlatformRefused:
                return None  # no bill due: the resident walks away
            progress = self.terminal.pay_bill(quote)
        elif journey == "phone":
            service = catalog.services_of_kind("phone_topup")[0]
            amount = rng.choice(service.presets_fen)
            progress = self.terminal.start_phone_topup(
                service.code, valid_account(service, rng), amount
            )
        else:
            card_no, code = rng.choice(pool)
            self.sims.cards.remove_card()
            self.sims.cards.insert_card(card_no)
            self.terminal.engine.card_inserted()
            service = catalog.service(code)
            progress = self.terminal.start_card_topup(code, rng.choice(service.presets_fen))
            if rng.random() < 0.15:
                self.sims.cards.pull_during_next_command(after_apply=rng.random() < 0.5)
        cancel_after = rng.randint(1, 3) if rng.random() < 0.08 else None
        inserted = 0
        while progress.still_due_fen > 0:
            if cancel_after is not None and inserted >= cancel_after:
                return self.terminal.cancel(progress.tx_id)
            due = progress.still_due_fen
            # The inlets take no note above progress.largest_fen: a resident offers one
            # they take (a larger one would be handed back).
            largest = progress.largest_fen or max(NOTES_FEN)
            if due >= 1_00 and rng.random() < 0.85:
                kind, value = (
                    "note",
                    rng.choice([n for n in NOTES_FEN if n <= largest] or [1_00]),
                )
            else:
                kind, value = "coin", rng.choice(COINS_FEN)
            self.sims.cash.insert(kind, value)
            inserted += 1
            progress = self.terminal.collect(progress.tx_id)
        outcome = self.terminal.finish(progress.tx_id)
        if journey == "card":
            self.sims.cards.remove_card()
        return outcome

    def close(self) -> None:
        self._db.close()
