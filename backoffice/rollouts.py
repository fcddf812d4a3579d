"""Staged software rollouts sent to the fleet, and the halt when trial versions roll back.

Owns the `rollouts`, `rollout_stages` and `rollout_terminals` tables (migration block
"bo20" in backoffice.migrations) and their rules (docs/backoffice.md, "Rollouts"):

- a rollout is a version, its bundle, stages (cohort percents, growing), a window and a
  halt threshold; created by an admin, then each stage is sent by an admin as the signed
  `update` command to every terminal the back office knows (the terminal decides whether
  it is in the cohort: kiosk.updates.rollout);
- ingest hands it every update_* event in the batch's transaction (apply_update_events):
  each terminal's fate under a rollout is one row, so an event delivered twice counts once;
- the rollout halts itself, in that same transaction, when enough terminals installed its
  version and the share of them rolled back by the boot guard (`update_rolled_back`,
  reason `not_confirmed`) passes the threshold: no further stage can be sent, its state
  says why, and an alert (kind rollout_halted) goes out through the notifier;
- the fleet's versions: version -> terminals, from what heartbeats and health report and
  which installed versions are still on trial.

It never speaks MQTT: sending goes through the dashboard's signed-command callable.
"""

import datetime
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from backoffice.alerts import AlertKind, AlertSink
from backoffice.errors import BackofficeError
from backoffice.store import Cursor, Row, Store
from kiosk.updates.events import SOFTWARE_EVENTS, RollbackReason, UpdateEventKind
from kiosk.updates.metadata import UpdateError, version_key

# The default halt rule: more than 20 % of the terminals that installed the version rolled
# it back, once at least 2 have installed it (fewer would halt on one unlucky terminal,
# or never, when only one is in the first cohort).
DEFAULT_THRESHOLD_PERCENT = 20.0
DEFAULT_MIN_SAMPLE = 2
DEFAULT_STAGES = (1, 10, 50, 100)

# (station, terminal, name, args) -> the signed command sent (backoffice.commands).
SendUpdate = Callable[[str, str, str, dict[str, Any]], dict[str, Any]]

_ROLLOUT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")  # what kiosk.updates.rollout accepts
_TARGET = re.compile(r"^[A-Za-z0-9_.+-]{1,200}\Z")


class RolloutRefused(BackofficeError):
    """A rollout could not be created or a stage could not be sent; says why."""


class RolloutState(StrEnum):
    CREATED = "created"  # no stage sent yet
    RUNNING = "running"  # some stages sent
    COMPLETE = "complete"  # every stage sent; still watched, it may still halt
    HALTED = "halted"  # no further stage: too many rolled back, or an admin halted it


WATCHED = (RolloutState.RUNNING, RolloutState.COMPLETE)


@dataclass(frozen=True)
class RolloutPlan:
    """What an admin asks for; checked by plan_problem before anything is stored."""

    rollout: str
    version: str
    target: str
    stages: tuple[int, ...]
    not_before: datetime.datetime
    not_after: datetime.datetime
    threshold_percent: float = DEFAULT_THRESHOLD_PERCENT
    min_sample: int = DEFAULT_MIN_SAMPLE
    max_starts: int | None = None


@dataclass(frozen=True)
class Counts:
    installed: int
    confirmed: int
    rolled_back: int  # by the boot guard (not_confirmed)

    @property
    def rolled_back_percent(self) -> float:
        return 100.0 * self.rolled_back / self.installed if self.installed else 0.0


def should_halt(counts: Counts, threshold_percent: float, min_sample: int) -> bool:
    """The halt rule: at least min_sample installed, and the share rolled back above the
    threshold (strictly: 1 of 5 with a 20 % threshold does not halt, 2 of 5 does)."""
    return (
        counts.installed >= min_sample
        and counts.rolled_back * 100.0 > threshold_percent * counts.installed
    )


def parse_stages(text: str) -> tuple[int, ...]:
    """'1, 10, 50, 100' -> (1, 10, 50, 100); RolloutRefused names what is wrong."""
    parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    if not parts or not all(part.isdigit() for part in parts):
        raise RolloutRefused(
            f"stages {text!r}: give percents separated by commas, e.g. 1,10,50,100"
        )
    return tuple(int(part) for part in parts)


