"""Large-text and high-contrast modes: sizes and colours really change, targets stay >= 15 mm."""

from typing import Any


def buttons(ui: Any) -> dict[str, Any]:
    return {
        w.action_id: w
        for w in ui.widgets()
        if getattr(w, "action_id", "") and w.get_root_window() and hasattr(w, "background_color")
    }


def body_widgets(ui: Any) -> list[Any]:
    """What large-text mode scales: everything but the header (title and mode switches,
    which keep their size so that they stay where the resident found them)."""
    header = {
        id(child)
        for w in ui.widgets()
        if getattr(w, "kiosk_header", False)
        for child in w.walk(restrict=True)
    }
    return [w for w in ui.widgets() if id(w) not in header]


def body_buttons(ui: Any) -> dict[str, Any]:
    return {
        w.action_id: w
        for w in body_widgets(ui)
        if getattr(w, "action_id", "") and w.get_root_window() and hasattr(w, "background_color")
    }


def labels(ui: Any) -> list[Any]:
    from kivy.uix.label import Label

    return [w for w in body_widgets(ui) if type(w) is Label and w.text.strip()]


def assert_targets_fit(ui: Any) -> None:
    minimum = ui.controller.settings.min_target_px
    width, height = ui.window.size
    for action_id, widget in buttons(ui).items():
        assert min(widget.size) >= minimum - 1, (action_id, widget.size)
        assert widget.x >= -1 and widget.right <= width + 1, (action_id, widget.pos)
        assert widget.y >= -1 and widget.top <= height + 1, (action_id, widget.pos)


def test_large_text_scales_every_text_and_keeps_targets_at_15_mm(
    terminal_rig: Any, ui_harness: Any
) -> None:
    ui = ui_harness(terminal_rig.terminal)
    ui.wait_screen("idle")
    ui.tap("start")
    ui.wait_screen("menu")
    ui.tap("service-water-bill")
    ui.wait_screen("account")
    ui.type_digits("123")
    before_buttons = {k: w.font_size for k, w in body_buttons(ui).items()}
    before_labels = sorted(w.font_size for w in labels(ui))
    ui.tap("large-text")
    ui.pump(2)
    after_buttons = {k: w.font_size for k, w in body_buttons(ui).items()}
    after_labels = sorted(w.font_size for w in labels(ui))
    assert after_buttons.keys() == before_buttons.keys()
    # Sizes snap to a ladder whose steps are 1.25x: large text is at least one step larger.
    for action_id, size in before_buttons.items():
        assert after_buttons[action_id] >= size * 1.2, action_id
    assert len(after_labels) == len(before_labels)
    assert all(a >= b * 1.2 for a, b in zip(after_labels, before_labels, strict=True))
    assert ui.controller.journey.digits == "123"  # the mode keeps what was typed
    assert "123" in ui.texts()
    assert_targets_fit(ui)
    ui.tap("large-text")
    ui.pump(2)
    assert {k: w.font_size for k, w in body_buttons(ui).items()} == before_buttons


def test_high_contrast_switches_to_yellow_on_black_and_keeps_targets(
    terminal_rig: Any, ui_harness: Any
) -> None:
    from ui.widgets import HIGH_CONTRAST, NORMAL

    ui = ui_harness(terminal_rig.terminal, language="en")
    ui.wait_screen("idle")
    ui.tap("start")
    ui.wait_screen("menu")
    tile = buttons(ui)["service-water-bill"]
    assert tuple(tile.background_color) == NORMAL.button
    ui.tap("high-contrast")
    ui.pump(2)
    tile = buttons(ui)["service-water-bill"]
    assert tuple(tile.background_color) == HIGH_CONTRAST.button
    assert tuple(tile.color) == HIGH_CONTRAST.button_text
    assert {tuple(w.color) for w in labels(ui)} <= {HIGH_CONTRAST.text, HIGH_CONTRAST.muted}
    ui.tap("large-text")  # both at once: the hardest layout
    ui.pump(2)
    assert_targets_fit(ui)
    ui.tap("service-mobile-topup")
    ui.wait_screen("account")
    assert_targets_fit(ui)
    frame = ui.root.current_screen().children[0]
    colour = next(i for i in frame.canvas.before.children if hasattr(i, "rgba"))
    assert tuple(colour.rgba) == HIGH_CONTRAST.background
