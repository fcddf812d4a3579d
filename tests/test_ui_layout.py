"""The automatic layout check (ui.layout_check) finds what a person would see as broken, and
the screens that were broken pass it now (the full tour: tests/test_ui_screens.py)."""

from typing import Any


def test_the_check_finds_clipped_text_stacked_widgets_and_widgets_off_screen(
    terminal_rig: Any, ui_harness: Any
) -> None:
    from kivy.uix.boxlayout import BoxLayout
    from kivy.uix.label import Label
    from kivy.uix.widget import Widget

    from ui.layout_check import layout_problems

    ui = ui_harness(terminal_rig.terminal)
    ui.wait_screen("idle")
    # What the amount screen did: fixed-size rows in a box too small for them, so the box's
    # next neighbour was drawn over the last row.
    box = BoxLayout(orientation="vertical", size_hint=(None, None), size=(300, 100), pos=(10, 10))
    for _ in range(3):
        box.add_widget(Widget(size_hint_y=None, height=60))
    squeezed = Label(
        text="Or type yuan " * 20, font_size=31, size_hint=(None, None), size=(200, 40)
    )
    squeezed.text_size = (200, None)
    squeezed.pos = (400, 10)
    off_screen = Widget(size_hint=(None, None), size=(100, 100), pos=(1250, 10))
    top = Widget(size_hint=(None, None), size=(1280, 800))
    for widget in (box, squeezed, off_screen):
        top.add_widget(widget)
    ui.window.add_widget(top)
    try:
        ui.pump(3)
        found = [str(problem) for problem in layout_problems(top, tuple(ui.window.size))]
    finally:
        ui.window.remove_widget(top)
    assert any("outside its parent BoxLayout" in p for p in found), found
    assert any(p.startswith("Label 'Or type yuan") and "cut off" in p for p in found), found
    assert any("outside the window" in p for p in found), found


def test_the_amount_screen_keeps_its_typed_amount_clear_of_the_presets_in_every_mode(
    terminal_rig: Any, ui_harness: Any
) -> None:
    # Before: the "或输入金额（元）" line was drawn over the ¥100 button (the presets' grid
    # was given less height than its two rows).
    ui = ui_harness(terminal_rig.terminal)
    ui.wait_screen("idle")
    ui.tap("start")
    ui.wait_screen("menu")
    ui.tap("service-mobile-topup")
    ui.wait_screen("account")
    ui.type_digits("13800138000")
    ui.tap("confirm")
    ui.wait_screen("amount")
    display = ui.controller.display
    for lang in ("zh_CN", "en"):
        display.set_language(lang)
        for large, contrast in ((False, False), (True, False), (False, True)):
            display.set_modes(large_text=large, high_contrast=contrast)
            ui.pump(3)
            assert ui.layout_problems() == [], (lang, large, contrast)
