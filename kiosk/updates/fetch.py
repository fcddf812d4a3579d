"""Fetching update bundles from the update server with The Update Framework (python-tuf).

Owns the client side of TUF: the trust anchor (the update server's first root.json, installed
read-only at provisioning and handed to python-tuf as its bootstrap), the metadata cache
(newer roots, rotated only by metadata signed by the old root's threshold of keys), refreshing
timestamp -> snapshot -> targets in the order the specification demands, and downloading a
bundle only when its length and hashes match the signed targets metadata. python-tuf's
ngclient does all of this; we do not re-implement it. The bundle itself is then verified again
with the release key by kiosk.updates.bundle: TUF protects the delivery, the release key the
contents. Downloads report their progress (bytes so far, bytes signed) to a callback. This module
never installs anything.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

from tuf.api import exceptions as tuf_errors
from tuf.ngclient.config import UpdaterConfig
from tuf.ngclient.updater import Updater
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

from kiosk.updates.metadata import UpdateError

# Seconds without a byte before a download is abandoned (slow-retrieval attack).
SOCKET_TIMEOUT_S = 20

# progress(done_bytes, total_bytes) while the bundle downloads; total is the signed length.
Progress = Callable[[int, int], None]


class _CountingFetcher(Urllib3Fetcher):
    """python-tuf's urllib3 fetcher, telling progress about every chunk of a target."""

    def __init__(self, socket_timeout: int, progress: Progress | None) -> None:
        super().__init__(socket_timeout=socket_timeout, app_user_agent="kiosk")
        self._progress = progress
        self.expected: int | None = None  # set while a target (not metadata) downloads

    def _fetch(self, url: str) -> Iterator[bytes]:
        done = 0
        for chunk in super()._fetch(url):
            done += len(chunk)
            if self._progress is not None and self.expected is not None:
                self._progress(min(done, self.expected), self.expected)
            yield chunk


def fetch_bundle(
    *,
    trusted_root: Path,
    metadata_dir: Path,
    metadata_url: str,
    targets_url: str,
    target: str,
    download_dir: Path,
    socket_timeout_s: int = SOCKET_TIMEOUT_S,
    progress: Progress | None = None,
) -> Path:
    """Download the named bundle if the server's TUF metadata vouches for it; return its path.

    trusted_root is the trust anchor (installed at provisioning, never written here);
    metadata_dir caches the metadata python-tuf has verified since (rotated roots included).
    """
    try:
        anchor = trusted_root.read_bytes()
    except OSError:
        raise UpdateError(
            f"no trusted update-server root at {trusted_root}: install the update server's "
            "root.json there when provisioning the terminal (provision.sh --tuf-root)"
        ) from None
    fetcher = _CountingFetcher(socket_timeout_s, progress)
    try:
        metadata_dir.mkdir(parents=True, exist_ok=True)
        download_dir.mkdir(parents=True, exist_ok=True)
        updater = Updater(
            metadata_dir=str(metadata_dir),
            metadata_base_url=metadata_url,
            target_dir=str(download_dir),
            target_base_url=targets_url,
            fetcher=fetcher,
            config=UpdaterConfig(prefix_targets_with_hash=True),
            bootstrap=anchor,
        )
        updater.refresh()
        info = updater.get_targetinfo(target)
        if info is None:
            raise UpdateError(
                f"the update server does not offer {target}: check the bundle name "
                "('kiosk-tool update status' shows the installed version)"
            )
        cached = updater.find_cached_target(info)
        if cached is not None:
            if progress is not None:
                progress(info.length, info.length)
            return Path(cached)
        fetcher.expected = info.length
        return Path(updater.download_target(info))
    except tuf_errors.ExpiredMetadataError as exc:
        raise UpdateError(
            f"the update server's metadata has expired ({exc}): the server may be frozen or "
            "replayed; report it and check the terminal's clock"
        ) from None
    except tuf_errors.BadVersionNumberError as exc:
        raise UpdateError(
            f"the update server sent older metadata than this terminal has seen ({exc}): "
            "a rollback attack or a broken mirror; report it"
        ) from None
    except tuf_errors.UnsignedMetadataError as exc:
        raise UpdateError(
            f"the update server's metadata is not signed by enough trusted keys ({exc}): "
            "do not install from this server; report it"
        ) from None
    except tuf_errors.LengthOrHashMismatchError as exc:
        raise UpdateError(
            f"a download does not match its signed length or hash ({exc}): fetch again later"
        ) from None
    except tuf_errors.SlowRetrievalError:
        raise UpdateError(
            # python-tuf 7 reports a refused connection as a slow retrieval too.
            "the update server cannot be reached, is too slow or stopped sending: check the "
            "network and the URL, then try again"
        ) from None
    except tuf_errors.DownloadError as exc:
        raise UpdateError(
            f"cannot download from the update server ({exc}): check the URL and the network"
        ) from None
    except (tuf_errors.RepositoryError, ValueError) as exc:
        # ValueError: a trust anchor or cached metadata that does not even parse.
        raise UpdateError(
            f"the update server's metadata was refused ({type(exc).__name__}: {exc}): report it"
        ) from None
    except OSError as exc:
        raise UpdateError(f"cannot store update metadata in {metadata_dir}: {exc}") from None
