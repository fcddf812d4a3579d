"""The running back office: one store, one MQTT ingest worker and the dashboard, together.

Owns start-up order and shutdown: the store first (a bad URL fails before anything
listens), then ingest, then the dashboard. It holds no business rules.
"""

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backoffice.commands import load_signing_key, send_command
from backoffice.config import BackofficeConfig
from backoffice.ingest import MqttIngest
from backoffice.store import Store
from backoffice.web import Dashboard, DashboardServer


class BackofficeService:
    def __init__(self, config: BackofficeConfig) -> None:
        self.config = config
        self.store = Store(config.store)
        self.ingest = MqttIngest(self.store, config.broker, config.thresholds)
        key = load_signing_key(Path(config.commands.key_file)) if config.commands.key_file else None

        def send(
            station: str, terminal: str, name: str, args: Mapping[str, Any], by: str
        ) -> dict[str, Any]:
            assert key is not None
            return send_command(
                self.store,
                self.ingest.client_publish,
                key,
                station=station,
                terminal=terminal,
                name=name,
                args=args,
                sent_by=by,
                ttl_s=config.commands.ttl_s,
                now=time.time(),
            )

        self.dashboard = Dashboard(self.store, config, send if key is not None else None)
        self.web = DashboardServer(self.dashboard, config.http.host, config.http.port)

    @property
    def url(self) -> str:
        return self.web.url

    def start(self) -> None:
        self.ingest.start()
        self.web.start()

    def stop(self) -> None:
        self.web.stop()
        self.ingest.stop()
        self.store.close()
