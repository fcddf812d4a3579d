"""The certificate revocation list the simulated platform honours (`--crl FILE`).

Owns reading the CRL the back office writes (`kiosk-backoffice terminal revoke`), again
whenever the file changes, and the one question the server asks: is this station
certificate revoked? A certificate counts as revoked when the CRL comes from its issuer
(same issuer name) and lists its serial number. A missing or unreadable file revokes
nothing and is logged, so a broken CRL never stops the whole fleet paying.
"""

import logging
import threading
from pathlib import Path

from cryptography import x509

log = logging.getLogger("platform_sim")


class RevocationList:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._revoked: frozenset[tuple[bytes, int]] = frozenset()

    def _current(self) -> frozenset[tuple[bytes, int]]:
        try:
            stat = self.path.stat()
        except OSError:
            return frozenset()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                try:
                    crl = x509.load_pem_x509_crl(self.path.read_bytes())
                except (OSError, ValueError) as exc:
                    log.error("cannot read the CRL %s (%s): nothing is revoked", self.path, exc)
                    self._revoked = frozenset()
                else:
                    issuer = crl.issuer.public_bytes()
                    self._revoked = frozenset((issuer, entry.serial_number) for entry in crl)
                self._stamp = stamp
            return self._revoked

    def revoked(self, certificate_pem: str) -> bool:
        cert = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
        return (cert.issuer.public_bytes(), cert.serial_number) in self._current()
