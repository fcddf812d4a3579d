"""Cutting a terminal off (issue #19 item 9): `kiosk-backoffice terminal revoke` writes a CRL
signed by the operator CA; a real Mosquitto loading it (crlfile) refuses the revoked
terminal's TLS connection while the others connect, and the platform simulator given the
same CRL refuses the revoked terminal's requests with certificate_revoked."""

import base64
import datetime
import json
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from backoffice.config import RevocationConfig
from backoffice.revocation import Reason, RevocationError, Revocations, revoked_serials
from backoffice.roles import Role
from backoffice.staff import Staff
from backoffice.store import Store
from kiosk.clock import iso
from kiosk.platform.models import PATHS, SIGNATURE_HEADER, Operation
from simulators.platform.server import PlatformSimulator
from tests.fixtures.mosquitto import (
    STATION,
    ClientCert,
    MosquittoBroker,
    MqttPki,
    wait_until,
)

ADMIN = Staff("Zhao Min", Role.ADMIN)


@pytest.fixture
def pki(tmp_path: Path, mqtt_pki: MqttPki) -> MqttPki:
    """A CA of this test's own: revoking here must not touch the session's certificates."""
    return MqttPki(tmp_path / "pki")


def revocation_config(pki: MqttPki, **extra: Any) -> RevocationConfig:
    return RevocationConfig(
        ca_cert_file=str(pki.dir / "ca.pem"),
        ca_key_file=str(pki.dir / "ca.key"),
        crl_file=str(pki.dir / "crl.pem"),
        certificates_dir=str(pki.dir),
        **extra,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = Store(f"sqlite:///{tmp_path / 'bo.db'}")
    yield made
    made.close()


def mqtt_connack(broker: MosquittoBroker, cert: ClientCert, client_id: str) -> bool:
    """A TLS connection with the certificate and an MQTT 3.1.1 CONNECT: True when the broker
    answers CONNACK 'accepted', False when the handshake or the connection is refused."""
    context = ssl.create_default_context(cafile=str(cert.ca))
    context.load_cert_chain(str(cert.cert), str(cert.key))
    name = client_id.encode()
    variable = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(name).to_bytes(2, "big") + name
    try:
        with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"\x10" + bytes([len(variable)]) + variable)
                answer = tls.recv(4)
    except (ssl.SSLError, ConnectionError, OSError):
        return False
    return answer == b"\x20\x02\x00\x00"


