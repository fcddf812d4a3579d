"""Fleet alerts: what is raised when, cleared when the condition goes, acknowledged by staff.

Owns the alert kinds and the rules that turn health, events and liveness into alerts. An
alert is open until staff acknowledge it or its condition clears. A condition's alert that
staff acknowledge stays, acknowledged, until the condition clears, so a condition that lasts
does not raise a new one; an alert of a sticky kind (evidence, not a state that passes) is
closed by its acknowledgement. At most one uncleared alert of a kind per terminal (a partial
unique index guarantees it across ingest workers). It never talks to MQTT or HTTP.
"""

import json
from collections.abc import Collection, Mapping, Sequence
from enum import StrEnum
from typing import Any, Protocol

from backoffice.config import Thresholds
from backoffice.store import Cursor, Row, key_chunks, key_table
from kiosk.telemetry.event_kinds import EventKind


class AlertKind(StrEnum):
    OFFLINE = "offline"
    PAPER_LOW = "paper_low"
    PAPER_OUT = "paper_out"
    LOW_FLOAT = "low_float"
    CERT_EXPIRING = "cert_expiring"
    TAMPER = "tamper"
    DEVICE_FAULT = "device_fault"
    OUTBOX_BACKLOG = "outbox_backlog"
    GAP = "gap"
    ROLLBACK = "rollback"
    CLONE = "clone"
    SIGNER_OUTAGE = "signer_outage"
    # A record whose signature does not verify against the terminal's registered
    # certificate (or that is unsigned where it must be signed): quarantined.
    BAD_SIGNATURE = "bad_signature"
    # The terminal's own alert records (kiosk.journal.record_types.TerminalAlertKind).
    TX_IN_DOUBT = "tx_in_doubt"
    PLATFORM_ANSWER_MISMATCH = "platform_answer_mismatch"
    HOLD_NOT_RELEASED = "hold_not_released"
    VOUCHER_NOT_REGISTERED = "voucher_not_registered"
    CARD_CREDIT_CONFLICT = "card_credit_conflict"
    UNRECOGNISED_CASH = "unrecognised_cash"
    INLETS_NOT_CLOSED = "inlets_not_closed"
    CLOCK_WRONG = "clock_wrong"
    CASH_SUSPENSE = "cash_suspense"
    # A staged rollout halted itself: too many terminals rolled its version back
    # (backoffice.rollouts); raised on the terminal whose rollback passed the threshold.
    ROLLOUT_HALTED = "rollout_halted"
    # The operator's day (docs/transactions.md "The operator's day").
    DAY_NOT_BALANCED = "day_not_balanced"
    CASH_COUNT_DISCREPANCY = "cash_count_discrepancy"
    DEPOSIT_REFUSED = "deposit_refused"


