"""The station certificates a journal or receipt is checked with, and the operator CA.

Owns what makes a certificate acceptable for a station's records: it holds a station key
(ECDSA P-256, RSA-2048 or SM2: kiosk/station_keys.py), it names the station (subject
serialNumber = 机构号, as provisioning puts it in the certificate request), and, when the
operator CA is given, it chains to that CA at the time the records were signed. It reads
only what it is given; never a token or a database.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from kiosk import sm2
from kiosk.journal.canonical import JournalError, der_sha256
from kiosk.station_keys import StationKey, StationKeyError, station_key_of

_LIBRARY_DETAIL = re.compile(r"\s*\(encountered processing .*\)$", re.DOTALL)


@dataclass(frozen=True)
class StationCertificate:
    certificate: x509.Certificate
    sha256: str
    institution_no: str | None  # the subject's serialNumber, None when it has none
    key: StationKey

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
        try:
            key = station_key_of(certificate)
        except StationKeyError as exc:
            raise JournalError(
                f"the station certificate cannot be a station's: {exc}; give the certificate "
                "of the station's token"
            ) from None
        fingerprint = der_sha256(certificate)
        found[fingerprint] = StationCertificate(
            certificate, fingerprint, _institution_no(certificate), key
        )
    return found


class OperatorCA:
    """The operator's certification authority: the trust anchors station certificates chain to.

    Path building, signatures and validity periods are cryptography's X.509 verification
    (cryptography.x509.verification, client verification). Its default extension policies
    are those of the Web PKI (subjectAltName, authorityKeyIdentifier, extendedKeyUsage), which
    a station certificate issued for a token's request does not carry; so every extension is
    permitted, except that a CA must carry basicConstraints, which the library requires.

    cryptography does not verify SM2 signatures, so a certificate signed "SM2 with SM3" is
    checked by _sm2_chain_problem: issued directly by one of the anchors (no intermediate CA),
    the anchor a CA (basicConstraints), both valid at the time, and the SM2 signature over
    the TBSCertificate with the standard user id (what `openssl verify` checks).
    """

    def __init__(self, ca_pem: bytes) -> None:
        try:
            anchors = x509.load_pem_x509_certificates(ca_pem)
        except ValueError:
            raise JournalError(
                "the CA file holds no PEM certificate: give the operator CA's certificate "
                "(-----BEGIN CERTIFICATE-----)"
            ) from None
        self._anchors = anchors
        self._store = verification.Store(
            [anchor for anchor in anchors if not _signed_with_sm2(anchor)] or anchors
        )
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
        if _signed_with_sm2(station.certificate):
            return self._sm2_chain_problem(station, at)
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
        except (verification.VerificationError, UnsupportedAlgorithm, ValueError) as exc:
            # UnsupportedAlgorithm: an SM2 station key under a CA that signs otherwise, which
            # cryptography cannot parse on its path (only SM2-signed chains are ours to check).
            detail = _LIBRARY_DETAIL.sub("", str(exc))
            return (
                f"the certificate {station.sha256[:16]}... does not chain to the operator CA "
                f"at {at.isoformat()}: {detail}"
            )
        return None

    def _sm2_chain_problem(self, station: StationCertificate, at: datetime) -> str | None:
        certificate = station.certificate
        moment = at.astimezone(UTC)
        problem = "no CA certificate given is its issuer"
        for anchor in self._anchors:
            if anchor.subject != certificate.issuer:
                continue
            try:
                issuer_key = station_key_of(anchor).key
            except StationKeyError:
                problem = "its issuer's certificate holds no SM2 key"
                continue
            if not isinstance(issuer_key, sm2.Sm2PublicKey):
                problem = "its issuer's certificate holds no SM2 key"
            elif not issuer_key.verify(certificate.signature, certificate.tbs_certificate_bytes):
                problem = "its signature does not verify with the CA's key"
            elif not _is_ca(anchor):
                problem = "its issuer is not a CA (no basicConstraints CA:TRUE)"
            elif not _valid_at(anchor, moment) or not _valid_at(certificate, moment):
                problem = "it or the CA certificate is not valid at that time"
            else:
                return None
        return (
            f"the certificate {station.sha256[:16]}... does not chain to the operator CA "
            f"at {at.isoformat()}: {problem}"
        )


def _signed_with_sm2(certificate: x509.Certificate) -> bool:
    return certificate.signature_algorithm_oid.dotted_string == sm2.SM2_SM3_SIGNATURE_OID


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return bool(constraints.value.ca)


def _valid_at(certificate: x509.Certificate, moment: datetime) -> bool:
    return certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc


def load_operator_ca(ca_pem: bytes | None) -> OperatorCA | None:
    return None if ca_pem is None else OperatorCA(ca_pem)
