"""Fetching bundles with TUF (python-tuf 7's ngclient) from a real HTTP server on loopback.

The repository is written by kiosk.updates.publish, as the release team's update server is;
the faults (a swapped bundle, a frozen or replayed server) are made by editing its files.
"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kiosk.updates import UpdateError
from kiosk.updates.fetch import fetch_bundle
from kiosk.updates.publish import Role
from tests.fixtures.updates import UpdateServer, fetch_from

NAME = "kiosk-1.1.0.bundle"


def test_a_bundle_the_metadata_vouches_for_is_downloaded_with_progress(
    update_server: UpdateServer, tmp_path: Path
) -> None:
    data = b"bundle bytes" * 50_000
    update_server.publish(NAME, data)
    seen: list[tuple[int, int]] = []

    path = fetch_from(update_server, tmp_path / "terminal", NAME, lambda d, t: seen.append((d, t)))

    assert path.read_bytes() == data
    assert seen[-1] == (len(data), len(data))
    assert all(t == len(data) for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_a_bundle_swapped_on_the_server_is_refused(
    update_server: UpdateServer, tmp_path: Path
) -> None:
    update_server.publish(NAME, b"bundle bytes")
    for served in (update_server.dir / "targets").iterdir():
        served.write_bytes(b"evil bytes!!")
    with pytest.raises(UpdateError, match="does not match its signed length or hash"):
        fetch_from(update_server, tmp_path / "terminal", NAME)


def test_expired_timestamp_metadata_is_refused_as_a_freeze(
    update_server: UpdateServer, tmp_path: Path
) -> None:
    update_server.publish(NAME, b"bundle bytes")
    update_server.repo.refresh(
        [],
        signers=update_server.signers(),  # type: ignore[arg-type]
        now=datetime.now(UTC) - timedelta(days=2),
    )
    with pytest.raises(UpdateError, match="metadata has expired"):
        fetch_from(update_server, tmp_path / "terminal", NAME)


def test_metadata_replayed_at_an_older_version_is_refused(
    update_server: UpdateServer, tmp_path: Path
) -> None:
    update_server.publish(NAME, b"bundle 1")
    timestamp = update_server.dir / "metadata" / "timestamp.json"
    old_timestamp = timestamp.read_bytes()
    update_server.publish(NAME, b"bundle 2")
    assert fetch_from(update_server, tmp_path / "terminal", NAME).read_bytes() == b"bundle 2"
    timestamp.write_bytes(old_timestamp)
    with pytest.raises(UpdateError, match="older metadata than this terminal has seen"):
        fetch_from(update_server, tmp_path / "terminal", NAME)


def test_metadata_signed_by_a_key_the_root_does_not_trust_is_refused(
    update_server: UpdateServer, tmp_path: Path
) -> None:
    update_server.publish(NAME, b"bundle bytes")
    stranger = update_server.new_key("stranger")
    update_server.key_files[Role.TIMESTAMP] = stranger
    timestamp = update_server.dir / "metadata" / "timestamp.json"
    doc = json.loads(timestamp.read_text())
    # Re-sign the timestamp with a key the root never listed: exactly what a thief of the
    # server (but not of the keys) could do.
    from tuf.api.metadata import Metadata

    metadata = Metadata.from_dict(doc)
    metadata.signatures.clear()
    metadata.sign(update_server.signer(Role.TIMESTAMP))  # type: ignore[arg-type]
    metadata.to_file(str(timestamp))
    with pytest.raises(UpdateError, match="not signed by enough trusted keys"):
        fetch_from(update_server, tmp_path / "terminal", NAME)


def test_a_target_the_server_does_not_offer_is_named(
    update_server: UpdateServer, tmp_path: Path
) -> None:
    update_server.publish(NAME, b"bundle bytes")
    with pytest.raises(UpdateError, match="does not offer kiosk-9.bundle"):
        fetch_from(update_server, tmp_path / "terminal", "kiosk-9.bundle")


def test_a_terminal_without_a_trust_anchor_refuses_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(UpdateError, match="no trusted update-server root"):
        fetch_bundle(
            trusted_root=tmp_path / "absent.json",
            metadata_dir=tmp_path / "tuf",
            metadata_url="http://127.0.0.1:9/metadata/",
            targets_url="http://127.0.0.1:9/targets/",
            target=NAME,
            download_dir=tmp_path / "d",
        )


def test_an_unreachable_server_is_one_clear_error(
    update_server: UpdateServer, tmp_path: Path
) -> None:
    update_server.publish(NAME, b"bundle bytes")
    terminal = tmp_path / "terminal"
    fetch_from(update_server, terminal, NAME)
    with pytest.raises(UpdateError, match="update server cannot be reached"):
        fetch_bundle(
            trusted_root=terminal / "tuf-root.json",
            metadata_dir=terminal / "tuf",
            metadata_url="http://127.0.0.1:9/metadata/",
            targets_url="http://127.0.0.1:9/targets/",
            target=NAME,
            download_dir=terminal / "other",
            socket_timeout_s=2,
        )
