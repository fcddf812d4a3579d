#!/bin/bash
# Turn a fresh Raspberry Pi OS Lite (Debian 12 "bookworm", arm64) into a terminal.
# Run as root on the Pi from a copy of the repository's deploy/ directory:
#   sudo deploy/pi/provision.sh --release-key release.pub.pem --bundle kiosk-1.4.0.bundle \
#        [--tuf-root root.json --update-url https://updates.example] [--no-update-timer]
#        [--maintenance-net 10.20.0.0/16] [--read-only-root]
# With --root DIR it writes the same files under DIR and only prints the commands that would
# change the running system (apt, useradd, systemctl, raspi-config): for images and tests.
# Running it twice is safe. Every step is described in docs/deploy.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEPLOY="$(dirname "$HERE")"
ROOT=/
HARDWARE=""
MAINTENANCE_NET=""
READ_ONLY_ROOT=0
BUNDLE=""
RELEASE_KEY=""
TUF_ROOT=""
UPDATE_URL=""
UPDATE_TIMER=1
DATA_LABEL=KIOSK-DATA

PACKAGES=(
	python3 python3-pip ca-certificates openssl sqlite3
	pcscd libccid opensc
	libsdl2-2.0-0 libsdl2-image-2.0-0 libsdl2-mixer-2.0-0 libsdl2-ttf-2.0-0 libmtdev1 libgl1-mesa-dri libegl1 libgles2
	fonts-noto-cjk
	espeak-ng
	nftables systemd-timesyncd
	# PC/SC for Python from Debian: PyPI has no aarch64 pyscard wheel (docs/updates.md)
	python3-pyscard
	# evdev for a payment-code scanner in HID-keyboard mode (compiled: docs/scanner.md)
	python3-evdev
	# operating-system security updates in the maintenance window (docs/deploy.md)
	unattended-upgrades
)

usage() {
	sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
	echo "provision.sh: error: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case "$1" in
	--root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
	--hardware) HARDWARE="${2:?--hardware needs a name like rpi4-arm64}"; shift 2 ;;
	--maintenance-net) MAINTENANCE_NET="${2:?--maintenance-net needs a CIDR}"; shift 2 ;;
	--read-only-root) READ_ONLY_ROOT=1; shift ;;
	--bundle) BUNDLE="${2:?--bundle needs a file}"; shift 2 ;;
	--release-key) RELEASE_KEY="${2:?--release-key needs a PEM file}"; shift 2 ;;
	--tuf-root) TUF_ROOT="${2:?--tuf-root needs the update server root.json}"; shift 2 ;;
	--update-url) UPDATE_URL="${2:?--update-url needs the update server base URL}"; shift 2 ;;
	--no-update-timer) UPDATE_TIMER=0; shift ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown option $1: see --help" ;;
	esac
done

LIVE=0
[ "$ROOT" = / ] && LIVE=1
ROOT="${ROOT%/}"
[ "$LIVE" = 1 ] && [ "$(id -u)" != 0 ] && die "run as root (sudo), or give --root DIR to build an image tree"
[ -n "$RELEASE_KEY" ] || die "give --release-key: the release public key every update is checked against"
[ -r "$RELEASE_KEY" ] || die "cannot read release key $RELEASE_KEY"
if [ -n "$MAINTENANCE_NET" ] && ! [[ "$MAINTENANCE_NET" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}(/[0-9]{1,2})?$ ]]; then
	die "--maintenance-net $MAINTENANCE_NET is not an IPv4 network like 10.20.0.0/16"
fi

# Commands that change the running system; printed instead of run when building a tree.
system() {
	if [ "$LIVE" = 1 ]; then "$@"; else echo "would run: $*"; fi
}

step() { echo "==> $*"; }

detect_hardware() {
	[ -n "$HARDWARE" ] && { echo "$HARDWARE"; return; }
	local model
	model="$(tr -d '\0' <"$ROOT/proc/device-tree/model" 2>/dev/null || true)"
	case "$model" in
	"Raspberry Pi 5"*) echo rpi5-arm64 ;;
	"Raspberry Pi 4"* | "Raspberry Pi Compute Module 4"*) echo rpi4-arm64 ;;
	*) die "cannot tell the board from '${model:-no device-tree model}': give --hardware" ;;
	esac
}

