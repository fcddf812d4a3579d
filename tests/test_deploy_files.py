"""Every deploy/ file is checked by the tool that will read it, or by its documented grammar."""

import configparser
import fnmatch
import re
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SYSTEMD = DEPLOY / "systemd"
PI = DEPLOY / "pi"


def _run(*command: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd, timeout=60)


def _verify(unit: Path) -> None:
    # systemd-analyze prints unknown keys and bad values as warnings yet exits 0: both count.
    result = _run("systemd-analyze", "verify", str(unit))
    assert result.returncode == 0 and result.stderr == "", result.stderr


needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


@needs_systemd
def test_the_terminal_unit_passes_systemd_analyze_verify() -> None:
    _verify(SYSTEMD / "kiosk.service")


@needs_systemd
def test_the_terminal_unit_is_type_notify_with_a_watchdog_and_always_restarts() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(SYSTEMD / "kiosk.service")
    service = unit["Service"]
    assert service["Type"] == "notify" and service["Restart"] == "always"
    assert int(service["WatchdogSec"]) > 0
    assert (
        "update start" in service["ExecStartPre"] and "/opt/kiosk/good/" in service["ExecStartPre"]
    )
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"


@needs_systemd
def test_the_backoffice_unit_passes_verify_once_its_venv_exists(tmp_path: Path) -> None:
    # The unit runs the back office from its virtual environment, absent on this machine:
    # verify a copy whose venv prefix points at a stand-in executable under tmp_path.
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "kiosk-backoffice").write_text("#!/bin/sh\n")
    (venv / "kiosk-backoffice").chmod(0o755)
    text = (SYSTEMD / "kiosk-backoffice.service").read_text()
    assert "/opt/kiosk-backoffice/venv/bin/" in text
    copy = tmp_path / "kiosk-backoffice.service"
    copy.write_text(text.replace("/opt/kiosk-backoffice/venv/bin/", f"{venv}/"))
    _verify(copy)


@needs_systemd
def test_the_mosquitto_drop_in_passes_verify_with_debians_unit(tmp_path: Path) -> None:
    debian_unit = Path("/lib/systemd/system/mosquitto.service")
    if not debian_unit.exists():
        pytest.skip("mosquitto is not installed: apt-get install mosquitto")
    shutil.copy(debian_unit, tmp_path / "mosquitto.service")
    shutil.copytree(SYSTEMD / "mosquitto.service.d", tmp_path / "mosquitto.service.d")
    _verify(tmp_path / "mosquitto.service")


@needs_systemd
def test_verify_would_catch_a_mistake_in_a_drop_in(tmp_path: Path) -> None:
    shutil.copy(Path("/lib/systemd/system/mosquitto.service"), tmp_path / "mosquitto.service")
    (tmp_path / "mosquitto.service.d").mkdir()
    (tmp_path / "mosquitto.service.d" / "typo.conf").write_text("[Service]\nRestartt=always\n")
    with pytest.raises(AssertionError, match="Unknown key"):
        _verify(tmp_path / "mosquitto.service")


def test_the_firewall_rules_load_in_nft() -> None:
    if shutil.which("nft") is None:
        pytest.skip("nft is not installed: apt-get install nftables")
    result = _run("nft", "-c", "-f", str(PI / "nftables.conf"))
    if "Operation not permitted" in result.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN here")
    assert result.returncode == 0, result.stderr


# udev(7): match keys compare (== !=), assignment keys assign (= += -= :=).
_UDEV_MATCH = {
    "ACTION",
    "KERNEL",
    "SUBSYSTEM",
    "DRIVER",
    "ATTR",
    "ATTRS",
    "KERNELS",
    "SUBSYSTEMS",
    "DRIVERS",
    "ENV",
    "TAG",
    "TAGS",
    "PROGRAM",
    "RESULT",
    "DEVPATH",
}
_UDEV_ASSIGN = {
    "SYMLINK",
    "GROUP",
    "MODE",
    "OWNER",
    "ENV",
    "TAG",
    "RUN",
    "NAME",
    "ATTR",
    "OPTIONS",
    "LABEL",
    "GOTO",
    "IMPORT",
}
_UDEV_TOKEN = re.compile(r'\s*([A-Z_]+)(\{[^}]+\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(,|$)')


def _parse_udev_line(line: str) -> list[tuple[str, str, str]]:
    tokens, position = [], 0
    while position < len(line):
        match = _UDEV_TOKEN.match(line, position)
        if match is None:
            raise ValueError(f"cannot parse udev rule at: {line[position:]!r}")
        key, _, op, value, _ = match.groups()
        allowed = _UDEV_MATCH if op in ("==", "!=") else _UDEV_ASSIGN
        if key not in allowed:
            raise ValueError(
                f"{key}{op} is not a valid udev {('match', 'assignment')[op not in ('==', '!=')]}"
            )
        tokens.append((key, op, value))
        position = match.end()
    return tokens


