"""What a self-test is and what it reports: checks, verdicts, results and the registry.

Owns the vocabulary every check shares (pass, warn, fail, skipped), the context a check
runs in (configuration, devices, signer, settings, the technician at the terminal) and the
ordered registry of checks. It never touches a device itself: the checks in
kiosk.diagnostics.checks do, through kiosk.devices Protocols only.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from kiosk.config import Config
from kiosk.devices import CardReader, CashAcceptor, IoBoard, Printer
from kiosk.message_text import MessageText
from kiosk.signing import Signer


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"  # works, but needs attention soon (paper near end, certificate renewal)
    FAIL = "fail"  # the terminal must not go back into service
    SKIPPED = "skipped"  # not tested (interactive item in an unattended run, not available)

    @property
    def label(self) -> str:
        """The English message id shown to people (translated through kiosk.i18n)."""
        return {"pass": "Passed", "warn": "Warning", "fail": "Check failed", "skipped": "Skipped"}[
            self.value
        ]


@dataclass(frozen=True)
class CheckResult:
    check_id: str
    title: str
    verdict: Verdict
    detail: str
    next_action: str = ""  # what the technician does next; empty when nothing is needed
    facts: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.check_id,
            "title": self.title,
            "verdict": str(self.verdict),
            "detail": self.detail,
            "next_action": self.next_action,
            "facts": self.facts,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class Outcome:
    """What a check's run function returns; the runner adds the id, title and time."""

    verdict: Verdict
    detail: str
    next_action: str = ""
    facts: dict[str, object] = field(default_factory=dict)


def passed(detail: str, **facts: object) -> Outcome:
    return Outcome(Verdict.PASS, detail, "", dict(facts))


def warned(detail: str, next_action: str, **facts: object) -> Outcome:
    return Outcome(Verdict.WARN, detail, next_action, dict(facts))


def failed(detail: str, next_action: str, **facts: object) -> Outcome:
    return Outcome(Verdict.FAIL, detail, next_action, dict(facts))


def skipped(detail: str, next_action: str = "", **facts: object) -> Outcome:
    return Outcome(Verdict.SKIPPED, detail, next_action, dict(facts))


class Technician(Protocol):
    """The person at the terminal during an attended run (the CLI asks on its terminal)."""

    def instruct(self, text: str) -> None:
        """Tell the technician to do something now (insert a coin, open the door)."""
        ...

    def confirm(self, question: str) -> bool:
        """Ask a yes/no question about what the technician sees (the lamp, the receipt)."""
        ...


@dataclass(frozen=True)
class DiagnosticSettings:
    """Thresholds of the verdicts; the defaults suit a terminal in the field."""

    min_free_disk_mb: int = 200
    cert_warn_days: int = 30
    clock_warn_s: float = 30.0
    clock_fail_s: float = 600.0  # the platform refuses requests beyond 15 minutes; fail earlier
    outbox_warn: int = 100
    outbox_fail: int = 5000
    input_wait_s: float = 60.0  # how long to wait for the technician's coin or door
    network_timeout_s: float = 5.0
    sd_life_time_path: Path = Path("/sys/block/mmcblk0/device/life_time")


@dataclass(frozen=True)
class MqttTarget:
    """The broker the terminal's telemetry connects to, with its TLS client files."""

    host: str
    port: int
    client_id: str
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""


@dataclass
class DiagnosticContext:
    """Everything the checks may use; device fields are None when this build has none."""

    config: Config
    printer: Printer | None = None
    card_reader: CardReader | None = None
    cash: CashAcceptor | None = None
    ioboard: IoBoard | None = None
    # Building the signer may fail (token absent, PIN refused); the token check reports it.
    signer_factory: Callable[[], Signer] | None = None
    mqtt: MqttTarget | None = None
    outbox_backlog: Callable[[], int] | None = None
    extra_certificates: tuple[bytes, ...] = ()  # older station certificates (renewals)
    settings: DiagnosticSettings = field(default_factory=DiagnosticSettings)
    technician: Technician | None = None  # None: unattended, interactive checks are skipped
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    _signer: Signer | None = None
    _signer_error: str = ""
    shared: dict[str, Any] = field(default_factory=dict)

    def signer(self) -> Signer | None:
        """The signer, built once; None (with signer_error set) when it cannot be built."""
        if self._signer is None and not self._signer_error and self.signer_factory is not None:
            from kiosk.errors import KioskError

            try:
                self._signer = self.signer_factory()
            except KioskError as exc:
                self._signer_error = str(exc)
        return self._signer

    @property
    def signer_error(self) -> str:
        return self._signer_error or ("no signer configured" if self.signer_factory is None else "")


RunFunction = Callable[[DiagnosticContext], Outcome]


@dataclass(frozen=True)
class Check:
    check_id: str  # stable, dotted: "printer.status"; scripts and the back office key on it
    title: str  # English message id; translated through kiosk.i18n for the report
    run: RunFunction
    interactive: bool = False  # needs the technician; skipped in an unattended run


class CheckRegistry:
    """The ordered set of checks a diagnose run goes through."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def add(
        self, check_id: str, title: str, *, interactive: bool = False
    ) -> Callable[[RunFunction], RunFunction]:
        def register(run: RunFunction) -> RunFunction:
            if check_id in self._checks:
                raise ValueError(f"check {check_id!r} is registered twice")
            self._checks[check_id] = Check(check_id, title, run, interactive)
            return run

        return register

    def checks(self, only: tuple[str, ...] = ()) -> list[Check]:
        """The checks in registration order; `only` keeps those whose id starts with a prefix."""
        unknown = [
            prefix
            for prefix in only
            if not any(c == prefix or c.startswith(prefix + ".") for c in self._checks)
        ]
        if unknown:
            from kiosk.errors import KioskError

            raise KioskError(
                MessageText(
                    "no diagnostic check is called {unknown}: known checks are {known}",
                    unknown=", ".join(unknown),
                    known=", ".join(self._checks),
                )
            )
        return [
            check
            for check in self._checks.values()
            if not only
            or any(check.check_id == p or check.check_id.startswith(p + ".") for p in only)
        ]
