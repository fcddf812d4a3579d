"""The two software slots of a terminal, which one runs, and the boot count of a new version.

Owns the layout under the update root (by default /opt/kiosk):
    slots/a, slots/b   one installed version each: payload files and site-packages/
    current            symlink to the slot the next start runs
    good               symlink to the last slot that reported healthy (runs the boot guard)
    state.json         the truth; the links are re-derived from it at every start
    .lock              serialises install, start, confirm and rollback

A new version is installed into the inactive slot and put on trial: every start counts
(record_start, run by the service before the terminal starts); it must be confirmed healthy
(confirm, called by the terminal once healthy or by a technician) within max_starts starts, or
the next start switches back to the previous version and records an update_rolled_back event.
The journal, configuration and token live outside the update root and are never touched here.
It never fetches bundles (kiosk.updates.fetch) and never checks signatures itself
(kiosk.updates.bundle does).
"""

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from kiosk.message_text import MessageText, error_text
from kiosk.updates.bundle import InstallTarget, verify_bundle
from kiosk.updates.events import RollbackReason, UpdateEventKind
from kiosk.updates.metadata import UpdateError

SLOTS = ("a", "b")
STATE = "state.json"
STATE_FORMAT = 1
DEFAULT_MAX_STARTS = 3
KEPT_EVENTS = 100
SITE_PACKAGES = "site-packages"

WheelInstaller = Callable[[Sequence[Path], Path], None]
# progress(step text) while installing: for a technician's terminal and update_progress events;
# each text is a MessageText, so the technician's tool can say it in their language.
InstallProgress = Callable[[str], None]
StartAction = Literal["no_software", "normal", "trial", "rolled_back"]


def pip_install_wheels(wheels: Sequence[Path], target: Path) -> None:
    """Install exactly the bundle's wheels into target, offline, without resolving anything.

    --no-index --no-deps: the bundle is the complete, signed set of wheels; pip must neither
    reach a package index nor pull in anything that was not signed.
    """
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-index", "--no-deps", "--no-compile", "--target", str(target),
        *(str(w) for w in wheels),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        detail = lines[-1].strip() if lines else f"pip exited with {result.returncode}"
        raise UpdateError(
            MessageText("installing the bundle's wheels failed: {detail}", detail=detail)
        )


@dataclass(frozen=True)
class SlotInfo:
    name: str
    version: str | None
    installed: str | None


@dataclass(frozen=True)
class Trial:
    slot: str
    fallback: str
    version: str
    starts: int
    max_starts: int


@dataclass(frozen=True)
class UpdateStatus:
    root: Path
    active: SlotInfo | None
    good: str | None
    slots: tuple[SlotInfo, ...]
    trial: Trial | None
    events: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "active_slot": self.active.name if self.active else None,
            "active_version": self.active.version if self.active else None,
            "good_slot": self.good,
            "slots": {s.name: {"version": s.version, "installed": s.installed} for s in self.slots},
            "trial": None
            if self.trial is None
            else {
                "slot": self.trial.slot,
                "fallback": self.trial.fallback,
                "version": self.trial.version,
                "starts": self.trial.starts,
                "max_starts": self.trial.max_starts,
            },
            "events": list(self.events),
        }


