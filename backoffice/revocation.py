"""Cutting a terminal off: its certificates revoked, in a CRL the broker and platform honour.

Owns the rows of `revocations` (migration 3 of backoffice.migrations: each revoked serial,
whose terminal it was, when and by whom) and the CRL built from it: every revoked serial,
signed with the operator CA's key (revocation.ca_key_file), written atomically to
revocation.crl_file, which Mosquitto loads (`crlfile`, read again on SIGHUP) and the
platform checks. A terminal's certificates are found among the issued certificates kept in
revocation.certificates_dir by the names the contracts give them: the MQTT client
certificate's CN "<station>/<terminal>" and the station certificate's CN
"<station>-<terminal>". The CRL is always the whole list, so writing it again
(`kiosk-backoffice terminal crl`) renews its next-update time.
"""

import datetime
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from backoffice.config import RevocationConfig
from backoffice.errors import BackofficeError
from backoffice.roles import Action
from backoffice.staff import Staff, record_action
from backoffice.store import Row, Store


class RevocationError(BackofficeError):
    """The revocation cannot be done as asked; the message says what to do."""


class Reason(StrEnum):
    KEY_COMPROMISE = "key_compromise"  # stolen, tampered with, cloned
    CESSATION_OF_OPERATION = "cessation_of_operation"  # taken out of service
    SUPERSEDED = "superseded"  # replaced by a new certificate

    @property
    def flag(self) -> x509.ReasonFlags:
        return x509.ReasonFlags[self.value]


@dataclass(frozen=True)
class Found:
    serial: str  # lower-case hex
    subject: str
    path: Path


def terminal_names(station: str, terminal: str) -> tuple[str, str]:
    """The CNs of a terminal's certificates: MQTT client, station (platform) certificate."""
    return f"{station}/{terminal}", f"{station}-{terminal}"


class Revocations:
    def __init__(self, store: Store, config: RevocationConfig) -> None:
        if not (config.ca_cert_file and config.ca_key_file and config.crl_file):
            raise RevocationError(
                "revocation is not set up: set revocation.ca_cert_file, ca_key_file and "
                "crl_file in the back office's configuration"
            )
        self.store = store
        self.config = config
        self.ca = _load_certificate(Path(config.ca_cert_file))
        self.ca_key = _load_key(Path(config.ca_key_file))
        if _spki(self.ca.public_key()) != _spki(self.ca_key.public_key()):
            raise RevocationError(
                f"{config.ca_key_file} is not the key of the CA in {config.ca_cert_file}"
            )

    def find_certificates(self, station: str, terminal: str) -> list[Found]:
        """The certificates this CA issued to the terminal, among those kept on file."""
        if not self.config.certificates_dir:
            return []
        directory = Path(self.config.certificates_dir)
        if not directory.is_dir():
            raise RevocationError(
                f"revocation.certificates_dir {directory} is not a directory of issued certificates"
            )
        names = terminal_names(station, terminal)
        found = []
        for path in sorted(directory.rglob("*.pem")):
            try:
                cert = x509.load_pem_x509_certificate(path.read_bytes())
            except (ValueError, OSError):
                continue  # keys and other files live there too
            if cert.issuer != self.ca.subject or cert.subject == self.ca.subject:
                continue
            common = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
            if any(name in common for name in names):
                found.append(Found(f"{cert.serial_number:x}", cert.subject.rfc4514_string(), path))
        return found

    def revoke_terminal(
        self,
        station: str,
        terminal: str,
        staff: Staff,
        now: float,
        *,
        serials: Sequence[str] = (),
        reason: Reason = Reason.KEY_COMPROMISE,
    ) -> list[str]:
        """Revoke the terminal's certificates (found on file, and any serials given), record
        who did it, write the CRL and tell the broker. The serials revoked, as hex."""
        wanted = {f.serial: f.subject for f in self.find_certificates(station, terminal)}
        for text in serials:
            wanted.setdefault(_serial_hex(text), f"serial given for {station}/{terminal}")
        if not wanted:
            raise RevocationError(
                f"no certificate of terminal {station}/{terminal} issued by this CA is in "
                f"{self.config.certificates_dir or '(revocation.certificates_dir is not set)'}: "
                "give its serial number with --serial"
            )
        with self.store.transaction() as cursor:
            cursor.executemany(
                "INSERT INTO revocations (serial, station, terminal, subject, reason, revoked, "
                "revoked_by) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [
                    (serial, station, terminal, subject, str(reason), now, staff.name)
                    for serial, subject in sorted(wanted.items())
                ],
            )
            record_action(
                cursor,
                staff,
                Action.REVOKE_TERMINAL,
                now,
                station=station,
                terminal=terminal,
                detail={"serials": sorted(wanted), "reason": str(reason)},
            )
        self.publish(now)
        return sorted(wanted)

    def revoked(self) -> list[Row]:
        return self.store.query("SELECT * FROM revocations ORDER BY revoked, serial")

    def build_crl(self, now: float) -> x509.CertificateRevocationList:
        moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.ca.subject)
            .last_update(moment)
            .next_update(moment + datetime.timedelta(days=self.config.crl_days))
            # Increases with every CRL written (milliseconds), as RFC 5280 5.2.3 asks.
            .add_extension(x509.CRLNumber(int(now * 1000)), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
        )
        for row in self.revoked():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(int(row["serial"], 16))
                .revocation_date(datetime.datetime.fromtimestamp(row["revoked"], datetime.UTC))
                .add_extension(x509.CRLReason(Reason(row["reason"]).flag), critical=False)
                .build()
            )
        return builder.sign(self.ca_key, hashes.SHA256())

    def publish(self, now: float) -> Path:
        """Write the CRL (atomically: a reader sees the old or the new file, whole) and send
        the broker SIGHUP so it loads it."""
        crl = self.build_crl(now)
        path = Path(self.config.crl_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".new")
        partial.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        partial.chmod(0o644)
        os.replace(partial, path)
        self._reload_broker()
        return path

    def _reload_broker(self) -> None:
        if not self.config.broker_pid_file:
            return
        pid_file = Path(self.config.broker_pid_file)
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as exc:
            raise RevocationError(
                f"the CRL is written, but the broker was not told to load it ({pid_file}: "
                f"{exc}); reload Mosquitto yourself (systemctl reload mosquitto)"
            ) from None


def revoked_serials(crl_path: Path) -> set[int]:
    crl = x509.load_pem_x509_crl(crl_path.read_bytes())
    return {entry.serial_number for entry in crl}


def _serial_hex(text: str) -> str:
    cleaned = text.strip().lower().replace(":", "").removeprefix("0x")
    try:
        return f"{int(cleaned, 16):x}"
    except ValueError:
        raise RevocationError(
            f"--serial {text!r} is not a serial number in hex (e.g. 4f:1a:... or 0x4f1a...)"
        ) from None


def _load_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise RevocationError(f"the CA certificate {path} does not exist") from None
    except ValueError:
        raise RevocationError(f"{path} is not a PEM certificate") from None


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise RevocationError(f"the CA key {path} does not exist") from None
    except (ValueError, TypeError):
        raise RevocationError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise RevocationError(f"{path} must hold an EC or RSA key to sign a CRL")
    return key


def _spki(key: Any) -> bytes:
    der: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der
