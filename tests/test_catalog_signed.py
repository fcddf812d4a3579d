"""Catalog signatures: ECDSA P-256 over the exact bytes, checkable with the openssl CLI."""

import hashlib
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kiosk.catalog import (
    CatalogError,
    public_key_fingerprint,
    shipped_catalog_files,
    shipped_operator_public_pem,
    sign_catalog,
    verify_catalog_signature,
)

REPO = Path(__file__).resolve().parents[1]
DEV_KEY = REPO / "tests" / "keys" / "operator-dev-key.pem"
SHIPPED = REPO / "kiosk" / "catalog" / "data"


def _private_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _public_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_the_shipped_catalog_verifies_with_the_shipped_operator_key() -> None:
    data, sig = shipped_catalog_files()
    verify_catalog_signature(data, sig, shipped_operator_public_pem())


def test_the_development_key_is_the_pair_of_the_shipped_public_key() -> None:
    data = b'{"any": "document"}'
    sig = sign_catalog(data, DEV_KEY.read_bytes())
    verify_catalog_signature(data, sig, shipped_operator_public_pem())


@pytest.mark.parametrize("position", [0, 100, -2])
def test_one_changed_byte_is_refused(position: int) -> None:
    data, sig = shipped_catalog_files()
    changed = bytearray(data)
    changed[position] ^= 0x01
    with pytest.raises(CatalogError, match="signature does not match"):
        verify_catalog_signature(bytes(changed), sig, shipped_operator_public_pem())


def test_a_missing_signature_is_refused() -> None:
    data, _ = shipped_catalog_files()
    with pytest.raises(CatalogError, match="catalog has no signature"):
        verify_catalog_signature(data, b"", shipped_operator_public_pem())


def test_a_garbled_signature_is_refused() -> None:
    data, sig = shipped_catalog_files()
    with pytest.raises(CatalogError, match="signature does not match"):
        verify_catalog_signature(data, sig[:-3], shipped_operator_public_pem())


def test_a_signature_by_another_key_is_refused() -> None:
    data, _ = shipped_catalog_files()
    stranger = ec.generate_private_key(ec.SECP256R1())
    sig = sign_catalog(data, _private_pem(stranger))
    verify_catalog_signature(data, sig, _public_pem(stranger))
    with pytest.raises(CatalogError, match="signature does not match"):
        verify_catalog_signature(data, sig, shipped_operator_public_pem())


def test_keys_that_are_not_p256_are_refused() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(CatalogError, match="not an ECDSA P-256 key"):
        sign_catalog(b"x", _private_pem(rsa_key))
    with pytest.raises(CatalogError, match="not an ECDSA P-256 key"):
        verify_catalog_signature(b"x", b"sig", _public_pem(p384))
    with pytest.raises(CatalogError, match="not a PEM public key"):
        verify_catalog_signature(b"x", b"sig", b"not a key")
    with pytest.raises(CatalogError, match="not a PEM private key"):
        sign_catalog(b"x", b"not a key")


def test_an_encrypted_private_key_is_refused_with_what_to_do() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(CatalogError, match="password-protected"):
        sign_catalog(b"x", encrypted)


def test_openssl_verifies_the_shipped_signature() -> None:
    result = subprocess.run(
        [
            "openssl",
            "dgst",
            "-sha256",
            "-verify",
            str(SHIPPED / "operator-dev.pub.pem"),
            "-signature",
            str(SHIPPED / "catalog.json.sig"),
            str(SHIPPED / "catalog.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Verified OK" in result.stdout


def test_a_signature_made_by_openssl_verifies_here(tmp_path: Path) -> None:
    data, _ = shipped_catalog_files()
    document = tmp_path / "catalog.json"
    document.write_bytes(data)
    sig = tmp_path / "catalog.json.sig"
    subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(DEV_KEY), "-out", str(sig), str(document)],
        check=True,
        capture_output=True,
    )
    verify_catalog_signature(data, sig.read_bytes(), shipped_operator_public_pem())


def test_the_key_fingerprint_is_the_one_openssl_computes() -> None:
    der = subprocess.run(
        [
            "openssl",
            "pkey",
            "-pubin",
            "-in",
            str(SHIPPED / "operator-dev.pub.pem"),
            "-outform",
            "DER",
        ],
        check=True,
        capture_output=True,
    ).stdout
    assert public_key_fingerprint(shipped_operator_public_pem()) == hashlib.sha256(der).hexdigest()
