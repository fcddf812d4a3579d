#!/usr/bin/env bash
# Makes sure the Debian 12 packages the terminal's tests and demo run against are present.
# As root it installs what is missing with apt; otherwise it names what is missing and how to get it.
# Usage: deploy/dev/system-packages.sh build|test|demo
#   build: what pip needs to build the Python dependencies (pyscard compiles against PC/SC)
set -euo pipefail
purpose=${1:-test}

# package -> a file that proves it is installed (dpkg -s is slow and wrong inside some images)
declare -A probe=(
  [softhsm2]=/usr/bin/softhsm2-util
  [opensc]=/usr/bin/pkcs11-tool
  [pcscd]=/usr/sbin/pcscd
  [libpcsclite-dev]=/usr/include/PCSC/winscard.h
  [swig]=/usr/bin/swig
  [vsmartcard-vpcd]=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
  [mosquitto]=/usr/sbin/mosquitto
  [xvfb]=/usr/bin/Xvfb
  [fonts-noto-cjk]=/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
  [openssl]=/usr/bin/openssl
  [sqlite3]=/usr/bin/sqlite3
  [python3.11-dev]=/usr/include/python3.11/Python.h
  [gcc]=/usr/bin/gcc
  [libzbar0]=/usr/lib/x86_64-linux-gnu/libzbar.so.0
  [postgresql]=/usr/lib/postgresql/15/bin/initdb
  [chromium]=/usr/bin/chromium
  [nodejs]=/usr/bin/node
  [npm]=/usr/bin/npm
  [libgl1]=/usr/lib/MULTIARCH/libGL.so.1
  [libgl1-mesa-dri]=/usr/lib/MULTIARCH/dri/swrast_dri.so
  [xauth]=/usr/bin/xauth
  [espeak-ng]=/usr/bin/espeak-ng
  [nftables]=/usr/sbin/nft
  [systemd]=/usr/bin/systemd-analyze
)
# Libraries live under the machine's multiarch directory.
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
for pkg in "${!probe[@]}"; do probe[$pkg]=${probe[$pkg]//MULTIARCH/$multiarch}; done
probe[libzbar0]=/usr/lib/$multiarch/libzbar.so.0
build=(gcc python3.11-dev libpcsclite-dev swig)
case "$purpose" in
  build) wanted=("${build[@]}") ;;
  # Everything the test suite runs against: the token (SoftHSM2, OpenSC), the PC/SC stack
  # with the virtual reader (and what pyscard builds with), the broker, the screen, CJK fonts.
  # A QR decoder for the printed receipts, PostgreSQL for the back office, Chromium for its dashboard, Node.js for the MicroPython WebAssembly port that
  # runs the I/O board firmware,
  # Mesa for Kivy under Xvfb, espeak-ng for the voice, nft to check the firewall rules.
  test) wanted=("${build[@]}" softhsm2 opensc openssl sqlite3 pcscd vsmartcard-vpcd
                mosquitto xvfb xauth fonts-noto-cjk libzbar0
                postgresql chromium nodejs npm libgl1 libgl1-mesa-dri espeak-ng nftables systemd) ;;
  # The touchscreen app: OpenGL (Mesa), the CJK font, the voice (唱收唱付).
  demo) wanted=("${build[@]}" openssl fonts-noto-cjk libgl1 libgl1-mesa-dri espeak-ng) ;;
  *) echo "system-packages.sh: unknown purpose '$purpose' (use test or demo)" >&2; exit 2 ;;
esac

missing=()
for pkg in "${wanted[@]}"; do
  [ -e "${probe[$pkg]}" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  echo "Installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "Missing system packages: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install ${missing[*]}   (or run this command as root)" >&2
  exit 1
fi
