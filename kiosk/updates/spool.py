"""The update spool: how the unprivileged terminal asks the privileged updater for changes.

The kiosk service may not write its own code (/opt/kiosk is read-only to it), so it asks:
it drops a request file into SPOOL/requests/ (its own data directory, by default
/var/lib/kiosk/updates), systemd's kiosk-updater.path starts kiosk-updater.service (root),
and that service (kiosk.updates.worker) carries the request out and writes
SPOOL/results/<id>.json. The rollout order being carried out is SPOOL/order.json.

Owns the file layout and the request/result documents; every file is written to a temporary
name, fsynced and renamed. Whatever the kiosk user wrote is hostile to the root side: a
request is at most 16 KiB of JSON with a known action, or it is answered with an error and
removed. It never performs a request itself.
"""

import json
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from kiosk.updates.metadata import UpdateError

MAX_REQUEST_BYTES = 16 * 1024
_ID = re.compile(r"^[0-9a-f]{16}\Z")


class Action(StrEnum):
    ORDER = "order"  # carry out a rollout order (fetch with TUF, install, within its window)
    CONFIRM = "confirm"  # the version on trial started healthy
    MARK_REPORTED = "mark_reported"  # telemetry delivered every update event up to "seq"


@dataclass(frozen=True)
class Request:
    id: str
    action: Action
    fields: dict[str, Any]


def write_json_atomic(path: Path, doc: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(doc, handle, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_json(path: Path, limit: int = MAX_REQUEST_BYTES) -> Any:
    """The JSON in path; None when absent; UpdateError when too large or not JSON."""
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        return None
    if len(data) > limit:
        raise UpdateError(f"{path.name} is larger than {limit} bytes")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise UpdateError(f"{path.name} is not JSON") from None


class UpdateSpool:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.requests = directory / "requests"
        self.results = directory / "results"
        self.order_file = directory / "order.json"
        self.downloads = directory / "downloads"
        self.tuf_cache = directory / "tuf"

    # ------------------------------------------------------------------ the terminal's side

    def submit(self, action: Action, **fields: Any) -> str:
        """Queue a request for the privileged updater; return its id."""
        self.requests.mkdir(parents=True, exist_ok=True)
        request_id = secrets.token_hex(8)
        write_json_atomic(self.requests / f"{request_id}.json", {"action": str(action), **fields})
        return request_id

    def result(self, request_id: str) -> dict[str, Any] | None:
        """The updater's answer to a request, None while it has not answered."""
        doc = read_json(self.results / f"{request_id}.json")
        return doc if isinstance(doc, dict) else None

    def order(self) -> dict[str, Any] | None:
        """The rollout order being carried out and its state (see kiosk.updates.worker)."""
        try:
            doc = read_json(self.order_file)
        except UpdateError:
            return None
        return doc if isinstance(doc, dict) else None

    # ------------------------------------------------------------------ the updater's side

    def take(self) -> Iterator[Request | tuple[str, str]]:
        """Every waiting request, oldest first, removed as it is handed out.

        A request that cannot be read is handed out as (id, reason) so it gets an answer.
        """
        if not self.requests.is_dir():
            return
        entries = sorted(
            (p for p in self.requests.iterdir() if p.suffix == ".json"),
            key=lambda p: p.stat().st_mtime_ns,
        )
        for path in entries:
            request_id = path.stem
            try:
                if not _ID.match(request_id) or path.is_symlink() or not path.is_file():
                    raise UpdateError("the request's name or kind is not the spool's")
                doc = read_json(path)
                if not isinstance(doc, dict) or doc.get("action") not in set(Action):
                    raise UpdateError("the request has no known action")
                yielded: Request | tuple[str, str] = Request(
                    request_id, Action(doc.pop("action")), doc
                )
            except UpdateError as exc:
                yielded = (request_id if _ID.match(request_id) else "invalid", str(exc))
            path.unlink(missing_ok=True)
            yield yielded

    def answer(self, request_id: str, doc: dict[str, Any]) -> None:
        self.results.mkdir(parents=True, exist_ok=True)
        if _ID.match(request_id):
            write_json_atomic(self.results / f"{request_id}.json", doc)

    def write_order(self, doc: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.order_file, doc)
