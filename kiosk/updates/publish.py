"""Publishing update bundles: the update server's TUF repository, written with tuf.api.metadata.

Owns the repository directory as an HTTP server serves it to terminals (kiosk.updates.fetch):
    metadata/N.root.json, N.targets.json, N.snapshot.json   (consistent snapshots)
    metadata/timestamp.json
    targets/<sha256>.<bundle name>
and the four roles' keys, thresholds and expiry, key rotation (a new root version signed by
a threshold of the old root's keys and of the new one's), and re-signing before expiry.
Every write is checked first: a role is signed only when the keys given reach its threshold,
so a repository is never left with metadata the terminals would refuse. Files are written to
a temporary name and renamed, timestamp.json last, so a terminal never sees a half-published
state. It never builds or signs bundles (kiosk.updates.bundle) and never holds keys itself:
the release team's private keys are read from files the caller names.
"""

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from securesystemslib.signer import CryptoSigner, Key, Signer, SSlibKey
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Signed,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from kiosk.updates.metadata import UpdateError


class Role(StrEnum):
    ROOT = "root"
    TARGETS = "targets"
    SNAPSHOT = "snapshot"
    TIMESTAMP = "timestamp"


# How long each role's metadata stays valid unless the caller says otherwise: the timestamp
# must be re-signed daily (repo-refresh), which bounds how long a frozen server goes unseen.
DEFAULT_EXPIRY = {
    Role.ROOT: timedelta(days=365),
    Role.TARGETS: timedelta(days=90),
    Role.SNAPSHOT: timedelta(days=7),
    Role.TIMESTAMP: timedelta(days=1),
}
METADATA_DIR = "metadata"
TARGETS_DIR = "targets"
_VERSIONED = re.compile(r"^(\d+)\.(root|targets|snapshot)\.json\Z")
_TARGET_NAME = re.compile(r"^[A-Za-z0-9_.+-]{1,200}\Z")