@dataclass(frozen=True)
class StartDecision:
    """What record_start decided for this start of the terminal."""

    action: StartAction
    version: str | None
    starts: int = 0
    max_starts: int = 0
    rolled_back_from: str | None = None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SlotStore:
    """A/B slots under one root directory; every method takes the lock and persists first."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # -- state ------------------------------------------------------------------------------

    def _empty_state(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "active": None,
            "good": None,
            "slots": {name: None for name in SLOTS},
            "trial": None,
            "events": [],
            "next_seq": 1,
            "reported_seq": 0,
        }

    def _load(self) -> dict[str, Any]:
        path = self.root / STATE
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return self._empty_state()
        except (OSError, ValueError) as exc:
            raise UpdateError(
                MessageText(
                    "update state {path} is unreadable ({problem}): restore it from the slot "
                    "directories or reinstall with 'kiosk-tool update install'",
                    path=path,
                    problem=error_text(exc),
                )
            ) from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise UpdateError(
                MessageText(
                    "update state {path} has an unknown format: use a newer kiosk-tool", path=path
                )
            )
        return state

    def _save(self, state: dict[str, Any]) -> None:
        # Write, fsync, rename, fsync the directory: after a power cut the state is the old
        # one or the new one, never a torn file.
        path = self.root / STATE
        tmp = path.with_name(STATE + ".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.root)
        self._sync_links(state)

    def _link(self, name: str, slot: str | None) -> None:
        link = self.root / name
        if slot is None:
            link.unlink(missing_ok=True)
            return
        target = f"slots/{slot}"
        if link.is_symlink() and os.readlink(link) == target:
            return
        tmp = self.root / f".{name}.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp)
        os.replace(tmp, link)  # rename is atomic: the link is the old slot or the new one

    def _sync_links(self, state: dict[str, Any]) -> None:
        self._link("current", state["active"])
        self._link("good", state["good"])
        _fsync_dir(self.root)

    def _event(self, state: dict[str, Any], kind: str, now: datetime, /, **fields: Any) -> None:
        seq = state["next_seq"]
        state["next_seq"] = seq + 1
        state["events"].append({"seq": seq, "type": kind, "time": _iso(now), **fields})
        del state["events"][:-KEPT_EVENTS]

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        try:
            (self.root / "slots").mkdir(parents=True, exist_ok=True)
            lock = (self.root / ".lock").open("a")
        except OSError as exc:
            raise UpdateError(
                MessageText(
                    "cannot use update root {root}: {problem}; run as the kiosk user or root",
                    root=self.root,
                    problem=exc.strerror,
                )
            ) from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield self._load()

    def _version(self, state: dict[str, Any], slot: str | None) -> str | None:
        if slot is None or state["slots"].get(slot) is None:
            return None
        version: str = state["slots"][slot]["version"]
        return version

    # -- operations -------------------------------------------------------------------------

    def status(self) -> UpdateStatus:
        with self._locked() as state:
            return self._status(state)

    def read_status(self) -> UpdateStatus:
        """The status without taking the lock, for a reader that may not write the root.

        state.json is only ever replaced by a rename, so a reader sees one whole version.
        """
        return self._status(self._load())

    def record_event(self, kind: str, now: datetime, **fields: Any) -> None:
        """Keep an event for telemetry (update_progress and the like) in the state."""
        with self._locked() as state:
            self._event(state, kind, now, **fields)
            self._save(state)

    def _status(self, state: dict[str, Any]) -> UpdateStatus:
        slots = tuple(
            SlotInfo(name, (info or {}).get("version"), (info or {}).get("installed"))
            for name, info in ((n, state["slots"][n]) for n in SLOTS)
        )
        active = next((s for s in slots if s.name == state["active"]), None)
        trial = state["trial"]
        return UpdateStatus(
            root=self.root,
            active=active,
            good=state["good"],
            slots=slots,
            trial=None if trial is None else Trial(**trial),
            events=tuple(state["events"]),
        )

    def install(
        self,
        bundle: Path,
        release_public_pem: bytes,
        *,
        hardware: str,
        now: datetime,
        max_starts: int = DEFAULT_MAX_STARTS,
        wheel_installer: WheelInstaller = pip_install_wheels,
        progress: InstallProgress | None = None,
    ) -> UpdateStatus:
        """Verify bundle and install it into the inactive slot, on trial from the next start."""
        say = progress or (lambda text: None)
        if max_starts < 1:
            raise UpdateError("max starts must be at least 1: the new version needs one start")
        with self._locked() as state:
            trial = state["trial"]
            if trial is not None:
                raise UpdateError(
                    MessageText(
                        "version {version} is still on trial: confirm it ('kiosk-tool update "
                        "confirm') or roll it back before installing another",
                        version=trial["version"],
                    )
                )
            active = state["active"]
            slot = "a" if active is None else next(s for s in SLOTS if s != active)
            target = InstallTarget(hardware, self._version(state, active), now)
            # Check everything before touching the inactive slot: a refused bundle must leave
            # the older version there for a rollback. Extraction below checks every byte again.
            say(
                MessageText(
                    "[1/4] checking the release signature and every file of {bundle}",
                    bundle=bundle.name,
                )
            )
            verify_bundle(bundle, release_public_pem, target)
            # The slot is marked empty before it is cleared: a crash mid-install leaves an
            # empty slot, never a half-written one that looks installed.
            state["slots"][slot] = None
            self._save(state)
            slot_dir = self.root / "slots" / slot
            shutil.rmtree(slot_dir, ignore_errors=True)
            try:
                slot_dir.mkdir(parents=True)
                say(
                    MessageText(
                        "[2/4] extracting into slot {slot}, hashing every byte again", slot=slot
                    )
                )
                metadata = verify_bundle(bundle, release_public_pem, target, extract_to=slot_dir)
                wheels = sorted((slot_dir / "software").glob("*.whl"))
                say(
                    MessageText(
                        "[3/4] installing {count} wheels into slot {slot}",
                        count=len(wheels),
                        slot=slot,
                    )
                )
                wheel_installer(wheels, slot_dir / SITE_PACKAGES)
                # pip does not fsync: flush everything before the state points at this slot.
                say(
                    MessageText(
                        "[4/4] writing to storage and switching the next start to the new slot"
                    )
                )
                os.sync()
            except BaseException:
                shutil.rmtree(slot_dir, ignore_errors=True)
                raise
            state["slots"][slot] = {"version": metadata.version, "installed": _iso(now)}
            previous = self._version(state, active)
            if active is None:
                # The first software on a terminal has nothing to fall back to: it is good.
                state["active"] = state["good"] = slot
            else:
                state["active"] = slot
                state["trial"] = {
                    "slot": slot,
                    "fallback": active,
                    "version": metadata.version,
                    "starts": 0,
                    "max_starts": max_starts,
                }
            self._event(
                state, UpdateEventKind.INSTALLED, now,
                version=metadata.version, slot=slot, previous_version=previous,
            )  # fmt: skip
            self._save(state)
            return self._status(state)

    def record_start(self, now: datetime) -> StartDecision:
        """Count one start of the terminal; roll back a version on trial that used its starts."""
        with self._locked() as state:
            active = state["active"]
            trial = state["trial"]
            if active is None:
                self._sync_links(state)
                return StartDecision("no_software", None)
            if trial is None:
                self._sync_links(state)
                return StartDecision("normal", self._version(state, active))
            if trial["starts"] >= trial["max_starts"]:
                fallback = trial["fallback"]
                state["active"] = state["good"] = fallback
                state["trial"] = None
                self._event(
                    state, UpdateEventKind.ROLLED_BACK, now,
                    from_version=trial["version"], to_version=self._version(state, fallback),
                    starts=trial["starts"], reason=RollbackReason.NOT_CONFIRMED,
                )  # fmt: skip
                self._save(state)
                return StartDecision(
                    "rolled_back",
                    self._version(state, fallback),
                    trial["starts"],
                    trial["max_starts"],
                    rolled_back_from=trial["version"],
                )
            trial["starts"] += 1
            self._save(state)
            return StartDecision("trial", trial["version"], trial["starts"], trial["max_starts"])

    def confirm(self, now: datetime) -> str | None:
        """Mark the version on trial healthy; return it, or None when nothing was on trial.

        Safe to call at every healthy start: without a trial it changes nothing.
        """
        with self._locked() as state:
            trial = state["trial"]
            if trial is None:
                return None
            state["good"] = trial["slot"]
            state["trial"] = None
            self._event(
                state,
                UpdateEventKind.CONFIRMED,
                now,
                version=trial["version"],
                starts=trial["starts"],
            )
            self._save(state)
            version: str = trial["version"]
            return version

    def rollback(self, now: datetime) -> StartDecision:
        """A technician's rollback: run the other slot's version from the next start."""
        with self._locked() as state:
            active = state["active"]
            other = None if active is None else next(s for s in SLOTS if s != active)
            if other is None or self._version(state, other) is None:
                raise UpdateError(
                    "there is no other version to roll back to: only one version is installed"
                )
            from_version = self._version(state, active)
            state["active"] = state["good"] = other
            state["trial"] = None
            self._event(
                state, UpdateEventKind.ROLLED_BACK, now,
                from_version=from_version, to_version=self._version(state, other),
                starts=0, reason=RollbackReason.TECHNICIAN,
            )  # fmt: skip
            self._save(state)
            return StartDecision(
                "rolled_back", self._version(state, other), rolled_back_from=from_version
            )

    def pending_events(self) -> list[dict[str, Any]]:
        """Events not yet reported to the back office, oldest first (telemetry sends them)."""
        with self._locked() as state:
            return [e for e in state["events"] if e["seq"] > state["reported_seq"]]

    def read_pending_events(self) -> list[dict[str, Any]]:
        """pending_events without the lock, for a reader that may not write the root."""
        state = self._load()
        return [e for e in state["events"] if e["seq"] > state["reported_seq"]]

    def mark_reported(self, seq: int) -> None:
        """Telemetry delivered every event up to seq: do not offer them again."""
        with self._locked() as state:
            if seq > state["reported_seq"]:
                state["reported_seq"] = seq
                self._save(state)
