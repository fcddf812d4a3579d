"""The Simplified Chinese face of Noto Sans CJK, as a font file Kivy can open.

Owns preparing the face and finding it. Debian's fonts-noto-cjk ships one collection (.ttc)
per weight holding the Japanese, Korean, Simplified and Traditional Chinese faces, in that
order; Kivy's SDL2 text provider opens a file's first face only, which drew Chinese text
with Japanese glyph forms (骨, 直, 边 differ). The SC face is copied out of the collection
with fontTools (tables are copied as they are, nothing is re-encoded). It never changes a
glyph.

The copy is made when the software is built: deploy/release/build-bundle.sh runs
`python -m ui.fonts --out DIR` and the bundle carries the faces (payload/fonts, installed in
the slot as fonts/, which kiosk.service names in $KIOSK_FONT_DIR), so the terminal's run-time
set has no fontTools. Where no prepared face is found (a development checkout), the face is
cut on first use into a cache, once per machine and again whenever the collection changes,
with the fontTools of the dev set.
"""

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

SC_FAMILY = "Noto Sans CJK SC"
PREPARED_DIR_ENV = "KIOSK_FONT_DIR"
# The collections the touchscreen uses (Debian's fonts-noto-cjk), regular and bold.
COLLECTIONS = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"),
)


def default_cache() -> Path:
    """$KIOSK_FONT_CACHE, else $XDG_CACHE_HOME/kiosk/fonts, else ~/.cache/kiosk/fonts."""
    if os.environ.get("KIOSK_FONT_CACHE"):
        return Path(os.environ["KIOSK_FONT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kiosk" / "fonts"


def prepared_name(collection: Path) -> str:
    """The file name of a collection's prepared SC face: NotoSansCJK-Regular-SC.otf."""
    return f"{collection.stem}-SC.otf"


def prepared_face(collection: Path) -> Path | None:
    """The face of this collection that the build prepared ($KIOSK_FONT_DIR), if any."""
    directory = os.environ.get(PREPARED_DIR_ENV)
    if not directory:
        return None
    face = Path(directory) / prepared_name(collection)
    return face if face.is_file() else None


def simplified_chinese_face(collection: Path, cache: Path) -> Path:
    """A font file holding only the SC face of collection (a .ttc): the one the build
    prepared, else a copy made on first use.

    The copy is named after the collection's size and modification time, so an updated
    package gives a new copy; it is written to a temporary file and renamed into place,
    so a start interrupted half-way never leaves a torn font behind.
    """
    prepared = prepared_face(collection)
    if prepared is not None:
        return prepared
    stat = collection.stat()
    target = cache / f"{collection.stem}-SC-{stat.st_size}-{int(stat.st_mtime)}.otf"
    if target.exists():
        return target
    cut_face(collection, target)
    return target


def cut_face(collection: Path, target: Path) -> None:
    """Write the SC face of collection to target (the build's step, or the fallback)."""
    try:
        # Imported here: a terminal runs with the prepared faces and has no fontTools.
        from fontTools.ttLib import TTCollection
    except ImportError:
        raise RuntimeError(
            f"the Simplified Chinese face of {collection} was not prepared (${PREPARED_DIR_ENV}"
            " names the directory a bundle installs) and fontTools is not installed to cut "
            "it: install a bundle built by deploy/release/build-bundle.sh"
        ) from None
    fonts = TTCollection(str(collection), lazy=True).fonts
    for font in fonts:
        if font["name"].getDebugName(1) == SC_FAMILY:
            break
    else:
        raise RuntimeError(f"{collection} has no {SC_FAMILY} face: reinstall fonts-noto-cjk")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as part:
        font.save(part)
    os.chmod(part.name, 0o644)  # a font, not a secret: the service user reads a root's copy
    os.replace(part.name, target)


def prepare_faces(out: Path, collections: Sequence[Path] = COLLECTIONS) -> list[Path]:
    """The build's step: each collection's SC face into out, under its prepared name."""
    missing = [str(c) for c in collections if not c.is_file()]
    if missing:
        raise RuntimeError(
            f"{', '.join(missing)} missing: install fonts-noto-cjk (apt-get install "
            "fonts-noto-cjk) on the machine that builds the bundle"
        )
    faces = [out / prepared_name(collection) for collection in collections]
    for collection, face in zip(collections, faces, strict=True):
        cut_face(collection, face)
    return faces


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ui.fonts",
        description="Prepare the touchscreen's Simplified Chinese faces for a bundle.",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory to write them to")
    args = parser.parse_args(argv)
    try:
        faces = prepare_faces(args.out)
    except (RuntimeError, OSError) as exc:
        print(f"ui.fonts: {exc}", file=sys.stderr)
        return 1
    print(f"{len(faces)} face(s) prepared in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
