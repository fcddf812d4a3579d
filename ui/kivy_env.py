"""Kivy's process-wide set-up, done once before any Kivy window module is imported.

Owns the environment Kivy reads at import (no argument parsing, a private KIVY_HOME, no
console log, only the SDL2 image provider), the window (its size, no multisampling), and
the default font: the Simplified Chinese face of Noto Sans CJK from the Debian package
fonts-noto-cjk (ui.fonts), so that no Chinese glyph renders as a box or in its Japanese form.
"""

import os
import tempfile
from pathlib import Path

from ui.fonts import default_cache, simplified_chinese_face
from ui.settings import UiSettings

CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
CJK_FONT_BOLD = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")

_prepared = False


def prepare_kivy(settings: UiSettings, home: Path | None = None, fullscreen: bool = False) -> None:
    """Set Kivy up for settings; fullscreen: the terminal's screen (the whole display, no
    mouse cursor: a touchscreen), else a window of settings' size (demo, tests, desktop)."""
    global _prepared
    if _prepared:
        return
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    # Images (the receipt's QR code, screenshots) are PNGs, which SDL2_image reads and
    # writes; without this Kivy also loads Pillow as an image provider (about 2 MB).
    os.environ.setdefault("KIVY_IMAGE", "sdl2,tex,dds")
    if "KIVY_HOME" not in os.environ:
        os.environ["KIVY_HOME"] = str(home or Path(tempfile.mkdtemp(prefix="kivy-home-")))
    from kivy.config import Config

    Config.set("graphics", "width", str(settings.width_px))
    Config.set("graphics", "height", str(settings.height_px))
    Config.set("graphics", "resizable", "0")
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("graphics", "show_cursor", "0" if fullscreen else "1")
    # No multisample anti-aliasing (Kivy asks for 2 samples by default; Mesa gives 4): it
    # would keep every pixel of the window four times over (47 MB of a software renderer's
    # memory, video memory on a GPU). The screens draw only axis-aligned rectangles and
    # textures (tested), which it changes only where an edge falls on a half pixel: drawn
    # whole instead of as a blended line (docs/ui.md, "Memory").
    Config.set("graphics", "multisamples", "0")
    Config.set("kivy", "exit_on_escape", "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    # The kernel touch probe wants libmtdev, absent on desktops; SDL2 delivers touches anyway.
    if Config.has_option("input", "%(name)s"):
        Config.remove_option("input", "%(name)s")
    if not CJK_FONT.exists():
        raise RuntimeError(
            f"the CJK font {CJK_FONT} is missing: install the Debian package fonts-noto-cjk"
        )
    from kivy.core.text import DEFAULT_FONT, LabelBase

    cache = default_cache()
    regular = simplified_chinese_face(CJK_FONT, cache)
    bold = simplified_chinese_face(CJK_FONT_BOLD, cache) if CJK_FONT_BOLD.exists() else regular
    LabelBase.register(DEFAULT_FONT, fn_regular=str(regular), fn_bold=str(bold))
    _render_text_without_keeping_the_surface()
    _prepared = True


def _render_text_without_keeping_the_surface() -> None:
    """Make Kivy's SDL2 text provider drop its drawing surface once the texture has it.

    Kivy 2.3's LabelSDL2 keeps the SDL surface it drew a text on (width x height x 4 bytes)
    for as long as the label lives, although the pixels were copied into the texture and the
    next render draws on a new surface: a second copy of every text on screen. Kivy picks
    its text provider from a fixed list, so the subclass replaces the provider's class where
    kivy.uix.label looks it up; any other provider is left alone.
    """
    from kivy.core import text as core_text
    from kivy.core.text.text_sdl2 import LabelSDL2

    if core_text.Label is not LabelSDL2:
        return

    class LabelSDL2WithoutSurface(LabelSDL2):
        def _render_end(self) -> object:
            data = super()._render_end()
            self._surface = None
            return data

    import kivy.uix.label

    core_text.Label = core_text.Text = LabelSDL2WithoutSurface
    kivy.uix.label.CoreLabel = LabelSDL2WithoutSurface
