"""Account numbers a service's rule accepts, made up at random: for the demo, the screen tour
and the simulated residents of the tests (the platform simulator has a bill for every
well-formed account, so any of them can be paid)."""

import random

from kiosk.catalog.model import Service
from kiosk.errors import KioskError


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
