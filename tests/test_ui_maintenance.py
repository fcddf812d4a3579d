"""Maintenance mode: technician card + PIN, device status, test receipt, day close, tamper.

The in-process simulated reader has no technician application yet and there is no
in-process I/O board simulator: the two small stand-ins below implement the kiosk.devices
Protocols (TechnicianCards, IoBoard) for this test only, until the simulators offer them.
"""

from typing import Any

from kiosk.devices import BoardStatus, TechnicianCardBlocked, TechnicianPinWrong


class TechnicianCardStandIn:
    def __init__(self, pin: str) -> None:
        self.pin, self.tries = pin, 3

    def verify_technician(self, pin: str) -> str:
        if self.tries == 0:
            raise TechnicianCardBlocked("technician card blocked")
        if pin != self.pin:
            self.tries -= 1
            raise TechnicianPinWrong("wrong PIN", self.tries)
        self.tries = 3
        return "TECH-007"


class IoBoardStandIn:
    def __init__(self) -> None:
        self.tamper, self.maintenance = True, False

    def set_maintenance(self, on: bool) -> None:
        self.maintenance = on

    def clear_tamper(self) -> None:
        self.tamper = False

    def board_status(self) -> BoardStatus:
        return BoardStatus(
            "1.0.0", True, False, self.tamper, self.maintenance, "maintenance", 31.5, 0
        )


def test_a_technician_logs_in_checks_devices_closes_the_day_and_clears_tamper(
    terminal_rig: Any, ui_harness: Any
) -> None:
    board = IoBoardStandIn()
    devices = {"technician_cards": TechnicianCardStandIn("2468"), "io_board": board}
    ui = ui_harness(terminal_rig.terminal, devices, language="en")
    ui.wait_screen("idle")
    ui.tap("technician")
    ui.wait_screen("maintenance_login")
    ui.type_digits("1111")
    ui.tap("confirm")
    ui.wait_screen("maintenance_login")
    assert "2 tries left" in ui.controller.journey.error
    ui.type_digits("2468")
    ui.tap("confirm")
    ui.wait_screen("maintenance")
    assert board.maintenance
    ui.tap("maint-device_status")
    ui.wait_screen("maintenance")
    assert "printer" in ui.controller.maintenance_message
    ui.tap("maint-test_receipt")
    ui.wait_screen("maintenance")
    assert ui.controller.maintenance_message == "test receipt printed"
    assert any(j.startswith("test-") for j in terminal_rig.sims.printer.printed_job_ids())
    ui.tap("maint-io_status")
    ui.wait_screen("maintenance")
    assert "tamper LATCHED" in ui.controller.maintenance_message
    ui.tap("maint-clear_tamper")
    ui.wait_screen("maintenance")
    assert not board.tamper and "tamper clear" in ui.controller.maintenance_message
    ui.tap("maint-close_day")
    ui.wait_screen("maintenance")
    assert "closed" in ui.controller.maintenance_message
    assert "day_close" in " ".join(terminal_rig.journal_types())
    ui.tap("leave")
    ui.wait_screen("idle")
    assert not board.maintenance
