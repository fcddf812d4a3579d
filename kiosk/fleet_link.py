"""The running terminal's link to the fleet: telemetry wired to the core, remote commands run.

Owns what connects kiosk.telemetry to a Terminal: the health facts the client reports (taken
on the terminal's own thread and cached, because the client asks from its threads), the
handlers of the remote commands (reboot, maintenance, day close, log bundle, catalog,
update: handed to kiosk.updates.link) and the hand-over of each command to the terminal's
thread — the terminal's SQLite connection and devices belong to that one thread — and the
update events of the A/B slots. It never
verifies a command itself (kiosk.telemetry.commands does, before any handler runs).
"""

import base64
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from kiosk.clock import Clock, PlatformTime
from kiosk.config import Config
from kiosk.core_inbox import TerminalThreadInbox
from kiosk.errors import KioskError
from kiosk.service_faults import blocking
from kiosk.telemetry import Command, HealthFacts, TelemetryClient
from kiosk.terminal import Terminal
from kiosk.updates.link import TerminalUpdates, updates_for_config

log = logging.getLogger(__name__)

__all__ = ["FleetLink", "TerminalThreadInbox", "health_facts_of", "paper_state"]


def paper_state(printer_health: Mapping[str, object]) -> str:
    """ok | near_end | out | unknown, from a printer's health report (never guessed "ok").

    Both printer drivers report their own reading as "paper"; without it, the status bits
    decide, paper out first: a printer stopped for paper also answers offline (DLE EOT 1).
    """
    reported = printer_health.get("paper")
    if reported in ("ok", "near_end", "out", "unknown"):
        return str(reported)
    if printer_health.get("paper_out") is True:
        return "out"
    if printer_health.get("online") is not True:
        return "unknown"
    if printer_health.get("paper_near_end"):
        return "near_end"
    if printer_health.get("paper_out") is False:
        return "ok"
    return "unknown"


def service_entry(terminal: Terminal) -> dict[str, object]:
    """devices.service of the health report: the lamp's state and every fault's code."""
    faults = sorted(terminal.faults)
    return {
        "ok": not blocking(terminal.faults),
        "state": terminal.service_state(),
        "faults": [str(fault) for fault in faults],
        "detail": {str(fault): terminal.faults[fault][:200] for fault in faults},
    }


def health_facts_of(terminal: Terminal) -> HealthFacts:
    """The terminal's health as telemetry reports it; call on the terminal's thread."""
    devices: dict[str, dict[str, object]] = {
        **terminal.device_health(),
        "service": service_entry(terminal),
    }
    float_state = terminal.float_account.last_known()
    cert_days = devices.get("token", {}).get("cert_days_left")
    firmware: str | None = None
    try:
        status = terminal.board_status()
        firmware = status.firmware_version if status is not None else None
    except KioskError:
        firmware = None
    return HealthFacts(
        devices=devices,
        paper=paper_state(devices.get("printer", {})),  # type: ignore[arg-type]
        float_balance_fen=None if float_state is None else float_state.balance_fen,
        cert_days_left=cert_days if isinstance(cert_days, int) else None,
        firmware=firmware,
    )


