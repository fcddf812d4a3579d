"""The archive of every station certificate this terminal has used, kept in data_dir.

Journal records name their signing certificate by hash (cert_sha256) but do not carry it,
so a renewal must keep the old certificate: this archive is where it stays, as one PEM file
per certificate named by that same hash. It only ever adds files; it never holds a key.
"""

import hashlib
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

ARCHIVE_DIR = "certificates"


def archive_dir(data_dir: Path) -> Path:
    return data_dir / ARCHIVE_DIR


def certificate_sha256(cert_pem: bytes) -> str:
    """The journal's cert_sha256 of a PEM certificate: hex SHA-256 of its DER encoding."""
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def archive_certificate(data_dir: Path, cert_pem: bytes) -> Path:
    """Keep cert_pem as certificates/<cert_sha256>.pem (idempotent); return its path."""
    directory = archive_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{certificate_sha256(cert_pem)}.pem"
    if not path.exists():
        partial = path.with_suffix(".partial")
        partial.write_bytes(cert_pem)
        os.replace(partial, path)
    return path


def archived_certificates(data_dir: Path) -> list[bytes]:
    """Every archived station certificate (PEM), oldest file first."""
    directory = archive_dir(data_dir)
    if not directory.is_dir():
        return []
    files = sorted(directory.glob("*.pem"), key=lambda p: (p.stat().st_mtime, p.name))
    return [path.read_bytes() for path in files]


def certificate_bundle(data_dir: Path) -> bytes:
    """All archived certificates as one PEM bundle, as `kiosk-tool journal verify` takes."""
    return b"".join(archived_certificates(data_dir))