def test_the_udev_rules_follow_udevs_grammar_and_name_each_device() -> None:
    verify = (
        _run("udevadm", "verify", str(PI / "90-kiosk.rules")) if shutil.which("udevadm") else None
    )
    if verify is not None and "Unknown command" not in verify.stderr:
        assert verify.returncode == 0, verify.stderr
    links = set()
    for line in (PI / "90-kiosk.rules").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            tokens = _parse_udev_line(line)
            assert any(op in ("==", "!=") for _, op, _ in tokens), line
            links |= {value for key, _, value in tokens if key == "SYMLINK"}
    assert {"kiosk-printer", "kiosk-ioboard"} <= links


def _udev_rules() -> list[list[tuple[str, str, str]]]:
    """Each rule's (key with its {attribute}, operator, value), checked by the grammar first."""
    rules = []
    for line in (PI / "90-kiosk.rules").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            _parse_udev_line(line)
            rules.append([(m[1] + (m[2] or ""), m[3], m[4]) for m in _UDEV_TOKEN.finditer(line)])
    return rules


def _udev_matches(pattern: str, value: str) -> bool:
    # udev(7) patterns: shell globs, with "|" separating alternatives.
    return any(fnmatch.fnmatchcase(value, alternative) for alternative in pattern.split("|"))


def _udev_links(device: dict[str, str], path_id: str) -> set[str]:
    """The SYMLINKs the rules give a device, udev's way: rules in order, imports applied.

    device holds SUBSYSTEM, KERNEL, ATTRS{...} and ENV{...} keys as udevadm info shows them;
    IMPORT{builtin}="path_id" sets ENV{ID_PATH} to path_id, as udev's builtin does.
    """
    device, links = dict(device), set()
    for rule in _udev_rules():
        matches = [(k, op, v) for k, op, v in rule if op in ("==", "!=")]
        if all(_udev_matches(v, device.get(k, "")) == (op == "==") for k, op, v in matches):
            for key, _, value in rule:
                if key == "IMPORT{builtin}" and value == "path_id":
                    device["ENV{ID_PATH}"] = path_id
                if key == "SYMLINK":
                    links.add(value)
    return links


PRINTER_PORT = "platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.3:1.0"
OTHER_PORT = "platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.4:1.0"
CH340 = {"SUBSYSTEM": "tty", "KERNEL": "ttyUSB0", "ATTRS{idVendor}": "1a86"}
CH340["ATTRS{idProduct}"] = "7523"
USBLP = {"SUBSYSTEM": "usbmisc", "KERNEL": "lp0"}


def test_a_serial_number_less_adapter_is_the_printer_only_in_the_printers_port() -> None:
    # Two CH340 adapters (no serial numbers) are told apart by their physical port alone.
    assert _udev_links(CH340, PRINTER_PORT) == {"kiosk-printer"}
    assert _udev_links(CH340, OTHER_PORT) == set()
    pl2303 = dict(CH340, **{"ATTRS{idVendor}": "067b", "ATTRS{idProduct}": "2303"})
    assert _udev_links(pl2303, PRINTER_PORT) == {"kiosk-printer"}


def test_a_usb_printer_class_device_in_the_printers_port_is_the_printer() -> None:
    assert _udev_links(USBLP, PRINTER_PORT) == {"kiosk-printer"}
    assert _udev_links(USBLP, OTHER_PORT) == set()
    assert _udev_links(dict(USBLP, KERNEL="hiddev0"), PRINTER_PORT) == set()


def test_every_printer_rule_names_the_physical_port_or_the_uart() -> None:
    for rule in _udev_rules():
        keys = {key for key, _, _ in rule}
        if ("SYMLINK", "+=", "kiosk-printer") in rule:
            assert "ENV{ID_PATH}" in keys or ("KERNEL", "==", "ttyAMA0") in rule, rule


def test_the_printer_port_in_the_rules_is_the_one_the_docs_name() -> None:
    docs = (DEPLOY.parent / "docs" / "printer.md").read_text(encoding="utf-8")
    ports = {v for rule in _udev_rules() for k, op, v in rule if k == "ENV{ID_PATH}" and op == "=="}
    ports.discard("")
    assert ports == {"*-usb-0:1.3:1.0"}
    assert "usb-0:1.3:1.0" in docs and "ID_PATH" in docs


def test_the_udev_grammar_check_rejects_a_broken_rule() -> None:
    with pytest.raises(ValueError):
        _parse_udev_line('SUBSYSTEM=="tty", SYMLINK=="kiosk-printer"')
    with pytest.raises(ValueError):
        _parse_udev_line('SUBSYSTEM=="tty" ATTRS{idVendor}=="1a86"')