# kind -> English description (the message id of its label in backoffice.po).
ALERT_KINDS: dict[str, str] = {
    AlertKind.OFFLINE: "Terminal offline",
    AlertKind.PAPER_LOW: "Receipt paper low",
    AlertKind.PAPER_OUT: "Receipt paper out",
    AlertKind.LOW_FLOAT: "Float balance low",
    AlertKind.CERT_EXPIRING: "Certificate expiring",
    AlertKind.TAMPER: "Tamper switch triggered",
    AlertKind.DEVICE_FAULT: "Device fault",
    AlertKind.OUTBOX_BACKLOG: "Records waiting to upload",
    AlertKind.GAP: "Journal records missing",
    AlertKind.ROLLBACK: "Journal rolled back",
    AlertKind.CLONE: "Terminal identity cloned",
    AlertKind.SIGNER_OUTAGE: "Signing token outage",
    AlertKind.BAD_SIGNATURE: "Record signature invalid (quarantined)",
    AlertKind.TX_IN_DOUBT: "Transaction in doubt",
    AlertKind.PLATFORM_ANSWER_MISMATCH: "Platform answer does not match",
    AlertKind.HOLD_NOT_RELEASED: "Float hold not released",
    AlertKind.VOUCHER_NOT_REGISTERED: "Voucher not registered",
    AlertKind.CARD_CREDIT_CONFLICT: "Card credit conflict",
    AlertKind.UNRECOGNISED_CASH: "Unrecognised cash",
    AlertKind.INLETS_NOT_CLOSED: "Cash inlets not closed",
    AlertKind.CLOCK_WRONG: "Terminal clock wrong",
    AlertKind.CASH_SUSPENSE: "Cash in suspense",
    AlertKind.ROLLOUT_HALTED: "Software rollout halted",
    AlertKind.DAY_NOT_BALANCED: "Day does not balance",
    AlertKind.CASH_COUNT_DISCREPANCY: "Cash count differs from the journal",
    AlertKind.DEPOSIT_REFUSED: "Float deposit refused",
}
# Alerts that only staff can close: the condition is evidence, not a state that passes.
STICKY_KINDS: tuple[str, ...] = (
    AlertKind.TAMPER,
    AlertKind.ROLLBACK,
    AlertKind.CLONE,
    AlertKind.DEVICE_FAULT,
    AlertKind.BAD_SIGNATURE,
    AlertKind.TX_IN_DOUBT,
    AlertKind.PLATFORM_ANSWER_MISMATCH,
    AlertKind.HOLD_NOT_RELEASED,
    AlertKind.VOUCHER_NOT_REGISTERED,
    AlertKind.CARD_CREDIT_CONFLICT,
    AlertKind.UNRECOGNISED_CASH,
    AlertKind.INLETS_NOT_CLOSED,
    AlertKind.CLOCK_WRONG,
    AlertKind.CASH_SUSPENSE,
    AlertKind.ROLLOUT_HALTED,
    AlertKind.DAY_NOT_BALANCED,
    AlertKind.CASH_COUNT_DISCREPANCY,
    AlertKind.DEPOSIT_REFUSED,
)
_RAISE = (
    "INSERT INTO alerts (station, terminal, kind, detail, raised) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
_CLEAR = (
    "UPDATE alerts SET cleared = ? WHERE station = ? AND terminal = ? AND kind = ? "
    "AND cleared IS NULL"
)


def raise_alert(
    cursor: Cursor, station: str, terminal: str, kind: str, detail: str, now: float
) -> None:
    """Open an alert unless one of this kind is uncleared for the terminal (open, or
    acknowledged while its condition lasts)."""
    if kind not in ALERT_KINDS:
        raise ValueError(f"unknown alert kind {kind!r}")
    cursor.execute(_RAISE, (station, terminal, kind, detail, now))


def clear_alert(cursor: Cursor, station: str, terminal: str, kind: str, now: float) -> None:
    """Clear the alert of this kind: its condition has gone (acknowledged or not)."""
    cursor.execute(_CLEAR, (now, station, terminal, kind))


class AlertSink(Protocol):
    """Where the rules below send their decisions: a batch's changes (BatchAlerts), or one
    message's decisions (backoffice.messages), which the batch then replays."""

    def raise_alert(self, station: str, terminal: str, kind: str, detail: str, now: float) -> None:
        """Open an alert unless one of this kind is already open for the terminal."""

    def clear_alerts(self, station: str, terminal: str, kinds: Sequence[str], now: float) -> None:
        """Clear the open alerts of these kinds."""


class BatchAlerts:
    """The alert changes of one ingest batch, decided in memory and written in order by write().

    Every health report clears up to five condition kinds, and almost none of them is open:
    knowing which alerts are uncleared (open, or acknowledged while their condition lasts)
    for the batch's terminals (load_open, one query per KEY_CHUNK terminals, inside the
    batch's transaction) skips those clears. Raises are always written
    (the partial unique index and ON CONFLICT DO NOTHING decide), so a stale view could only
    cost a statement, never lose an alert; the writes keep the order of the decisions, so a
    raise and a clear of one kind in one batch leave the same rows as one at a time. It
    lives for one batch: the next reads the open alerts again, since another ingest worker
    may have changed them.
    """

    def __init__(self) -> None:
        self._loaded: set[tuple[str, str]] = set()
        self._open: set[tuple[str, str, str]] = set()
        self._changes: list[tuple[str, tuple[Any, ...]]] = []

    def load_open(self, cursor: Cursor, terminals: Collection[tuple[str, str]]) -> None:
        """Learn the uncleared alerts of these terminals (those with clears to decide)."""
        wanted = sorted(set(terminals) - self._loaded)
        for chunk in key_chunks(wanted):
            rows = cursor.execute(
                f"SELECT a.station, a.terminal, a.kind FROM {key_table(chunk)} "
                "JOIN alerts a ON a.station = k.column1 AND a.terminal = k.column2 "
                "WHERE a.cleared IS NULL",
                [value for key in chunk for value in key],
            )
            self._open.update((r["station"], r["terminal"], r["kind"]) for r in rows)
        self._loaded.update(wanted)

    def raise_alert(self, station: str, terminal: str, kind: str, detail: str, now: float) -> None:
        if kind not in ALERT_KINDS:
            raise ValueError(f"unknown alert kind {kind!r}")
        self._open.add((station, terminal, kind))
        self._changes.append((_RAISE, (station, terminal, kind, detail, now)))

    def clear_alerts(self, station: str, terminal: str, kinds: Sequence[str], now: float) -> None:
        known = (station, terminal) in self._loaded
        for kind in kinds:
            key = (station, terminal, kind)
            if known and key not in self._open:
                continue  # nothing open to clear
            self._open.discard(key)
            self._changes.append((_CLEAR, (now, station, terminal, kind)))

    def write(self, cursor: Cursor) -> None:
        """Write the changes in the order they were decided (consecutive ones of a kind at once)."""
        start = 0
        for end in range(1, len(self._changes) + 1):
            if end == len(self._changes) or self._changes[end][0] != self._changes[start][0]:
                run = self._changes[start:end]
                cursor.executemany(run[0][0], [params for _, params in run])
                start = end
        self._changes.clear()


def acknowledge_alert(cursor: Cursor, alert_id: int, by: str, now: float) -> bool:
    """Staff have seen the alert: it leaves the open alerts. A sticky kind's alert is closed
    too (the next such event opens a new one); a condition's stays uncleared until the
    condition goes, so the condition lasting raises no new alert meanwhile."""
    sticky = ", ".join(f"'{kind}'" for kind in STICKY_KINDS)
    found = cursor.execute(
        "UPDATE alerts SET acked = ?, acked_by = ?, "
        f"cleared = CASE WHEN kind IN ({sticky}) THEN ? ELSE cleared END "
        "WHERE id = ? AND acked IS NULL RETURNING id",
        (now, by, now, alert_id),
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


def faulty_devices(devices: Mapping[str, Any]) -> list[str]:
    """Names of devices whose health says they cannot work (offline, error, missing), sorted."""
    faulty = [
        name
        for name, health in devices.items()
        if isinstance(health, Mapping)
        and (
            health.get("online") is False
            or health.get("present") is False
            or health.get("ok") is False
            or health.get("error") not in (None, False, "", "none")
        )
    ]
    faulty.sort()
    return faulty


def apply_health(
    alerts: AlertSink,
    station: str,
    terminal: str,
    health: Mapping[str, Any],
    thresholds: Thresholds,
    now: float,
) -> None:
    """Raise the condition alerts a health report decides, in this order, then clear the
    others it speaks for, together. None of these kinds is sticky (STICKY_KINDS)."""
    cleared: list[str] = []
    paper = health.get("paper")
    if paper == "out":
        alerts.raise_alert(station, terminal, "paper_out", "paper out", now)
    else:
        cleared.append("paper_out")
    if paper == "near_end":
        alerts.raise_alert(station, terminal, "paper_low", "paper near end", now)
    else:
        cleared.append("paper_low")
    balance = health.get("float_balance_fen")
    if isinstance(balance, int):
        if balance < thresholds.low_float_fen:
            detail = f"float {balance} fen < {thresholds.low_float_fen} fen"
            alerts.raise_alert(station, terminal, "low_float", detail, now)
        else:
            cleared.append("low_float")
    days = health.get("cert_days_left")
    if isinstance(days, int):
        if days < thresholds.cert_days:
            detail = f"certificate expires in {days} days"
            alerts.raise_alert(station, terminal, "cert_expiring", detail, now)
        else:
            cleared.append("cert_expiring")
    backlog = health.get("outbox_backlog")
    if isinstance(backlog, int):
        if backlog > thresholds.outbox_backlog:
            detail = f"{backlog} records waiting (limit {thresholds.outbox_backlog})"
            alerts.raise_alert(station, terminal, "outbox_backlog", detail, now)
        else:
            cleared.append("outbox_backlog")
    devices = health.get("devices")
    if isinstance(devices, Mapping):
        faulty = faulty_devices(devices)
        if faulty:
            detail = json.dumps({name: devices[name] for name in faulty}, sort_keys=True)
            alerts.raise_alert(station, terminal, "device_fault", detail, now)
    if cleared:
        alerts.clear_alerts(station, terminal, cleared, now)


def apply_event(
    alerts: AlertSink,
    station: str,
    terminal: str,
    kind: str,
    data: Mapping[str, Any],
    now: float,
) -> None:
    detail = json.dumps(dict(data), ensure_ascii=False, sort_keys=True)
    if kind in (
        EventKind.TAMPER,
        EventKind.DEVICE_FAULT,
        EventKind.LOW_FLOAT,
        EventKind.SIGNER_OUTAGE,
    ):
        alerts.raise_alert(station, terminal, kind, detail, now)
    elif kind == EventKind.SIGNER_RECOVERED:
        alerts.clear_alerts(station, terminal, ["signer_outage"], now)
