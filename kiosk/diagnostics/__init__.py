"""The terminal's self-tests (kiosk-tool diagnose): checks, runner and reports.

Owns judging whether the terminal may go back into service. It reaches devices only
through kiosk.devices Protocols and the Signer; it never imports a driver or Kivy, and it
never changes business state (no payment, no journal record).
"""

from kiosk.diagnostics import voice  # noqa: F401  (registers the voice check, after the others)
from kiosk.diagnostics.checks import REGISTRY
from kiosk.diagnostics.model import (
    Check,
    CheckRegistry,
    CheckResult,
    DiagnosticContext,
    DiagnosticSettings,
    MqttTarget,
    Outcome,
    Technician,
    Verdict,
)
from kiosk.diagnostics.report import render_html, render_text, result_line, verdict_line
from kiosk.diagnostics.runner import DiagnosticReport, Progress, run_diagnostics

__all__ = [
    "REGISTRY",
    "Check",
    "CheckRegistry",
    "CheckResult",
    "DiagnosticContext",
    "DiagnosticReport",
    "DiagnosticSettings",
    "MqttTarget",
    "Outcome",
    "Progress",
    "Technician",
    "Verdict",
    "render_html",
    "render_text",
    "result_line",
    "verdict_line",
    "run_diagnostics",
]
