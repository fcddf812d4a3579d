"""The privileged-install split in the systemd units and the OS update policy in deploy/:
the kiosk service cannot write its own code, the updater can, and provisioning installs both.
Checked with systemd-analyze verify (real systemd), apt's own config parser, and a run of
provision.sh into an image tree."""

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
SYSTEMD = DEPLOY / "systemd"
OS_UPDATES = DEPLOY / "pi" / "os-updates"
needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def _unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(SYSTEMD / name)
    return unit


@needs_systemd
@pytest.mark.parametrize(
    "name", ["kiosk.service", "kiosk-updater.service", "kiosk-updater.path", "kiosk-updater.timer"]
)
def test_the_units_pass_systemd_analyze_verify(name: str) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(SYSTEMD / name)], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_the_kiosk_service_cannot_write_the_slots_but_its_boot_guard_runs_privileged() -> None:
    service = _unit("kiosk.service")["Service"]
    writable = service["ReadWritePaths"].split()
    assert writable == ["/var/lib/kiosk"]
    assert not any(p == "/opt" or p.startswith("/opt/kiosk") for p in writable)
    assert service["ProtectSystem"] == "strict"
    guard = service["ExecStartPre"]
    assert guard.startswith("+") and "update start" in guard and "--ioboard-port" in guard
    assert "PYTHONPATH=/opt/kiosk/good/site-packages" in guard


def test_the_updater_may_write_the_slots_and_the_spool_and_is_started_by_path_and_timer() -> None:
    service = _unit("kiosk-updater.service")["Service"]
    assert set(service["ReadWritePaths"].split()) == {"/opt/kiosk", "/var/lib/kiosk/updates"}
    assert "User" not in service and service["Type"] == "oneshot"
    assert "update serve" in service["ExecStart"]
    assert "/opt/kiosk/good/site-packages" in service["Environment"]
    path = _unit("kiosk-updater.path")
    assert path["Path"]["DirectoryNotEmpty"] == "/var/lib/kiosk/updates/requests"
    assert path["Path"]["Unit"] == _unit("kiosk-updater.timer")["Timer"]["Unit"]


@pytest.mark.parametrize("timer", ["apt-daily", "apt-daily-upgrade"])
def test_the_os_update_window_drop_ins_verify_with_debians_timers(
    timer: str, tmp_path: Path
) -> None:
    debian = Path("/lib/systemd/system") / f"{timer}.timer"
    if not debian.exists() or shutil.which("systemd-analyze") is None:
        pytest.skip("apt's timers or systemd-analyze are not installed")
    shutil.copy(debian, tmp_path)
    shutil.copy(debian.with_suffix(".service"), tmp_path)
    (tmp_path / f"{timer}.timer.d").mkdir()
    shutil.copy(OS_UPDATES / f"{timer}.timer.d" / "kiosk.conf", tmp_path / f"{timer}.timer.d")
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / f"{timer}.timer")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    drop_in = (OS_UPDATES / f"{timer}.timer.d" / "kiosk.conf").read_text()
    assert "OnCalendar=\n" in drop_in, "Debian's own schedule must be cleared first"


def test_apt_reads_the_unattended_upgrades_policy(tmp_path: Path) -> None:
    if shutil.which("apt-config") is None:
        pytest.skip("apt-config is not installed")
    conf = tmp_path / "apt.conf.d"
    conf.mkdir()
    for name in ("20auto-upgrades", "52kiosk-unattended-upgrades"):
        shutil.copy(OS_UPDATES / name, conf)
    main = tmp_path / "apt.conf"
    main.write_text(f'Dir::Etc::Parts "{conf}";\n')
    result = subprocess.run(
        ["apt-config", "dump"], capture_output=True, text=True, env={"APT_CONFIG": str(main)}
    )
    assert result.returncode == 0, result.stderr
    assert 'APT::Periodic::Unattended-Upgrade "1";' in result.stdout
    assert 'Unattended-Upgrade::Automatic-Reboot-Time "03:45";' in result.stdout
    assert "Debian-Security" in result.stdout


def test_provisioning_installs_the_updater_units_the_policy_and_a_read_only_root(
    tmp_path: Path,
) -> None:
    key = tmp_path / "release.pub.pem"
    key.write_text("-----BEGIN PUBLIC KEY-----\n")
    anchor = tmp_path / "root.json"
    anchor.write_text("{}")
    tree = tmp_path / "tree"
    result = subprocess.run(
        ["bash", str(DEPLOY / "pi" / "provision.sh"), "--root", str(tree), "--hardware",
         "rpi4-arm64", "--release-key", str(key), "--tuf-root", str(anchor),
         "--update-url", "https://updates.invalid", "--no-update-timer"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for path in [
        "etc/systemd/system/kiosk-updater.service",
        "etc/systemd/system/kiosk-updater.path",
        "etc/systemd/system/kiosk-updater.timer",
        "etc/apt/apt.conf.d/52kiosk-unattended-upgrades",
        "etc/systemd/system/apt-daily-upgrade.timer.d/kiosk.conf",
        "opt/kiosk/keys/tuf-root.json",
    ]:
        assert (tree / path).is_file(), path
    assert (tree / "var/lib/kiosk/updates/requests").is_dir()
    assert (tree / "opt/kiosk/update-url").read_text() == "https://updates.invalid\n"
    assert "would run: systemctl enable kiosk.service kiosk-updater.path" in result.stdout
    assert "would run: systemctl disable kiosk-updater.timer" in result.stdout
    assert "python3-pyscard" in result.stdout and "unattended-upgrades" in result.stdout
