"""Certifying the station key on the token: key generation, the PKCS#10 CSR, certificate import.

Owns the three token operations provisioning needs beyond signing: generating the station's
key pair (ECDSA P-256 or RSA-2048, token.key_type; an SM2 key comes from the vendor's tool)
ON the token (CKA_SENSITIVE true, CKA_EXTRACTABLE false, so the private
key can never leave it), building a PKCS#10 certification request whose subject carries the
机构号 and terminal id and whose signature the token makes, and storing the issued
certificate beside the key (replacing the previous one on renewal).

The CSR is built with asn1crypto, as drivers/token/certificate.py builds the self-signed
certificate: cryptography's CertificateSigningRequestBuilder only signs with a private key
object it holds, and this key is on the token; with asn1crypto we encode the
CertificationRequestInfo, have the token sign those DER bytes (by the key's algorithm), and
assemble the request. cryptography then loads the result and checks its signature (an SM2
request, which cryptography cannot check, is checked with kiosk/sm2.py).
It never reads, logs or stores a PIN beyond the session it opens.
"""

from collections.abc import Callable
from typing import Any

from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pkcs11 import Attribute, CertificateType, ObjectClass
from pkcs11 import exceptions as p11

from drivers.token.certificate import (
    public_key_info_of,
    signature_algorithm_id,
    subject_key_identifier,
)
from drivers.token.keys import (
    Sm2Mechanism,
    generate_key_pair,
    key_type_problem,
    public_key_info,
    sign_by_type,
)
from drivers.token.pkcs11_signer import pkcs11_module, signer_error_for
from drivers.token.software import station_subject
from kiosk import sm2
from kiosk.signing import ALGORITHM_OF_KEY, KeyType, SignatureAlgorithm, SignerUnavailable

SignFunction = Callable[[bytes], bytes]


def build_csr(
    public_key_info_der: bytes,
    sign: SignFunction,
    *,
    institution_no: str,
    terminal_id: str,
    station_name: str,
    algorithm: SignatureAlgorithm = SignatureAlgorithm.ES256,
) -> bytes:
    """The PEM PKCS#10 request for the station key, signed through `sign` (the token)."""
    subject = asn1_x509.Name.load(
        station_subject(institution_no, terminal_id, station_name).public_bytes()
    )
    info = asn1_csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": subject,
            "subject_pk_info": asn1_keys.PublicKeyInfo.load(public_key_info_der),
            "attributes": [],
        }
    )
    request = asn1_csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": signature_algorithm_id(algorithm),
            "signature": sign(info.dump()),
        }
    )
    loaded = x509.load_der_x509_csr(request.dump())
    if algorithm is SignatureAlgorithm.SM2_SM3:
        public = sm2.public_key_from_spki(public_key_info_der)
        valid = public is not None and public.verify(loaded.signature, loaded.tbs_certrequest_bytes)
    else:
        valid = loaded.is_signature_valid
    if not valid:
        raise SignerUnavailable(
            "the token's signature over the certificate request does not verify: the token"
            " key is not the key it reports; provision a new key"
        )
    return loaded.public_bytes(Encoding.PEM)


