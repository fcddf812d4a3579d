"""Signed software updates with A/B slots, boot counting and automatic rollback.

Owns the update bundle format and its release-key verification (metadata, bundle), the two
slots and the trial of a new version (slots), and fetching bundles from an update server with
The Update Framework's protections (fetch). It never imports Kivy or a hardware library, and
never touches the journal, the configuration or the token: they live outside the update root.
See docs/updates.md.
"""

from kiosk.updates.bundle import (
    InstallTarget,
    build_bundle,
    check_target,
    read_metadata,
    sign_bundle,
    verify_bundle,
)
from kiosk.updates.metadata import (
    BundleMetadata,
    FileEntry,
    UpdateError,
    parse_metadata,
    release_key_fingerprint,
    sign_metadata,
    verify_metadata,
    version_key,
)
from kiosk.updates.slots import (
    DEFAULT_MAX_STARTS,
    SlotInfo,
    SlotStore,
    StartDecision,
    Trial,
    UpdateStatus,
    pip_install_wheels,
)

__all__ = [
    "DEFAULT_MAX_STARTS",
    "BundleMetadata",
    "FileEntry",
    "InstallTarget",
    "SlotInfo",
    "SlotStore",
    "StartDecision",
    "Trial",
    "UpdateError",
    "UpdateStatus",
    "build_bundle",
    "check_target",
    "parse_metadata",
    "pip_install_wheels",
    "read_metadata",
    "release_key_fingerprint",
    "sign_bundle",
    "sign_metadata",
    "verify_bundle",
    "verify_metadata",
    "version_key",
]
