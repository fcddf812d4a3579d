"""The running back office: one store, one MQTT ingest worker and the dashboard, together.

Owns start-up order, health for systemd's watchdog and shutdown: the store first (a bad URL
fails before anything listens), then ingest, then the dashboard. With dashboard=False it is
an ingest worker alone (`kiosk-backoffice ingest`), one of several on a shared
subscription. It holds no business rules.
"""

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backoffice.commands import load_signing_key, send_command
from backoffice.config import BackofficeConfig
from backoffice.store import Store
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
        try:
            self.ingest = MqttIngest(
                self.store, config.broker, config.thresholds, client_id=client_id
            )
            key = None
            if dashboard and config.commands.key_file:
                key = load_signing_key(Path(config.commands.key_file))
        except BaseException:
            self.store.close()
            raise

        def send(
            station: str, terminal: str, name: str, args: Mapping[str, Any], by: str
        ) -> dict[str, Any]:
            assert key is not None
            return send_command(
                self.store,
                self.ingest.publish_command,
                key,
                station=station,
                terminal=terminal,
                name=name,
                args=args,
                sent_by=by,
                ttl_s=config.commands.ttl_s,
                now=time.time(),
            )

        self.web: DashboardServer | None = None
        if dashboard:
            self.dashboard = Dashboard(self.store, config, send if key is not None else None)
            self.web = DashboardServer(self.dashboard, config.http.host, config.http.port)

    @property
    def url(self) -> str:
        return self.web.url if self.web is not None else ""

    def start(self) -> None:
        self.ingest.start()
        if self.web is not None:
            self.web.start()

    def healthy(self) -> bool:
        """What the systemd watchdog is fed on: the ingest worker is alive and going round
        (waiting for an unreachable database counts as going round)."""
        return self.ingest.alive() and time.monotonic() - self.ingest.last_progress < STUCK_AFTER_S

    def stop(self) -> None:
        if self.web is not None:
            self.web.stop()
        self.ingest.stop()
        self.store.close()
