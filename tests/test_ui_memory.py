"""The app's memory stays bounded: few font faces, no kept text surfaces, left screens freed,
a window without multisample buffers.

The figures themselves (resident set size over 100 journeys) are
`python -m tests.bench_support.ui`'s; these tests hold the mechanisms that keep them down,
each of which a change could silently undo.
"""

import gc
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def faces_on_screen(ui: Any) -> set[tuple[int, bool]]:
    """(pixel size, bold) of every text drawn: one FreeType face each in Kivy's text cache."""
    from kivy.uix.label import Label

    return {
        (int(w.font_size), bool(w.bold))
        for w in ui.widgets()
        if isinstance(w, Label) and w.text.strip() and w.get_root_window()
    }


def phone_top_up(rig: Any, ui: Any, observe: Callable[[Any], set[T]]) -> set[T]:
    """One phone top-up paid with one note, rated; what observe(ui) saw on every screen."""
    ui.wait_screen("idle")
    seen = observe(ui)
    for action, screen in (("start", "menu"), ("service-mobile-topup", "account")):
        ui.tap(action)
        ui.wait_screen(screen)
        seen |= observe(ui)
    ui.type_digits("13800138000")
    ui.tap("confirm")
    ui.wait_screen("amount")
    seen |= observe(ui)
    ui.tap("amount-1000")
    ui.wait_screen("topup_confirm")
    seen |= observe(ui)
    ui.tap("pay")
    ui.wait_screen("pay_method")  # cash, or scan to pay
    ui.tap("pay-cash")
    ui.wait_screen("cash")
    seen |= observe(ui)
    rig.sims.cash.insert("note", 10_00)
    ui.wait_screen("result")
    for action, screen in (("done", "rating"), ("rate-good", "thanks"), ("done", "idle")):
        seen |= observe(ui)
        ui.tap(action)
        ui.wait_screen(screen)
    return seen | observe(ui)


def test_a_whole_journey_draws_its_text_with_four_font_faces(
    terminal_rig: Any, ui_harness: Any
) -> None:
    ui = ui_harness(terminal_rig.terminal)
    seen = phone_top_up(terminal_rig, ui, faces_on_screen)
    # 2.5 MB per face for the life of the process: small and body text, heading and display.
    assert seen == {(25, False), (31, False), (39, True), (61, True)}


def test_the_typeface_ladder_keeps_large_text_a_step_larger_and_bold_at_heading_size() -> None:
    from ui.widgets import TYPEFACES, typeface

    for base in range(12, 150):
        for bold in (False, True):
            normal = typeface(base, bold=bold)
            large = typeface(base, bold=bold, large=True)
            assert normal in TYPEFACES and large in TYPEFACES
            assert large[0] >= normal[0] * 1.2 or large == TYPEFACES[-1], (base, bold)
            if bold:
                assert normal[1] and normal[0] >= 39, base
            if normal[0] >= 39:
                assert normal[1], base  # text of heading size is bold: no regular faces there


def test_a_drawn_text_keeps_its_texture_but_not_a_second_copy_of_its_pixels(
    terminal_rig: Any, ui_harness: Any
) -> None:
    from kivy.uix.label import Label

    ui = ui_harness(terminal_rig.terminal)
    ui.wait_screen("idle")
    labels = [w for w in ui.widgets() if isinstance(w, Label) and w.text.strip()]
    assert labels
    for label in labels:
        assert label.texture is not None and label.texture.width > 1
        assert getattr(label._label, "_surface", None) is None, label.text


def test_leaving_a_screen_frees_its_widgets_at_once(terminal_rig: Any, ui_harness: Any) -> None:
    ui = ui_harness(terminal_rig.terminal)
    ui.wait_screen("idle")
    ui.tap("start")
    ui.wait_screen("menu")
    tile = weakref.ref(ui.find("service-mobile-topup"))
    # Only a full collection finds the tile's reference cycles: hold the collector back, so
    # that the screen change is what frees them.
    gc.disable()
    try:
        ui.tap("service-mobile-topup")
        ui.wait_screen("account")
        assert tile() is None
    finally:
        gc.enable()


def drawing_instructions(ui: Any) -> set[str]:
    """Names of the canvas instructions of every widget on screen that put pixels down."""
    from kivy.graphics import Canvas, InstructionGroup

    structure = {"Color", "Callback", "PushMatrix", "PopMatrix", "Translate", "BindTexture"}
    # A StencilView clips to the shapes drawn between StencilPush and StencilUse (seen too).
    structure |= {"StencilPush", "StencilUse", "StencilUnUse", "StencilPop"}
    found: set[str] = set()

    def visit(group: Any) -> None:
        for instruction in group.children:
            if isinstance(instruction, InstructionGroup):  # a Canvas is one too
                visit(instruction)
            elif type(instruction).__name__ not in structure:
                found.add(type(instruction).__name__)

    for widget in ui.widgets():
        if widget.get_root_window():
            for canvas in (widget.canvas.before, widget.canvas, widget.canvas.after):
                if isinstance(canvas, Canvas):
                    visit(canvas)
    return found


def test_the_window_is_drawn_without_multisampling(terminal_rig: Any, ui_harness: Any) -> None:
    from kivy.graphics.opengl import GL_SAMPLES, glGetIntegerv

    ui = ui_harness(terminal_rig.terminal)
    ui.wait_screen("idle")
    # Mesa would keep each of the window's pixels four times over: 47 MB (docs/ui.md, Memory).
    assert glGetIntegerv(GL_SAMPLES)[0] == 0


def test_a_journey_draws_only_axis_aligned_rectangles_which_multisampling_would_not_smooth(
    terminal_rig: Any, ui_harness: Any
) -> None:
    ui = ui_harness(terminal_rig.terminal)
    seen = phone_top_up(terminal_rig, ui, drawing_instructions)
    # Text and the QR code are textures on rectangles. A curve or a slanted edge (Ellipse,
    # Line, RoundedRectangle, a rotation) would look jagged without multisampling: if one is
    # ever wanted, weigh that against the memory before turning multisampling back on.
    assert seen <= {"Rectangle", "BorderImage"}, seen
