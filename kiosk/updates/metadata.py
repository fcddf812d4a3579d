"""The signed description of an update bundle: what it holds, for whom, and until when.

Owns the metadata document (format, version, target hardware, file hashes, expiry), its
canonical bytes (RFC 8785 through kiosk.journal.canonical) and the release-key signature
over them (ECDSA P-256, SHA-256, DER), so that
`openssl dgst -sha256 -verify release.pub.pem -signature metadata.json.sig metadata.json`
checks a bundle without our code. It never reads a bundle file or touches a slot.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from packaging.version import InvalidVersion, Version

from kiosk.errors import KioskError
from kiosk.journal.canonical import JournalError, canonical_json
from kiosk.message_text import MessageText, error_text

FORMAT = "kiosk-update/1"
# Paths inside a bundle's payload: plain relative names, no "..", no hidden tricks.
_PATH = re.compile(r"^[A-Za-z0-9_.+-]+(/[A-Za-z0-9_.+-]+)*\Z")
_HARDWARE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}\Z")
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
PAYLOAD_AREAS = ("software", "ioboard", "catalog", "fonts")


class UpdateError(KioskError):
    """An update was refused or could not be done; the message says why and what to do."""


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    length: int


@dataclass(frozen=True)
class BundleMetadata:
    version: str
    hardware: tuple[str, ...]
    created: datetime
    expires: datetime
    files: Mapping[str, FileEntry]

    def to_json(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "version": self.version,
            "hardware": list(self.hardware),
            "created": _timestamp(self.created),
            "expires": _timestamp(self.expires),
            "files": {
                path: {"sha256": entry.sha256, "length": entry.length}
                for path, entry in sorted(self.files.items())
            },
        }

    def to_bytes(self) -> bytes:
        """The canonical JSON bytes that are stored as metadata.json and signed."""
        try:
            return canonical_json(self.to_json())
        except JournalError as exc:
            raise UpdateError(
                MessageText("bundle metadata cannot be written: {problem}", problem=error_text(exc))
            ) from None


def version_key(version: str) -> Version:
    """The comparable form of a software version (PEP 440, as the wheels carry it)."""
    try:
        return Version(version)
    except InvalidVersion:
        raise UpdateError(
            MessageText(
                "version {version!r} is not a release version like 1.4.0: use the wheel's version",
                version=version,
            )
        ) from None


def check_hardware_name(name: str) -> str:
    if not _HARDWARE.match(name):
        raise UpdateError(
            MessageText(
                "hardware name {name!r} is not lower-case letters, digits and dashes like "
                "rpi4-arm64",
                name=name,
            )
        )
    return name


def check_payload_path(path: str) -> str:
    if not _PATH.match(path) or ".." in path.split("/") or path.split("/")[0] not in PAYLOAD_AREAS:
        raise UpdateError(
            MessageText(
                "bundle path {path!r} is not allowed: files go under {areas} with plain names",
                path=path,
                areas=", ".join(PAYLOAD_AREAS),
            )
        )
    return path


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise UpdateError("bundle times must carry a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: object, key: str) -> datetime:
    if not isinstance(value, str):
        raise UpdateError(
            MessageText("bundle metadata '{key}' is not a time: the bundle is damaged", key=key)
        )
    try:
        moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise UpdateError(
            MessageText(
                "bundle metadata '{key}' is {value!r}, not YYYY-MM-DDTHH:MM:SSZ",
                key=key,
                value=value,
            )
        ) from None
    return moment.replace(tzinfo=UTC)


def parse_metadata(data: bytes) -> BundleMetadata:
    """Parse metadata.json; refuse anything that is not exactly the documented format."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise UpdateError(
            "bundle metadata is not JSON: the bundle is damaged; build it again"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UpdateError(
            MessageText(
                "bundle metadata is not in format {FORMAT}: use a matching kiosk-tool",
                FORMAT=FORMAT,
            )
        )
    expected = {"format", "version", "hardware", "created", "expires", "files"}
    if set(doc) != expected:
        odd = ", ".join(sorted(set(doc) ^ expected))
        raise UpdateError(
            MessageText(
                "bundle metadata has missing or unknown keys ({odd}): build it again", odd=odd
            )
        )
    version = doc["version"]
    if not isinstance(version, str):
        raise UpdateError("bundle metadata 'version' is not text: the bundle is damaged")
    version_key(version)
    hardware = doc["hardware"]
    if (
        not isinstance(hardware, list)
        or not hardware
        or not all(isinstance(h, str) for h in hardware)
    ):
        raise UpdateError("bundle metadata 'hardware' must list at least one hardware name")
    files_doc = doc["files"]
    if not isinstance(files_doc, dict) or not files_doc:
        raise UpdateError("bundle metadata lists no files: the bundle is empty; build it again")
    files: dict[str, FileEntry] = {}
    for path, entry in files_doc.items():
        check_payload_path(path)
        if (
            not isinstance(entry, dict)
            or set(entry) != {"sha256", "length"}
            or not isinstance(entry["sha256"], str)
            or not _SHA256.match(entry["sha256"])
            or not isinstance(entry["length"], int)
            or isinstance(entry["length"], bool)
            or entry["length"] < 0
        ):
            raise UpdateError(
                MessageText(
                    "bundle metadata entry for {path} is damaged: build it again", path=path
                )
            )
        files[path] = FileEntry(entry["sha256"], entry["length"])
    if not any(path.startswith("software/") and path.endswith(".whl") for path in files):
        raise UpdateError("bundle holds no software wheel: build it with the terminal's wheels")
    return BundleMetadata(
        version=version,
        hardware=tuple(check_hardware_name(h) for h in hardware),
        created=_parse_time(doc["created"], "created"),
        expires=_parse_time(doc["expires"], "expires"),
        files=files,
    )


def _public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm):
        raise UpdateError(
            "release public key is not a PEM public key: give the .pub.pem file"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise UpdateError("release public key is not an ECDSA P-256 key: releases need P-256")
    return key


def release_key_fingerprint(public_pem: bytes) -> str:
    """SHA-256 of the key's DER SubjectPublicKeyInfo, in hex, as openssl computes it."""
    der = _public_key(public_pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def sign_metadata(data: bytes, private_pem: bytes) -> bytes:
    """The DER ECDSA P-256 / SHA-256 signature of data with the release private key."""
    try:
        key = serialization.load_pem_private_key(private_pem, password=None)
    except TypeError:
        raise UpdateError(
            "release private key is password-protected: give an unencrypted PEM"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise UpdateError(
            "release private key is not a PEM private key: give the key file"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise UpdateError("release private key is not an ECDSA P-256 key: releases need P-256")
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def verify_metadata(data: bytes, sig: bytes | None, public_pem: bytes) -> BundleMetadata:
    """Check the release signature over data, then parse it; raise UpdateError otherwise."""
    key = _public_key(public_pem)
    if not sig:
        raise UpdateError(
            "bundle is not signed: sign it with 'kiosk-tool update sign' and the release key"
        )
    try:
        key.verify(sig, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise UpdateError(
            "bundle signature does not match: the bundle was changed after signing or signed "
            "with another key; get a correctly signed bundle from the release team"
        ) from None
    metadata = parse_metadata(data)
    if metadata.to_bytes() != data:
        # Signed but not canonical: the signer did not use kiosk-tool; refuse rather than guess.
        raise UpdateError("bundle metadata is not canonical JSON: sign it with kiosk-tool")
    return metadata
