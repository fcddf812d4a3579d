"""The touchscreen on the runtime: a fault found at start is on screen, and clears by itself.

The real app under Xvfb on the test terminal; the runtime's loop (housekeeping, events)
runs on its own thread as in kiosk-ui.
"""

from pathlib import Path
from typing import Any

from kiosk.i18n import translator
from kiosk.service_faults import Fault


def test_a_token_failing_at_start_shows_its_reason_then_the_idle_screen_once_it_works(
    terminal_rig: Any, ui_harness: Any, tmp_path: Path
) -> None:
    rig = terminal_rig
    rig.signer.failing = True
    rig.crash_and_restart()
    assert Fault.TOKEN_UNAVAILABLE in rig.terminal.faults
    ui = ui_harness(rig.terminal)
    ui.wait_screen("out_of_service")
    reason = translator("zh_CN")(Fault.TOKEN_UNAVAILABLE.message)
    ui.wait_for(lambda: any(reason in text for text in ui.texts()), "the reason on screen")
    ui.screenshot(tmp_path / "out-of-service.png")
    rig.signer.failing = False  # the USBKey is back: nobody touches the terminal
    ui.wait_screen("idle", timeout=30)
    assert not rig.terminal.faults


def test_cash_counted_on_the_cash_screen_moves_it_on_without_any_polling_timer(
    terminal_rig: Any, ui_harness: Any
) -> None:
    ui = ui_harness(terminal_rig.terminal)
    ui.wait_screen("idle")
    ui.phone_topup_to_cash("13800138000", "amount-5000")
    terminal_rig.sims.cash.insert("note", 20_00)
    ui.wait_for(
        lambda: (
            ui.controller.journey.progress is not None
            and ui.controller.journey.progress.cash_in_fen == 20_00
        ),
        "the cash counted event to reach the screen",
    )
    terminal_rig.sims.cash.insert("note", 50_00)
    ui.wait_screen("result")
