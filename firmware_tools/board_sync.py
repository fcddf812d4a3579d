"""Keep the I/O board's firmware the one the running software slot ships.

The link protocol is bumped when the board and host must change together (docs/ioboard.md),
and the host speaks exactly one version. So each slot carries its own firmware build
(payload/ioboard/, made by `kiosk-tool ioboard build` at release), and the boot guard, as
root and before the terminal opens the port, compares the board's files with that build's
manifest by their SHA-256 on the board and flashes (with verification) only when they
differ. After a rollback the same check puts the older slot's firmware back, so both slots
keep talking to the board. Owns that decision only; building, flashing and hashing are
drivers.ioboard.build's.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.ioboard.build import (
    MANIFEST_NAME,
    MPREMOTE,
    FirmwareBuildError,
    Runner,
    flash_firmware,
    hash_script,
    parse_hashes,
    read_manifest,
    run_tool,
    verify_hashes,
)
from kiosk.devices import DeviceError
from kiosk.message_text import MessageText, error_text
from kiosk.updates.events import UpdateEventKind


@dataclass(frozen=True)
class SyncResult:
    text: str  # a MessageText: kiosk-tool says it in the technician's language
    event: UpdateEventKind | None = None  # for telemetry, when something happened
    fields: dict[str, Any] = field(default_factory=dict)


def _stop_link_loop(port: str) -> None:
    from firmware_tools.commands.ioboard import _stop_link_loop as stop

    stop(port)


def sync_board_firmware(
    build: Path,
    port: str,
    progress: Callable[[str], None],
    runner: Runner = run_tool,
    stop_link_loop: Callable[[str], None] = _stop_link_loop,
) -> SyncResult:
    """Flash build onto the board at port unless the board already holds exactly it.

    Never raises: a board that cannot be flashed must not stop the terminal's start (it
    comes up with the cash inlets out of service and says why); the result says what to do.
    """
    if not (build / MANIFEST_NAME).is_file():
        return SyncResult(
            MessageText(
                "the running slot carries no I/O board firmware ({build}): not flashed",
                build=build,
            )
        )
    if not os.path.exists(port):
        return SyncResult(MessageText("no I/O board at {port}: firmware not checked", port=port))
    try:
        manifest = read_manifest(build)
        version = str(manifest["firmware_version"])
        stop_link_loop(port)
        devices = [entry["device"] for entry in manifest["files"]]
        answer = runner([*MPREMOTE, "connect", port, "exec", hash_script(devices)])
        if answer.returncode == 0 and not verify_hashes(manifest, parse_hashes(answer.stdout)):
            runner([*MPREMOTE, "connect", port, "reset"])
            return SyncResult(
                MessageText("the I/O board runs firmware {version} already", version=version)
            )
        flash_firmware(build, port, progress, runner=runner)
    except (FirmwareBuildError, DeviceError, OSError, KeyError, ValueError) as exc:
        return SyncResult(
            MessageText(
                "the I/O board could not be given firmware from {build}: {problem}; flash it "
                "with `kiosk-tool ioboard flash --port {port} --build {build}`",
                build=build,
                problem=error_text(exc),
                port=port,
            ),
            UpdateEventKind.IOBOARD_FLASH_FAILED,
            {"reason": str(exc)[:300]},
        )
    return SyncResult(
        MessageText("flashed and verified I/O board firmware {version}", version=version),
        UpdateEventKind.IOBOARD_FLASHED,
        {"firmware_version": version},
    )
