"""Renders a diagnose run for people: the terminal's text, and the HTML maintenance record.

Owns the layout of the 设备维护记录 (equipment maintenance record) a technician prints or
files after a visit: one self-contained HTML page (no scripts, no external files), every
value escaped. Titles are bilingual through kiosk.i18n; details stay as the checks wrote them.
"""

import html

from kiosk.diagnostics.model import CheckResult, Verdict
from kiosk.diagnostics.runner import DiagnosticReport
from kiosk.i18n import bilingual

_MARKS = {
    Verdict.PASS: "PASS",
    Verdict.WARN: "WARN",
    Verdict.FAIL: "FAIL",
    Verdict.SKIPPED: "SKIP",
}
_COLOURS = {
    Verdict.PASS: "#1b7f3b",
    Verdict.WARN: "#a86a00",
    Verdict.FAIL: "#b3261e",
    Verdict.SKIPPED: "#5f6368",
}


def result_line(result: CheckResult) -> str:
    """One line per item, as the CLI prints it: mark, id, detail, and the next action."""
    line = f"[{_MARKS[result.verdict]}] {result.check_id}: {result.detail}"
    if result.next_action and result.verdict is not Verdict.PASS:
        line += f" -> {result.next_action}"
    return line


def verdict_line(report: DiagnosticReport) -> str:
    counts = report.counts()
    summary = ", ".join(f"{counts[str(v)]} {v}" for v in Verdict)
    if report.may_return_to_service:
        return f"VERDICT: may go back into service ({summary})"
    names = "; ".join(f"{r.check_id}: {r.detail}" for r in report.failures)
    return f"VERDICT: must NOT go back into service ({summary}). Failed: {names}"


def render_text(report: DiagnosticReport) -> str:
    return "\n".join([*(result_line(r) for r in report.results), verdict_line(report)])


def render_html(report: DiagnosticReport, *, technician: str = "") -> str:
    """The maintenance record as one HTML page (UTF-8)."""

    def e(value: object) -> str:
        return html.escape(str(value), quote=True)

    rows = []
    for result in report.results:
        colour = _COLOURS[result.verdict]
        rows.append(
            "<tr>"
            f"<td>{e(bilingual(result.title))}<br><code>{e(result.check_id)}</code></td>"
            f'<td style="color:{colour};font-weight:bold">{e(bilingual(result.verdict.label))}'
            "</td>"
            f"<td>{e(result.detail)}</td>"
            f"<td>{e(result.next_action if result.verdict is not Verdict.PASS else '')}</td>"
            "</tr>"
        )
    title = bilingual("Equipment maintenance record")
    service = (
        bilingual("May go back into service")
        if report.may_return_to_service
        else bilingual("Must not go back into service")
    )
    colour = "#1b7f3b" if report.may_return_to_service else "#b3261e"
    run_kind = bilingual("Attended run") if report.attended else bilingual("Unattended run")
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>{e(title)} {e(report.terminal_id)}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border: 1px solid #999; padding: 4px 8px; vertical-align: top; text-align: left; }}
.verdict {{ font-size: 1.4em; font-weight: bold; color: {colour}; }}
</style>
</head>
<body>
<h1>{e(title)}</h1>
<table>
<tr><th>{e(bilingual("Station"))}</th><td>{e(report.station_name)}</td></tr>
<tr><th>{e(bilingual("Institution number"))}</th><td>{e(report.institution_no)}</td></tr>
<tr><th>{e(bilingual("Terminal"))}</th><td>{e(report.terminal_id)}</td></tr>
<tr><th>{e(bilingual("Started"))}</th><td>{e(report.started.isoformat(timespec="seconds"))}</td></tr>
<tr><th>{e(bilingual("Finished"))}</th><td>{e(report.finished.isoformat(timespec="seconds"))}</td></tr>
<tr><th>{e(bilingual("Run"))}</th><td>{e(run_kind)}</td></tr>
<tr><th>{e(bilingual("Technician"))}</th><td>{e(technician)}</td></tr>
</table>
<p class="verdict">{e(service)}</p>
<table>
<tr><th>{e(bilingual("Item"))}</th><th>{e(bilingual("Verdict"))}</th>
<th>{e(bilingual("Detail"))}</th><th>{e(bilingual("Next action"))}</th></tr>
{chr(10).join(rows)}
</table>
<p>{e(bilingual("Technician's signature"))}: ______________________</p>
</body>
</html>
"""
