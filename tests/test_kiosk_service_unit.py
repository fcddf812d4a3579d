"""deploy/systemd/kiosk.service, run as systemd would run it: the touchscreen app as the service.

The test reads ExecStartPre, ExecStart, Environment, WorkingDirectory and WatchdogSec from
the unit file and runs exactly those commands (ExecStartPre's "+", which makes systemd run it
as root outside the sandbox, is systemd's and not part of the command), with only these
differences, each because this machine is not a terminal:
- the paths /opt/kiosk (the A/B slots), /etc/kiosk/kiosk.toml and /var/lib/kiosk become the
  test's own directories, and /usr/bin/python3 the test environment's interpreter (the one
  with the project's dependencies installed);
- the display: the unit says SDL_VIDEODRIVER=kmsdrm, which needs a DRM device; here SDL
  draws on Xvfb (SDL_VIDEODRIVER=x11, DISPLAY of the test's Xvfb). Nothing else of the
  environment changes;
- systemd's side of sd_notify is a datagram socket the test listens on (NOTIFY_SOCKET), with
  WATCHDOG_USEC from WatchdogSec as systemd sets it (WATCHDOG_PID is left out: it is only
  known once the process exists).
The slots hold a version on trial installed by the real update code (`SlotStore.install`
of signed bundles); its wheels include one whose entry point is setup.cfg's `kiosk-ui`, so
the `site-packages/bin/kiosk-ui` ExecStart names is the script pip writes from it. The
version on trial is this checkout's kiosk.__version__, the code kiosk-ui runs, as on a
terminal (the bundle builder refuses any other). The terminal cannot write the slots: it
asks through its spool, and kiosk-updater.path starts kiosk-updater.service when a request
arrives; the test runs that unit's ExecStart the same way when the spool holds a request. The
terminal is real: SoftHSM2 token, the platform simulator, Mosquitto with the fleet's TLS
certificates, simulated devices.
"""

import base64
import hashlib
import importlib.metadata
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import kiosk
from kiosk.telemetry import topic
from kiosk.updates import SlotStore, build_bundle, sign_bundle
from tests.fixtures.mosquitto import MosquittoBroker, MqttPki, connect_peer
from tests.fixtures.updates import HARDWARE, ReleaseKeys, make_wheel
from ui.fonts import prepare_faces

pytestmark = pytest.mark.softhsm

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "deploy" / "systemd" / "kiosk.service"
STATION, TERMINAL = "33078200001", "T0001"
UPDATER = REPO / "deploy" / "systemd" / "kiosk-updater.service"
OLDER = "0.0.1"  # the known-good version below the one on trial


@dataclass(frozen=True)
class Unit:
    exec_start_pre: list[str]
    exec_start: list[str]
    environment: dict[str, str]
    working_directory: str
    watchdog_s: int


