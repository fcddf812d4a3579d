"""The running back office: one store, one MQTT ingest worker and the dashboard, together.

Owns start-up order and shutdown: the store first (a bad URL fails before anything
listens), then ingest, the fleet sampler, the notifier, then the dashboard. It holds no
business rules.
"""

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backoffice.commands import load_signing_key, send_command
from backoffice.config import BackofficeConfig
from backoffice.ingest import MqttIngest
from backoffice.notify import Notifier
from backoffice.revocation import Revocations
from backoffice.roles import Action
from backoffice.staff import Staff, record_action
from backoffice.store import Cursor, Store
from backoffice.trends import FleetSampler
from backoffice.web import Dashboard, DashboardServer


class BackofficeService:
    def __init__(self, config: BackofficeConfig) -> None:
        self.config = config
        self.store = Store(config.store)
        self.ingest = MqttIngest(self.store, config.broker, config.thresholds)
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
                self.ingest.client_publish,
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
        return self.web.url

    def start(self) -> None:
        self.ingest.start()
        self.sampler.start()
        self.notifier.start()
        self.web.start()

    def stop(self) -> None:
        self.web.stop()
        self.notifier.stop()
        self.sampler.stop()
        self.ingest.stop()
        self.store.close()
