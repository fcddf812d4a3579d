"""Fetching update bundles from the update server with The Update Framework (python-tuf).

Owns the client side of TUF: the trusted root.json under ROOT/tuf (installed at provisioning,
rotated only by metadata signed by the old root's threshold of keys), refreshing
timestamp -> snapshot -> targets in the order the specification demands, and downloading a
bundle only when its length and hashes match the signed targets metadata. python-tuf's
ngclient does all of this; we do not re-implement it. The bundle itself is then verified again
with the release key by kiosk.updates.bundle: TUF protects the delivery, the release key the
contents. This module never installs anything.
"""

from pathlib import Path

from tuf.api import exceptions as tuf_errors
from tuf.ngclient.config import UpdaterConfig
from tuf.ngclient.updater import Updater
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

from kiosk.updates.metadata import UpdateError

TRUSTED_ROOT = "root.json"
# Seconds without a byte before a download is abandoned (slow-retrieval attack).
SOCKET_TIMEOUT_S = 20


def fetch_bundle(
    *,
    metadata_dir: Path,
    metadata_url: str,
    targets_url: str,
    target: str,
    download_dir: Path,
    socket_timeout_s: int = SOCKET_TIMEOUT_S,
) -> Path:
    """Download the named bundle if the server's TUF metadata vouches for it; return its path."""
    if not (metadata_dir / TRUSTED_ROOT).is_file():
        raise UpdateError(
            f"no trusted {TRUSTED_ROOT} in {metadata_dir}: install the update server's root "
            "metadata there when provisioning the terminal"
        )
    download_dir.mkdir(parents=True, exist_ok=True)
    try:
        updater = Updater(
            metadata_dir=str(metadata_dir),
            metadata_base_url=metadata_url,
            target_dir=str(download_dir),
            target_base_url=targets_url,
            fetcher=Urllib3Fetcher(socket_timeout=socket_timeout_s, app_user_agent="kiosk"),
            config=UpdaterConfig(prefix_targets_with_hash=True),
        )
        updater.refresh()
        info = updater.get_targetinfo(target)
        if info is None:
            raise UpdateError(
                f"the update server does not offer {target}: check the bundle name "
                "('kiosk-tool update status' shows the installed version)"
            )
        cached = updater.find_cached_target(info)
        return Path(cached if cached is not None else updater.download_target(info))
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
            "the update server is too slow or stopped sending: check the network, try again"
        ) from None
    except tuf_errors.DownloadError as exc:
        raise UpdateError(
            f"cannot download from the update server ({exc}): check the URL and the network"
        ) from None
    except tuf_errors.RepositoryError as exc:
        raise UpdateError(
            f"the update server's metadata was refused ({type(exc).__name__}: {exc}): report it"
        ) from None
    except OSError as exc:
        raise UpdateError(f"cannot store update metadata in {metadata_dir}: {exc}") from None
