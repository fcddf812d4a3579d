"""Signing and verifying catalog documents with the operator's ECDSA P-256 key.

The signature is over the exact bytes of catalog.json (SHA-256, DER-encoded ECDSA), so
`openssl dgst -sha256 -verify operator.pub.pem -signature catalog.json.sig catalog.json`
checks it without our code. This module never decides whether a verified catalog may be
installed (kiosk.catalog.store does) and never holds a production private key: the
operator signs on its own systems; the private key in deploy/dev is for development only.
"""

import hashlib

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.catalog.model import CatalogError


def _operator_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm):
        raise CatalogError(
            "operator public key is not a PEM public key: give the operator's .pub.pem file"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CatalogError("operator public key is not an ECDSA P-256 key: catalogs need P-256")
    return key


def public_key_fingerprint(operator_public_pem: bytes) -> str:
    """SHA-256 of the key's DER SubjectPublicKeyInfo, in hex, as openssl computes it."""
    der = _operator_public_key(operator_public_pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def verify_catalog_signature(data: bytes, sig: bytes, operator_public_pem: bytes) -> None:
    """Return if sig is the operator's signature over data; raise CatalogError otherwise."""
    key = _operator_public_key(operator_public_pem)
    if not sig:
        raise CatalogError(
            "catalog has no signature: sign it with 'kiosk-tool catalog sign' and send the .sig too"
        )
    try:
        key.verify(sig, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise CatalogError(
            "catalog signature does not match: the catalog was changed after signing or signed "
            "with another key; get a correctly signed catalog from the operator"
        ) from None


def sign_catalog(data: bytes, operator_private_pem: bytes) -> bytes:
    """The DER ECDSA P-256 / SHA-256 signature of data with the operator's private key."""
    try:
        key = serialization.load_pem_private_key(operator_private_pem, password=None)
    except TypeError:
        raise CatalogError(
            "operator private key is password-protected: give an unencrypted PEM key"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise CatalogError(
            "operator private key is not a PEM private key: give the operator's key file"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CatalogError("operator private key is not an ECDSA P-256 key: catalogs need P-256")
    return key.sign(data, ec.ECDSA(hashes.SHA256()))