def read_unit(path: Path) -> Unit:
    """The [Service] settings this test runs, read as systemd reads them (repeated
    Environment= lines add up; each holds space-separated, optionally quoted assignments)."""
    section = ""
    values: dict[str, list[str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section == "Service":
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    environment = dict(
        item.split("=", 1) for value in values["Environment"] for item in shlex.split(value)
    )
    [pre] = values["ExecStartPre"]
    pre = pre.lstrip("+-@!:")  # systemd's prefixes: "+" runs it privileged
    [start] = values["ExecStart"]
    [workdir] = values["WorkingDirectory"]
    [watchdog] = values["WatchdogSec"]
    return Unit(shlex.split(pre), shlex.split(start), environment, workdir, int(watchdog))


def kiosk_ui_entry_point() -> str:
    """The kiosk-ui command as this checkout's installed distribution declares it (setup.py)."""
    [script] = importlib.metadata.entry_points(group="console_scripts", name="kiosk-ui")
    return script.value


def entry_point_wheel(directory: Path, version: str) -> Path:
    """A wheel carrying our kiosk-ui entry point: pip --target writes bin/kiosk-ui."""
    name, dist = "kiosk_ui_launcher", f"kiosk_ui_launcher-{version}"
    files = {
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: kiosk-ui-launcher\nVersion: {version}\n"
        ).encode(),
        f"{dist}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{dist}.dist-info/entry_points.txt": (
            f"[console_scripts]\nkiosk-ui = {kiosk_ui_entry_point()}\n"
        ).encode(),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def install_trial(root: Path, work: Path, keys: ReleaseKeys) -> None:
    """An older version installed and good, this checkout's on trial: the next start counts.
    With what provision.sh writes beside the slots for the updater."""
    now = datetime.now(UTC)
    fonts = work / "fonts"
    prepare_faces(fonts)  # as build-bundle.sh does: the faces travel in the bundle
    for version in (OLDER, kiosk.__version__):
        wheels = work / version / "wheels"
        make_wheel(wheels, version)
        entry_point_wheel(wheels, version)
        bundle = work / f"kiosk-{version}.bundle"
        build_bundle(
            bundle,
            version=version,
            hardware=(HARDWARE,),
            created=now - timedelta(minutes=1),
            expires=now + timedelta(days=30),
            software_dir=wheels,
            ioboard_dir=None,
            catalog_dir=None,
            fonts_dir=fonts,
        )
        sign_bundle(bundle, keys.private_pem)
        SlotStore(root).install(bundle, keys.public_pem, hardware=HARDWARE, now=now)
    assert SlotStore(root).status().trial is not None
    (root / "keys").mkdir(exist_ok=True)
    (root / "keys" / "release.pub.pem").write_bytes(keys.public_pem)
    (root / "hardware").write_text(HARDWARE + "\n")
    (root / "update-url").write_text("https://updates.invalid/kiosk\n")  # nothing is fetched


class NotifySocket:
    """systemd's end of sd_notify for the unit: every datagram, in order of arrival."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[dict[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            self.messages.append(
                dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            )

    def keys(self) -> list[str]:
        return [key for message in list(self.messages) for key in message]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@dataclass
class ServiceRun:
    process: subprocess.Popen[str]
    notify: NotifySocket
    log: Path
    root: Path
    spool: Path
    updater: list[str]  # kiosk-updater.service's ExecStart, made local

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def trial_confirmed(self) -> bool:
        """kiosk-updater.path's part: a request in the spool starts the updater; then
        whether the version on trial has been confirmed."""
        requests = self.spool / "requests"
        if requests.is_dir() and any(requests.iterdir()):
            served = subprocess.run(
                self.updater, capture_output=True, text=True, timeout=120, check=False
            )
            assert served.returncode == 0, served.stdout + served.stderr
        return SlotStore(self.root).status().trial is None

    def wait_for(self, condition: Any, what: str, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"kiosk-ui exited ({self.process.returncode}) before {what}:\n"
                    + self.log_text()[-3000:]
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}; notify {self.notify.messages};\n"
                    + self.log_text()[-3000:]
                )
            time.sleep(0.1)


@pytest.fixture
def run_service(
    tmp_path: Path,
    xvfb_display: str,
    softhsm_token: Any,
    platform_sim: Any,
    mosquitto: MosquittoBroker,
    mqtt_pki: MqttPki,
    release_keys: ReleaseKeys,
) -> Iterator[Any]:
    runs: list[ServiceRun] = []

    def start(token_label: str | None = None) -> ServiceRun:
        unit = read_unit(UNIT)
        root, state = tmp_path / "opt-kiosk", tmp_path / "var-lib-kiosk"
        state.mkdir()
        install_trial(root, tmp_path / "build", release_keys)
        pin = tmp_path / "user.pin"
        pin.write_text(softhsm_token.user_pin + "\n")
        pin.chmod(0o600)
        key = ec.generate_private_key(ec.SECP256R1())
        backoffice_key = tmp_path / "backoffice-command.pub.pem"
        backoffice_key.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        cert = mqtt_pki.terminal(TERMINAL, STATION)
        # The credit line is zero: the station bought float at the outlet before opening, or
        # the app would rightly show itself out of service for lack of float.
        platform_sim.fund(STATION)
        config = tmp_path / "kiosk.toml"
        table = {
            "data_dir": str(state),  # as provisioned: the spool is /var/lib/kiosk/updates
            "station": {
                "institution_no": STATION,
                "name": "青山社区便民服务站",
                "terminal_id": TERMINAL,
            },
            "platform": {"url": platform_sim.url, "timeout_s": 2.0, "retries": 2},
            "token": {
                "kind": "pkcs11",
                "module": softhsm_token.module,
                "label": token_label or softhsm_token.label,
                "key_label": softhsm_token.key_label,
                "pin_source": f"file:{pin}",
                "softhsm_conf": str(softhsm_token.conf),
            },
            "telemetry": {
                "broker_host": mosquitto.host,
                "broker_port": mosquitto.port,
                "ca_file": str(cert.ca),
                "cert_file": str(cert.cert),
                "key_file": str(cert.key),
                "backoffice_key_file": str(backoffice_key),
            },
            "updates": {"root": str(root)},
        }
        config.write_text(tomli_w.dumps(table), encoding="utf-8")

        def local(text: str) -> str:
            return (
                text.replace("/opt/kiosk", str(root))
                .replace("/etc/kiosk/kiosk.toml", str(config))
                .replace("/var/lib/kiosk", str(state))
                .replace("/usr/bin/python3", sys.executable)
            )

        # The boot guard first, as systemd runs ExecStartPre: it counts the trial's start.
        pre = subprocess.run(
            [local(arg) for arg in unit.exec_start_pre],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8"},
        )
        # LANG=C.UTF-8, as on the terminal: the boot guard speaks Chinese (试运行: on trial).
        assert pre.returncode == 0 and "试运行" in pre.stdout, pre.stdout + pre.stderr

        notify = NotifySocket(tmp_path / "notify.sock")
        env = {
            "PATH": os.environ["PATH"],
            "LANG": "C.UTF-8",
            "HOME": str(state),
            **{name: local(value) for name, value in unit.environment.items()},
            "NOTIFY_SOCKET": str(notify.path),
            "WATCHDOG_USEC": str(unit.watchdog_s * 1_000_000),
        }
        assert env["SDL_VIDEODRIVER"] == "kmsdrm"  # what the terminal uses...
        env.update(SDL_VIDEODRIVER="x11", DISPLAY=xvfb_display)  # ...and what Xvfb offers
        log = tmp_path / "kiosk-ui.log"
        workdir = Path(local(unit.working_directory))
        command = [local(arg) for arg in unit.exec_start]
        assert command[1].endswith("site-packages/bin/kiosk-ui") and Path(command[1]).is_file()
        with log.open("w") as out:
            process = subprocess.Popen(
                command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
            )
        [updater] = [
            line.split("=", 1)[1]
            for line in UPDATER.read_text(encoding="utf-8").splitlines()
            if line.startswith("ExecStart=")
        ]
        run = ServiceRun(
            process, notify, log, root, state / "updates", [local(a) for a in shlex.split(updater)]
        )
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait(30)
        run.notify.close()


def birth_seen(mosquitto: MosquittoBroker, mqtt_pki: MqttPki, name: str) -> Any:
    peer = connect_peer(mosquitto, mqtt_pki.backoffice(), name)
    peer.subscribe(topic(STATION, TERMINAL, "status"))
    return peer


def test_the_unit_runs_the_touchscreen_app_ready_watched_online_and_confirming_its_trial(
    run_service: Any, mosquitto: MosquittoBroker, mqtt_pki: MqttPki
) -> None:
    backoffice = birth_seen(mosquitto, mqtt_pki, "backoffice-unit-test")
    try:
        run = run_service()
        run.wait_for(lambda: "READY" in run.notify.keys(), "READY=1")
        ready_at = run.notify.keys().index("READY")
        run.wait_for(lambda: "WATCHDOG" in run.notify.keys()[ready_at:], "WATCHDOG=1 after READY")
        run.wait_for(lambda: "screen idle" in run.log_text(), "the idle screen")
        assert "screen out_of_service" not in run.log_text(), run.log_text()[-3000:]

        def birth() -> bool:
            return any(
                json.loads(m.payload).get("state") == "online"
                for m in backoffice.messages("/status")
            )

        run.wait_for(birth, "the birth message on the broker")
        run.wait_for(run.trial_confirmed, "the trial version confirmed")
        status = SlotStore(run.root).status()
        assert status.active is not None and status.active.version == kiosk.__version__
        # The app drew with the faces the bundle carries: nothing was cut at run time.
        cache = run.spool.parent / "fonts"
        assert not cache.exists() or not any(cache.iterdir())
        assert any(e["type"] == "update_confirmed" for e in status.events)
        run.process.send_signal(signal.SIGTERM)  # systemctl stop
        assert run.process.wait(60) == 0, run.log_text()[-3000:]
        assert "STOPPING" in run.notify.keys()
    finally:
        backoffice.client.loop_stop()
        backoffice.client.disconnect()


def test_with_the_token_missing_it_is_ready_and_shows_out_of_service_with_the_reason(
    run_service: Any,
) -> None:
    run = run_service(token_label="kiosk-token-not-inserted")
    run.wait_for(lambda: "READY" in run.notify.keys(), "READY=1")
    status = next(m["STATUS"] for m in run.notify.messages if "READY" in m)
    assert "out of service" in status and "token" in status, status
    run.wait_for(lambda: "screen out_of_service" in run.log_text(), "the out-of-service screen")
    run.wait_for(
        lambda: "The signature device (USBKey) is not working" in run.log_text(),
        "the reason on the out-of-service screen",
    )
    # A missing token is not the software's fault: the version on trial is kept.
    run.wait_for(run.trial_confirmed, "the trial version confirmed")
    run.process.send_signal(signal.SIGTERM)
    assert run.process.wait(60) == 0, run.log_text()[-3000:]


def test_the_terminal_starts_only_once_the_clock_is_synchronised(tmp_path: Path) -> None:
    """time-sync.target means "synchronised" only when systemd-time-wait-sync is enabled:
    the unit wants it and is ordered after it, and provisioning enables it."""
    unit: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            unit.setdefault(key, []).extend(value.split())
    assert "time-sync.target" in unit["After"]
    assert "systemd-time-wait-sync.service" in unit["After"]
    assert "systemd-time-wait-sync.service" in unit["Wants"]
    key = tmp_path / "release.pub.pem"
    key.write_text("-----BEGIN PUBLIC KEY-----\n")
    result = subprocess.run(
        ["bash", str(REPO / "deploy" / "pi" / "provision.sh"), "--root", str(tmp_path / "tree"),
         "--hardware", "rpi4-arm64", "--release-key", str(key)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "would run: systemctl enable systemd-time-wait-sync.service" in result.stdout
