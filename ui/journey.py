"""What one resident's journey holds while it lasts: everything personal on the screen.

Owns the journey's short-lived state (the service chosen, the digits typed, the quotes,
progress and outcome the core returned, the rating's progress). A fresh Journey replaces
it on timeout and completion, so nothing personal outlives the resident. No behaviour.
"""

from dataclasses import dataclass

from kiosk.catalog import Service
from kiosk.devices import PrepaidCard
from kiosk.terminal import BillQuote, TopupQuote
from kiosk.transactions.outcomes import Outcome, Progress, QrPayment


@dataclass
class Journey:
    service: Service | None = None
    digits: str = ""  # what the keypad typed (an account, an amount, a code, a PIN)
    error: str = ""  # beside the field: what was wrong with it
    account: str = ""  # a top-up's phone number, kept so it can be corrected
    quote: BillQuote | None = None
    topup: TopupQuote | None = None
    card: PrepaidCard | None = None
    progress: Progress | None = None
    finishing: bool = False  # finish() or cancel() is on its way: the timeout waits
    outcome: Outcome | None = None
    qr: QrPayment | None = None  # a payment by phone as the core last described it
    qr_error: str = ""  # on the code's screen: a payment code refused or misread
    qr_expired: bool = False  # the code's countdown ran out (the order was closed)
    clock_wrong: bool = False  # an in-doubt outcome was held back by the terminal's clock
    pending_card_tx: str | None = None
    rated: bool = False
    timed_out: bool = False  # the resident left: no rating is asked for
    complaint_only: bool = False  # a complaint from the help screen, without a rating
    complaint_reason: str | None = None
    complaint_phone: str | None = None  # the call-back number given, once sent

    @property
    def tx_id(self) -> str | None:
        """The transaction this journey made, if it made one."""
        if self.progress is not None:
            return self.progress.tx_id
        if self.qr is not None:
            return self.qr.tx_id
        return None if self.outcome is None else self.outcome.tx_id