put() { # put MODE SOURCE DEST: install a file, creating its directory
	install -D -m "$1" "$2" "$ROOT$3"
}

HARDWARE="$(detect_hardware)"

step "packages"
system apt-get update -q
system env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
# Nothing that opens a port or grabs a serial line is wanted on a terminal.
system apt-get purge -y -q modemmanager avahi-daemon || true

step "service user kiosk"
if [ "$LIVE" = 1 ]; then
	id kiosk >/dev/null 2>&1 || useradd --system --home-dir /var/lib/kiosk --shell /usr/sbin/nologin kiosk
	usermod -a -G dialout,video,render,input,audio kiosk
else
	echo "would run: useradd --system kiosk (groups dialout video render input audio)"
fi

step "directories: /opt/kiosk (update slots), /etc/kiosk (configuration), /var/lib/kiosk (data)"
install -d -m 0755 "$ROOT/opt/kiosk" "$ROOT/opt/kiosk/keys"
install -d -m 0750 "$ROOT/etc/kiosk"
install -d -m 0700 "$ROOT/var/lib/kiosk"
install -d -m 0755 "$ROOT/var/lib/kiosk/updates" "$ROOT/var/lib/kiosk/updates/requests"
put 0644 "$RELEASE_KEY" /opt/kiosk/keys/release.pub.pem
echo "$HARDWARE" >"$ROOT/opt/kiosk/hardware"
# The update server's first root: the TUF client's trust anchor, never written by it.
[ -n "$TUF_ROOT" ] && put 0644 "$TUF_ROOT" /opt/kiosk/keys/tuf-root.json
[ -n "$UPDATE_URL" ] && echo "$UPDATE_URL" >"$ROOT/opt/kiosk/update-url"
if [ "$LIVE" = 1 ]; then
	# /opt/kiosk stays root's: the terminal may not write its own code; it asks the
	# privileged updater through its spool in /var/lib/kiosk/updates (docs/updates.md).
	chown -R root:root /opt/kiosk
	chown kiosk:kiosk /var/lib/kiosk /var/lib/kiosk/updates /var/lib/kiosk/updates/requests
	chown root:kiosk /etc/kiosk
fi

step "udev rules: /dev/kiosk-printer, /dev/kiosk-ioboard"
put 0644 "$HERE/90-kiosk.rules" /etc/udev/rules.d/90-kiosk.rules
system udevadm control --reload-rules
system udevadm trigger --subsystem-match=tty --subsystem-match=usb

step "journald size limits, time sync"
put 0644 "$HERE/journald-kiosk.conf" /etc/systemd/journald.conf.d/kiosk.conf
put 0644 "$HERE/timesyncd-kiosk.conf" /etc/systemd/timesyncd.conf.d/kiosk.conf
system systemctl restart systemd-journald
system systemctl enable --now systemd-timesyncd
# time-sync.target waits for a synchronised clock only with this service enabled: the terminal
# (After=time-sync.target) must not journal, sign or check expiry on the RTC-less Pi's 1970.
system systemctl enable systemd-time-wait-sync.service

step "firewall (nftables)"
put 0755 "$HERE/nftables.conf" /etc/nftables.conf
if [ -n "$MAINTENANCE_NET" ]; then
	# The only SSH allowed: from the maintenance network.
	sed -i "s|^\t\tflags interval$|\t\tflags interval\n\t\telements = { $MAINTENANCE_NET }|" "$ROOT/etc/nftables.conf"
fi
if command -v nft >/dev/null; then
	nft -c -f "$ROOT/etc/nftables.conf" || die "the firewall rules do not load: see the message above"
fi
system systemctl enable --now nftables

