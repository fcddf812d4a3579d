"""Runs the registered checks in order, reporting progress, and gathers the verdicts.

Owns the order of a run, the progress callbacks, the per-check time and the overall
verdict (may the terminal go back into service?). A check that raises unexpectedly is
reported as a failed item naming the exception; the run always goes on to the next item.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from kiosk.diagnostics.checks import REGISTRY
from kiosk.diagnostics.model import (
    Check,
    CheckRegistry,
    CheckResult,
    DiagnosticContext,
    Verdict,
)
from kiosk.message_text import MessageText, error_text

log = logging.getLogger(__name__)

# Called before a check starts (result None) and after it ends (with its result).
Progress = Callable[[int, int, Check, CheckResult | None], None]


@dataclass(frozen=True)
class DiagnosticReport:
    terminal_id: str
    institution_no: str
    station_name: str
    started: datetime
    finished: datetime
    attended: bool
    results: tuple[CheckResult, ...]

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.verdict is Verdict.FAIL)

    @property
    def may_return_to_service(self) -> bool:
        """No item failed (warnings and untested items are listed, but do not block)."""
        return not self.failures

    def counts(self) -> dict[str, int]:
        return {str(v): sum(1 for r in self.results if r.verdict is v) for v in Verdict}

    def result(self, check_id: str) -> CheckResult:
        for item in self.results:
            if item.check_id == check_id:
                return item
        raise KeyError(check_id)

    def to_json(self) -> dict[str, object]:
        return {
            "format": "kiosk-diagnose/1",
            "terminal": self.terminal_id,
            "station": self.institution_no,
            "station_name": self.station_name,
            "started": self.started.isoformat(timespec="seconds"),
            "finished": self.finished.isoformat(timespec="seconds"),
            "attended": self.attended,
            "may_return_to_service": self.may_return_to_service,
            "counts": self.counts(),
            "results": [r.to_json() for r in self.results],
        }


def run_diagnostics(
    context: DiagnosticContext,
    *,
    registry: CheckRegistry = REGISTRY,
    only: tuple[str, ...] = (),
    progress: Progress | None = None,
) -> DiagnosticReport:
    checks = registry.checks(only)
    started = context.now()
    results: list[CheckResult] = []
    for index, check in enumerate(checks, start=1):
        if progress is not None:
            progress(index, len(checks), check, None)
        began = time.monotonic()
        try:
            outcome = check.run(context)
        except Exception as exc:  # a broken check must not hide the other verdicts
            log.exception("diagnostic check %s raised", check.check_id)
            result = CheckResult(
                check.check_id,
                check.title,
                Verdict.FAIL,
                MessageText(
                    "the check itself failed: {kind}: {problem}",
                    kind=type(exc).__name__,
                    problem=error_text(exc),
                ),
                "report this to support with the log bundle (kiosk-tool logs collect)",
                {},
                time.monotonic() - began,
            )
        else:
            result = CheckResult(
                check.check_id,
                check.title,
                outcome.verdict,
                outcome.detail,
                outcome.next_action,
                outcome.facts,
                time.monotonic() - began,
            )
        results.append(result)
        if progress is not None:
            progress(index, len(checks), check, result)
    station = context.config.station
    return DiagnosticReport(
        terminal_id=station.terminal_id,
        institution_no=station.institution_no,
        station_name=station.name,
        started=started,
        finished=context.now(),
        attended=context.technician is not None,
        results=tuple(results),
    )
