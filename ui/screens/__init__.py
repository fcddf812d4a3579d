"""Every screen of the app by name (`python -m ui.screens --out DIR` draws them all to PNG)."""

from ui.screens.base import KioskScreen
from ui.screens.maintenance import MaintenanceLoginScreen, MaintenanceScreen
from ui.screens.resident import (
    AccountScreen,
    AmountScreen,
    BusyScreen,
    CardInsertScreen,
    CardReinsertScreen,
    CashScreen,
    ConfirmBillScreen,
    HelpScreen,
    IdleScreen,
    MenuScreen,
    NoticeScreen,
    OutOfServiceScreen,
    RatingReasonScreen,
    RatingScreen,
    ReprintedScreen,
    ReprintScreen,
    ResultScreen,
    ThanksScreen,
)

SCREENS: dict[str, type[KioskScreen]] = {
    "idle": IdleScreen,
    "out_of_service": OutOfServiceScreen,
    "menu": MenuScreen,
    "account": AccountScreen,
    "confirm": ConfirmBillScreen,
    "card_insert": CardInsertScreen,
    "amount": AmountScreen,
    "cash": CashScreen,
    "busy": BusyScreen,
    "result": ResultScreen,
    "card_reinsert": CardReinsertScreen,
    "rating": RatingScreen,
    "rating_reason": RatingReasonScreen,
    "thanks": ThanksScreen,
    "notice": NoticeScreen,
    "reprint": ReprintScreen,
    "reprinted": ReprintedScreen,
    "help": HelpScreen,
    "maintenance_login": MaintenanceLoginScreen,
    "maintenance": MaintenanceScreen,
}

__all__ = ["SCREENS", "KioskScreen"]
