"""Update bundle files: build, sign, and verify (optionally extracting) a bundle.

A bundle is one uncompressed tar file (the wheels inside are compressed already):
    metadata.json        canonical JSON, see kiosk.updates.metadata and docs/updates.md
    metadata.json.sig    DER ECDSA P-256 signature by the release key (added by sign)
    payload/<path>       every file listed in metadata.json, under software/, ioboard/, catalog/,
                         fonts/ (the touchscreen's prepared font faces, docs/updates.md)

Owns the tar layout and the checks that a file's bytes match the signed hashes. Members are
never extracted with tarfile's own extract (links, devices and "../" names are refused and the
destination path is built from the checked name), and nothing is read beyond the length the
signed metadata allows. It never decides where a bundle is installed (kiosk.updates.slots does).
"""

import hashlib
import io
import os
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kiosk.message_text import MessageText
from kiosk.updates.metadata import (
    BundleMetadata,
    FileEntry,
    UpdateError,
    check_hardware_name,
    check_payload_path,
    parse_metadata,
    sign_metadata,
    verify_metadata,
    version_key,
)

METADATA = "metadata.json"
SIGNATURE = "metadata.json.sig"
PAYLOAD = "payload/"
MAX_METADATA_BYTES = 1 << 20
_CHUNK = 1 << 16


@dataclass(frozen=True)
class InstallTarget:
    """What the terminal checks a bundle against before installing it."""

    hardware: str
    installed_version: str | None
    now: datetime


def _files_under(directory: Path, area: str) -> Iterable[tuple[str, Path]]:
    if not directory.is_dir():
        raise UpdateError(
            MessageText(
                "{directory} is not a directory: give the {area} build directory",
                directory=directory,
                area=area,
            )
        )
    for path in sorted(directory.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise UpdateError(
                MessageText(
                    "{path} is a link or special file: bundles hold plain files only", path=path
                )
            )
        if path.is_file() and "__pycache__" not in path.parts:
            yield check_payload_path(f"{area}/{path.relative_to(directory).as_posix()}"), path


def _digest(path: Path) -> FileEntry:
    sha = hashlib.sha256()
    length = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
            length += len(chunk)
    return FileEntry(sha.hexdigest(), length)


def _tar_info(name: str, size: int) -> tarfile.TarInfo:
    # Fixed owner, mode and time: the same inputs build the same bundle byte for byte.
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    return info


def build_bundle(
    out: Path,
    *,
    version: str,
    hardware: Sequence[str],
    created: datetime,
    expires: datetime,
    software_dir: Path,
    ioboard_dir: Path | None = None,
    catalog_dir: Path | None = None,
    fonts_dir: Path | None = None,
) -> BundleMetadata:
    """Write an unsigned bundle of the wheels in software_dir and the optional directories."""
    version_key(version)
    if not hardware:
        raise UpdateError("say which hardware the bundle is for: --hardware rpi4-arm64")
    if expires <= created:
        raise UpdateError("the bundle would expire before it is made: give a later expiry")
    sources: list[tuple[str, Path]] = []
    if not software_dir.is_dir():
        raise UpdateError(
            MessageText(
                "{software_dir} is not a directory: give the directory of wheels",
                software_dir=software_dir,
            )
        )
    wheels = sorted(software_dir.glob("*.whl"))
    if not wheels:
        raise UpdateError(
            MessageText(
                "{software_dir} holds no .whl file: run 'pip wheel' into it first",
                software_dir=software_dir,
            )
        )
    sources += [(check_payload_path(f"software/{w.name}"), w) for w in wheels]
    if ioboard_dir is not None:
        sources += list(_files_under(ioboard_dir, "ioboard"))
    if catalog_dir is not None:
        sources += list(_files_under(catalog_dir, "catalog"))
    if fonts_dir is not None:
        sources += list(_files_under(fonts_dir, "fonts"))
    metadata = BundleMetadata(
        version=version,
        hardware=tuple(check_hardware_name(h) for h in hardware),
        created=created,
        expires=expires,
        files={name: _digest(path) for name, path in sources},
    )
    data = metadata.to_bytes()
    tmp = out.with_name(out.name + ".part")
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_tar_info(METADATA, len(data)), io.BytesIO(data))
            for name, path in sources:
                with path.open("rb") as handle:
                    tar.addfile(_tar_info(PAYLOAD + name, path.stat().st_size), handle)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UpdateError(
            MessageText("cannot write bundle {out}: {problem}", out=out, problem=exc.strerror)
        ) from None
    return metadata


