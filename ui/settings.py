"""The touchscreen's own settings: screen geometry, idle timeout, voice, text modes.

Owns turning millimetres into pixels for the configured screen, so that every touch
target is at least 15 mm whatever the panel. It never reads files or imports Kivy.
"""

import math
from dataclasses import dataclass

# 15 mm: the smallest touch target for elderly residents (issue 5).
MIN_TARGET_MM = 15.0


@dataclass(frozen=True)
class UiSettings:
    width_px: int = 1280
    height_px: int = 800
    # 10.1-inch 16:10 panel: 217 mm x 136 mm of active area.
    width_mm: float = 217.0
    idle_timeout_s: float = 60.0
    countdown_s: float = 15.0  # the last part of the timeout, shown with a "continue" button
    voice: bool = True
    large_text: bool = False
    high_contrast: bool = False
    language: str = "zh_CN"
    help_phone: str = "11185"

    def __post_init__(self) -> None:
        if self.width_px <= 0 or self.height_px <= 0 or self.width_mm <= 0:
            raise ValueError("ui screen size must be positive: check width_px, height_px, width_mm")
        if self.countdown_s >= self.idle_timeout_s:
            raise ValueError("ui countdown_s must be shorter than idle_timeout_s")

    @property
    def px_per_mm(self) -> float:
        return self.width_px / self.width_mm

    def mm(self, millimetres: float) -> int:
        """Pixels for a length in millimetres on this screen, rounded up."""
        return math.ceil(millimetres * self.px_per_mm)

    @property
    def min_target_px(self) -> int:
        return self.mm(MIN_TARGET_MM)

    @property
    def font_scale(self) -> float:
        return 1.35 if self.large_text else 1.0
