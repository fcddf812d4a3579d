"""Receipt printer models as data: what each model prints and how it confirms a job.

Owns reading drivers/printer/profiles.toml into typed PrinterProfile values, checking every
key (a wrong profile file fails at start with the model and key named), and the choice of a
profile for a configured model name and paper width. The driver and the pseudo-terminal
simulator both take a PrinterProfile, so a model's behaviour is written once. It never talks
to a port.
"""

import tomllib
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from drivers.printer.capabilities import PaperWidth, paper_for_width
from drivers.printer.escpos_commands import Cut

PROFILES_FILE = Path(__file__).with_name("profiles.toml")
AUTO = "auto"
# The profile "auto" starts from: the Epson-compatible command set every model here shares;
# how it confirms a job is then detected at first contact.
GENERIC_MODEL = "epson-compatible"


class Confirmation(StrEnum):
    """How the driver learns that a job has been printed."""

    PROCESS_ID = "process_id"  # GS ( H answered once everything before it is printed
    STATUS_POLL = "status_poll"  # real-time status polled until the job had time to print


class ConfirmationSource(StrEnum):
    """Where the confirmation method in force comes from."""

    CONFIG = "config"  # the configuration overrides the model's
    PROFILE = "profile"  # the named model's profile
    DETECTED = "detected"  # model "auto": probed at first contact
    UNDETECTED = "undetected"  # model "auto", no ready printer met yet


class QrSupport(StrEnum):
    NATIVE = "native"  # GS ( k model 2


class ChineseEncoding(StrEnum):
    GB18030 = "gb18030"  # FS & + GB18030 + FS .


class UnknownPrinterModel(ValueError):
    """The configured model has no profile (or does not take the configured paper)."""


@dataclass(frozen=True)
class PrinterProfile:
    name: str
    description: str
    model_names: tuple[str, ...]
    encoding: ChineseEncoding
    qr: QrSupport
    cuts: tuple[Cut, ...]
    feed_lines: int
    confirm: Confirmation
    answers_process_id: bool
    print_speed_mm_s: float
    paper: tuple[PaperWidth, ...]

    def paper_for(self, width_mm: int) -> PaperWidth:
        for paper in self.paper:
            if paper.width_mm == width_mm:
                return paper
        widths = " or ".join(f"{p.width_mm} mm" for p in self.paper)
        raise UnknownPrinterModel(
            f"printer model {self.name!r} takes {widths} paper, not {width_mm} mm: "
            "change devices.paper_width_mm or devices.printer_model"
        )

    def cut_for(self, wanted: Cut) -> Cut:
        """The cut the autocutter makes when a receipt asks for `wanted`."""
        return wanted if wanted in self.cuts else self.cuts[0]


_KEYS = {
    "description": str,
    "model_names": list,
    "encoding": str,
    "qr": str,
    "cuts": list,
    "feed_lines": int,
    "confirm": str,
    "answers_process_id": bool,
    "print_speed_mm_s": float,
    "paper": list,
}


class ProfileFileError(ValueError):
    """The profile file is malformed; the message names the model and the key."""


def _profile(name: str, table: dict[str, Any]) -> PrinterProfile:
    where = f"{PROFILES_FILE.name} [{name}]"
    for key in table:
        if key not in _KEYS:
            raise ProfileFileError(f"{where}: unknown key {key!r}")
    for key, kind in _KEYS.items():
        if key not in table:
            raise ProfileFileError(f"{where}: key {key!r} is missing")
        value = table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = table[key] = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ProfileFileError(f"{where}: key {key!r} must be {kind.__name__}")
    try:
        cuts = tuple(Cut(cut) for cut in table["cuts"])
        profile = PrinterProfile(
            name=name,
            description=table["description"],
            model_names=tuple(str(n) for n in table["model_names"]),
            encoding=ChineseEncoding(table["encoding"]),
            qr=QrSupport(table["qr"]),
            cuts=cuts,
            feed_lines=table["feed_lines"],
            confirm=Confirmation(table["confirm"]),
            answers_process_id=table["answers_process_id"],
            print_speed_mm_s=table["print_speed_mm_s"],
            paper=tuple(_paper(where, entry) for entry in table["paper"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ProfileFileError(f"{where}: {exc}") from None
    if not cuts:
        # An unattended kiosk cannot leave a resident to tear the paper: every model cuts.
        raise ProfileFileError(f"{where}: 'cuts' must name at least one cut")
    if not profile.paper:
        raise ProfileFileError(f"{where}: 'paper' must list at least one roll width")
    if profile.confirm is Confirmation.PROCESS_ID and not profile.answers_process_id:
        raise ProfileFileError(f"{where}: confirm = 'process_id' needs answers_process_id")
    if not 0 <= profile.feed_lines <= 255 or profile.print_speed_mm_s <= 0:
        raise ProfileFileError(f"{where}: feed_lines or print_speed_mm_s out of range")
    return profile


def _paper(where: str, entry: object) -> PaperWidth:
    if not isinstance(entry, dict) or set(entry) != {"width_mm", "columns", "dots"}:
        raise ProfileFileError(f"{where}: each paper entry needs width_mm, columns and dots")
    paper = PaperWidth(entry["width_mm"], entry["columns"], entry["dots"])
    standard = paper_for_width(paper.width_mm)
    if paper != standard:
        # The receipt layout (kiosk/receipts) lays out for the standard column count.
        raise ProfileFileError(
            f"{where}: {paper.width_mm} mm paper must print {standard.columns} columns on "
            f"{standard.dots} dots (the receipt layout's grid), not {paper.columns}/{paper.dots}"
        )
    return paper


def read_profiles(path: Path = PROFILES_FILE) -> dict[str, PrinterProfile]:
    """Every profile in a profile file, checked; ProfileFileError names the first problem."""
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProfileFileError(f"cannot read printer profiles {path}: {exc}") from None
    profiles = {}
    for name, table in tables.items():
        if name == AUTO or not isinstance(table, dict):
            raise ProfileFileError(f"{path.name}: {name!r} is not a model table")
        profiles[name] = _profile(name, dict(table))
    return profiles


@cache
def shipped_profiles() -> dict[str, PrinterProfile]:
    """The profiles shipped in drivers/printer/profiles.toml."""
    return read_profiles()


def model_names() -> list[str]:
    return sorted(shipped_profiles())


def profile_for(model: str, width_mm: int) -> PrinterProfile:
    """The profile of a configured model ("auto": the generic one) for a paper width."""
    name = GENERIC_MODEL if model == AUTO else model
    profiles = shipped_profiles()
    if name not in profiles:
        known = ", ".join([AUTO, *sorted(profiles)])
        raise UnknownPrinterModel(f"printer model {model!r} is not known; known models: {known}")
    profile = profiles[name]
    profile.paper_for(width_mm)  # raises when the model does not take this paper
    return profile