def plan_problem(plan: RolloutPlan) -> str | None:
    """None for a plan that can be stored, else one line saying what to change."""
    if not _ROLLOUT_ID.match(plan.rollout):
        return "rollout: 1-64 letters, digits or _ . : - (e.g. r-2026-05-1.4.0)"
    if not _TARGET.match(plan.target):
        return "target: a bundle file name like kiosk-1.4.0.bundle"
    try:
        version_key(plan.version)
    except UpdateError as exc:
        return f"version: {exc}"
    stages = plan.stages
    if not stages or any(not 1 <= s <= 100 for s in stages):
        return "stages: each percent from 1 to 100"
    if any(b <= a for a, b in zip(stages, stages[1:], strict=False)):
        return "stages: each percent larger than the one before (a stage keeps the earlier ones)"
    if plan.not_before.tzinfo is None or plan.not_after.tzinfo is None:
        return "window: times must carry a UTC offset"
    if plan.not_after <= plan.not_before:
        return "window: not after must be later than not before"
    if not 0 < plan.threshold_percent < 100:
        return "threshold: a percent above 0 and below 100"
    if not 1 <= plan.min_sample <= 100_000:
        return "minimum sample: a whole number from 1"
    if plan.max_starts is not None and not 1 <= plan.max_starts <= 10:
        return "starts before rollback: a whole number from 1 to 10"
    return None


def create_rollout(store: Store, plan: RolloutPlan, created_by: str, now: float) -> None:
    problem = plan_problem(plan)
    if problem is not None:
        raise RolloutRefused(problem)
    with store.transaction() as cursor:
        if cursor.execute("SELECT 1 FROM rollouts WHERE id = ?", (plan.rollout,)):
            raise RolloutRefused(f"rollout {plan.rollout} exists already: choose another id")
        watched = cursor.execute(
            "SELECT id FROM rollouts WHERE version = ? AND state IN (?, ?, ?)",
            (plan.version, RolloutState.CREATED, *WATCHED),
        )
        if watched:
            # The terminal's events name the version, not the rollout: one at a time per version.
            raise RolloutRefused(
                f"rollout {watched[0]['id']} already carries {plan.version}: halt it first"
            )
        cursor.execute(
            "INSERT INTO rollouts (id, version, target, stages, not_before, not_after, "
            "threshold_percent, min_sample, max_starts, state, created, created_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                plan.rollout,
                plan.version,
                plan.target,
                json.dumps(list(plan.stages)),
                plan.not_before.isoformat(),
                plan.not_after.isoformat(),
                plan.threshold_percent,
                plan.min_sample,
                plan.max_starts,
                RolloutState.CREATED,
                now,
                created_by,
            ),
        )


def _rollout(cursor: Cursor, rollout: str) -> Row:
    rows = cursor.execute("SELECT * FROM rollouts WHERE id = ?", (rollout,))
    if not rows:
        raise RolloutRefused(f"no rollout {rollout!r}")
    return rows[0]


def stage_args(row: Mapping[str, Any], percent: int, now: float) -> dict[str, Any]:
    """The `update` command's args for one stage (kiosk.updates.rollout.parse_order reads
    them): the rollout's window, opened no earlier than the stage is sent."""
    sent = datetime.datetime.fromtimestamp(now, datetime.UTC)
    not_before = max(datetime.datetime.fromisoformat(row["not_before"]), sent)
    args: dict[str, Any] = {
        "rollout": row["id"],
        "version": row["version"],
        "target": row["target"],
        "cohort_percent": percent,
        "not_before": not_before.isoformat(),
        "not_after": row["not_after"],
    }
    if row["max_starts"] is not None:
        args["max_starts"] = int(row["max_starts"])
    return args


def send_next_stage(
    store: Store, send: SendUpdate, rollout: str, sent_by: str, now: float
) -> tuple[int, int]:
    """Send the rollout's next stage to every known terminal; return (percent, terminals).

    The stage is recorded (and the rollout moved on) before any command goes out, in the
    transaction that checks the rollout is not halted, so two admins cannot send one stage
    twice and a halt decided by ingest is never overtaken."""
    with store.transaction() as cursor:
        row = _rollout(cursor, rollout)
        if row["state"] == RolloutState.HALTED:
            raise RolloutRefused(f"rollout {rollout} is halted ({row['state_reason']}): no stage")
        stages = json.loads(row["stages"])
        index = int(row["stages_sent"])
        if index >= len(stages):
            raise RolloutRefused(f"rollout {rollout} has sent every stage already")
        if datetime.datetime.fromtimestamp(now, datetime.UTC) > datetime.datetime.fromisoformat(
            row["not_after"]
        ):
            raise RolloutRefused(f"rollout {rollout}'s window has closed: create a new rollout")
        terminals = cursor.execute(
            "SELECT station, terminal FROM terminals ORDER BY station, terminal"
        )
        percent = int(stages[index])
        done = index + 1 == len(stages)
        cursor.execute(
            "INSERT INTO rollout_stages (rollout, stage, percent, sent, sent_by, terminals) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (rollout, index + 1, percent, now, sent_by, len(terminals)),
        )
        cursor.execute(
            "UPDATE rollouts SET stages_sent = ?, state = ? WHERE id = ?",
            (index + 1, RolloutState.COMPLETE if done else RolloutState.RUNNING, rollout),
        )
        args = stage_args(row, percent, now)
    for terminal in terminals:
        send(terminal["station"], terminal["terminal"], "update", dict(args))
    return percent, len(terminals)


