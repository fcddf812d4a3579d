"""The station certificates a journal or receipt is checked with, and the operator CA.

Owns what makes a certificate acceptable for a station's records: it is an ECDSA
certificate, it names the station (subject serialNumber = 机构号, as provisioning puts it in
the certificate request), and, when the operator CA is given, it chains to that CA at the
time the records were signed. It reads only what it is given; never a token or a database.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from kiosk.journal.canonical import JournalError, der_sha256

_LIBRARY_DETAIL = re.compile(r"\s*\(encountered processing .*\)$", re.DOTALL)


@dataclass(frozen=True)
class StationCertificate:
    certificate: x509.Certificate
    sha256: str
    institution_no: str | None  # the subject's serialNumber, None when it has none

    def station_problem(self, station: object) -> str | None:
        """Why this certificate may not sign records of station, or None when it names it."""
        if self.institution_no is None:
            return (
                f"the certificate {self.sha256[:16]}... names no station: its subject has "
                "no serialNumber (机构号)"
            )
        if self.institution_no != station:
            return (
                f"the certificate {self.sha256[:16]}... is of station {self.institution_no}, "
                f"not of station {station}"
            )
        return None


def _institution_no(certificate: x509.Certificate) -> str | None:
    values = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    return str(values[0].value) if values else None


def load_certificates(cert_pem: bytes) -> dict[str, StationCertificate]:
    """The certificates of a PEM file or bundle (a station's successive certificates), by hash."""
    try:
        certificates = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise JournalError(
            "the certificate file holds no PEM certificate: give the station certificate "
            "(-----BEGIN CERTIFICATE-----)"
        ) from None
    found: dict[str, StationCertificate] = {}
    for certificate in certificates:
        if not isinstance(certificate.public_key(), ec.EllipticCurvePublicKey):
            raise JournalError(
                "the station certificate does not hold an ECDSA public key: "
                "give the certificate of the station's token"
            )
        fingerprint = der_sha256(certificate)
        found[fingerprint] = StationCertificate(
            certificate, fingerprint, _institution_no(certificate)
        )
    return found


class OperatorCA:
    """The operator's certification authority: the trust anchors station certificates chain to.

    Path building, signatures and validity periods are cryptography's X.509 verification
    (cryptography.x509.verification, client verification). Its default extension policies
    are those of the Web PKI (subjectAltName, authorityKeyIdentifier, extendedKeyUsage), which
    a station certificate issued for a token's request does not carry; so every extension is
    permitted, except that a CA must carry basicConstraints, which the library requires.
    """

    def __init__(self, ca_pem: bytes) -> None:
        try:
            anchors = x509.load_pem_x509_certificates(ca_pem)
        except ValueError:
            raise JournalError(
                "the CA file holds no PEM certificate: give the operator CA's certificate "
                "(-----BEGIN CERTIFICATE-----)"
            ) from None
        self._store = verification.Store(anchors)
        self._ca_policy = verification.ExtensionPolicy.permit_all().require_present(
            x509.BasicConstraints, verification.Criticality.AGNOSTIC, None
        )

    def chain_problem(
        self,
        station: StationCertificate,
        at: datetime,
        intermediates: Iterable[StationCertificate] = (),
    ) -> str | None:
        """Why station's certificate does not chain to the CA at time at, or None when it does."""
        verifier = (
            verification.PolicyBuilder()
            .store(self._store)
            .time(at)
            .extension_policies(
                ca_policy=self._ca_policy, ee_policy=verification.ExtensionPolicy.permit_all()
            )
            .build_client_verifier()
        )
        others = [each.certificate for each in intermediates if each is not station]
        try:
            verifier.verify(station.certificate, others)
        except verification.VerificationError as exc:
            detail = _LIBRARY_DETAIL.sub("", str(exc))
            return (
                f"the certificate {station.sha256[:16]}... does not chain to the operator CA "
                f"at {at.isoformat()}: {detail}"
            )
        return None


def load_operator_ca(ca_pem: bytes | None) -> OperatorCA | None:
    return None if ca_pem is None else OperatorCA(ca_pem)
