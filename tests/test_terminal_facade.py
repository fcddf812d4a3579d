"""What the terminal offers the UI, telemetry and diagnostics besides the journeys."""

from typing import Any

import pytest

from kiosk.devices import CardError
from tests.fixtures.engine_hook import engine_of
from tests.fixtures.terminal import TerminalRig


def test_device_health_reports_every_device_by_name(terminal_rig: TerminalRig) -> None:
    health = terminal_rig.terminal.device_health()
    assert set(health) == {"printer", "card_reader", "cash", "token"}
    assert all(isinstance(report, dict) and report for report in health.values())


def test_a_device_whose_health_fails_is_reported_with_its_error(
    terminal_rig: TerminalRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> dict[str, object]:
        raise OSError("USB device vanished")

    monkeypatch.setattr(terminal_rig.sims.printer, "health", broken)
    health = terminal_rig.terminal.device_health()
    assert health["printer"] == {"ok": False, "error": "OSError: USB device vanished"}
    assert health["cash"]  # the others are still there


def test_a_reader_without_technician_cards_refuses_a_login_clearly(
    terminal_rig: TerminalRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    cards: Any = engine_of(terminal_rig.terminal).cards
    if hasattr(cards, "verify_technician"):
        monkeypatch.setattr(engine_of(terminal_rig.terminal), "cards", object())
    with pytest.raises(CardError, match="cannot read technician cards"):
        terminal_rig.terminal.technician_login("123456")
    assert terminal_rig.terminal.board.technician is None
