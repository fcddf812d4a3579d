"""Fetching bundles with TUF (python-tuf's ngclient) from a real HTTP server on loopback.

The repository is made with python-tuf's Metadata API, as an update server would make it.
"""

import functools
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp

from kiosk.updates import UpdateError
from kiosk.updates.fetch import fetch_bundle

NAME = "kiosk-1.1.0.bundle"


class Repository:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.signer = CryptoSigner.generate_ecdsa()
        (directory / "metadata").mkdir(parents=True)
        (directory / "targets").mkdir()
        root = Root(expires=datetime.now(UTC) + timedelta(days=365))
        for role in ("root", "targets", "snapshot", "timestamp"):
            root.add_key(self.signer.public_key, role)
        self.root = self._write(root, "1.root.json")
        self.targets = Targets(expires=datetime.now(UTC) + timedelta(days=30))
        self.snapshot = Snapshot(expires=datetime.now(UTC) + timedelta(days=7))
        self.timestamp = Timestamp(expires=datetime.now(UTC) + timedelta(days=1))

    def _write(self, signed: object, name: str) -> Path:
        metadata = Metadata(signed)  # type: ignore[arg-type]
        metadata.sign(self.signer)
        path = self.dir / "metadata" / name
        metadata.to_file(str(path))
        return path

    def publish(self, name: str, data: bytes, timestamp_expires: datetime | None = None) -> None:
        local = self.dir / "upload" / name
        local.parent.mkdir(exist_ok=True)
        local.write_bytes(data)
        target = TargetFile.from_file(name, str(local), ["sha256"])
        self.targets.targets[name] = target
        self.targets.version += 1
        self._write(self.targets, f"{self.targets.version}.targets.json")
        # Consistent snapshots: targets are served under their hash.
        shutil.copy(local, self.dir / "targets" / f"{target.hashes['sha256']}.{name}")
        self.snapshot.meta["targets.json"] = MetaFile(version=self.targets.version)
        self.snapshot.version += 1
        self._write(self.snapshot, f"{self.snapshot.version}.snapshot.json")
        self.timestamp.snapshot_meta = MetaFile(version=self.snapshot.version)
        self.timestamp.version += 1
        if timestamp_expires is not None:
            self.timestamp.expires = timestamp_expires
        self._write(self.timestamp, "timestamp.json")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Repository, str]]:
    repo = Repository(tmp_path / "server")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(repo.dir))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield repo, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _fetch(repo: Repository, url: str, tmp_path: Path) -> Path:
    trusted = tmp_path / "terminal" / "tuf"
    if not trusted.exists():
        trusted.mkdir(parents=True)
        shutil.copy(repo.root, trusted / "root.json")
    return fetch_bundle(
        metadata_dir=trusted,
        metadata_url=f"{url}/metadata/",
        targets_url=f"{url}/targets/",
        target=NAME,
        download_dir=tmp_path / "terminal" / "downloads",
        socket_timeout_s=10,
    )


def test_a_bundle_the_metadata_vouches_for_is_downloaded(
    server: tuple[Repository, str], tmp_path: Path
) -> None:
    repo, url = server
    repo.publish(NAME, b"bundle bytes")
    assert _fetch(repo, url, tmp_path).read_bytes() == b"bundle bytes"


def test_a_bundle_swapped_on_the_server_is_refused(
    server: tuple[Repository, str], tmp_path: Path
) -> None:
    repo, url = server
    repo.publish(NAME, b"bundle bytes")
    for served in (repo.dir / "targets").iterdir():
        served.write_bytes(b"evil bytes!!")
    with pytest.raises(UpdateError, match="does not match its signed length or hash"):
        _fetch(repo, url, tmp_path)


def test_expired_timestamp_metadata_is_refused_as_a_freeze(
    server: tuple[Repository, str], tmp_path: Path
) -> None:
    repo, url = server
    repo.publish(NAME, b"bundle bytes", timestamp_expires=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(UpdateError, match="metadata has expired"):
        _fetch(repo, url, tmp_path)


def test_metadata_replayed_at_an_older_version_is_refused(
    server: tuple[Repository, str], tmp_path: Path
) -> None:
    repo, url = server
    repo.publish(NAME, b"bundle 1")
    old_timestamp = (repo.dir / "metadata" / "timestamp.json").read_bytes()
    repo.publish(NAME, b"bundle 2")
    assert _fetch(repo, url, tmp_path).read_bytes() == b"bundle 2"
    (repo.dir / "metadata" / "timestamp.json").write_bytes(old_timestamp)
    with pytest.raises(UpdateError, match="older metadata than this terminal has seen"):
        _fetch(repo, url, tmp_path)


def test_a_terminal_without_a_trusted_root_refuses_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(UpdateError, match="no trusted root.json"):
        fetch_bundle(
            metadata_dir=tmp_path,
            metadata_url="http://127.0.0.1:9/metadata/",
            targets_url="http://127.0.0.1:9/targets/",
            target=NAME,
            download_dir=tmp_path / "d",
        )
