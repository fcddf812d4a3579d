"""The names of the app's screens: one vocabulary for the controller, the screens and tests.

Owns which screens exist and which of them are resting places (no resident is served, no
idle timeout runs). It never decides when a screen shows (the controller does) nor how it
looks (ui/screens/).
"""

from enum import StrEnum


class ScreenId(StrEnum):
    IDLE = "idle"
    OUT_OF_SERVICE = "out_of_service"
    MENU = "menu"
    ACCOUNT = "account"
    CONFIRM = "confirm"  # a bill looked up: holder, period, amount, fee, total
    CARD_INSERT = "card_insert"
    AMOUNT = "amount"
    TOPUP_CONFIRM = "topup_confirm"  # a phone or card top-up: number, carrier, amounts
    CASH = "cash"
    # Paying by phone (ui.qr_payment): cash or scan to pay, the code, the results.
    PAY_METHOD = "pay_method"
    QR_PAY = "qr_pay"  # the dynamic code, amount, countdown; the scanner armed
    QR_RESULT = "qr_result"  # paid, cancelled, expired or refunded to the wallet
    QR_IN_DOUBT = "qr_in_doubt"  # the interim slip of a payment by phone
    BUSY = "busy"
    RESULT = "result"
    IN_DOUBT = "in_doubt"  # the platform's answer is unknown: what the interim slip says
    CARD_REINSERT = "card_reinsert"
    RATING = "rating"
    RATING_REASON = "rating_reason"
    COMPLAINT = "complaint"
    THANKS = "thanks"
    NOTICE = "notice"
    REPRINT = "reprint"
    REPRINTED = "reprinted"
    HELP = "help"
    TARIFFS = "tariffs"
    MAINTENANCE_LOGIN = "maintenance_login"
    MAINTENANCE = "maintenance"
    # The station operator's screens (ui.operator_desk): card and PIN, home, six actions.
    OPERATOR_LOGIN = "operator_login"
    OPERATOR_HOME = "operator_home"
    OPERATOR_DEPOSIT = "operator_deposit"
    OPERATOR_FLOAT = "operator_float"
    OPERATOR_CLOSE_DAY = "operator_close_day"
    OPERATOR_CASH = "operator_cash"
    OPERATOR_VOUCHER = "operator_voucher"
    OPERATOR_REPRINT = "operator_reprint"


# Where nothing personal is shown and no idle timeout runs.
RESTING = frozenset(
    {
        ScreenId.IDLE,
        ScreenId.OUT_OF_SERVICE,
        ScreenId.BUSY,
        ScreenId.MAINTENANCE_LOGIN,
        ScreenId.MAINTENANCE,
    }
)
# The operator's screens: the operator session's own timeout runs there, not the resident's.
OPERATOR = frozenset(screen for screen in ScreenId if screen.startswith("operator_"))
# Where the terminal waits between residents: the heap is trimmed on arriving there.
WAITING = frozenset({ScreenId.IDLE, ScreenId.OUT_OF_SERVICE})