def station_certificate(pki: MqttPki, terminal: str) -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A station certificate as the operator CA issues it for the platform (CN
    "<station>-<terminal>", serialNumber the station), kept in the CA's directory."""
    ca_key = serialization.load_pem_private_key((pki.dir / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate((pki.dir / "ca.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.SERIAL_NUMBER, STATION),
                    x509.NameAttribute(NameOID.COMMON_NAME, f"{STATION}-{terminal}"),
                ]
            )
        )
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(ca_key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (pki.dir / f"station-{STATION}-{terminal}.pem").write_bytes(pem)
    return key, pem.decode()


def platform_call(
    sim: PlatformSimulator,
    key: ec.EllipticCurvePrivateKey,
    terminal: str,
    operation: Operation,
    **fields: Any,
) -> tuple[int, dict[str, Any]]:
    body = json.dumps(
        {
            "station": STATION,
            "terminal": terminal,
            "request_time": iso(datetime.datetime.now(datetime.UTC)),
            **fields,
        }
    ).encode()
    signature = base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()
    request = urllib.request.Request(sim.url + PATHS[operation], data=body, method="POST")
    request.add_header(SIGNATURE_HEADER, signature)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_revoked_terminal_can_no_longer_connect_to_the_broker_while_the_others_can(
    pki: MqttPki, store: Store, tmp_path: Path
) -> None:
    stolen, kept = pki.terminal("T-STOLEN"), pki.terminal("T-KEPT")
    broker = MosquittoBroker(pki, tmp_path / "broker")
    broker.start()
    try:
        assert mqtt_connack(broker, stolen, "before-stolen")
        assert mqtt_connack(broker, kept, "before-kept")
        pid_file = tmp_path / "mosquitto.pid"
        assert broker._process is not None
        pid_file.write_text(str(broker._process.pid))
        revocations = Revocations(store, revocation_config(pki, broker_pid_file=str(pid_file)))
        serials = revocations.revoke_terminal(STATION, "T-STOLEN", ADMIN, time.time())
        stolen_serial = x509.load_pem_x509_certificate(stolen.cert.read_bytes()).serial_number
        assert serials == [f"{stolen_serial:x}"]
        assert revoked_serials(pki.dir / "crl.pem") == {stolen_serial}
        # Mosquitto 2.0.11 reads the CRL again on SIGHUP (sent by revoke_terminal): new
        # connections of the revoked terminal fail, the others' go on.
        wait_until(lambda: not mqtt_connack(broker, stolen, "after-stolen"), 20, "the refusal")
        assert mqtt_connack(broker, kept, "after-kept")
    finally:
        broker.stop()
    actions = store.query("SELECT staff, role, action, terminal, detail FROM staff_actions")
    assert [(a["staff"], a["role"], a["action"], a["terminal"]) for a in actions] == [
        ("Zhao Min", "admin", "revoke_terminal", "T-STOLEN")
    ]
    assert json.loads(actions[0]["detail"])["serials"] == serials


def test_the_platform_refuses_the_revoked_terminal_and_serves_the_others(
    pki: MqttPki, store: Store, tmp_path: Path
) -> None:
    crl = pki.dir / "crl.pem"
    sim = PlatformSimulator(tmp_path / "platform.db", crl_file=crl)
    sim.start()
    try:
        stolen_key, stolen_cert = station_certificate(pki, "T-STOLEN")
        kept_key, kept_cert = station_certificate(pki, "T-KEPT")
        for key, terminal, cert in (
            (stolen_key, "T-STOLEN", stolen_cert),
            (kept_key, "T-KEPT", kept_cert),
        ):
            status, _ = platform_call(sim, key, terminal, Operation.REGISTER, certificate=cert)
            assert status == 200
        assert platform_call(sim, stolen_key, "T-STOLEN", Operation.FLOAT)[0] == 200
        Revocations(store, revocation_config(pki)).revoke_terminal(
            STATION, "T-STOLEN", ADMIN, time.time()
        )
        status, answer = platform_call(sim, stolen_key, "T-STOLEN", Operation.FLOAT)
        assert (status, answer["error"]["code"]) == (403, "certificate_revoked")
        status, answer = platform_call(
            sim, stolen_key, "T-STOLEN", Operation.REGISTER, certificate=stolen_cert
        )
        assert (status, answer["error"]["code"]) == (403, "certificate_revoked")
        assert platform_call(sim, kept_key, "T-KEPT", Operation.FLOAT)[0] == 200
    finally:
        sim.stop()


def test_revoke_finds_both_certificates_of_a_terminal_and_the_crl_is_signed_by_the_ca(
    pki: MqttPki, store: Store
) -> None:
    mqtt_cert = pki.terminal("T-9")
    station_certificate(pki, "T-9")
    pki.terminal("T-90")  # a name that starts the same is another terminal
    revocations = Revocations(store, revocation_config(pki))
    found = revocations.find_certificates(STATION, "T-9")
    assert sorted(f.path.name for f in found) == [
        f"station-{STATION}-T-9.pem",
        mqtt_cert.cert.name,
    ]
    revocations.revoke_terminal(
        STATION, "T-9", ADMIN, time.time(), serials=["0x1f"], reason=Reason.SUPERSEDED
    )
    crl = x509.load_pem_x509_crl((pki.dir / "crl.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((pki.dir / "ca.pem").read_bytes())
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    assert crl.issuer == ca.subject
    assert {e.serial_number for e in crl} == {int(f.serial, 16) for f in found} | {0x1F}
    reasons = {e.extensions.get_extension_for_class(x509.CRLReason).value.reason for e in crl}
    assert reasons == {x509.ReasonFlags.superseded}
    # Revoking again changes nothing in the list but writes a newer CRL.
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    time.sleep(0.01)
    revocations.revoke_terminal(STATION, "T-9", ADMIN, time.time())
    again = x509.load_pem_x509_crl((pki.dir / "crl.pem").read_bytes())
    assert {e.serial_number for e in again} == {e.serial_number for e in crl}
    assert again.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > number


def test_a_terminal_with_no_certificate_on_file_is_one_clear_error(
    pki: MqttPki, store: Store
) -> None:
    with pytest.raises(RevocationError, match="give its serial number with --serial"):
        Revocations(store, revocation_config(pki)).revoke_terminal(
            STATION, "T-NONE", ADMIN, time.time()
        )
    with pytest.raises(RevocationError, match="not a serial number in hex"):
        Revocations(store, revocation_config(pki)).revoke_terminal(
            STATION, "T-NONE", ADMIN, time.time(), serials=["zz"]
        )


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backoffice.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_revoke_command_line_writes_the_crl_and_says_what_it_did(
    pki: MqttPki, tmp_path: Path
) -> None:
    pki.terminal("T-01")
    config = tmp_path / "backoffice.toml"
    crl = tmp_path / "out" / "crl.pem"
    config.write_text(
        f'store = "sqlite:///{tmp_path / "bo.db"}"\n[revocation]\n'
        f'ca_cert_file = "{pki.dir / "ca.pem"}"\nca_key_file = "{pki.dir / "ca.key"}"\n'
        f'crl_file = "{crl}"\ncertificates_dir = "{pki.dir}"\n'
    )
    done = run_cli("terminal", "revoke", STATION, "T-01", "--config", str(config), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["terminal"] == "T-01" and len(result["serials"]) == 1
    assert revoked_serials(crl) == {int(result["serials"][0], 16)}
    done = run_cli("terminal", "crl", "--config", str(config))
    assert done.returncode == 0 and "1 revoked certificate(s)" in done.stdout
    done = run_cli("terminal", "revoke", STATION, "T-02", "--config", str(config))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "--serial" in done.stderr
    assert "Traceback" not in done.stderr
    unset = tmp_path / "unset.toml"
    unset.write_text(f'store = "sqlite:///{tmp_path / "bo2.db"}"\n')
    done = run_cli("terminal", "revoke", STATION, "T-01", "--config", str(unset))
    assert done.returncode == 1 and "revocation is not set up" in done.stderr


def test_a_broker_pid_file_that_is_gone_is_reported_after_the_crl_is_written(
    pki: MqttPki, store: Store, tmp_path: Path
) -> None:
    pki.terminal("T-01")
    config = revocation_config(pki, broker_pid_file=str(tmp_path / "missing.pid"))
    with pytest.raises(RevocationError, match="the CRL is written"):
        Revocations(store, config).revoke_terminal(STATION, "T-01", ADMIN, time.time())
    assert len(revoked_serials(pki.dir / "crl.pem")) == 1


def test_an_admin_revokes_from_the_terminal_page_and_an_operator_cannot(
    pki: MqttPki, store: Store
) -> None:
    from werkzeug.test import Client

    from backoffice.config import parse_config
    from backoffice.web import Dashboard

    pki.terminal("T-01")
    with store.transaction() as cursor:
        cursor.execute(
            "INSERT INTO terminals (station, terminal, state) VALUES (?, 'T-01', 'online')",
            (STATION,),
        )
    revocations = Revocations(store, revocation_config(pki))
    config = parse_config(
        {
            "store": "sqlite:////tmp/unused.db",
            "auth": {"users": {"zhao": "admin", "wang": "operator"}},
        }
    )
    dashboard = Dashboard(
        store,
        config,
        None,
        revoke=lambda s, t, staff: revocations.revoke_terminal(s, t, staff, time.time()),
    )
    client = Client(dashboard)
    page = f"/terminal/{STATION}/T-01"

    def as_user(user: str, form: dict[str, str] | None = None) -> Any:
        environ = {"REMOTE_ADDR": "127.0.0.1"}
        headers = {"X-Forwarded-User": user}
        if form is None:
            return client.get(page, headers=headers, environ_base=environ)
        # The token the page would carry (an operator's page has no form to take it from).
        token = dashboard.csrf.token(dashboard.identities.identify("127.0.0.1", user))
        return client.post(
            page + "/revoke",
            data={"csrf": token, **form},
            headers=headers,
            environ_base=environ,
        )

    assert 'id="revoke"' not in as_user("wang").text  # operators are not offered the form
    assert as_user("wang", {"confirm": f"{STATION}/T-01"}).status_code == 403
    assert as_user("zhao", {"confirm": "T-01"}).status_code == 400  # the name must be typed
    assert revocations.revoked() == []
    assert 'id="revoke"' in as_user("zhao").text
    assert as_user("zhao", {"confirm": f"{STATION}/T-01"}).status_code == 303
    [row] = revocations.revoked()
    assert (row["terminal"], row["revoked_by"]) == ("T-01", "zhao")
    assert revoked_serials(pki.dir / "crl.pem") == {int(row["serial"], 16)}
    assert "吊销终端证书" in as_user("zhao").text  # the staff action on the page