# systemd.syntax(7) sections and the keys of journald.conf(5) and timesyncd.conf(5) in systemd 252.
_KNOWN_KEYS = {
    "Journal": {
        "Storage",
        "Compress",
        "Seal",
        "SplitMode",
        "SyncIntervalSec",
        "RateLimitIntervalSec",
        "RateLimitBurst",
        "SystemMaxUse",
        "SystemKeepFree",
        "SystemMaxFileSize",
        "SystemMaxFiles",
        "RuntimeMaxUse",
        "RuntimeKeepFree",
        "RuntimeMaxFileSize",
        "RuntimeMaxFiles",
        "MaxRetentionSec",
        "MaxFileSec",
        "ForwardToSyslog",
        "ForwardToKMsg",
        "ForwardToConsole",
        "ForwardToWall",
        "MaxLevelStore",
        "MaxLevelSyslog",
        "Audit",
        "ReadKMsg",
    },
    "Time": {
        "NTP",
        "FallbackNTP",
        "RootDistanceMaxSec",
        "PollIntervalMinSec",
        "PollIntervalMaxSec",
        "ConnectionRetrySec",
        "SaveIntervalSec",
    },
}
_SIZE = re.compile(r"^\d+[KMGT]?$")
_SPAN = re.compile(r"^\d+(s|min|m|h|d|w|month|year)?$")


@pytest.mark.parametrize("name", ["journald-kiosk.conf", "timesyncd-kiosk.conf"])
def test_the_journald_and_timesyncd_drop_ins_use_only_known_keys_and_valid_values(
    name: str,
) -> None:
    conf = configparser.ConfigParser(strict=True, interpolation=None)
    conf.optionxform = str  # type: ignore[assignment,method-assign]
    conf.read(PI / name)
    assert conf.sections()
    for section in conf.sections():
        for key, value in conf[section].items():
            assert key in _KNOWN_KEYS[section], f"{name}: unknown key {section}.{key}"
            if key.endswith(("Use", "Free", "FileSize")):
                assert _SIZE.match(value), f"{name}: {key}={value} is not a size"
            if key.endswith("Sec"):
                assert _SPAN.match(value), f"{name}: {key}={value} is not a time span"
    if name.startswith("journald"):
        assert conf["Journal"]["SystemMaxUse"] and conf["Journal"]["Storage"] == "persistent"


def test_the_provisioning_script_is_valid_bash_and_explains_itself() -> None:
    assert _run("bash", "-n", str(PI / "provision.sh")).returncode == 0
    result = _run("bash", str(PI / "provision.sh"), "--help")
    assert result.returncode == 0 and "--read-only-root" in result.stdout


def test_provisioning_into_an_image_tree_places_every_file(tmp_path: Path) -> None:
    key = tmp_path / "release.pub.pem"
    key.write_text("-----BEGIN PUBLIC KEY-----\n")
    tree = tmp_path / "tree"
    (tree / "boot/firmware").mkdir(parents=True)
    (tree / "boot/firmware/cmdline.txt").write_text("console=tty1 root=PARTUUID=1 rootwait\n")
    result = _run("bash", str(PI / "provision.sh"), "--root", str(tree), "--hardware", "rpi4-arm64",
                  "--release-key", str(key), "--maintenance-net", "10.20.0.0/16",
                  "--read-only-root")  # fmt: skip
    assert result.returncode == 0, result.stderr
    for path in [
        "etc/systemd/system/kiosk.service",
        "etc/udev/rules.d/90-kiosk.rules",
        "etc/systemd/journald.conf.d/kiosk.conf",
        "etc/nftables.conf",
        "etc/systemd/timesyncd.conf.d/kiosk.conf",
        "opt/kiosk/keys/release.pub.pem",
    ]:
        assert (tree / path).is_file(), path
    assert (tree / "opt/kiosk/hardware").read_text() == "rpi4-arm64\n"
    assert "elements = { 10.20.0.0/16 }" in (tree / "etc/nftables.conf").read_text()
    assert "consoleblank=0" in (tree / "boot/firmware/cmdline.txt").read_text()
    assert "/data/kiosk/opt /opt/kiosk" in (tree / "etc/fstab").read_text()
    assert "would run: systemctl enable kiosk.service" in result.stdout
    if shutil.which("nft"):
        checked = _run("nft", "-c", "-f", str(tree / "etc/nftables.conf"))
        assert checked.returncode == 0 or "not permitted" in checked.stderr, checked.stderr
    # Twice is safe: the fstab is not extended again.
    again = _run("bash", str(PI / "provision.sh"), "--root", str(tree), "--hardware", "rpi4-arm64",
                 "--release-key", str(key), "--read-only-root")  # fmt: skip
    assert again.returncode == 0 and (tree / "etc/fstab").read_text().count("LABEL=KIOSK-DATA") == 1


def test_provisioning_refuses_a_malformed_maintenance_network(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    key.write_text("x")
    result = _run("bash", str(PI / "provision.sh"), "--root", str(tmp_path / "t"),
                  "--hardware", "rpi4-arm64", "--release-key", str(key),
                  "--maintenance-net", "everyone")  # fmt: skip
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "not an IPv4 network" in result.stderr
