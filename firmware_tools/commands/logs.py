"""kiosk-tool logs collect: one .tar.gz of logs, configuration and diagnostics for support.

Secrets are removed on the way into the bundle (kiosk.logbundle); the command prints what
it collected, what it left out and how many secrets it redacted.
"""

import argparse
import json
import shutil
import subprocess
from pathlib import Path

from firmware_tools.commands.diagnose import diagnostic_context, keep_run
from firmware_tools.tool_language import say, tool_translator
from kiosk.command_line import CommandError, emit
from kiosk.config import load_config
from kiosk.diagnostics import DiagnosticSettings, render_text, run_diagnostics
from kiosk.errors import KioskError
from kiosk.logbundle import collect_bundle

DEFAULT_LOG_DIRS = (Path("/var/log/kiosk"),)


def _journalctl(unit: str) -> str:
    binary = shutil.which("journalctl")
    if binary is None:
        return "journalctl is not available on this machine\n"
    try:
        done = subprocess.run(
            [binary, "--unit", unit, "--lines", "20000", "--no-pager", "--output", "short-iso"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"journalctl failed: {exc}\n"
    return done.stdout + (f"\n[journalctl stderr]\n{done.stderr}" if done.stderr else "")


def _collect(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    out: Path = args.out
    if not out.name.endswith((".tar.gz", ".tgz")):
        raise CommandError("--out {path} must end in .tar.gz (the bundle is a gzip tar)", path=out)
    log_dirs = [config.data_path / "logs", *DEFAULT_LOG_DIRS, *(args.log_dir or [])]
    extra: dict[str, str] = {}
    if args.journal_unit:
        extra[f"logs/journalctl-{args.journal_unit}.txt"] = _journalctl(args.journal_unit)
    if args.diagnose:
        try:
            context = diagnostic_context(
                config, settings=DiagnosticSettings(), unattended=True, mqtt_broker=None
            )
            report = run_diagnostics(context)
        except KioskError as exc:
            extra["diagnostics/now.txt"] = f"diagnose could not run: {exc}\n"
        else:
            keep_run(config, report)
            extra["diagnostics/now.txt"] = render_text(report) + "\n"
            extra["diagnostics/now.json"] = json.dumps(
                report.to_json(), ensure_ascii=False, indent=2
            )
    summary = collect_bundle(config, args.config, out, log_dirs=log_dirs, extra_texts=extra)
    t = tool_translator()
    text = say(
        t,
        "wrote {path}: {count} files, {redactions} secrets redacted",
        path=out,
        count=len(summary.files),
        redactions=summary.redactions,
    ) + "".join(say(t, "\n  left out: {item}", item=item) for item in summary.left_out)
    emit(
        args,
        {
            "out": str(out),
            "files": list(summary.files),
            "left_out": list(summary.left_out),
            "redactions": summary.redactions,
        },
        text,
    )
    return 0


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = groups.add_parser("logs", help="collect logs for support (secrets redacted)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    collect = commands.add_parser(
        "collect",
        help="write a .tar.gz of logs, configuration and diagnostics with secrets redacted",
        description=(
            "Write one .tar.gz with the configuration, the logs (data_dir/logs, /var/log/kiosk,"
            " --log-dir), the kept diagnose runs and optionally a fresh unattended diagnose."
            " PINs, private keys, passwords and tokens are redacted; key and PIN files are"
            " never collected."
        ),
    )
    collect.add_argument("--config", type=Path, required=True, help="the terminal's TOML file")
    collect.add_argument("--out", type=Path, required=True, help="bundle to write (.tar.gz)")
    collect.add_argument(
        "--log-dir", type=Path, action="append", help="another directory of logs to include"
    )
    collect.add_argument("--journal-unit", help="also include journalctl output of this unit")
    collect.add_argument(
        "--diagnose", action="store_true", help="run an unattended diagnose and include it"
    )
    collect.add_argument("--json", action="store_true", help="print the summary as JSON")
    collect.set_defaults(handler=_collect)
