"""A signer holding an ECDSA P-256 key in a PEM file: for the demo only, never production.

Every record it signs carries signer "software" in the journal, so an auditor can tell.
"""

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kiosk.signing import SignerUnavailable


class SoftwareSigner:
    kind = "software"

    def __init__(self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
        self._key = key
        self._certificate = certificate
        self.failing = False  # set by tests and simulators to model a failed signing device

    @classmethod
    def from_files(cls, key_file: Path, cert_file: Path) -> "SoftwareSigner":
        try:
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        except (OSError, ValueError) as exc:
            raise SignerUnavailable(
                f"software signing key {key_file} or certificate {cert_file} cannot be read: {exc}"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SignerUnavailable(f"{key_file} does not hold an EC private key")
        return cls(key, cert)

    def sign(self, data: bytes) -> bytes:
        if self.failing:
            raise SignerUnavailable("software signer is switched off (simulated device failure)")
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def certificate_pem(self) -> bytes:
        return self._certificate.public_bytes(serialization.Encoding.PEM)

    def health(self) -> dict[str, object]:
        left = self._certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
        return {"kind": self.kind, "present": not self.failing, "cert_days_left": left.days}


def station_subject(institution_no: str, terminal_id: str, station_name: str) -> x509.Name:
    """The certificate subject of a station terminal: serialNumber carries the 机构号."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{institution_no}-{terminal_id}"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, institution_no),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, station_name),
        ]
    )


def create_software_identity(
    key_file: Path,
    cert_file: Path,
    *,
    institution_no: str,
    terminal_id: str,
    station_name: str,
    days: int = 730,
) -> SoftwareSigner:
    """Generate a demo key and a self-signed station certificate, written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = station_subject(institution_no, terminal_id, station_name)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return SoftwareSigner(key, cert)
