"""The automatic layout check: no text clipped or drawn over another widget, nothing off screen.

Owns the rules, read from the Kivy widget tree of the screen as it is drawn:
- a text's texture (what Kivy drew: every wrapped line) fits inside its widget's box, so it
  is neither cut off nor spilling over a neighbour (Kivy centres the texture on the box and
  draws all of it, beyond the box too);
- sibling boxes do not overlap (a layout squeezed below its children's fixed sizes stacks
  them on each other);
- every box lies inside its parent's box and inside the window.
Boxes are compared in window coordinates with one pixel of tolerance for rounding. It judges
only what is on screen; it never changes a widget. Used by tests/test_ui_layout.py over every
screen, language and mode (tests.screen_tour), and by `make screens`.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

TOLERANCE_PX = 1.0


@dataclass(frozen=True)
class Box:
    left: float
    bottom: float
    right: float
    top: float

    def inside(self, other: "Box") -> bool:
        return (
            self.left >= other.left - TOLERANCE_PX
            and self.bottom >= other.bottom - TOLERANCE_PX
            and self.right <= other.right + TOLERANCE_PX
            and self.top <= other.top + TOLERANCE_PX
        )

    def overlaps(self, other: "Box") -> bool:
        width = min(self.right, other.right) - max(self.left, other.left)
        height = min(self.top, other.top) - max(self.bottom, other.bottom)
        return width > TOLERANCE_PX and height > TOLERANCE_PX

    def __str__(self) -> str:
        return (
            f"[{self.left:.0f},{self.bottom:.0f} {self.right - self.left:.0f}x"
            f"{self.top - self.bottom:.0f}]"
        )


@dataclass(frozen=True)
class LayoutProblem:
    widget: str
    problem: str

    def __str__(self) -> str:
        return f"{self.widget}: {self.problem}"


def box_of(widget: Any) -> Box:
    left, bottom = widget.to_window(widget.x, widget.y)
    return Box(left, bottom, left + widget.width, bottom + widget.height)


def describe(widget: Any) -> str:
    """A widget as a person finds it: its action id, else the start of its text."""
    name = type(widget).__name__
    action = getattr(widget, "action_id", "")
    if action:
        return f"{name} {action!r}"
    text = getattr(widget, "text", "")
    if isinstance(text, str) and text.strip():
        first = text.strip().splitlines()[0]
        return f"{name} {first[:30]!r}"
    return name


def _visible(widget: Any) -> bool:
    return bool(widget.width > 0 and widget.height > 0 and getattr(widget, "opacity", 1) > 0)


def _text_problem(widget: Any) -> str | None:
    text = getattr(widget, "text", None)
    if not isinstance(text, str) or not text.strip():
        return None
    texture_width, texture_height = widget.texture_size
    if texture_width > widget.width + TOLERANCE_PX or texture_height > widget.height + TOLERANCE_PX:
        return (
            f"its text needs {texture_width:.0f}x{texture_height:.0f} px but has "
            f"{widget.width:.0f}x{widget.height:.0f}: it is cut off or drawn over its neighbours"
        )
    return None


def _walk(widget: Any) -> Iterator[Any]:
    yield widget
    for child in widget.children:
        if _visible(child):
            yield from _walk(child)


def layout_problems(top: Any, window_size: tuple[float, float]) -> list[LayoutProblem]:
    """Every breach of the rules above in the widget tree under top (e.g. the screen shown)."""
    window = Box(0, 0, window_size[0], window_size[1])
    problems: list[LayoutProblem] = []
    for widget in _walk(top):
        box = box_of(widget)
        if not box.inside(window):
            problems.append(LayoutProblem(describe(widget), f"{box} is outside the window"))
        text = _text_problem(widget)
        if text is not None:
            problems.append(LayoutProblem(describe(widget), text))
        children = [child for child in widget.children if _visible(child)]
        for child in children:
            child_box = box_of(child)
            if widget is not top and not child_box.inside(box):
                problems.append(
                    LayoutProblem(
                        describe(child),
                        f"{child_box} is outside its parent {describe(widget)} {box}",
                    )
                )
        for index, first in enumerate(children):
            for second in children[index + 1 :]:
                if box_of(first).overlaps(box_of(second)):
                    problems.append(
                        LayoutProblem(
                            describe(first),
                            f"{box_of(first)} overlaps {describe(second)} {box_of(second)}",
                        )
                    )
    return problems