class FleetLink:
    """Telemetry for one running terminal; refresh() is called from the terminal's loop."""

    def __init__(
        self,
        config: Config,
        terminal: Terminal,
        clock: Clock,
        *,
        request_restart: Callable[[str], None],
        client_factory: Callable[..., TelemetryClient] = TelemetryClient,
        inbox: TerminalThreadInbox | None = None,
        updates: TerminalUpdates | None = None,
    ) -> None:
        self._config = config
        self._terminal = terminal
        self._clock = clock
        self._request_restart = request_restart
        # The runtime's inbox when a runtime hosts the terminal (its loop runs the calls).
        self.inbox = inbox or TerminalThreadInbox()
        # The runtime's too, so update events are reported once whoever reports them.
        self.updates = updates or updates_for_config(config)
        self._facts_lock = threading.Lock()
        self._facts = health_facts_of(terminal)
        self._last_reported: tuple[str, Mapping[str, object]] = (
            self._facts.paper,
            self._facts.devices["service"],
        )
        self.client = client_factory(
            config.telemetry,
            station=config.station.institution_no,
            terminal=config.station.terminal_id,
            database=config.database_path,
            data_dir=config.data_path,
            clock=clock,
            health_facts=self.health_facts,
            events=terminal.events,
            command_clock=PlatformTime(clock, terminal.platform.clock_skew),
        )
        handlers: dict[str, Callable[[Command], Mapping[str, Any] | None]] = {
            "reboot": self._reboot,
            "enter_maintenance": self._on_terminal(self._enter_maintenance),
            "leave_maintenance": self._on_terminal(self._leave_maintenance),
            "close_day": self._on_terminal(self._close_day),
            "request_logs": self._request_logs,
            "install_catalog": self._on_terminal(self._install_catalog),
            "update": lambda command: self.updates.handle_command(command.args, clock.now()),
            "record_deposit": self._on_terminal(self._record_deposit),
        }
        for name, handler in handlers.items():
            self.client.handlers.register(name, handler)

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        self.client.start()

    def stop(self) -> None:
        self.client.stop()

    def health_facts(self) -> HealthFacts:
        with self._facts_lock:
            return self._facts

    def refresh(self) -> None:
        """On the terminal's thread: run handed-over commands, refresh the cached health."""
        self.inbox.run_pending()
        facts = health_facts_of(self._terminal)
        with self._facts_lock:
            self._facts = facts
        self.updates.poll(self.client.publish_event, self._request_restart)
        if (facts.paper, facts.devices["service"]) != self._last_reported:
            self._last_reported = (facts.paper, facts.devices["service"])
            self.client.notify_health_changed()

    def report_update_events(self, events: list[dict[str, Any]]) -> int:
        """Publish the A/B slots' update events; return the last seq handed to the client."""
        last = 0
        for event in events:
            data = {k: v for k, v in event.items() if k not in ("kind", "seq")}
            self.client.publish_event(str(event["kind"]), data)
            last = int(event["seq"])
        return last

    # ------------------------------------------------------------------ handlers

    def _on_terminal(
        self, handler: Callable[[Command], Mapping[str, Any] | None]
    ) -> Callable[[Command], Mapping[str, Any] | None]:
        def on_terminal_thread(command: Command) -> Mapping[str, Any] | None:
            # Waits as long as it takes, on the command's own thread: the telemetry client
            # reports a command still waiting here as running (CommandRunner), never as lost.
            return self.inbox.call(lambda: handler(command))

        return on_terminal_thread

    def _reboot(self, command: Command) -> Mapping[str, Any]:
        # The service manager starts the terminal again (Restart=always); the restart
        # happens after the result is published, between two payments.
        self._request_restart(f"remote command {command.id}")
        return {"restarting": True}

    def _enter_maintenance(self, command: Command) -> Mapping[str, Any]:
        who = str(command.args.get("technician") or f"remote:{command.id}")
        self._terminal.enter_maintenance(who)
        return {"technician": who}

    def _leave_maintenance(self, command: Command) -> Mapping[str, Any]:
        self._terminal.leave_maintenance()
        return {"maintenance": False}

    def _close_day(self, command: Command) -> Mapping[str, Any]:
        day_text = command.args.get("business_day")
        day = None if not day_text else datetime.fromisoformat(str(day_text)).date()
        record = self._terminal.close_day(day, closed_by=f"back_office:{command.id}")
        return {
            "business_day": record.get("business_day"),
            "seq": record.get("seq"),
            "balanced": record.get("balanced"),
        }

    def _record_deposit(self, command: Command) -> Mapping[str, Any]:
        from kiosk.operator import Actor, Role

        amount, slip = command.args.get("amount_fen"), command.args.get("slip_no")
        if isinstance(amount, bool) or not isinstance(amount, int) or not isinstance(slip, str):
            raise KioskError(
                "record_deposit needs args amount_fen (whole fen) and slip_no (the slip's number)"
            )
        who = str(command.args.get("by") or f"command:{command.id}")
        entry = self._terminal.operator.record_deposit(
            amount, slip, actor=Actor(who[:64], Role.BACK_OFFICE)
        )
        return {"deposit_key": entry.key, "slip_no": entry.slip_no, "state": str(entry.state)}

    def _request_logs(self, command: Command) -> Mapping[str, Any]:
        from kiosk.logbundle import collect_bundle

        out = self._config.data_path / "log-bundles" / f"{command.id}.tar.gz"
        out.parent.mkdir(parents=True, exist_ok=True)
        summary = collect_bundle(self._config, Path(self._config.source), out)
        return {"bundle": str(out), "bytes": out.stat().st_size, "files": list(summary.files)}

    def _install_catalog(self, command: Command) -> Mapping[str, Any]:
        from kiosk.catalog.configured import catalog_provider

        try:
            data = base64.b64decode(str(command.args["catalog_b64"]), validate=True)
            sig = base64.b64decode(str(command.args["sig_b64"]), validate=True)
        except (KeyError, ValueError):
            raise KioskError(
                "install_catalog needs args catalog_b64 and sig_b64 (base64 of the signed"
                " catalog and its signature)"
            ) from None
        catalog = catalog_provider(self._config).install(data, sig, self._clock.now().date())
        return {"version": catalog.version}
