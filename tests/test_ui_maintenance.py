"""Maintenance mode through the core: technician card + PIN, status, test receipt, day close,
reprint, I/O board status and tamper clear, on the simulated I/O board's real firmware logic."""

from typing import Any


def maintenance_records(rig: Any) -> list[dict[str, Any]]:
    return [r for r in rig.terminal.journal.records() if r["type"] == "maintenance"]


def log_in(ui: Any, pin: str) -> None:
    ui.tap("technician")
    ui.wait_screen("maintenance_login")
    ui.type_digits(pin)
    ui.tap("confirm")


def test_a_technician_logs_in_through_the_core_checks_devices_and_leaves(
    board_rig: Any, ui_harness: Any, technician_card: Any
) -> None:
    technician_card(board_rig, "2468")
    terminal = board_rig.terminal
    ui = ui_harness(terminal, language="en")
    ui.wait_screen("idle")
    log_in(ui, "1111")
    ui.wait_screen("maintenance_login")
    assert "2 tries left" in ui.controller.journey.error
    assert "technician_refused" in board_rig.journal_types()  # a security event
    ui.type_digits("2468")
    ui.tap("confirm")
    ui.wait_screen("maintenance")
    assert terminal.service_state() == "maintenance"
    assert board_rig.sims.board.board_status().maintenance  # the board was told
    assert [r["action"] for r in maintenance_records(board_rig)] == ["enter"]
    ui.tap("maint-device_status")
    ui.wait_screen("maintenance")
    message = ui.controller.maintenance.message
    assert "printer:" in message and "ioboard:" in message and "state: maintenance" in message
    ui.tap("maint-test_receipt")
    ui.wait_screen("maintenance")
    assert ui.controller.maintenance.message == "test receipt printed"
    assert any(j.startswith("printer-test/") for j in board_rig.sims.printer.printed_job_ids())
    ui.tap("maint-io_status")
    ui.wait_screen("maintenance")
    assert "tamper clear" in ui.controller.maintenance.message
    assert "maintenance on" in ui.controller.maintenance.message
    ui.tap("maint-close_day")
    ui.wait_screen("maintenance")
    assert "closed" in ui.controller.maintenance.message
    assert "day_close" in " ".join(board_rig.journal_types())
    ui.tap("leave")
    ui.wait_screen("idle")
    assert terminal.service_state() != "maintenance"
    assert not board_rig.sims.board.board_status().maintenance
    assert [r["action"] for r in maintenance_records(board_rig)] == ["enter", "leave"]


def test_a_tamper_alarm_shows_out_of_service_until_a_technician_clears_it(
    board_rig: Any, ui_harness: Any, technician_card: Any
) -> None:
    technician_card(board_rig, "2468")
    ui = ui_harness(board_rig.terminal, language="en")
    ui.wait_screen("idle")
    board_rig.sims.board.open_enclosure()
    ui.wait_screen("out_of_service")  # the app's periodic Terminal.tick() drained the alarm
    assert ui.controller.tamper_latched
    assert any("tamper alarm" in text for text in ui.texts())
    board_rig.sims.board.close_enclosure()
    log_in(ui, "2468")
    ui.wait_screen("maintenance")
    ui.tap("maint-clear_tamper")
    ui.wait_screen("maintenance")
    assert "tamper cleared" in ui.controller.maintenance.message
    assert "tamper_cleared" in board_rig.journal_types()
    ui.tap("leave")
    ui.wait_screen("idle")
    assert not ui.controller.tamper_latched
    assert board_rig.terminal.service_state() in ("in_service", "attention")


def test_a_receipt_reprinted_in_maintenance_returns_to_it_and_leaving_ends_maintenance(
    board_rig: Any, ui_harness: Any, technician_card: Any
) -> None:
    terminal = board_rig.terminal
    progress = terminal.start_phone_topup("mobile-topup", "13800138000", 30_00)
    board_rig.insert(progress.tx_id, 50_00)
    receipt_no = terminal.finish(progress.tx_id).receipt_no
    assert receipt_no is not None
    technician_card(board_rig, "2468")
    ui = ui_harness(terminal, language="en")
    ui.wait_screen("idle")
    log_in(ui, "2468")
    ui.wait_screen("maintenance")
    ui.tap("maint-reprint")
    ui.wait_screen("reprint")
    ui.type_digits(str(int(receipt_no.rsplit("-", 1)[1])))
    ui.tap("confirm")
    ui.wait_screen("maintenance")
    assert ui.controller.maintenance.message == f"receipt {receipt_no} reprinted"
    assert terminal.service_state() == "maintenance"  # still: only "leave" ends it
    ui.tap("maint-reprint")
    ui.wait_screen("reprint")
    ui.tap("cancel")  # back to the maintenance page, not to the residents' screen
    ui.wait_screen("maintenance")
    ui.tap("leave")
    ui.wait_screen("idle")
    assert terminal.service_state() != "maintenance"
    assert [r["action"] for r in maintenance_records(board_rig)] == ["enter", "leave"]


def test_a_terminal_left_in_maintenance_offers_no_payment_to_residents(
    board_rig: Any, ui_harness: Any
) -> None:
    board_rig.terminal.enter_maintenance("TECH-007")  # e.g. the app restarted meanwhile
    ui = ui_harness(board_rig.terminal, language="en")
    ui.wait_screen("out_of_service")
    assert any("technician is servicing" in text for text in ui.texts())
