"""The credit MAC of the simulated prepaid utility card scheme, written once for both ends.

A real utility's card keys live in its security module; the simulated card issuer (the
platform simulator) and the simulated cards derive per-card keys from one demo master key
so the two cannot drift. Production cards verify MACs their issuer computes; nothing here
is used with a real card.
"""

import hashlib
import hmac

# Demo-only master key of the simulated card issuer. Not a secret of any real scheme.
SIMULATED_ISSUER_MASTER_KEY = b"kiosk-simulated-prepaid-card-issuer-v1"
MAC_LENGTH = 8


def card_key(card_no: str) -> bytes:
    return hashlib.sha256(SIMULATED_ISSUER_MASTER_KEY + card_no.encode("ascii")).digest()


def credit_mac(card_no: str, new_counter: int, amount_fen: int) -> bytes:
    """The MAC authorising one credit of amount_fen that moves the card to new_counter."""
    message = f"{card_no}|{new_counter}|{amount_fen}".encode("ascii")
    return hmac.new(card_key(card_no), message, hashlib.sha256).digest()[:MAC_LENGTH]


def check_credit_mac(card_no: str, new_counter: int, amount_fen: int, mac: bytes) -> bool:
    return hmac.compare_digest(credit_mac(card_no, new_counter, amount_fen), mac)