def _open(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:")
    except FileNotFoundError:
        raise UpdateError(
            MessageText("bundle {path} does not exist: check the path", path=path)
        ) from None
    except (tarfile.TarError, OSError):
        raise UpdateError(
            MessageText(
                "{path} is not an update bundle (not a tar file): fetch it again", path=path
            )
        ) from None


def _members(tar: tarfile.TarFile, path: Path) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    try:
        infos = tar.getmembers()
    except (tarfile.TarError, OSError):
        raise UpdateError(
            MessageText("bundle {path} is truncated or damaged: fetch it again", path=path)
        ) from None
    for info in infos:
        if not info.isfile():
            raise UpdateError(
                MessageText(
                    "bundle {path} holds {name!r}, which is not a plain file",
                    path=path,
                    name=info.name,
                )
            )
        if info.name in members:
            raise UpdateError(
                MessageText(
                    "bundle {path} holds {name!r} twice: it was tampered with",
                    path=path,
                    name=info.name,
                )
            )
        members[info.name] = info
    return members


def _read_small(tar: tarfile.TarFile, info: tarfile.TarInfo | None) -> bytes | None:
    if info is None:
        return None
    if info.size > MAX_METADATA_BYTES:
        raise UpdateError(
            MessageText(
                "bundle {name} is larger than 1 MiB: the bundle is not genuine", name=info.name
            )
        )
    handle = tar.extractfile(info)
    return handle.read() if handle is not None else None


def read_metadata(path: Path) -> tuple[bytes, bytes | None]:
    """The metadata bytes and signature (None when unsigned) of a bundle, unchecked."""
    with _open(path) as tar:
        members = _members(tar, path)
        data = _read_small(tar, members.get(METADATA))
        if data is None:
            raise UpdateError(
                MessageText(
                    "{path} has no {METADATA}: it is not an update bundle",
                    path=path,
                    METADATA=METADATA,
                )
            )
        return data, _read_small(tar, members.get(SIGNATURE))


def sign_bundle(path: Path, private_pem: bytes) -> BundleMetadata:
    """Add the release signature to an unsigned bundle (in place, atomically)."""
    data, sig = read_metadata(path)
    if sig is not None:
        raise UpdateError(
            MessageText(
                "bundle {path} is signed already: build a new one to sign it again", path=path
            )
        )
    metadata = parse_metadata(data)
    signature = sign_metadata(data, private_pem)
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_bytes(path.read_bytes())
        with tarfile.open(tmp, "a", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_tar_info(SIGNATURE, len(signature)), io.BytesIO(signature))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UpdateError(
            MessageText("cannot write bundle {path}: {problem}", path=path, problem=exc.strerror)
        ) from None
    return metadata


def check_target(metadata: BundleMetadata, target: InstallTarget) -> None:
    """Refuse expired metadata, the wrong hardware and a version not newer than installed."""
    if target.now >= metadata.expires:
        raise UpdateError(
            MessageText(
                "bundle {version} expired on {expires:%Y-%m-%d %H:%M} UTC: get a freshly signed "
                "bundle (or check the terminal's clock)",
                version=metadata.version,
                expires=metadata.expires,
            )
        )
    if target.hardware not in metadata.hardware:
        raise UpdateError(
            MessageText(
                "bundle {version} is for {hardware}, not for this {terminal_hardware} terminal: "
                "get the bundle built for {terminal_hardware}",
                version=metadata.version,
                hardware=", ".join(metadata.hardware),
                terminal_hardware=target.hardware,
            )
        )
    installed = target.installed_version
    if installed is not None and version_key(metadata.version) <= version_key(installed):
        raise UpdateError(
            MessageText(
                "bundle {version} is not newer than the installed {installed}: updates only move "
                "forward; to go back use 'kiosk-tool update rollback'",
                version=metadata.version,
                installed=installed,
            )
        )


def _copy_checked(
    tar: tarfile.TarFile, info: tarfile.TarInfo, entry: FileEntry, dest: Path | None
) -> None:
    name = info.name[len(PAYLOAD) :]
    if info.size != entry.length:
        raise UpdateError(
            MessageText("bundle file {name} has the wrong length: it was tampered with", name=name)
        )
    source = tar.extractfile(info)
    if source is None:
        raise UpdateError(
            MessageText("bundle file {name} cannot be read: fetch the bundle again", name=name)
        )
    sha = hashlib.sha256()
    out = None
    if dest is not None:
        target = dest.joinpath(*name.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        out = target.open("wb")
    try:
        remaining = entry.length
        while remaining > 0:
            chunk = source.read(min(_CHUNK, remaining))
            if not chunk:
                raise UpdateError(
                    MessageText(
                        "bundle file {name} is truncated: fetch the bundle again", name=name
                    )
                )
            sha.update(chunk)
            remaining -= len(chunk)
            if out is not None:
                out.write(chunk)
        if out is not None:
            out.flush()
            os.fsync(out.fileno())
    finally:
        if out is not None:
            out.close()
    if sha.hexdigest() != entry.sha256:
        raise UpdateError(
            MessageText(
                "bundle file {name} does not match its signed hash: tampered with", name=name
            )
        )


def verify_bundle(
    path: Path,
    release_public_pem: bytes,
    target: InstallTarget | None = None,
    extract_to: Path | None = None,
) -> BundleMetadata:
    """Check signature, every file's hash and (with a target) expiry, hardware and version.

    With extract_to, the payload is written there while it is hashed; on any refusal the
    caller must discard that directory (kiosk.updates.slots does).
    """
    with _open(path) as tar:
        members = _members(tar, path)
        data = _read_small(tar, members.get(METADATA))
        if data is None:
            raise UpdateError(
                MessageText(
                    "{path} has no {METADATA}: it is not an update bundle",
                    path=path,
                    METADATA=METADATA,
                )
            )
        metadata = verify_metadata(
            data, _read_small(tar, members.get(SIGNATURE)), release_public_pem
        )
        if target is not None:
            check_target(metadata, target)
        payload = {
            name[len(PAYLOAD) :]: info for name, info in members.items() if name.startswith(PAYLOAD)
        }
        extra = set(members) - {METADATA, SIGNATURE} - {PAYLOAD + p for p in payload}
        unlisted = sorted(extra | (set(payload) - set(metadata.files)))
        if unlisted:
            raise UpdateError(
                MessageText(
                    "bundle holds {name}, which its metadata does not list", name=unlisted[0]
                )
            )
        missing = sorted(set(metadata.files) - set(payload))
        if missing:
            raise UpdateError(
                MessageText(
                    "bundle lacks {name}, which its metadata lists: fetch again", name=missing[0]
                )
            )
        for name, entry in sorted(metadata.files.items()):
            _copy_checked(tar, payload[name], entry, extract_to)
    return metadata
