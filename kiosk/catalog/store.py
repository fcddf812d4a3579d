"""Which catalog is in force on this terminal, and installing a new one safely.

Owns the install rules (signed by the operator, version grows, fee changes announced in
time) and the on-disk layout of installed catalogs. A refused catalog changes nothing:
the last good catalog stays in force. It never fetches catalogs from the network and
never edits a catalog; the operator publishes them signed.

Layout of the store directory (kept for audit: every installed version stays on disk):
    catalog-<version>.json       the document exactly as signed
    catalog-<version>.json.sig   its DER signature
    current                      the version in force, one line; replaced atomically last
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

from kiosk.catalog.fees import FEE_NOTICE_WORKING_DAYS, earliest_fee_change
from kiosk.catalog.model import Catalog, CatalogError, parse_catalog, version_key
from kiosk.catalog.signed import verify_catalog_signature
from kiosk.message_text import MessageText, error_text

SHIPPED_CATALOG = "catalog.json"
SHIPPED_SIGNATURE = "catalog.json.sig"
SHIPPED_OPERATOR_KEY = "operator-dev.pub.pem"
POINTER = "current"
_LOCK = ".install.lock"


def _shipped_file(name: str) -> bytes:
    return (resources.files("kiosk.catalog") / "data" / name).read_bytes()


def shipped_operator_public_pem() -> bytes:
    """The operator public key shipped with the software (the development operator's)."""
    return _shipped_file(SHIPPED_OPERATOR_KEY)


def shipped_catalog_files() -> tuple[bytes, bytes]:
    """The catalog shipped with the software and its signature, as bytes."""
    return _shipped_file(SHIPPED_CATALOG), _shipped_file(SHIPPED_SIGNATURE)


def load_signed_catalog(data: bytes, sig: bytes, operator_public_pem: bytes) -> Catalog:
    """Verify the operator's signature over data, then parse and validate it."""
    verify_catalog_signature(data, sig, operator_public_pem)
    return parse_catalog(data)


def check_fee_notice(in_force: Catalog, candidate: Catalog) -> None:
    """Refuse a catalog that changes a fee with less than the notice of seed 002.

    A fee rule not present identically in the catalog in force must take effect no earlier
    than FEE_NOTICE_WORKING_DAYS working days after the candidate's publication date, and
    the rule in force on each day before that date must stay the same (no rule withdrawn
    out of notice either). New services follow the same rule: their fees are new too.
    """
    deadline = earliest_fee_change(candidate.published)
    for service in candidate.services.values():
        old = in_force.services.get(service.code)
        old_rules = set(old.fees) if old is not None else set()
        for rule in service.fees:
            if rule not in old_rules and rule.effective_from < deadline:
                raise CatalogError(
                    MessageText(
                        "catalog {version} announces a {code} fee from {effective_from} too late: "
                        "published {published}, fees may change {days} working days later at the "
                        "earliest, on {deadline}",
                        version=candidate.version,
                        code=service.code,
                        effective_from=rule.effective_from.isoformat(),
                        published=candidate.published.isoformat(),
                        days=FEE_NOTICE_WORKING_DAYS,
                        deadline=deadline.isoformat(),
                    )
                )
        if old is None:
            continue
        day = candidate.published
        while day < deadline:
            if old.fee_rule_on(day) != service.fee_rule_on(day):
                raise CatalogError(
                    MessageText(
                        "catalog {version} changes the {code} fee in force on {day} without "
                        "notice: fees may change from {deadline} on; keep the published rule until "
                        "then",
                        version=candidate.version,
                        code=service.code,
                        day=day.isoformat(),
                        deadline=deadline.isoformat(),
                    )
                )
            day += timedelta(days=1)


def _write_durably(path: Path, data: bytes) -> None:
    """Write data to path so that a crash leaves either the old file or the whole new one."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _fsync_directory(directory: Path) -> None:
    # The rename itself is only durable once the directory entry is on disk.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class CatalogStore:
    def __init__(self, directory: Path, operator_public_pem: bytes) -> None:
        self._directory = directory
        self._operator_public_pem = operator_public_pem
        self._shipped: Catalog | None = None
        self._installed: tuple[str, Catalog] | None = None  # (pointer text, catalog)

    @property
    def directory(self) -> Path:
        return self._directory

    def shipped(self) -> Catalog:
        """The catalog shipped with the software, verified with this store's operator key."""
        if self._shipped is None:
            data, sig = shipped_catalog_files()
            try:
                self._shipped = load_signed_catalog(data, sig, self._operator_public_pem)
            except CatalogError as exc:
                raise CatalogError(
                    MessageText(
                        "the catalog shipped with the software cannot be used ({problem}); install "
                        "the operator's signed catalog",
                        problem=error_text(exc),
                    )
                ) from None
        return self._shipped

    def installed(self) -> Catalog | None:
        """The catalog last installed here (re-verified when it changes on disk), or None."""
        try:
            pointer = (self._directory / POINTER).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(
                MessageText(
                    "cannot read {path} ({problem}): install the operator's signed catalog again",
                    path=self._directory / POINTER,
                    problem=error_text(exc),
                )
            ) from None
        if self._installed is not None and self._installed[0] == pointer:
            return self._installed[1]
        catalog = self._load_installed(pointer)
        self._installed = (pointer, catalog)
        return catalog

    def _load_installed(self, version: str) -> Catalog:
        try:
            version_key(version)
            document = self._directory / f"catalog-{version}.json"
            data = document.read_bytes()
            sig = document.with_name(document.name + ".sig").read_bytes()
            catalog = load_signed_catalog(data, sig, self._operator_public_pem)
        except (CatalogError, OSError) as exc:
            raise CatalogError(
                MessageText(
                    "installed catalog {version!r} in {directory} fails its check ({problem}); "
                    "install the operator's signed catalog again",
                    version=version,
                    directory=self._directory,
                    problem=error_text(exc),
                )
            ) from None
        if catalog.version != version:
            raise CatalogError(
                MessageText(
                    "installed catalog file for {version} holds version {found}: install the "
                    "operator's signed catalog again",
                    version=version,
                    found=catalog.version,
                )
            )
        return catalog

    def current(self) -> Catalog:
        """The catalog in force: the newer of the installed one and the shipped one.

        Both are verified with the operator key. A software update that ships a newer
        catalog than the installed one brings it into force.
        """
        installed = self.installed()
        if installed is None:
            return self.shipped()
        try:
            shipped = self.shipped()
        except CatalogError:
            # The shipped catalog is signed by the development operator; a terminal that
            # trusts only the production key uses what it installed.
            return installed
        return shipped if shipped.is_newer_than(installed) else installed

    def install(self, data: bytes, sig: bytes, today: date) -> Catalog:
        """Verify, check and install a catalog, which is then in force; CatalogError if not."""
        candidate = load_signed_catalog(data, sig, self._operator_public_pem)
        if candidate.published > today:
            raise CatalogError(
                MessageText(
                    "catalog {version} is published {published}, after today ({today}): check the "
                    "terminal's date",
                    version=candidate.version,
                    published=candidate.published.isoformat(),
                    today=today.isoformat(),
                )
            )
        self._directory.mkdir(parents=True, exist_ok=True)
        with self._install_lock():
            try:
                in_force: Catalog | None = self.current()
            except CatalogError:
                # Nothing usable is in force (a damaged store, or a terminal that does not
                # trust the shipped catalog): a correctly signed catalog repairs it.
                in_force = None
            if in_force is not None:
                if not candidate.is_newer_than(in_force):
                    raise CatalogError(
                        MessageText(
                            "catalog version {version} is not newer than version {in_force} in "
                            "force: the operator must publish a higher version",
                            version=candidate.version,
                            in_force=in_force.version,
                        )
                    )
                check_fee_notice(in_force, candidate)
            document = self._directory / f"catalog-{candidate.version}.json"
            _write_durably(document, data)
            _write_durably(document.with_name(document.name + ".sig"), sig)
            _fsync_directory(self._directory)
            _write_durably(self._directory / POINTER, f"{candidate.version}\n".encode())
            _fsync_directory(self._directory)
            self._installed = (candidate.version, candidate)
        return candidate

    @contextmanager
    def _install_lock(self) -> Iterator[None]:
        # Two installers (the terminal and a technician's CLI) must not interleave writes.
        with (self._directory / _LOCK).open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
