"""The touchscreen's font: the Simplified Chinese face of Debian's Noto Sans CJK collection."""

import os
from pathlib import Path

import pytest
from fontTools.ttLib import TTCollection, TTFont

from ui.fonts import SC_FAMILY, simplified_chinese_face
from ui.kivy_env import CJK_FONT, CJK_FONT_BOLD

pytestmark = pytest.mark.skipif(not CJK_FONT.exists(), reason="fonts-noto-cjk is not installed")


def test_the_collections_first_face_is_japanese_which_is_why_the_sc_face_is_copied_out() -> None:
    first = TTCollection(str(CJK_FONT), lazy=True).fonts[0]
    assert first["name"].getDebugName(1) != SC_FAMILY


@pytest.mark.parametrize("collection", [CJK_FONT, CJK_FONT_BOLD])
def test_the_copy_holds_the_simplified_chinese_face_with_every_glyph_of_it(
    collection: Path, tmp_path: Path
) -> None:
    copy = simplified_chinese_face(collection, tmp_path)
    font = TTFont(str(copy), lazy=True)
    assert font["name"].getDebugName(1).startswith(SC_FAMILY)
    (source,) = [
        f
        for f in TTCollection(str(collection), lazy=True).fonts
        if f["name"].getDebugName(1) == font["name"].getDebugName(1)
    ]
    assert font.getBestCmap() == source.getBestCmap()
    assert all(ord(c) in font.getBestCmap() for c in "便民服务站缴费充值¥0123456789Pay")


def test_the_copy_is_made_once_and_again_when_the_package_changes(tmp_path: Path) -> None:
    collection = tmp_path / "NotoSansCJK-Regular.ttc"
    collection.write_bytes(CJK_FONT.read_bytes())
    cache = tmp_path / "cache"
    first = simplified_chinese_face(collection, cache)
    made = first.stat().st_mtime_ns
    assert simplified_chinese_face(collection, cache) == first
    assert first.stat().st_mtime_ns == made
    os.utime(collection, (1_700_000_000, 1_700_000_000))  # the package was updated
    second = simplified_chinese_face(collection, cache)
    assert second != first and second.exists()
    assert not list(cache.glob("*.part")), "no half-written copy is left behind"
