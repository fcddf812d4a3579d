"""kiosk-tool diagnose: every self-test of the terminal, with progress and a verdict per item.

Builds the devices and the signer exactly as the terminal does (station.composition, from the
configured device choices), runs kiosk.diagnostics, prints one line per item, optionally
writes JSON and the HTML maintenance record, and exits 0 only when the terminal may go
back into service. It keeps each run's JSON in data_dir/diagnostics for `logs collect`.
"""

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

from firmware_tools.tool_language import say, say_text, tool_translator
from kiosk.command_line import CommandError
from kiosk.config import Config, load_config
from kiosk.diagnostics import (
    Check,
    CheckResult,
    DiagnosticContext,
    DiagnosticReport,
    DiagnosticSettings,
    MqttTarget,
    Verdict,
    render_html,
    run_diagnostics,
)
from kiosk.i18n import Translate
from kiosk.signing import Signer
from kiosk.storage import open_database
from kiosk.telemetry import Outbox
from station.composition import build_devices, build_signer

RUNS_KEPT = 20


class ConsoleTechnician:
    """The technician at the terminal's keyboard: instructions on stderr, answers on stdin."""

    def instruct(self, text: str) -> None:
        print(f"  >>> {say_text(tool_translator(), text)}", file=sys.stderr, flush=True)

    def confirm(self, question: str) -> bool:
        t = tool_translator()
        while True:
            ask = f"  ??? {say_text(t, question)} {t('[y/n]')} "
            print(ask, end="", file=sys.stderr, flush=True)
            answer = sys.stdin.readline()
            if not answer:  # stdin closed: nobody can answer, so it is not confirmed
                return False
            if answer.strip().lower() in ("y", "yes", "是"):
                return True
            if answer.strip().lower() in ("n", "no", "否"):
                return False


def _mqtt_target(config: Config, option: str | None) -> MqttTarget | None:
    # Its own client id: the running terminal's session must not be taken over by the check.
    client_id = f"{config.station.institution_no}-{config.station.terminal_id}-diagnose"
    telemetry = config.telemetry
    files = {
        "ca_file": telemetry.ca_file,
        "cert_file": telemetry.cert_file,
        "key_file": telemetry.key_file,
    }
    if option:
        host, _, port = option.rpartition(":")
        if not host or not port.isdigit():
            raise CommandError(
                "--mqtt-broker {value!r} must be HOST:PORT, e.g. 127.0.0.1:8883", value=option
            )
        return MqttTarget(host, int(port), client_id, **files)
    if not telemetry.enabled:
        return None
    return MqttTarget(telemetry.broker_host, telemetry.broker_port, client_id, **files)


def _outbox_backlog(config: Config) -> Callable[[], int] | None:
    """The telemetry outbox's backlog, read from the terminal's database."""
    if not config.telemetry.enabled or not config.database_path.is_file():
        return None

    def backlog() -> int:
        conn = open_database(config.database_path)
        try:
            return Outbox(conn).backlog()
        finally:
            conn.close()

    return backlog


# The mark of each verdict (English ids; kiosk_tool.po has the Chinese).
MARKS = {
    Verdict.PASS: "PASS",
    Verdict.WARN: "WARN",
    Verdict.FAIL: "FAIL",
    Verdict.SKIPPED: "SKIP",
}


def result_line(t: Translate, result: CheckResult) -> str:
    """One line per item in the tool's language: mark, id, detail, and the next action."""
    line = f"[{t(MARKS[result.verdict])}] {result.check_id}: {say_text(t, result.detail)}"
    if result.next_action and result.verdict is not Verdict.PASS:
        line += f" -> {say_text(t, result.next_action)}"
    return line


def verdict_line(t: Translate, report: DiagnosticReport) -> str:
    counts = report.counts()
    summary = ", ".join(f"{counts[str(v)]} {t(str(v))}" for v in Verdict)
    if report.may_return_to_service:
        return say(t, "VERDICT: may go back into service ({summary})", summary=summary)
    names = "; ".join(f"{r.check_id}: {say_text(t, r.detail)}" for r in report.failures)
    return say(
        t,
        "VERDICT: must NOT go back into service ({summary}). Failed: {names}",
        summary=summary,
        names=names,
    )


def _progress(index: int, total: int, check: Check, result: CheckResult | None) -> None:
    if result is None:
        title = say_text(tool_translator(), check.title)
        print(f"({index}/{total}) {title} ...", file=sys.stderr, flush=True)


