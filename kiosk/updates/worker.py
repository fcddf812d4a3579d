"""The privileged updater: carries out what the terminal asked through the spool.

Runs as root in kiosk-updater.service, started by kiosk-updater.path when a request arrives
and by kiosk-updater.timer every few minutes (for orders whose window opens later). It owns
the order's life: a new order is checked again (it came from the kiosk user's files), kept
in SPOOL/order.json, and once its window is open the bundle is fetched with TUF, installed
into the inactive slot (release key, hardware, version checks: kiosk.updates.slots) and left
for the terminal to restart into. Every step is an update_progress event in the slots'
state, which the terminal reports over MQTT. A download that fails is tried again at the
next run while the window is open; a refused bundle fails the order for good.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kiosk.message_text import MessageText, error_text
from kiosk.updates.events import UpdateEventKind
from kiosk.updates.metadata import UpdateError, version_key
from kiosk.updates.rollout import OrderState, UpdateOrder, parse_order
from kiosk.updates.slots import DEFAULT_MAX_STARTS, SlotStore
from kiosk.updates.spool import Action, Request, UpdateSpool

# A download is reported at these fractions (not at every chunk: events go over MQTT).
PROGRESS_STEPS = (25, 50, 75)

# fetch(target, download_dir, progress) -> path of the verified download (kiosk.updates.fetch)
Fetch = Callable[[str, Path, Callable[[int, int], None]], Path]


@dataclass(frozen=True)
class UpdaterSetup:
    store: SlotStore
    spool: UpdateSpool
    release_public_pem: bytes
    hardware: str
    fetch: Fetch


class Updater:
    def __init__(self, setup: UpdaterSetup, now: Callable[[], datetime]) -> None:
        self.s = setup
        self._now = now

    def run(self) -> list[str]:
        """Answer every request, then advance the order; return one line per thing done."""
        done: list[str] = []
        for item in self.s.spool.take():
            if isinstance(item, tuple):
                request_id, reason = item
                self.s.spool.answer(request_id, {"ok": False, "error": reason})
                done.append(
                    MessageText(
                        "refused request {request_id}: {reason}",
                        request_id=request_id,
                        reason=reason,
                    )
                )
                continue
            try:
                answer = self._handle(item)
            except UpdateError as exc:
                answer = {"ok": False, "error": str(exc)}
            self.s.spool.answer(item.id, answer)
            done.append(f"{item.action} {item.id}: {answer}")
        line = self.advance()
        if line:
            done.append(line)
        return done

    # ------------------------------------------------------------------ requests

    def _handle(self, request: Request) -> dict[str, Any]:
        now = self._now()
        if request.action is Action.CONFIRM:
            return {"ok": True, "confirmed": self.s.store.confirm(now)}
        if request.action is Action.MARK_REPORTED:
            seq = request.fields.get("seq")
            if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
                raise UpdateError("mark_reported needs a whole seq")
            self.s.store.mark_reported(seq)
            return {"ok": True}
        order = parse_order(request.fields.get("order") or {})
        return {"ok": True, "state": self._accept(order, now)}

    def _accept(self, order: UpdateOrder, now: datetime) -> str:
        status = self.s.store.status()
        installed = status.active.version if status.active else None
        if installed is not None and version_key(order.version) <= version_key(installed):
            state = OrderState.ALREADY_INSTALLED
        elif now > order.not_after:
            state = OrderState.EXPIRED
        else:
            current = self.s.spool.order()
            if current is not None and current.get("state") in (
                OrderState.DOWNLOADING,
                OrderState.INSTALLING,
            ):
                raise UpdateError(
                    MessageText(
                        "order for {version} is being carried out: send it later",
                        version=current.get("version"),
                    )
                )
            state = OrderState.WAITING
            self.s.spool.write_order({"order": order.to_json(), "state": state, "attempts": 0})
        self._event(order, state, now)
        return str(state)

    # ------------------------------------------------------------------ the order

    def _event(self, order: UpdateOrder, state: OrderState, now: datetime, **fields: Any) -> None:
        self.s.store.record_event(
            UpdateEventKind.PROGRESS,
            now,
            rollout=order.rollout,
            version=order.version,
            state=str(state),
            **fields,
        )

    def _set(
        self, doc: dict[str, Any], order: UpdateOrder, state: OrderState, **fields: Any
    ) -> None:
        doc.update(state=str(state), **fields)
        self.s.spool.write_order(doc)
        self._event(order, state, self._now(), **fields)

    def advance(self) -> str | None:
        """Carry the order one step as far as its window allows; a line saying what happened."""
        doc = self.s.spool.order()
        if doc is None or doc.get("state") != OrderState.WAITING:
            return None
        try:
            order = parse_order(doc.get("order") or {})
        except UpdateError as exc:
            self.s.spool.write_order({**doc, "state": str(OrderState.FAILED), "reason": str(exc)})
            return MessageText("dropped a damaged order: {problem}", problem=error_text(exc))
        now = self._now()
        if now > order.not_after:
            self._set(doc, order, OrderState.EXPIRED)
            return MessageText(
                "order {rollout} for {version}: window closed, not installed",
                rollout=order.rollout,
                version=order.version,
            )
        if not order.in_window(now):
            return MessageText(
                "order {rollout} for {version}: waiting for {not_before}",
                rollout=order.rollout,
                version=order.version,
                not_before=order.not_before,
            )
        reported = [0]

        def progress(done: int, total: int) -> None:
            percent = 100 * done // total if total else 100
            for step in PROGRESS_STEPS:
                if reported[0] < step <= percent:
                    reported[0] = step
                    self._event(order, OrderState.DOWNLOADING, self._now(), percent=step)

        attempts = int(doc.get("attempts", 0)) + 1
        self._set(doc, order, OrderState.DOWNLOADING, attempts=attempts, percent=0)
        try:
            bundle = self.s.fetch(order.target, self.s.spool.downloads, progress)
        except UpdateError as exc:
            # The network or the server: try again at the next run while the window is open.
            self._set(doc, order, OrderState.WAITING, reason=str(exc))
            return MessageText(
                "order {rollout}: download failed, will retry: {problem}",
                rollout=order.rollout,
                problem=error_text(exc),
            )
        self._set(doc, order, OrderState.INSTALLING)
        try:
            self.s.store.install(
                bundle,
                self.s.release_public_pem,
                hardware=self.s.hardware,
                now=self._now(),
                max_starts=order.max_starts or DEFAULT_MAX_STARTS,
                progress=lambda text: None,
            )
        except (UpdateError, OSError) as exc:
            self._set(doc, order, OrderState.FAILED, reason=str(exc))
            return MessageText(
                "order {rollout}: install refused: {problem}",
                rollout=order.rollout,
                problem=error_text(exc),
            )
        finally:
            bundle.unlink(missing_ok=True)
        self._set(doc, order, OrderState.INSTALLED)
        return MessageText(
            "order {rollout}: {version} installed, on trial from the next start",
            rollout=order.rollout,
            version=order.version,
        )
