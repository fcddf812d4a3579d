"""The Simplified Chinese face of Noto Sans CJK, as a font file Kivy can open.

Owns finding the face and keeping a copy of it. Debian's fonts-noto-cjk ships one
collection (.ttc) per weight holding the Japanese, Korean, Simplified and Traditional
Chinese faces, in that order; Kivy's SDL2 text provider opens a file's first face only,
which drew Chinese text with Japanese glyph forms (骨, 直, 边 differ). The SC face is copied
out of the collection with fontTools (tables are copied as they are, nothing is
re-encoded: under a second) into a cache directory, once per machine and again whenever the
collection changes. It never changes a glyph.
"""

import os
import tempfile
from pathlib import Path

SC_FAMILY = "Noto Sans CJK SC"


def default_cache() -> Path:
    """$KIOSK_FONT_CACHE, else $XDG_CACHE_HOME/kiosk/fonts, else ~/.cache/kiosk/fonts."""
    if os.environ.get("KIOSK_FONT_CACHE"):
        return Path(os.environ["KIOSK_FONT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kiosk" / "fonts"


def simplified_chinese_face(collection: Path, cache: Path) -> Path:
    """A font file holding only the SC face of collection (a .ttc), made on first use.

    The copy is named after the collection's size and modification time, so an updated
    package gives a new copy; it is written to a temporary file and renamed into place,
    so a start interrupted half-way never leaves a torn font behind.
    """
    stat = collection.stat()
    target = cache / f"{collection.stem}-SC-{stat.st_size}-{int(stat.st_mtime)}.otf"
    if target.exists():
        return target
    # Imported here: once the copy exists, the app never loads fontTools at all.
    from fontTools.ttLib import TTCollection

    fonts = TTCollection(str(collection), lazy=True).fonts
    for font in fonts:
        if font["name"].getDebugName(1) == SC_FAMILY:
            break
    else:
        raise RuntimeError(f"{collection} has no {SC_FAMILY} face: reinstall fonts-noto-cjk")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache, suffix=".part", delete=False) as part:
        font.save(part)
    os.replace(part.name, target)
    return target