def halt_rollout(store: Store, rollout: str, reason: str, now: float) -> bool:
    """An admin halts a rollout by hand; False if it was halted already."""
    with store.transaction() as cursor:
        _rollout(cursor, rollout)
        return _halt(cursor, rollout, reason, now)


def _halt(cursor: Cursor, rollout: str, reason: str, now: float) -> bool:
    moved = cursor.execute(
        "UPDATE rollouts SET state = ?, state_reason = ?, halted_at = ? "
        "WHERE id = ? AND state <> ? RETURNING id",
        (RolloutState.HALTED, reason, now, rollout, RolloutState.HALTED),
    )
    return bool(moved)


# ----------------------------------------------------------------------------- ingest


@dataclass(frozen=True)
class UpdateEvent:
    station: str
    terminal: str
    kind: str
    data: Mapping[str, Any]


def update_events(events: Iterable[tuple[Any, ...]]) -> list[UpdateEvent]:
    """The update events among ingest's event rows (station, terminal, received, time, kind,
    data_json)."""
    found = []
    for station, terminal, _received, _time, kind, data_json in events:
        if kind in SOFTWARE_EVENTS:
            data = json.loads(data_json)
            if isinstance(data, dict):
                found.append(UpdateEvent(station, terminal, kind, data))
    return found


def _version_of(event: UpdateEvent) -> str | None:
    key = "from_version" if event.kind == UpdateEventKind.ROLLED_BACK else "version"
    value = event.data.get(key)
    return value if isinstance(value, str) else None


def apply_update_events(
    cursor: Cursor, events: Sequence[UpdateEvent], alerts: AlertSink, now: float
) -> list[str]:
    """Count a batch's update events against the rollouts being watched, in ingest's
    transaction, and halt those that pass their threshold; return the rollouts halted.

    A terminal's events name the version (the progress events the rollout too); each
    (rollout, terminal) is one row whose columns are set once, so duplicates count once."""
    if not events:
        return []
    watched = cursor.execute(
        "SELECT id, version, threshold_percent, min_sample FROM rollouts WHERE state IN (?, ?)",
        tuple(WATCHED),
    )
    by_version = {row["version"]: row for row in watched}
    by_id = {row["id"]: row for row in watched}
    touched: dict[str, UpdateEvent] = {}
    for event in events:
        if event.kind == UpdateEventKind.PROGRESS:
            row = by_id.get(str(event.data.get("rollout")))
        else:
            row = by_version.get(_version_of(event) or "")
        if row is None:
            continue
        _note(cursor, row["id"], event, now)
        touched[row["id"]] = event
    halted = []
    for rollout, last in touched.items():
        row = by_id[rollout]
        counts = _counts(cursor, rollout)
        if not should_halt(counts, row["threshold_percent"], row["min_sample"]):
            continue
        reason = (
            f"{counts.rolled_back} of {counts.installed} terminals that installed "
            f"{row['version']} rolled it back (over {row['threshold_percent']:g} %)"
        )
        if _halt(cursor, rollout, reason, now):
            halted.append(rollout)
            alerts.raise_alert(
                last.station,
                last.terminal,
                AlertKind.ROLLOUT_HALTED,
                f"rollout {rollout} halted: {reason}",
                now,
            )
    return halted


