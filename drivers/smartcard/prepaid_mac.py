"""The credit MAC of the simulated prepaid utility card scheme, written once for both ends.

A real utility's card keys live in its security module; the simulated card issuer (the
platform simulator) and the simulated cards derive per-card keys from one demo master key
so the two cannot drift. Production cards verify MACs their issuer computes; nothing here
is used with a real card.

The MAC binds a credit to the card, the purchase counter it moves the card to, the amount,
and the terminal and transaction reference it was authorised for, so the load the card
records in its load log proves which authorisation it carried out.
"""

import hashlib
import hmac

# Demo-only master key of the simulated card issuer. Not a secret of any real scheme.
SIMULATED_ISSUER_MASTER_KEY = b"kiosk-simulated-prepaid-card-issuer-v1"
MAC_LENGTH = 8
# Names this message layout; a layout change gets a new label so old MACs never verify.
_MESSAGE_LABEL = b"KIOSKPP-CREDIT-2"


def card_key(card_no: str) -> bytes:
    return hashlib.sha256(SIMULATED_ISSUER_MASTER_KEY + card_no.encode("ascii")).digest()


def _message(card_no: str, new_counter: int, amount_fen: int, terminal: str, ref: str) -> bytes:
    # Every field is ASCII text with a 2-byte length in front: no separator a terminal id or
    # a reference could contain can make two different credits share a message.
    fields = (card_no, str(new_counter), str(amount_fen), terminal, ref)
    message = bytearray(_MESSAGE_LABEL)
    for field in fields:
        raw = field.encode("ascii")
        message += len(raw).to_bytes(2, "big") + raw
    return bytes(message)


def credit_mac(card_no: str, new_counter: int, amount_fen: int, terminal: str, ref: str) -> bytes:
    """The MAC authorising one credit of amount_fen, moving the card to new_counter, for the
    terminal and the transaction reference (the platform's idempotency key) named.

    Raises ValueError for text that is not ASCII (card numbers, terminal ids and references
    are ASCII on the card).
    """
    message = _message(card_no, new_counter, amount_fen, terminal, ref)
    return hmac.new(card_key(card_no), message, hashlib.sha256).digest()[:MAC_LENGTH]


def check_credit_mac(
    card_no: str, new_counter: int, amount_fen: int, terminal: str, ref: str, mac: bytes
) -> bool:
    """Whether mac authorises exactly this credit (False for non-ASCII text, never raises)."""
    try:
        expected = credit_mac(card_no, new_counter, amount_fen, terminal, ref)
    except ValueError:
        return False
    return hmac.compare_digest(expected, mac)
