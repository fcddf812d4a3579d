"""Builds the JSON payloads the terminal publishes (kiosk/telemetry/schema/) and reads the host.

Owns the exact shape of status, heartbeat, health, event, outbox and cmd_result messages,
and the host facts of health (disk, memory, CPU temperature). It never publishes and never
asks a device anything: the terminal hands in its devices' health as HealthFacts.
"""

import json
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from kiosk.clock import iso

log = logging.getLogger(__name__)

V = 1
Paper = Literal["ok", "near_end", "out", "unknown"]
PAPER_STATES = ("ok", "near_end", "out", "unknown")


@dataclass(frozen=True)
class HealthFacts:
    """What the terminal knows about itself; the telemetry client asks for it when it reports."""

    devices: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    paper: Paper = "unknown"
    float_balance_fen: int | None = None
    cert_days_left: int | None = None
    firmware: str | None = None  # the I/O board firmware version, if there is a board


@dataclass(frozen=True)
class HostFacts:
    disk_free_mb: int | None
    mem_free_mb: int | None
    cpu_temp_c: float | None


def encode(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON; anything that is not JSON (a device's odd value) becomes text."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def host_facts(data_dir: Path) -> HostFacts:
    return HostFacts(_disk_free_mb(data_dir), _mem_free_mb(), _cpu_temp_c())


def _disk_free_mb(data_dir: Path) -> int | None:
    try:
        return shutil.disk_usage(data_dir).free // (1024 * 1024)
    except OSError:
        return None


def _mem_free_mb(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024  # the kernel reports kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cpu_temp_c(zone: Path = Path("/sys/class/thermal/thermal_zone0/temp")) -> float | None:
    try:
        return round(int(zone.read_text().strip()) / 1000, 1)  # millidegrees Celsius
    except (OSError, ValueError):
        return None


def birth(now: datetime, *, software: str, firmware: str | None, boot_id: str) -> dict[str, Any]:
    return {
        "v": V,
        "state": "online",
        "time": iso(now),
        "software": software,
        "firmware": firmware,
        "boot_id": boot_id,
    }


def last_will(boot_id: str) -> dict[str, Any]:
    # No time: the broker publishes it later, when the connection is found dead.
    return {"v": V, "state": "offline", "reason": "lost", "boot_id": boot_id}


def shutdown(now: datetime, boot_id: str) -> dict[str, Any]:
    return {"v": V, "state": "offline", "reason": "shutdown", "time": iso(now), "boot_id": boot_id}


def heartbeat(
    now: datetime,
    *,
    seq_no: int,
    uptime_s: int,
    chain: tuple[int, str],
    turnover_fen: int,
    boot_id: str,
) -> dict[str, Any]:
    return {
        "v": V,
        "time": iso(now),
        "seq_no": seq_no,
        "uptime_s": uptime_s,
        "chain": {"seq": chain[0], "hash": chain[1]},
        "turnover_fen": turnover_fen,
        "boot_id": boot_id,
    }


def health(
    now: datetime,
    facts: HealthFacts,
    host: HostFacts,
    *,
    uptime_s: int,
    outbox_backlog: int,
    software: str,
) -> dict[str, Any]:
    paper = facts.paper if facts.paper in PAPER_STATES else "unknown"
    return {
        "v": V,
        "time": iso(now),
        "devices": {name: dict(state) for name, state in facts.devices.items()},
        "paper": paper,
        "float_balance_fen": facts.float_balance_fen,
        "cert_days_left": facts.cert_days_left,
        "disk_free_mb": host.disk_free_mb,
        "mem_free_mb": host.mem_free_mb,
        "cpu_temp_c": host.cpu_temp_c,
        "uptime_s": uptime_s,
        "outbox_backlog": outbox_backlog,
        "software": software,
        "firmware": facts.firmware,
    }


def health_signature(payload: Mapping[str, Any]) -> bytes:
    """The part of a health payload whose change is worth an immediate report.

    Time, uptime, disk, memory and temperature drift all the time; they ride along with
    the periodic report instead.
    """
    significant = ("devices", "paper", "float_balance_fen", "cert_days_left", "firmware")
    return encode({key: payload[key] for key in significant})


def event(now: datetime, kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"v": V, "time": iso(now), "kind": kind, "data": dict(data)}


def outbox_message(seq: int, prev_seq: int, record_text: str) -> bytes:
    """The outbox payload with the journal's stored canonical record text embedded verbatim.

    prev_seq is the seq of the journal's previous outbox record (0 for the first): with it
    the back office acknowledges only runs it holds completely (docs/mqtt.md section 3).
    """
    return b'{"v":1,"seq":%d,"prev_seq":%d,"record":%s}' % (
        seq,
        prev_seq,
        record_text.encode("utf-8"),
    )


def command_result(
    now: datetime,
    command_id: str | None,
    *,
    ok: bool,
    result: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "v": V,
        "id": command_id,
        "ok": ok,
        "result": (dict(result) if result is not None else {}) if ok else None,
        "error": None if ok else (error or "refused")[:500],
        "time": iso(now),
    }
