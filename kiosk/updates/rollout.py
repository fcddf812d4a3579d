"""The `update` remote command's order: which version, which terminals, when. Pure rules.

Owns the order's wire form (args of the signed `update` command, docs/mqtt.md section 4 and
docs/updates.md "Rollouts"), its validation, cohort membership and the time window. A
terminal belongs to a rollout's cohort when its bucket, a stable number in [0, 100) taken
from SHA-256 of the rollout id and the terminal's identity, is below the cohort's percent:
every stage of one rollout (1 %, 10 %, 100 %) keeps the terminals of the stages before it,
and another rollout draws a different set. It does no I/O.
"""

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from kiosk.updates.metadata import UpdateError, version_key

_ROLLOUT = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")
_TARGET = re.compile(r"^[A-Za-z0-9_.+-]{1,200}\Z")
ORDER_KEYS = {"rollout", "version", "target", "cohort_percent", "not_before", "not_after"}
OPTIONAL_KEYS = {"max_starts"}


class OrderState(StrEnum):
    """Where one order stands on this terminal (reported in update_progress events)."""

    NOT_IN_COHORT = "not_in_cohort"
    ALREADY_INSTALLED = "already_installed"
    WAITING = "waiting"  # accepted, its window has not opened yet
    DOWNLOADING = "downloading"
    INSTALLING = "installing"
    INSTALLED = "installed"  # in the inactive slot, on trial from the next start
    RESTARTING = "restarting"
    FAILED = "failed"
    EXPIRED = "expired"  # the window closed before it could be carried out


@dataclass(frozen=True)
class UpdateOrder:
    rollout: str
    version: str
    target: str
    cohort_percent: float
    not_before: datetime
    not_after: datetime
    max_starts: int | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "rollout": self.rollout,
            "version": self.version,
            "target": self.target,
            "cohort_percent": self.cohort_percent,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
        }
        if self.max_starts is not None:
            doc["max_starts"] = self.max_starts
        return doc

    def in_window(self, now: datetime) -> bool:
        return self.not_before <= now <= self.not_after


def _time(args: Mapping[str, Any], key: str) -> datetime:
    value = args.get(key)
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise UpdateError(f"update {key} {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise UpdateError(f"update {key} must carry a UTC offset")
    return moment


def parse_order(args: Mapping[str, Any]) -> UpdateOrder:
    """The order in a command's args; UpdateError names the first thing wrong."""
    missing = sorted(ORDER_KEYS - set(args))
    unknown = sorted(set(args) - ORDER_KEYS - OPTIONAL_KEYS)
    if missing:
        raise UpdateError(f"update command lacks {', '.join(missing)}")
    if unknown:
        raise UpdateError(f"update command has unknown args {', '.join(unknown)}")
    rollout, target, version = args["rollout"], args["target"], args["version"]
    if not isinstance(rollout, str) or not _ROLLOUT.match(rollout):
        raise UpdateError("update rollout must be 1-64 letters, digits or _ . : -")
    if not isinstance(target, str) or not _TARGET.match(target):
        raise UpdateError("update target must be a bundle file name like kiosk-1.4.0.bundle")
    if not isinstance(version, str):
        raise UpdateError("update version must be text like 1.4.0")
    version_key(version)
    percent = args["cohort_percent"]
    if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 < percent <= 100:
        raise UpdateError("update cohort_percent must be a number above 0 and at most 100")
    not_before, not_after = _time(args, "not_before"), _time(args, "not_after")
    if not_after <= not_before:
        raise UpdateError("update not_after must be later than not_before")
    max_starts = args.get("max_starts")
    if max_starts is not None and (
        isinstance(max_starts, bool) or not isinstance(max_starts, int) or not 1 <= max_starts <= 10
    ):
        raise UpdateError("update max_starts must be a whole number from 1 to 10")
    return UpdateOrder(rollout, version, target, float(percent), not_before, not_after, max_starts)


def cohort_bucket(rollout: str, station: str, terminal: str) -> float:
    """This terminal's stable place in [0, 100) for one rollout (two decimals)."""
    digest = hashlib.sha256(f"{rollout}\n{station}/{terminal}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100


def in_cohort(order: UpdateOrder, station: str, terminal: str) -> bool:
    return cohort_bucket(order.rollout, station, terminal) < order.cohort_percent
