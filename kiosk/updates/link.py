"""The running terminal's side of updates: it reads the slots and asks; it never writes them.

Owns what the unprivileged kiosk service does about updates (docs/updates.md, "Who may write
what"): the `update` remote command (order checked, cohort and window decided here, then
handed to the privileged updater through the spool), confirming a version on trial once the
terminal started healthy, reporting the slots' events over MQTT, and asking for a restart,
between two payments, once the updater installed an ordered version. It never installs,
fetches or flashes anything (kiosk.updates.worker and the boot guard do, as root).
"""

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kiosk
from kiosk.updates.metadata import UpdateError, version_key
from kiosk.updates.rollout import OrderState, cohort_bucket, in_cohort, parse_order
from kiosk.updates.slots import STATE, SlotStore
from kiosk.updates.spool import Action, UpdateSpool

if TYPE_CHECKING:
    from kiosk.config import Config

SPOOL_DIR = "updates"  # under the terminal's data directory


class TerminalUpdates:
    def __init__(
        self,
        root: Path,
        spool_dir: Path,
        *,
        station: str,
        terminal: str,
        running_version: str = kiosk.__version__,
    ) -> None:
        self.store = SlotStore(root)
        self.spool = UpdateSpool(spool_dir)
        self.station = station
        self.terminal = terminal
        self.running_version = running_version
        self._reported = 0
        self._restart_asked_for: str | None = None

    def installed(self) -> bool:
        """Whether this terminal runs from A/B slots at all (not a development checkout)."""
        return (self.store.root / STATE).is_file()

    # ------------------------------------------------------------------ the remote command

    def handle_command(self, args: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """Answer an admitted `update` command; UpdateError when its args are wrong."""
        order = parse_order(args)
        bucket = cohort_bucket(order.rollout, self.station, self.terminal)
        answer: dict[str, Any] = {"rollout": order.rollout, "version": order.version}
        answer["bucket"] = bucket
        if not in_cohort(order, self.station, self.terminal):
            return {**answer, "state": str(OrderState.NOT_IN_COHORT)}
        if not self.installed():
            raise UpdateError(
                f"this terminal has no update slots under {self.store.root}: it cannot update"
            )
        active = self.store.read_status().active
        if active is not None and version_key(order.version) <= version_key(active.version or "0"):
            return {**answer, "state": str(OrderState.ALREADY_INSTALLED)}
        if now > order.not_after:
            return {**answer, "state": str(OrderState.EXPIRED)}
        request = self.spool.submit(Action.ORDER, order=order.to_json())
        return {**answer, "state": "accepted", "request": request}

    # ------------------------------------------------------------------ start and loop

    def confirm(self, now: datetime) -> str | None:
        """Ask the updater to confirm the version on trial if this process runs it."""
        if not self.installed():
            return None
        trial = self.store.read_status().trial
        if trial is None or trial.version != self.running_version:
            return None
        self.spool.submit(Action.CONFIRM)
        return trial.version

    def pending_events(self) -> list[dict[str, Any]]:
        """Update events not yet reported, as telemetry events: {seq, kind, time, ...}."""
        if not self.installed():
            return []
        return [
            {"kind": e["type"], **{k: v for k, v in e.items() if k != "type"}}
            for e in self.store.read_pending_events()
            if e["seq"] > self._reported
        ]

    def mark_reported(self, seq: int) -> None:
        if seq > self._reported:
            self._reported = seq
            self.spool.submit(Action.MARK_REPORTED, seq=seq)

    def restart_wanted(self) -> str | None:
        """The version to restart into: ordered, installed, active, and not the one running."""
        order = self.spool.order()
        if order is None or order.get("state") != OrderState.INSTALLED:
            return None
        version = str((order.get("order") or {}).get("version"))
        active = self.store.read_status().active
        # After a rollback the active version is the old one again: never restart for it.
        if active is None or active.version != version or version == self.running_version:
            return None
        if self._restart_asked_for == version:
            return None
        self._restart_asked_for = version
        return version

    def poll(
        self,
        publish_event: Callable[[str, Mapping[str, Any]], None],
        request_restart: Callable[[str], None],
    ) -> None:
        """From the terminal's loop: report new update events; restart into an installed order."""
        events = self.pending_events()
        for event in events:
            publish_event(
                str(event["kind"]), {k: v for k, v in event.items() if k not in ("kind", "seq")}
            )
        if events:
            self.mark_reported(int(events[-1]["seq"]))
        version = self.restart_wanted()
        if version is not None:
            request_restart(f"update {version} installed")


def updates_for_config(config: "Config") -> TerminalUpdates:
    """The terminal's updates: slots under updates.root, the spool in its data directory."""
    return TerminalUpdates(
        Path(config.updates.root),
        config.data_path / SPOOL_DIR,
        station=config.station.institution_no,
        terminal=config.station.terminal_id,
    )