def keep_run(config: Config, report: DiagnosticReport) -> None:
    directory = config.data_path / "diagnostics"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        name = f"diagnose-{report.finished.astimezone(UTC):%Y%m%dT%H%M%SZ}.json"
        (directory / name).write_text(
            json.dumps(report.to_json(), ensure_ascii=False, indent=2), encoding="utf-8"
        )
        for old in sorted(directory.glob("diagnose-*.json"))[:-RUNS_KEPT]:
            old.unlink()
    except OSError as exc:
        note = say(
            tool_translator(),
            "note: the run was not kept in {path}: {problem}",
            path=directory,
            problem=exc.strerror,
        )
        print(note, file=sys.stderr)


def diagnostic_context(
    config: Config,
    *,
    settings: DiagnosticSettings,
    unattended: bool,
    mqtt_broker: str | None = None,
) -> DiagnosticContext:
    """The devices and signer of this configuration, as the terminal itself builds them."""
    devices = build_devices(config)

    def signer() -> Signer:
        return build_signer(config)

    return DiagnosticContext(
        config=config,
        printer=devices.printer,
        card_reader=devices.cards,
        cash=devices.cash,
        ioboard=devices.board,
        signer_factory=signer,
        mqtt=_mqtt_target(config, mqtt_broker),
        outbox_backlog=_outbox_backlog(config),
        settings=settings,
        technician=None if unattended else ConsoleTechnician(),
    )


def _diagnose(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    settings = DiagnosticSettings(
        min_free_disk_mb=args.min_free_mb,
        cert_warn_days=args.cert_warn_days,
        input_wait_s=args.input_wait,
        network_timeout_s=args.timeout,
    )
    context = diagnostic_context(
        config, settings=settings, unattended=args.unattended, mqtt_broker=args.mqtt_broker
    )
    report = run_diagnostics(
        context, only=tuple(args.only or ()), progress=None if args.quiet else _progress
    )
    keep_run(config, report)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2, sort_keys=True))
    else:
        t = tool_translator()
        for result in report.results:
            print(result_line(t, result))
        print(verdict_line(t, report))
    if args.html:
        html_path: Path = args.html
        try:
            html_path.parent.mkdir(parents=True, exist_ok=True)
            partial = html_path.with_name(html_path.name + ".partial")
            partial.write_text(render_html(report, technician=args.technician), encoding="utf-8")
            os.replace(partial, html_path)
        except OSError as exc:
            raise CommandError(
                "cannot write the report {path}: {problem}", path=html_path, problem=exc.strerror
            ) from None
    if not report.may_return_to_service:
        t = tool_translator()  # the failures said now: the line carries them as one value
        names = ", ".join(f"{r.check_id} ({say_text(t, r.detail)})" for r in report.failures)
        raise CommandError(
            "the terminal must not go back into service: failed {names}", names=names
        )
    return 0


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = groups.add_parser(
        "diagnose",
        help="self-test every device and service; exit 0 only if fit for service",
        description=(
            "Run every self-test (printer, card reader, token, certificate, I/O board, MQTT,"
            " platform, clock, disk, SD card, journal, outbox) with a verdict per item and the"
            " next action for each problem. Exit code 0 only when the terminal may go back"
            " into service."
        ),
    )
    parser.add_argument("--config", type=Path, required=True, help="the terminal's TOML file")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--html", type=Path, help="write the maintenance record (HTML) here")
    parser.add_argument(
        "--unattended",
        action="store_true",
        help="skip the items that need a technician (reported as skipped, not passed)",
    )
    parser.add_argument(
        "--only", action="append", metavar="ID", help="run only this check (or id prefix)"
    )
    parser.add_argument("--technician", default="", help="name or id for the maintenance record")
    parser.add_argument(
        "--mqtt-broker", metavar="HOST:PORT", help="test this MQTT broker instead of [telemetry]"
    )
    parser.add_argument("--min-free-mb", type=int, default=200, help="free disk space needed")
    parser.add_argument(
        "--cert-warn-days", type=int, default=30, help="warn when the certificate expires sooner"
    )
    parser.add_argument(
        "--input-wait", type=float, default=60.0, help="seconds to wait for a coin, card, door"
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="network timeout in seconds")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(handler=_diagnose)
