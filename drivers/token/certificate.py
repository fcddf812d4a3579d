"""The station certificate: built around a key that never leaves the token, and read back.

Owns the X.509 structure of the self-signed station certificate (subject as in
drivers.token.software.station_subject; signed ECDSA with SHA-256, RSA PKCS#1 v1.5 with
SHA-256 or SM2 with SM3, by the key's type), the signature AlgorithmIdentifier of each
kiosk.signing.SignatureAlgorithm (also used by the CSR), and the facts the terminal
reads from it (机构号, days left). It never holds a private key: the signature over the
TBSCertificate comes from a callable, which for a USBKey is the token itself.
"""

import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from asn1crypto import algos as asn1_algos
from asn1crypto import core as asn1_core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from drivers.token.software import station_subject
from kiosk.signing import SignatureAlgorithm
from kiosk.sm2 import SM2_SM3_SIGNATURE_OID

# Signs the DER bytes given with the station key, by the key's SignatureAlgorithm.
SignFunction = Callable[[bytes], bytes]


def signature_algorithm_id(algorithm: SignatureAlgorithm) -> asn1_algos.SignedDigestAlgorithm:
    """The X.509 / PKCS#10 AlgorithmIdentifier of a signature algorithm."""
    if algorithm is SignatureAlgorithm.RS256:
        # RFC 4055 section 5: sha256WithRSAEncryption carries NULL parameters.
        return asn1_algos.SignedDigestAlgorithm(
            {"algorithm": "sha256_rsa", "parameters": asn1_core.Null()}
        )
    if algorithm is SignatureAlgorithm.SM2_SM3:
        # GM/T 0006 / OpenSSL: 1.2.156.10197.1.501 without parameters.
        return asn1_algos.SignedDigestAlgorithm({"algorithm": SM2_SM3_SIGNATURE_OID})
    return asn1_algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})


def _asn1_time(moment: datetime) -> asn1_x509.Time:
    # RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 on.
    if moment.year < 2050:
        return asn1_x509.Time({"utc_time": moment})
    return asn1_x509.Time({"general_time": moment})


def build_self_signed_certificate(
    public_key_info_der: bytes,
    sign: SignFunction,
    *,
    institution_no: str,
    terminal_id: str,
    station_name: str,
    days: int = 730,
    now: datetime | None = None,
    algorithm: SignatureAlgorithm = SignatureAlgorithm.ES256,
) -> bytes:
    """Return the DER certificate of a station key, self-signed through `sign`.

    public_key_info_der is the key's SubjectPublicKeyInfo (drivers.token.keys gives it for a
    key on a token); `sign` signs by `algorithm`, the key's.
    """
    if days < 1:
        raise ValueError("a station certificate must be valid for at least one day")
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    subject = asn1_x509.Name.load(
        station_subject(institution_no, terminal_id, station_name).public_bytes()
    )
    public_key = asn1_keys.PublicKeyInfo.load(public_key_info_der)
    key_id = subject_key_identifier(public_key_info_der)
    signature_algorithm = signature_algorithm_id(algorithm)
    tbs = asn1_x509.TbsCertificate(
        {
            "version": "v3",
            # Positive and at most 20 octets (RFC 5280 4.1.2.2).
            "serial_number": secrets.randbits(159) | 1,
            "signature": signature_algorithm,
            "issuer": subject,
            "validity": {
                "not_before": _asn1_time(moment - timedelta(minutes=5)),
                "not_after": _asn1_time(moment + timedelta(days=days)),
            },
            "subject": subject,
            "subject_public_key_info": public_key,
            "extensions": [
                {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": False}},
                {
                    "extn_id": "key_usage",
                    "critical": True,
                    "extn_value": {"digital_signature", "non_repudiation"},
                },
                {"extn_id": "key_identifier", "critical": False, "extn_value": key_id},
            ],
        }
    )
    signature = sign(tbs.dump())
    certificate = asn1_x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": signature_algorithm,
            "signature_value": signature,
        }
    )
    der: bytes = certificate.dump()
    return der


def subject_key_identifier(public_key_info_der: bytes) -> bytes:
    """The SHA-1 key identifier of a SubjectPublicKeyInfo (RFC 5280 4.2.1.2, method 1).

    The same value is the CKA_ID that links the key pair and certificate objects on the token.
    """
    public_key = asn1_keys.PublicKeyInfo.load(public_key_info_der)
    return hashlib.sha1(public_key["public_key"].contents[1:]).digest()


def pem_of(certificate_der: bytes) -> bytes:
    return x509.load_der_x509_certificate(certificate_der).public_bytes(Encoding.PEM)


def public_key_info_of(cert_pem: bytes) -> bytes:
    """The certificate's SubjectPublicKeyInfo (DER), for any key type (SM2 included, which
    cryptography cannot load as a key)."""
    der = _load(cert_pem).public_bytes(Encoding.DER)
    info: bytes = asn1_x509.Certificate.load(der)["tbs_certificate"][
        "subject_public_key_info"
    ].dump()
    return info


def _load(cert_pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise ValueError("the station certificate is not a PEM X.509 certificate") from None


def institution_no_of(cert_pem: bytes) -> str:
    """The station's 机构号: the serialNumber attribute of the certificate subject."""
    values = _load(cert_pem).subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if not values:
        raise ValueError("the station certificate has no serialNumber (机构号) in its subject")
    return str(values[0].value)


def days_left(cert_pem: bytes, now: datetime) -> int:
    """Whole days until the certificate expires (negative once it has expired)."""
    if now.tzinfo is None:
        raise ValueError("days_left needs a timezone-aware time")
    return (_load(cert_pem).not_valid_after_utc - now).days


def describe(cert_pem: bytes) -> tuple[str, datetime]:
    """The certificate's subject (RFC 4514 text) and its not-after time (UTC)."""
    certificate = _load(cert_pem)
    return certificate.subject.rfc4514_string(), certificate.not_valid_after_utc