def _note(cursor: Cursor, rollout: str, event: UpdateEvent, now: float) -> None:
    cursor.execute(
        "INSERT INTO rollout_terminals (rollout, station, terminal, updated) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (rollout, station, terminal) DO NOTHING",
        (rollout, event.station, event.terminal, now),
    )
    key = (rollout, event.station, event.terminal)
    where = " WHERE rollout = ? AND station = ? AND terminal = ?"
    if event.kind == UpdateEventKind.INSTALLED:
        cursor.execute(
            "UPDATE rollout_terminals SET installed = COALESCE(installed, ?), updated = ?" + where,
            (now, now, *key),
        )
    elif event.kind == UpdateEventKind.CONFIRMED:
        cursor.execute(
            "UPDATE rollout_terminals SET confirmed = COALESCE(confirmed, ?), updated = ?" + where,
            (now, now, *key),
        )
    elif event.kind == UpdateEventKind.ROLLED_BACK:
        reason = str(event.data.get("reason") or "")
        cursor.execute(
            "UPDATE rollout_terminals SET rolled_back = COALESCE(rolled_back, ?), "
            "rollback_reason = COALESCE(rollback_reason, ?), updated = ?" + where,
            (now, reason, now, *key),
        )
    else:
        cursor.execute(
            "UPDATE rollout_terminals SET progress = ?, updated = ?" + where,
            (str(event.data.get("state") or ""), now, *key),
        )


def _counts(cursor: Cursor, rollout: str) -> Counts:
    row = cursor.execute(
        "SELECT COUNT(installed) AS installed, COUNT(confirmed) AS confirmed, "
        "COALESCE(SUM(CASE WHEN rollback_reason = ? THEN 1 ELSE 0 END), 0) AS rolled_back "
        "FROM rollout_terminals WHERE rollout = ?",
        (RollbackReason.NOT_CONFIRMED, rollout),
    )[0]
    return Counts(int(row["installed"]), int(row["confirmed"]), int(row["rolled_back"]))


# ----------------------------------------------------------------------------- views


@dataclass(frozen=True)
class RolloutView:
    row: Row
    stages: tuple[int, ...]
    counts: Counts
    sent: list[Row]  # the stages sent: stage, percent, sent, sent_by, terminals
    terminals: list[Row]  # per terminal: progress, installed, confirmed, rolled_back

    @property
    def next_percent(self) -> int | None:
        index = int(self.row["stages_sent"])
        if self.row["state"] == RolloutState.HALTED or index >= len(self.stages):
            return None
        return self.stages[index]


def rollout_views(store: Store) -> list[RolloutView]:
    """Every rollout, newest first, with its counts, stages and terminals."""
    with store.transaction() as cursor:
        rows = cursor.execute("SELECT * FROM rollouts ORDER BY created DESC, id")
        views = []
        for row in rows:
            sent = cursor.execute(
                "SELECT stage, percent, sent, sent_by, terminals FROM rollout_stages "
                "WHERE rollout = ? ORDER BY stage",
                (row["id"],),
            )
            terminals = cursor.execute(
                "SELECT station, terminal, progress, installed, confirmed, rolled_back, "
                "rollback_reason FROM rollout_terminals WHERE rollout = ? "
                "ORDER BY station, terminal",
                (row["id"],),
            )
            views.append(
                RolloutView(
                    row,
                    tuple(json.loads(row["stages"])),
                    _counts(cursor, row["id"]),
                    sent,
                    terminals,
                )
            )
    return views


@dataclass(frozen=True)
class VersionRow:
    version: str  # "" when no terminal reported one
    terminals: tuple[str, ...]  # station/terminal running it
    on_trial: int  # of them, installed under a rollout and not yet confirmed


def fleet_versions(store: Store) -> list[VersionRow]:
    """Version -> the terminals that report running it (status and health), newest first."""
    rows = store.query(
        "SELECT t.station, t.terminal, t.software, EXISTS (SELECT 1 FROM rollout_terminals rt "
        "JOIN rollouts r ON r.id = rt.rollout WHERE rt.station = t.station "
        "AND rt.terminal = t.terminal AND r.version = t.software AND rt.installed IS NOT NULL "
        "AND rt.confirmed IS NULL AND rt.rolled_back IS NULL) AS trial "
        "FROM terminals t ORDER BY t.station, t.terminal"
    )
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row["software"] or "", []).append(row)

    def newest_first(version: str) -> tuple[int, tuple[int, ...]]:
        try:
            return (1, version_key(version).release)
        except UpdateError:
            return (0, ())

    return [
        VersionRow(
            version,
            tuple(f"{r['station']}/{r['terminal']}" for r in members),
            sum(1 for r in members if r["trial"]),
        )
        for version, members in sorted(
            grouped.items(), key=lambda item: newest_first(item[0]), reverse=True
        )
    ]
