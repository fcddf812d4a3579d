"""diagnose reads the telemetry outbox's backlog from the terminal's own database."""

import dataclasses

from firmware_tools.commands.diagnose import _mqtt_target, _outbox_backlog
from kiosk.telemetry.config import TelemetryConfig
from tests.fixtures.terminal import TerminalRig


def test_the_backlog_counts_the_closed_transactions_not_yet_acknowledged(
    terminal_rig: TerminalRig,
) -> None:
    rig = terminal_rig
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 50_00)
    rig.insert(progress.tx_id, 50_00)
    rig.terminal.finish(progress.tx_id)
    assert _outbox_backlog(rig.config) is None  # telemetry off: nothing to report
    telemetry = TelemetryConfig(broker_host="mqtt.example.net", cert_file="/etc/t.pem")
    config = dataclasses.replace(rig.config, telemetry=telemetry)
    backlog = _outbox_backlog(config)
    assert backlog is not None and backlog() == 1
    target = _mqtt_target(config, None)
    assert target is not None and target.host == "mqtt.example.net" and target.port == 8883
    assert target.cert_file == "/etc/t.pem" and target.client_id.endswith("-diagnose")