def load_signer(pem: bytes, source: str) -> CryptoSigner:
    """A signer of one private key (PEM, unencrypted: ECDSA P-256, Ed25519 or RSA)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise UpdateError(f"{source} is password-protected: give an unencrypted PEM") from None
    except ValueError:
        raise UpdateError(f"{source} is not a PEM private key: give the key file") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        if not isinstance(key, rsa.RSAPrivateKey):
            raise UpdateError(f"{source} is not an ECDSA, Ed25519 or RSA key")
    return CryptoSigner(key)


def load_public_key(pem: bytes, source: str) -> Key:
    """The TUF key of a public (or private: its public half is taken) PEM key."""
    try:
        public: Any = serialization.load_pem_public_key(pem)
    except ValueError:
        try:
            public = serialization.load_pem_private_key(pem, password=None).public_key()
        except (TypeError, ValueError):
            raise UpdateError(f"{source} is not a PEM key: give the key file") from None
    try:
        return SSlibKey.from_crypto(public)
    except ValueError as exc:
        raise UpdateError(f"{source} cannot be a TUF key: {exc}") from None


@dataclass(frozen=True)
class RepositoryState:
    """What a repository publishes now: role versions, expiry and the bundles offered."""

    versions: Mapping[str, int]
    expires: Mapping[str, datetime]
    thresholds: Mapping[str, int]
    key_counts: Mapping[str, int]
    targets: Mapping[str, int]  # bundle name -> length

    def to_json(self) -> dict[str, Any]:
        return {
            "versions": dict(self.versions),
            "expires": {r: e.isoformat() for r, e in self.expires.items()},
            "thresholds": dict(self.thresholds),
            "keys": dict(self.key_counts),
            "targets": dict(self.targets),
        }


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class UpdateRepository:
    """One TUF repository directory (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.metadata_dir = directory / METADATA_DIR
        self.targets_dir = directory / TARGETS_DIR

    # ------------------------------------------------------------------ creating

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        keys: Mapping[Role, Sequence[Key]],
        thresholds: Mapping[Role, int],
        root_signers: Sequence[Signer],
        signers: Mapping[Role, Sequence[Signer]],
        now: datetime,
        expiry: Mapping[Role, timedelta] = DEFAULT_EXPIRY,
    ) -> "UpdateRepository":
        """A new, empty repository (root v1 and the three other roles at version 1)."""
        repo = cls(directory)
        if (repo.metadata_dir / "1.root.json").exists():
            raise UpdateError(
                f"{directory} holds a repository already: publish into it, or give a new directory"
            )
        root = Root(expires=now + expiry[Role.ROOT], consistent_snapshot=True)
        for role in Role:
            role_keys = keys.get(role) or ()
            if not role_keys:
                raise UpdateError(f"give at least one {role} key (--{role}-key)")
            threshold = thresholds.get(role, 1)
            if not 1 <= threshold <= len(role_keys):
                raise UpdateError(
                    f"the {role} threshold {threshold} needs between 1 and "
                    f"{len(role_keys)} signatures (the number of {role} keys given)"
                )
            for key in role_keys:
                root.add_key(key, role)
            root.roles[role].threshold = threshold
        repo.metadata_dir.mkdir(parents=True, exist_ok=True)
        repo.targets_dir.mkdir(parents=True, exist_ok=True)
        repo._sign_and_write(root, root_signers, root=root)
        targets = Targets(expires=now + expiry[Role.TARGETS])
        repo._publish(root, targets, signers, now, expiry)
        return repo

    # ------------------------------------------------------------------ reading

    def _latest(self, role: Role) -> int:
        versions = [
            int(m.group(1))
            for m in (_VERSIONED.match(p.name) for p in self.metadata_dir.glob("*.json"))
            if m is not None and m.group(2) == role
        ]
        if not versions:
            raise UpdateError(
                f"{self.dir} is not an update repository (no {role} metadata): "
                "create it with 'kiosk-tool update repo-init'"
            )
        return max(versions)

    def _read(self, name: str) -> Metadata[Any]:
        try:
            return Metadata.from_file(str(self.metadata_dir / name))
        except Exception as exc:  # python-tuf raises several kinds for a bad file
            raise UpdateError(f"{self.metadata_dir / name} is unreadable ({exc})") from None

    def root(self) -> Root:
        return cast(Root, self._read(f"{self._latest(Role.ROOT)}.root.json").signed)

    def targets(self) -> Targets:
        return cast(Targets, self._read(f"{self._latest(Role.TARGETS)}.targets.json").signed)

    def state(self) -> RepositoryState:
        root = self.root()
        targets = self.targets()
        snapshot = cast(Snapshot, self._read(f"{self._latest(Role.SNAPSHOT)}.snapshot.json").signed)
        timestamp = cast(Timestamp, self._read("timestamp.json").signed)
        signed: dict[str, Signed] = {
            Role.ROOT: root,
            Role.TARGETS: targets,
            Role.SNAPSHOT: snapshot,
            Role.TIMESTAMP: timestamp,
        }
        return RepositoryState(
            versions={r: s.version for r, s in signed.items()},
            expires={r: s.expires for r, s in signed.items()},
            thresholds={r: root.roles[r].threshold for r in Role},
            key_counts={r: len(root.roles[r].keyids) for r in Role},
            targets={name: t.length for name, t in sorted(targets.targets.items())},
        )

    # ------------------------------------------------------------------ writing

    def _check_threshold(self, root: Root, role: str, metadata: Metadata[Any]) -> None:
        try:
            root.verify_delegate(role, metadata.signed_bytes, metadata.signatures)
        except UnsignedMetadataError:
            threshold = root.roles[role].threshold
            raise UpdateError(
                f"the {role} metadata needs {threshold} signature(s) by {role} keys of the "
                f"repository's root: give enough --key {role}=PEM files"
            ) from None

    def _sign_and_write(self, signed: Signed, signers: Sequence[Signer], *, root: Root) -> None:
        metadata: Metadata[Any] = Metadata(signed)
        for signer in signers:
            if signer.public_key.keyid in root.roles[signed.type].keyids:
                metadata.sign(signer, append=True)
        self._check_threshold(root, signed.type, metadata)
        name = (
            "timestamp.json"
            if signed.type == Role.TIMESTAMP
            else f"{signed.version}.{signed.type}.json"
        )
        _write_atomic(self.metadata_dir / name, metadata.to_bytes(JSONSerializer(compact=False)))

    def _publish(
        self,
        root: Root,
        targets: Targets | None,
        signers: Mapping[Role, Sequence[Signer]],
        now: datetime,
        expiry: Mapping[Role, timedelta],
    ) -> None:
        """Write targets (when given), then a new snapshot, then a new timestamp."""
        if targets is not None:
            self._sign_and_write(targets, signers.get(Role.TARGETS, ()), root=root)
            targets_version = targets.version
        else:
            targets_version = self._latest(Role.TARGETS)
        try:
            snapshot_version = self._latest(Role.SNAPSHOT) + 1
        except UpdateError:
            snapshot_version = 1
        snapshot = Snapshot(
            version=snapshot_version,
            expires=now + expiry[Role.SNAPSHOT],
            meta={"targets.json": MetaFile(version=targets_version)},
        )
        self._sign_and_write(snapshot, signers.get(Role.SNAPSHOT, ()), root=root)
        try:
            timestamp_version = cast(Timestamp, self._read("timestamp.json").signed).version + 1
        except UpdateError:
            timestamp_version = 1
        timestamp = Timestamp(
            version=timestamp_version,
            expires=now + expiry[Role.TIMESTAMP],
            snapshot_meta=MetaFile(version=snapshot_version),
        )
        self._sign_and_write(timestamp, signers.get(Role.TIMESTAMP, ()), root=root)

    def publish(
        self,
        bundle: Path,
        *,
        signers: Mapping[Role, Sequence[Signer]],
        now: datetime,
        name: str | None = None,
        expiry: Mapping[Role, timedelta] = DEFAULT_EXPIRY,
    ) -> TargetFile:
        """Offer bundle to the terminals under name (default: its file name)."""
        target_name = name or bundle.name
        if not _TARGET_NAME.match(target_name):
            raise UpdateError(f"target name {target_name!r} must be a plain file name")
        if not bundle.is_file():
            raise UpdateError(f"bundle {bundle} does not exist: check the path")
        root = self.root()
        targets = self.targets()
        target = TargetFile.from_file(target_name, str(bundle), ["sha256"])
        targets.targets[target_name] = target
        targets.version += 1
        targets.expires = now + expiry[Role.TARGETS]
        # The bundle is in place (under its hash) before any metadata names it.
        served = self.targets_dir / f"{target.hashes['sha256']}.{target_name}"
        tmp = served.with_name(served.name + ".part")
        shutil.copyfile(bundle, tmp)
        os.replace(tmp, served)
        self._publish(root, targets, signers, now, expiry)
        return target

    def refresh(
        self,
        roles: Sequence[Role],
        *,
        signers: Mapping[Role, Sequence[Signer]],
        now: datetime,
        expiry: Mapping[Role, timedelta] = DEFAULT_EXPIRY,
    ) -> None:
        """Re-sign roles with a new expiry (the timestamp daily, the others before they expire)."""
        root = self.root()
        if Role.ROOT in roles:
            root.version += 1
            root.expires = now + expiry[Role.ROOT]
            self._sign_and_write(root, signers.get(Role.ROOT, ()), root=root)
        targets = None
        if Role.TARGETS in roles:
            targets = self.targets()
            targets.version += 1
            targets.expires = now + expiry[Role.TARGETS]
        self._publish(root, targets, signers, now, expiry)

    def rotate(
        self,
        role: Role,
        *,
        add: Sequence[Key],
        remove: Sequence[Key],
        threshold: int | None,
        signers: Mapping[Role, Sequence[Signer]],
        now: datetime,
        expiry: Mapping[Role, timedelta] = DEFAULT_EXPIRY,
    ) -> Root:
        """A new root version with role's keys and threshold changed, then every role re-signed.

        The new root is signed by a threshold of the old root's keys (terminals trust it only
        then) and of its own keys; the other roles are re-signed by their (new) keys, so a
        rotation after a compromise also moves terminals off the old snapshot/timestamp keys.
        """
        old_root = self.root()
        new_root = Root.from_dict(old_root.to_dict())
        for key in add:
            new_root.add_key(key, role)
        for key in remove:
            if key.keyid not in new_root.roles[role].keyids:
                raise UpdateError(f"that key is not a {role} key of this repository")
            new_root.revoke_key(key.keyid, role)
        if threshold is not None:
            new_root.roles[role].threshold = threshold
        count = len(new_root.roles[role].keyids)
        if not 1 <= new_root.roles[role].threshold <= count:
            raise UpdateError(
                f"the {role} role would have {count} key(s) and threshold "
                f"{new_root.roles[role].threshold}: the threshold must be 1 to {count}"
            )
        new_root.version += 1
        new_root.expires = now + expiry[Role.ROOT]
        metadata: Metadata[Root] = Metadata(new_root)
        for signer in signers.get(Role.ROOT, ()):
            keyid = signer.public_key.keyid
            if keyid in old_root.roles[Role.ROOT].keyids or keyid in new_root.roles["root"].keyids:
                metadata.sign(signer, append=True)
        try:
            old_root.verify_delegate(Role.ROOT, metadata.signed_bytes, metadata.signatures)
        except UnsignedMetadataError:
            raise UpdateError(
                "the new root needs a threshold of signatures by the current root keys: "
                "give the current root keys with --key root=PEM"
            ) from None
        self._check_threshold(new_root, Role.ROOT, metadata)
        _write_atomic(
            self.metadata_dir / f"{new_root.version}.root.json",
            metadata.to_bytes(JSONSerializer(compact=False)),
        )
        targets = self.targets()
        targets.version += 1
        targets.expires = now + expiry[Role.TARGETS]
        self._publish(new_root, targets, signers, now, expiry)
        return new_root