step "display: no console blanking, the terminal owns tty1"
CMDLINE="$ROOT/boot/firmware/cmdline.txt"
if [ -f "$CMDLINE" ] && ! grep -q 'consoleblank=0' "$CMDLINE"; then
	sed -i '1 s/$/ consoleblank=0 vt.global_cursor_default=0/' "$CMDLINE"
fi
system systemctl mask getty@tty1.service

step "operating-system security updates: unattended-upgrades, window 02:00-04:00"
put 0644 "$HERE/os-updates/20auto-upgrades" /etc/apt/apt.conf.d/20auto-upgrades
put 0644 "$HERE/os-updates/52kiosk-unattended-upgrades" /etc/apt/apt.conf.d/52kiosk-unattended-upgrades
put 0644 "$HERE/os-updates/apt-daily.timer.d/kiosk.conf" /etc/systemd/system/apt-daily.timer.d/kiosk.conf
put 0644 "$HERE/os-updates/apt-daily-upgrade.timer.d/kiosk.conf" /etc/systemd/system/apt-daily-upgrade.timer.d/kiosk.conf

step "systemd units kiosk.service, kiosk-updater.{service,path,timer}"
put 0644 "$DEPLOY/systemd/kiosk.service" /etc/systemd/system/kiosk.service
for unit in kiosk-updater.service kiosk-updater.path kiosk-updater.timer; do
	put 0644 "$DEPLOY/systemd/$unit" "/etc/systemd/system/$unit"
done
system systemctl daemon-reload
system systemctl enable kiosk.service kiosk-updater.path
if [ "$UPDATE_TIMER" = 1 ]; then
	system systemctl enable kiosk-updater.timer
else
	system systemctl disable kiosk-updater.timer
fi

if [ "$READ_ONLY_ROOT" = 1 ]; then
	step "read-only root: overlay on /, data partition $DATA_LABEL for data, updates, configuration"
	if ! grep -q "LABEL=$DATA_LABEL" "$ROOT/etc/fstab" 2>/dev/null; then
		install -d "$ROOT/etc"
		cat >>"$ROOT/etc/fstab" <<-FSTAB
			LABEL=$DATA_LABEL /data ext4 defaults,noatime,commit=30 0 2
			/data/kiosk/var /var/lib/kiosk none bind,x-systemd.requires-mounts-for=/data 0 0
			/data/kiosk/opt /opt/kiosk none bind,x-systemd.requires-mounts-for=/data 0 0
			/data/kiosk/etc /etc/kiosk none bind,x-systemd.requires-mounts-for=/data 0 0
		FSTAB
	fi
	install -d "$ROOT/data/kiosk/var" "$ROOT/data/kiosk/opt" "$ROOT/data/kiosk/etc"
	# raspi-config's overlay keeps / unchanged across reboots; /data stays writable.
	system raspi-config nonint do_overlayfs 0
fi

if [ -n "$BUNDLE" ]; then
	step "first software from $BUNDLE"
	WORK="$(mktemp -d)"
	trap 'rm -rf "$WORK"' EXIT
	tar -xf "$BUNDLE" -C "$WORK" metadata.json metadata.json.sig
	# Check the release signature before running anything from the bundle (docs/updates.md).
	openssl dgst -sha256 -verify "$RELEASE_KEY" -signature "$WORK/metadata.json.sig" "$WORK/metadata.json" >/dev/null ||
		die "$BUNDLE is not signed by the release key: get a genuine bundle"
	tar -xf "$BUNDLE" -C "$WORK" --wildcards 'payload/software/*.whl'
	python3 -m pip install -q --no-index --no-deps --target "$WORK/site" "$WORK"/payload/software/*.whl
	# The bundle's own kiosk-tool checks every hash again and installs it into slot a.
	PYTHONPATH="$WORK/site" python3 -m firmware_tools.cli update install \
		--root "$ROOT/opt/kiosk" --in "$BUNDLE"
	# The Simplified Chinese faces come with the bundle (payload/fonts, cut when it was
	# built: ui/fonts.py), so nothing is prepared here and the Pi needs no fontTools.
fi

step "done: write /etc/kiosk/kiosk.toml (kiosk-tool provision), then: systemctl start kiosk"
