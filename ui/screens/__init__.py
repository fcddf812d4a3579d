"""Every screen of the app by its id (`make screens` draws them all to PNG)."""

from ui.screen_ids import ScreenId
from ui.screens.base import KioskScreen
from ui.screens.maintenance import MaintenanceLoginScreen, MaintenanceScreen
from ui.screens.operator import OPERATOR_SCREENS
from ui.screens.qr import PayMethodScreen, QrInDoubtScreen, QrPayScreen, QrResultScreen
from ui.screens.resident import (
    AccountScreen,
    AmountScreen,
    BusyScreen,
    CardInsertScreen,
    CardReinsertScreen,
    CashScreen,
    ComplaintScreen,
    ConfirmBillScreen,
    HelpScreen,
    IdleScreen,
    InDoubtScreen,
    MenuScreen,
    NoticeScreen,
    OutOfServiceScreen,
    RatingReasonScreen,
    RatingScreen,
    ReprintedScreen,
    ReprintScreen,
    ResultScreen,
    TariffsScreen,
    ThanksScreen,
    TopupConfirmScreen,
)

_ALL: tuple[type[KioskScreen], ...] = (
    IdleScreen,
    OutOfServiceScreen,
    MenuScreen,
    AccountScreen,
    ConfirmBillScreen,
    CardInsertScreen,
    AmountScreen,
    TopupConfirmScreen,
    CashScreen,
    PayMethodScreen,
    QrPayScreen,
    QrResultScreen,
    QrInDoubtScreen,
    BusyScreen,
    ResultScreen,
    InDoubtScreen,
    CardReinsertScreen,
    RatingScreen,
    RatingReasonScreen,
    ComplaintScreen,
    ThanksScreen,
    NoticeScreen,
    ReprintScreen,
    ReprintedScreen,
    HelpScreen,
    TariffsScreen,
    MaintenanceLoginScreen,
    MaintenanceScreen,
    *OPERATOR_SCREENS,
)
SCREENS: dict[ScreenId, type[KioskScreen]] = {screen.screen_id: screen for screen in _ALL}
if set(SCREENS) != set(ScreenId):  # pragma: no cover - a screen id without a screen
    raise RuntimeError(f"screens missing for {sorted(set(ScreenId) - set(SCREENS))}")

__all__ = ["SCREENS", "KioskScreen"]
