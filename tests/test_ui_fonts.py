"""The touchscreen's font: the Simplified Chinese face of Debian's Noto Sans CJK collection,
prepared when the bundle is built, or cut on first use in a development checkout."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fontTools.ttLib import TTCollection, TTFont

from ui.fonts import PREPARED_DIR_ENV, SC_FAMILY, prepare_faces, simplified_chinese_face
from ui.fonts import main as fonts_main
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


def test_the_build_prepares_both_faces_under_the_names_the_terminal_looks_for(
    tmp_path: Path,
) -> None:
    faces = prepare_faces(tmp_path / "fonts")
    assert [f.name for f in faces] == ["NotoSansCJK-Regular-SC.otf", "NotoSansCJK-Bold-SC.otf"]
    for face in faces:
        assert TTFont(str(face), lazy=True)["name"].getDebugName(1).startswith(SC_FAMILY)
        assert face.stat().st_mode & 0o777 == 0o644  # the service user reads root's copy


def test_a_terminal_uses_the_prepared_face_and_never_loads_fonttools(tmp_path: Path) -> None:
    prepared = tmp_path / "slot-fonts"
    prepare_faces(prepared, [CJK_FONT])
    cache = tmp_path / "cache"
    probe = (
        "import sys; sys.modules['fontTools'] = None\n"  # a terminal's set has no fontTools
        "from pathlib import Path\n"
        "from ui.fonts import simplified_chinese_face\n"
        "print(simplified_chinese_face(Path(sys.argv[1]), Path(sys.argv[2])))\n"
    )
    env = {**os.environ, PREPARED_DIR_ENV: str(prepared)}
    done = subprocess.run(
        [sys.executable, "-c", probe, str(CJK_FONT), str(cache)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.stdout.strip() == str(prepared / "NotoSansCJK-Regular-SC.otf"), done.stderr
    assert not cache.exists(), "nothing is cut at run time"

    # Without the prepared face and without fontTools: one clear line, no font half made.
    env = {k: v for k, v in os.environ.items() if k != PREPARED_DIR_ENV}
    done = subprocess.run(
        [sys.executable, "-c", probe, str(CJK_FONT), str(cache)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "was not prepared" in done.stderr and "build-bundle.sh" in done.stderr
    assert not cache.exists()


def test_preparing_without_the_collections_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(RuntimeError, match="install fonts-noto-cjk"):
        prepare_faces(tmp_path, [tmp_path / "NotoSansCJK-Regular.ttc"])
    assert fonts_main(["--out", str(tmp_path / "out")]) == 0  # the real collections
    assert "2 face(s) prepared" in capsys.readouterr().out
