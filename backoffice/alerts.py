"""Fleet alerts: what is raised when, cleared when the condition goes, acknowledged by staff.

Owns the alert kinds and the rules that turn health, events and liveness into alerts. An
alert is open until staff acknowledge it or its condition clears; at most one alert of a
kind is open per terminal (a partial unique index guarantees it across ingest workers).
It never talks to MQTT or HTTP.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

from backoffice.config import Thresholds
from backoffice.store import Cursor, Row

# kind -> English description (the message id of its label in backoffice.po).
ALERT_KINDS: dict[str, str] = {
    "offline": "Terminal offline",
    "paper_low": "Receipt paper low",
    "paper_out": "Receipt paper out",
    "low_float": "Float balance low",
    "cert_expiring": "Certificate expiring",
    "tamper": "Tamper switch triggered",
    "device_fault": "Device fault",
    "outbox_backlog": "Records waiting to upload",
    "gap": "Journal records missing",
    "rollback": "Journal rolled back",
    "clone": "Terminal identity cloned",
    "signer_outage": "Signing token outage",
}
# Alerts that only staff can close: the condition is evidence, not a state that passes.
STICKY_KINDS = ("tamper", "rollback", "clone", "device_fault")


def raise_alert(
    cursor: Cursor, station: str, terminal: str, kind: str, detail: str, now: float
) -> None:
    """Open an alert unless one of this kind is already open for the terminal."""
    if kind not in ALERT_KINDS:
        raise ValueError(f"unknown alert kind {kind!r}")
    cursor.execute(
        "INSERT INTO alerts (station, terminal, kind, detail, raised) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (station, terminal, kind, detail, now),
    )


def clear_alert(cursor: Cursor, station: str, terminal: str, kind: str, now: float) -> None:
    clear_alerts(cursor, station, terminal, [kind], now)


def clear_alerts(
    cursor: Cursor, station: str, terminal: str, kinds: Sequence[str], now: float
) -> None:
    """Clear the open alerts of these kinds, in one statement (a health report clears many)."""
    if not kinds:
        return
    marks = ", ".join("?" for _ in kinds)
    cursor.execute(
        "UPDATE alerts SET cleared = ? WHERE station = ? AND terminal = ? "
        f"AND kind IN ({marks}) AND cleared IS NULL AND acked IS NULL",
        (now, station, terminal, *kinds),
    )


def acknowledge_alert(cursor: Cursor, alert_id: int, by: str, now: float) -> bool:
    found = cursor.execute(
        "UPDATE alerts SET acked = ?, acked_by = ? WHERE id = ? AND acked IS NULL RETURNING id",
        (now, by, alert_id),
    )
    return bool(found)


def open_alerts(
    cursor: Cursor, station: str | None = None, terminal: str | None = None
) -> list[Row]:
    sql = "SELECT * FROM alerts WHERE acked IS NULL AND cleared IS NULL"
    params: list[Any] = []
    if station is not None and terminal is not None:
        sql += " AND station = ? AND terminal = ?"
        params += [station, terminal]
    return cursor.execute(sql + " ORDER BY raised DESC, id DESC", params)


def _set(
    cursor: Cursor,
    station: str,
    terminal: str,
    kind: str,
    active: bool,
    detail: str,
    now: float,
    cleared: list[str],
) -> None:
    if active:
        raise_alert(cursor, station, terminal, kind, detail, now)
    elif kind not in STICKY_KINDS:
        cleared.append(kind)  # cleared together at the end of apply_health


def faulty_devices(devices: Mapping[str, Any]) -> list[str]:
    """Names of devices whose health says they cannot work (offline, error, missing)."""
    faulty = []
    for name, health in sorted(devices.items()):
        if not isinstance(health, Mapping):
            continue
        if (
            health.get("online") is False
            or health.get("present") is False
            or health.get("ok") is False
            or health.get("error") not in (None, False, "", "none")
        ):
            faulty.append(name)
    return faulty


def apply_health(
    cursor: Cursor,
    station: str,
    terminal: str,
    health: Mapping[str, Any],
    thresholds: Thresholds,
    now: float,
) -> None:
    """Raise or clear the condition alerts a health report decides."""
    cleared: list[str] = []
    paper = health.get("paper")
    _set(cursor, station, terminal, "paper_out", paper == "out", "paper out", now, cleared)
    near_end = paper == "near_end"
    _set(cursor, station, terminal, "paper_low", near_end, "paper near end", now, cleared)
    balance = health.get("float_balance_fen")
    if isinstance(balance, int):
        low = balance < thresholds.low_float_fen
        detail = f"float {balance} fen < {thresholds.low_float_fen} fen"
        _set(cursor, station, terminal, "low_float", low, detail, now, cleared)
    days = health.get("cert_days_left")
    if isinstance(days, int):
        expiring = days < thresholds.cert_days
        detail = f"certificate expires in {days} days"
        _set(cursor, station, terminal, "cert_expiring", expiring, detail, now, cleared)
    backlog = health.get("outbox_backlog")
    if isinstance(backlog, int):
        high = backlog > thresholds.outbox_backlog
        detail = f"{backlog} records waiting (limit {thresholds.outbox_backlog})"
        _set(cursor, station, terminal, "outbox_backlog", high, detail, now, cleared)
    devices = health.get("devices")
    if isinstance(devices, Mapping):
        faulty = faulty_devices(devices)
        if faulty:
            details = {name: devices[name] for name in faulty}
            raise_alert(
                cursor, station, terminal, "device_fault", json.dumps(details, sort_keys=True), now
            )
    clear_alerts(cursor, station, terminal, cleared, now)


def apply_event(
    cursor: Cursor, station: str, terminal: str, kind: str, data: Mapping[str, Any], now: float
) -> None:
    detail = json.dumps(dict(data), ensure_ascii=False, sort_keys=True)
    if kind == "tamper":
        raise_alert(cursor, station, terminal, "tamper", detail, now)
    elif kind == "device_fault":
        raise_alert(cursor, station, terminal, "device_fault", detail, now)
    elif kind == "low_float":
        raise_alert(cursor, station, terminal, "low_float", detail, now)
    elif kind == "signer_outage":
        raise_alert(cursor, station, terminal, "signer_outage", detail, now)
    elif kind == "signer_recovered":
        clear_alert(cursor, station, terminal, "signer_outage", now)
