"""The resident's display settings: language, large text, high contrast.

Owns the current language and its translator and the two reading modes, and tells the
screens to re-render when one changes. It never holds journey state and never imports Kivy.
"""

from collections.abc import Callable

from kiosk.i18n import Translate, translator
from ui.settings import UiSettings

ZH = "zh_CN"
EN = "en"


class DisplayModes:
    def __init__(self, settings: UiSettings, changed: Callable[[], None]) -> None:
        self.lang = settings.language
        self.t: Translate = translator(self.lang)
        self.large_text = settings.large_text
        self.high_contrast = settings.high_contrast
        self._changed = changed

    def set_language(self, lang: str) -> None:
        self.lang = lang
        self.t = translator(lang)
        self._changed()

    def toggle_language(self) -> None:
        self.set_language(EN if self.lang == ZH else ZH)

    def set_modes(self, *, large_text: bool, high_contrast: bool) -> None:
        """Both reading modes at once (the screen tour renders every combination)."""
        self.large_text = large_text
        self.high_contrast = high_contrast
        self._changed()

    def toggle_large_text(self) -> None:
        self.set_modes(large_text=not self.large_text, high_contrast=self.high_contrast)

    def toggle_high_contrast(self) -> None:
        self.set_modes(large_text=self.large_text, high_contrast=not self.high_contrast)
