"""A signer holding the station key in a PEM file: for the demo only, never production.

Every record it signs carries signer "software" in the journal, so an auditor can tell. The
key may be of any station key type (kiosk.signing.KeyType): ECDSA P-256 and RSA-2048 through
`cryptography`, SM2 through kiosk/sm2.py. The SM2 signer is the software stand-in for a 国密
USBKey: it signs exactly what such a token's SM2-with-SM3 mechanism signs.
"""

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from kiosk import sm2
from kiosk.signing import ALGORITHM_OF_KEY, KeyType, SignatureAlgorithm, SignerUnavailable

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | sm2.Sm2PrivateKey
RSA_BITS = 2048


def key_type_of(key: PrivateKey) -> KeyType:
    if isinstance(key, sm2.Sm2PrivateKey):
        return KeyType.SM2
    if isinstance(key, rsa.RSAPrivateKey):
        return KeyType.RSA2048
    return KeyType.P256


def sign_with(key: PrivateKey, data: bytes) -> bytes:
    """The signature over data by the algorithm of key's type (DER for ECDSA and SM2)."""
    if isinstance(key, sm2.Sm2PrivateKey):
        return key.sign(data)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def generate_key(key_type: KeyType) -> PrivateKey:
    if key_type is KeyType.SM2:
        return sm2.Sm2PrivateKey.generate()
    if key_type is KeyType.RSA2048:
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKey) -> bytes:
    if isinstance(key, sm2.Sm2PrivateKey):
        return key.pkcs8_pem()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_info(key: PrivateKey) -> bytes:
    if isinstance(key, sm2.Sm2PrivateKey):
        return key.public_key().spki_der()
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_key_pem(data: bytes) -> PrivateKey:
    """A station private key from PEM (PKCS#8, or OpenSSL's own forms); ValueError if none."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except UnsupportedAlgorithm:
        # cryptography refuses the SM2 curve; OpenSSL writes SM2 keys as PKCS#8.
        found = sm2.load_private_key_pem(data)
        if found is None:
            raise ValueError("the key is of a kind no station has") from None
        return found
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return key
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= RSA_BITS:
        return key
    raise ValueError("the key is not ECDSA P-256, RSA-2048 or SM2")


class SoftwareSigner:
    kind = "software"

    def __init__(self, key: PrivateKey, certificate: x509.Certificate) -> None:
        self._key = key
        self._certificate = certificate
        self.key_type = key_type_of(key)
        self.algorithm: SignatureAlgorithm = ALGORITHM_OF_KEY[self.key_type]
        self.failing = False  # set by tests and simulators to model a failed signing device

    @classmethod
    def from_files(cls, key_file: Path, cert_file: Path) -> "SoftwareSigner":
        try:
            key = load_key_pem(key_file.read_bytes())
            cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        except (OSError, ValueError) as exc:
            raise SignerUnavailable(
                f"software signing key {key_file} or certificate {cert_file} cannot be read: {exc}"
            ) from None
        return cls(key, cert)

    def sign(self, data: bytes) -> bytes:
        if self.failing:
            raise SignerUnavailable("software signer is switched off (simulated device failure)")
        return sign_with(self._key, data)

    def certificate_pem(self) -> bytes:
        return self._certificate.public_bytes(serialization.Encoding.PEM)

    def health(self) -> dict[str, object]:
        left = self._certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
        return {
            "kind": self.kind,
            "present": not self.failing,
            "key_type": self.key_type.value,
            "algorithm": self.algorithm.value,
            "cert_days_left": left.days,
        }


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
    key_type: KeyType = KeyType.P256,
) -> SoftwareSigner:
    """Generate a demo key and a self-signed station certificate, written as PEM files."""
    # Imported here: drivers.token.certificate builds on station_subject above.
    from drivers.token.certificate import build_self_signed_certificate

    key = generate_key(key_type)
    der = build_self_signed_certificate(
        public_key_info(key),
        lambda tbs: sign_with(key, tbs),
        institution_no=institution_no,
        terminal_id=terminal_id,
        station_name=station_name,
        days=days,
        algorithm=ALGORITHM_OF_KEY[key_type],
    )
    cert = x509.load_der_x509_certificate(der)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.touch(mode=0o600)
    key_file.chmod(0o600)
    key_file.write_bytes(key_pem(key))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return SoftwareSigner(key, cert)