class TokenEnrolment:
    """The station key's objects on one token, for provisioning (not for signing records)."""

    def __init__(
        self,
        module_path: str,
        token_label: str,
        key_label: str,
        pin: str,
        *,
        key_type: KeyType = KeyType.P256,
        sm2_mechanism: Sm2Mechanism | None = None,
    ) -> None:
        self._module = pkcs11_module(module_path)
        self.label = token_label
        self.key_label = key_label
        self.key_type = key_type
        self._sm2_mechanism = sm2_mechanism
        self.__pin = pin

    def __repr__(self) -> str:
        return f"TokenEnrolment(token_label={self.label!r}, key_label={self.key_label!r})"

    def _session(self) -> Any:
        token = self._module.find_token(self.label)  # raises SignerUnavailable if absent
        try:
            return self._module.open_user_session(token, self.__pin, rw=True), token
        except p11.PKCS11Error as exc:
            raise signer_error_for(exc, self.label) from None

    def present(self) -> bool:
        try:
            with self._module.lock:
                self._module.find_token(self.label)
        except SignerUnavailable:
            return False
        return True

    def _keys(self, session: Any) -> tuple[Any, Any] | None:
        try:
            private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=self.key_label)
            public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=self.key_label)
        except p11.NoSuchKey:
            return None
        return private, public

    def key_facts(self) -> dict[str, object] | None:
        """The station key's protection attributes, or None when there is no key yet."""
        with self._module.lock:
            session, _token = self._session()
            with session:
                keys = self._keys(session)
                if keys is None:
                    return None
                private, public = keys
                return {
                    "sensitive": bool(private[Attribute.SENSITIVE]),
                    "extractable": bool(private[Attribute.EXTRACTABLE]),
                    "always_sensitive": bool(private[Attribute.ALWAYS_SENSITIVE]),
                    "never_extractable": bool(private[Attribute.NEVER_EXTRACTABLE]),
                    "public_key_info": public_key_info(public, self.key_type),
                    "key_type_problem": key_type_problem(private, self.key_type),
                }

    def generate_key(self) -> None:
        """Generate the station key pair (token.key_type) on the token, never exportable;
        refuse a second one."""
        with self._module.lock:
            session, _token = self._session()
            with session:
                if self._keys(session) is not None:
                    raise SignerUnavailable(
                        f"USBKey token '{self.label}' already holds a key '{self.key_label}'"
                    )
                if self.key_type is KeyType.SM2:
                    raise SignerUnavailable(
                        "an SM2 key is generated with the USBKey vendor's tool (PKCS#11 defines"
                        f" no SM2 key generation): make key '{self.key_label}' on token"
                        f" '{self.label}' with it, then run provision again"
                    )
                public, private = generate_key_pair(session, self.key_type, self.key_label)
                key_id = subject_key_identifier(public_key_info(public, self.key_type))
                public[Attribute.ID] = key_id
                private[Attribute.ID] = key_id

    def certificate_pem(self) -> bytes | None:
        with self._module.lock:
            session, _token = self._session()
            with session:
                for cert in self._certificates(session):
                    return x509.load_der_x509_certificate(
                        bytes(cert[Attribute.VALUE])
                    ).public_bytes(Encoding.PEM)
        return None

    def _certificates(self, session: Any) -> list[Any]:
        return list(
            session.get_objects(
                {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: self.key_label}
            )
        )

    def make_csr(self, *, institution_no: str, terminal_id: str, station_name: str) -> bytes:
        with self._module.lock:
            session, token = self._session()
            with session:
                keys = self._keys(session)
                if keys is None:
                    raise SignerUnavailable(
                        f"USBKey token '{self.label}' has no key '{self.key_label}' to certify"
                    )
                private, public = keys
                mechanisms = set(token.slot.get_mechanisms())
                key_info = public_key_info(public, self.key_type)
                sm2_public = (
                    sm2.public_key_from_spki(key_info) if self.key_type is KeyType.SM2 else None
                )
                return build_csr(
                    key_info,
                    lambda data: sign_by_type(
                        private,
                        self.key_type,
                        mechanisms,
                        data,
                        sm2_mechanism=self._sm2_mechanism,
                        sm2_public=sm2_public,
                    ),
                    institution_no=institution_no,
                    terminal_id=terminal_id,
                    station_name=station_name,
                    algorithm=ALGORITHM_OF_KEY[self.key_type],
                )

    def store_certificate(self, cert_pem: bytes) -> None:
        """Store the issued certificate under the key's label and ID, replacing older ones.

        The certificate must hold this token's public key; the caller archives the old one.
        """
        certificate = x509.load_pem_x509_certificate(cert_pem)
        der = certificate.public_bytes(Encoding.DER)
        with self._module.lock:
            session, _token = self._session()
            with session:
                keys = self._keys(session)
                if keys is None:
                    raise SignerUnavailable(f"USBKey token '{self.label}' has no station key")
                public_info = public_key_info(keys[1], self.key_type)
                held = public_key_info_of(cert_pem)
                if held != public_info:
                    raise SignerUnavailable(
                        "the certificate is not for the station key on this token: import the"
                        " certificate issued for this token's request"
                    )
                for old in self._certificates(session):
                    old.destroy()
                session.create_object(
                    {
                        Attribute.CLASS: ObjectClass.CERTIFICATE,
                        Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                        Attribute.TOKEN: True,
                        Attribute.PRIVATE: False,
                        Attribute.LABEL: self.key_label,
                        Attribute.ID: subject_key_identifier(public_info),
                        Attribute.SUBJECT: certificate.subject.public_bytes(),
                        Attribute.ISSUER: certificate.issuer.public_bytes(),
                        Attribute.VALUE: der,
                    }
                )
