"""Latency samples and their summary (p50, p99), and where a benchmark's files really live.

Owns the arithmetic of the figures and the description of the file system the benchmark ran
on; it never decides what is measured.
"""

import os
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

# File systems whose fsync costs nothing: a durable-commit figure measured on them is a lie.
MEMORY_FILE_SYSTEMS = frozenset({"tmpfs", "ramfs", "devtmpfs"})


@dataclass(frozen=True)
class Latency:
    """The latencies of one measured operation, in nanoseconds, in the order measured."""

    samples_ns: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.samples_ns)

    def percentile_ms(self, percent: int) -> float:
        """The percent-th percentile in milliseconds (linear interpolation between samples)."""
        if not self.samples_ns:
            raise ValueError("no samples were measured")
        if len(self.samples_ns) == 1:
            return self.samples_ns[0] / 1e6
        # quantiles(n=100) gives the 99 cut points p1..p99; "inclusive" treats the samples as
        # the whole population, which is what a benchmark run is.
        cuts = statistics.quantiles(self.samples_ns, n=100, method="inclusive")
        return cuts[percent - 1] / 1e6

    @property
    def p50_ms(self) -> float:
        return self.percentile_ms(50)

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms(99)

    def as_dict(self) -> dict[str, float | int]:
        return {"p50_ms": round(self.p50_ms, 4), "p99_ms": round(self.p99_ms, 4), "n": self.n}

    def line(self, label: str, width: int = 42) -> str:
        """One human-readable line: the label, p50, p99 and the number of samples."""
        figures = f"p50 {self.p50_ms:7.3f} ms  p99 {self.p99_ms:7.3f} ms  (n={self.n})"
        return f"{label + ':':<{width}} {figures}"


@dataclass(frozen=True)
class FileSystem:
    mount_point: str
    type: str
    device: str

    @property
    def in_memory(self) -> bool:
        return self.type in MEMORY_FILE_SYSTEMS

    def describe(self) -> str:
        return f"{self.type} on {self.device} (mounted at {self.mount_point})"

    def as_dict(self) -> dict[str, str | bool]:
        return {
            "type": self.type,
            "device": self.device,
            "mount_point": self.mount_point,
            "in_memory": self.in_memory,
        }


def _unescape_mount_field(field: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash in paths as octal escapes (\040).
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match[1], 8)), field)


def file_system_of(path: Path, mounts: Path = Path("/proc/self/mounts")) -> FileSystem:
    """The mounted file system holding path (the longest mount point above it)."""
    target = str(path.resolve())
    best = FileSystem(mount_point="?", type="unknown", device="?")
    try:
        lines = mounts.read_text(encoding="utf-8").splitlines()
    except OSError:
        return best
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        device, mount_point, fs_type = (_unescape_mount_field(p) for p in parts[:3])
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and (best.mount_point == "?" or len(mount_point) >= len(best.mount_point)):
            best = FileSystem(mount_point=mount_point, type=fs_type, device=device)
    return best


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
