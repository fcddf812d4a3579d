"""The running back office: one store, one MQTT ingest worker and the dashboard, together.

Owns start-up order, health for systemd's watchdog and shutdown: the store first (a bad URL
fails before anything listens), then ingest, the fleet sampler, the notifier, then the
dashboard. With dashboard=False it is an ingest worker alone (`kiosk-backoffice ingest`),
one of several on a shared subscription: the sampler and the notifier run once, beside the
dashboard, not in every worker. It holds no business rules.
"""

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backoffice.commands import load_signing_key, send_command
from backoffice.config import BackofficeConfig
from backoffice.notify import Notifier
from backoffice.revocation import Revocations
from backoffice.roles import Action
from backoffice.staff import Staff, record_action
from backoffice.store import Cursor, Store
from backoffice.trends import FleetSampler
from backoffice.web import Dashboard, DashboardServer
from backoffice.worker import MqttIngest

# The worker's loop goes round at least every few tenths of a second; one that has not
# for this long is stuck, and systemd's watchdog should restart the service.
STUCK_AFTER_S = 60.0


class BackofficeService:
    def __init__(
        self, config: BackofficeConfig, *, dashboard: bool = True, client_id: str | None = None
    ) -> None:
        self.config = config
        self.store = Store(config.store)
        self.web: DashboardServer | None = None
        self.sampler: FleetSampler | None = None
        self.notifier: Notifier | None = None
        self.revocations: Revocations | None = None
        try:
            self.ingest = MqttIngest(
                self.store, config.broker, config.thresholds, client_id=client_id
            )
            if dashboard:
                self._build_dashboard(config)
        except BaseException:
            self.store.close()
            raise

    def _build_dashboard(self, config: BackofficeConfig) -> None:
        key = load_signing_key(Path(config.commands.key_file)) if config.commands.key_file else None

        def send(
            station: str, terminal: str, name: str, args: Mapping[str, Any], staff: Staff
        ) -> dict[str, Any]:
            assert key is not None
            now = time.time()

            def audit(cursor: Cursor, command: dict[str, Any]) -> None:
                record_action(
                    cursor,
                    staff,
                    Action.SEND_COMMAND,
                    now,
                    station=station,
                    terminal=terminal,
                    detail={"command": command["id"], "name": name, "args": command["args"]},
                )

            return send_command(
                self.store,
                self.ingest.publish_command,
                key,
                station=station,
                terminal=terminal,
                name=name,
                args=args,
                sent_by=staff.name,
                ttl_s=config.commands.ttl_s,
                now=now,
                audit=audit,
            )

        self.revocations = (
            Revocations(self.store, config.revocation) if config.revocation.crl_file else None
        )
        revocations = self.revocations

        def revoke(station: str, terminal: str, staff: Staff) -> list[str]:
            assert revocations is not None
            return revocations.revoke_terminal(station, terminal, staff, time.time())

        self.dashboard = Dashboard(
            self.store,
            config,
            send if key is not None else None,
            revoke=revoke if revocations is not None else None,
        )
        self.sampler = FleetSampler(self.store, config.dashboard.sample_every_s, time.time)
        self.notifier = Notifier(
            self.store,
            config.notify,
            config.dashboard.timezone,
            dashboard_url=config.notify.dashboard_url,
        )
        self.web = DashboardServer(self.dashboard, config.http.host, config.http.port)

    @property
    def url(self) -> str:
        return self.web.url if self.web is not None else ""

    def start(self) -> None:
        self.ingest.start()
        if self.sampler is not None:
            self.sampler.start()
        if self.notifier is not None:
            self.notifier.start()
        if self.web is not None:
            self.web.start()

    def healthy(self) -> bool:
        """What the systemd watchdog is fed on: the ingest worker is alive and going round
        (waiting for an unreachable database counts as going round)."""
        return self.ingest.alive() and time.monotonic() - self.ingest.last_progress < STUCK_AFTER_S

    def stop(self) -> None:
        if self.web is not None:
            self.web.stop()
        if self.notifier is not None:
            self.notifier.stop()
        if self.sampler is not None:
            self.sampler.stop()
        self.ingest.stop()
        self.store.close()
