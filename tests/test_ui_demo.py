"""The demo: its simulator panel drives the simulated devices and I/O board; no display: a line."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent


def test_the_demo_without_a_display_says_in_one_line_how_to_run_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run(
        [sys.executable, "-m", "simulators.demo.touchscreen", "--data", str(tmp_path / "demo")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "xvfb-run" in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "demo").exists()  # nothing was started


def test_the_simulator_panel_pays_with_notes_opens_the_door_and_trips_the_tamper_alarm(
    board_rig: Any, ui_harness: Any
) -> None:
    from kivy.core.window import Window

    sims = board_rig.sims
    ui = ui_harness(board_rig.terminal, sims=sims, language="en")
    ui.wait_screen("idle")
    assert ui.root.overlay is not None and ui.root.overlay.shown
    ui.phone_topup_to_cash("13800138000", "amount-2000")
    ui.tap("sim-note-10")
    ui.wait_for(lambda: ui.controller.resident.cash_inserted_fen == 10_00, "the ¥10 note")
    Window.dispatch("on_keyboard", 0, 0, "2", [])  # the same action from the keyboard
    ui.wait_screen("result")
    assert board_rig.closes()[-1]["outcome"] == "paid"
    ui.tap("done")
    ui.wait_screen("rating")
    ui.tap("skip")
    ui.wait_screen("idle")

    ui.tap("sim-door")
    ui.wait_for(
        lambda: any(
            r["type"] == "board_event" and r["kind"] == "door_open"
            for r in board_rig.terminal.journal.records()
        ),
        "the door event to be journaled by the app's Terminal.tick()",
    )
    ui.tap("sim-paper-out")
    assert sims.printer.health()["paper_out"] is True
    assert "paper out" in ui.root.overlay.status.text
    ui.tap("sim-paper-in")
    ui.tap("sim-case")
    ui.wait_screen("out_of_service")
    assert any("tamper alarm" in text for text in ui.texts())

    Window.dispatch("on_keyboard", 0, 0, "h", [])
    ui.pump()
    assert not ui.root.overlay.shown and ui.root.overlay.right <= 0  # out of the residents' way
    Window.dispatch("on_keyboard", 0, 0, "h", [])
    assert ui.root.overlay.shown
