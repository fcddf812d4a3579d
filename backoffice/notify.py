"""Alerts that reach people: pushed through Apprise (WeCom or DingTalk group bots, e-mail,
any Apprise URL) by a policy per alert kind, holding back during quiet hours.

Owns the notification rules (when each kind is sent, after what delay, to which URLs; what
quiet hours hold back), the rows of `alert_notices` (migration 3 of backoffice.migrations)
that make them durable (one row per alert: waiting, sent, skipped or failed, with attempts
and the time of the next try), and the Notifier thread that applies them. It reads the
alerts ingest raised and never changes them. Delivery is at least once: a crash between a
send and its row's update sends again. Apprise rather than our own HTTP calls: it speaks
each service's API (WeCom's and DingTalk's bot webhooks with their signing, SMTP) and is
maintained.
"""

import datetime
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

import apprise

from backoffice.alerts import ALERT_KINDS, AlertKind
from backoffice.config import KindPolicy, NotifyConfig
from backoffice.store import Row, Store
from kiosk.errors import ConfigError
from kiosk.i18n import translator

log = logging.getLogger(__name__)


# What each kind does unless [notify.kinds.<kind>] says otherwise: evidence of tampering or
# of a journal gone wrong wakes people; conditions wait for the day; short outages pass.
DEFAULT_POLICIES: dict[str, KindPolicy] = {
    AlertKind.OFFLINE: KindPolicy("outside_quiet_hours", delay_s=600.0),
    AlertKind.PAPER_LOW: KindPolicy("never"),
    AlertKind.PAPER_OUT: KindPolicy("outside_quiet_hours"),
    AlertKind.LOW_FLOAT: KindPolicy("outside_quiet_hours"),
    AlertKind.CERT_EXPIRING: KindPolicy("outside_quiet_hours"),
    AlertKind.TAMPER: KindPolicy("always"),
    AlertKind.DEVICE_FAULT: KindPolicy("outside_quiet_hours", delay_s=300.0),
    AlertKind.OUTBOX_BACKLOG: KindPolicy("outside_quiet_hours", delay_s=1800.0),
    AlertKind.GAP: KindPolicy("always"),
    AlertKind.ROLLBACK: KindPolicy("always"),
    AlertKind.CLONE: KindPolicy("always"),
    AlertKind.SIGNER_OUTAGE: KindPolicy("outside_quiet_hours", delay_s=300.0),
    AlertKind.BAD_SIGNATURE: KindPolicy("always"),
    AlertKind.ROLLOUT_HALTED: KindPolicy("always"),
    # The terminal's own alert records: money or cash to be put right by staff in the day.
    AlertKind.TX_IN_DOUBT: KindPolicy("outside_quiet_hours"),
    AlertKind.PLATFORM_ANSWER_MISMATCH: KindPolicy("outside_quiet_hours"),
    AlertKind.HOLD_NOT_RELEASED: KindPolicy("outside_quiet_hours"),
    AlertKind.VOUCHER_NOT_REGISTERED: KindPolicy("outside_quiet_hours"),
    AlertKind.CARD_CREDIT_CONFLICT: KindPolicy("outside_quiet_hours"),
    AlertKind.UNRECOGNISED_CASH: KindPolicy("outside_quiet_hours"),
    AlertKind.INLETS_NOT_CLOSED: KindPolicy("outside_quiet_hours"),
    AlertKind.CLOCK_WRONG: KindPolicy("outside_quiet_hours"),
    AlertKind.CASH_SUSPENSE: KindPolicy("outside_quiet_hours"),
    AlertKind.DAY_NOT_BALANCED: KindPolicy("outside_quiet_hours"),
    AlertKind.CASH_COUNT_DISCREPANCY: KindPolicy("outside_quiet_hours"),
    AlertKind.DEPOSIT_REFUSED: KindPolicy("outside_quiet_hours"),
}


class NoticeState(StrEnum):
    WAITING = "waiting"
    SENT = "sent"
    SKIPPED = "skipped"  # policy "never", cleared or acknowledged before it was due, too old
    FAILED = "failed"  # every attempt failed


# (urls, title, body) -> delivered; apprise_send by default, a stand-in only in unit tests.
Deliver = Callable[[Sequence[str], str, str], bool]


@dataclass(frozen=True)
class QuietHours:
    start: datetime.time
    end: datetime.time

    @classmethod
    def parse(cls, text: str) -> "QuietHours | None":
        if not text:
            return None
        first, last = text.split("-", 1)
        return cls(datetime.time.fromisoformat(first), datetime.time.fromisoformat(last))

    def covers(self, moment: datetime.datetime) -> bool:
        now = moment.time().replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end  # spans midnight, e.g. 22:00-07:00

    def ends_after(self, moment: datetime.datetime) -> datetime.datetime:
        """The first end of quiet hours after this moment (in the moment's zone)."""
        end = moment.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        return end if end > moment else end + datetime.timedelta(days=1)


def policy_for(config: NotifyConfig, kind: str) -> KindPolicy:
    return config.kinds.get(kind) or DEFAULT_POLICIES.get(kind, KindPolicy())


def message_for(alert: Row, zone: ZoneInfo, dashboard_url: str = "") -> tuple[str, str]:
    """Title and body of an alert's notice: Chinese first, then English."""
    zh, en = translator("zh_CN"), translator("en")
    label = str(ALERT_KINDS.get(alert["kind"]) or alert["kind"])
    where = f"{alert['station']}/{alert['terminal']}"
    raised = datetime.datetime.fromtimestamp(alert["raised"], zone).strftime("%Y-%m-%d %H:%M")
    title = f"{zh('Alert')} {zh(label)} · {where} · {en(label)}"
    lines = [
        f"{zh('Terminal')} {where}",
        f"{zh(label)} / {en(label)}",
        f"{zh('Raised')} {raised}",
        f"{zh('Details')}: {alert['detail']}",
    ]
    if dashboard_url:
        lines.append(f"{dashboard_url.rstrip('/')}/terminal/{where}")
    return title, "\n".join(lines)


def apprise_send(urls: Sequence[str], title: str, body: str) -> bool:
    sender = apprise.Apprise()
    for url in urls:
        sender.add(url)
    return bool(sender.notify(title=title, body=body))


def check_urls(config: NotifyConfig) -> None:
    """Every configured URL is one Apprise can send to; ConfigError naming the first that
    is not (shown without its secret part)."""
    named = [("notify.urls", url) for url in config.urls] + [
        (f"notify.kinds.{kind}.urls", url)
        for kind, policy in config.kinds.items()
        for url in policy.urls
    ]
    for key, url in named:
        if not apprise.Apprise().add(url):
            scheme = url.split("://", 1)[0]
            raise ConfigError(
                f"config key '{key}' holds a {scheme}:// URL Apprise cannot use: check it "
                "against Apprise's documentation (e.g. wecombot://KEY, dingtalk://TOKEN)"
            )


class Notifier:
    """Decides and sends notices for new alerts every poll_s seconds, on its own thread."""

    def __init__(
        self,
        store: Store,
        config: NotifyConfig,
        timezone: str,
        *,
        deliver: Deliver = apprise_send,
        clock: Callable[[], float] = time.time,
        dashboard_url: str = "",
    ) -> None:
        check_urls(config)
        self.store, self.config, self.deliver, self.clock = store, config, deliver, clock
        self.zone = ZoneInfo(timezone)
        self.quiet = QuietHours.parse(config.quiet_hours)
        self.dashboard_url = dashboard_url
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)

    @property
    def enabled(self) -> bool:
        return bool(self.config.urls) or any(p.urls for p in self.config.kinds.values())

    def start(self) -> None:
        if self.enabled:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("the notifier failed; trying again at its next pass")
            self._stop.wait(self.config.poll_s)

    # ------------------------------------------------------------------ rules

    def run_once(self) -> dict[str, int]:
        """One pass: note new alerts, then send what is due. Counts per outcome."""
        now = self.clock()
        self._note_new_alerts(now)
        return self._send_due(now)

    def _note_new_alerts(self, now: float) -> None:
        with self.store.transaction() as cursor:
            new = cursor.execute(
                "SELECT a.id, a.kind, a.raised FROM alerts a LEFT JOIN alert_notices n "
                "ON n.alert_id = a.id WHERE a.cleared IS NULL AND n.alert_id IS NULL"
            )
            rows = []
            for alert in new:
                policy = policy_for(self.config, alert["kind"])
                too_old = alert["raised"] < now - self.config.backfill_s
                state = (
                    NoticeState.SKIPPED
                    if policy.when == "never" or too_old or not self._urls(policy)
                    else NoticeState.WAITING
                )
                rows.append((alert["id"], str(state), alert["raised"] + policy.delay_s))
            cursor.executemany(
                "INSERT INTO alert_notices (alert_id, state, due) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                rows,
            )

    def _urls(self, policy: KindPolicy) -> tuple[str, ...]:
        return policy.urls or self.config.urls

    def _send_due(self, now: float) -> dict[str, int]:
        counts = {state.value: 0 for state in NoticeState}
        due = self.store.query(
            "SELECT n.alert_id, n.attempts, a.station, a.terminal, a.kind, a.detail, a.raised, "
            "a.cleared, a.acked FROM alert_notices n JOIN alerts a ON a.id = n.alert_id "
            "WHERE n.state = ? AND n.due <= ? ORDER BY n.due",
            (str(NoticeState.WAITING), now),
        )
        local = datetime.datetime.fromtimestamp(now, self.zone)
        for alert in due:
            policy = policy_for(self.config, alert["kind"])
            if alert["cleared"] is not None or alert["acked"] is not None:
                self._settle(alert["alert_id"], NoticeState.SKIPPED, now, alert["attempts"])
                counts[NoticeState.SKIPPED] += 1
                continue
            if policy.when == "outside_quiet_hours" and self.quiet and self.quiet.covers(local):
                later = self.quiet.ends_after(local).timestamp()
                self.store.query(
                    "UPDATE alert_notices SET due = ? WHERE alert_id = ?",
                    (later, alert["alert_id"]),
                )
                counts[NoticeState.WAITING] += 1
                continue
            title, body = message_for(alert, self.zone, self.dashboard_url)
            error = ""
            try:
                delivered = self.deliver(self._urls(policy), title, body)
            except Exception as exc:  # a plugin's own failure: counted as a failed attempt
                delivered, error = False, f"{type(exc).__name__}: {exc}"
            attempts = alert["attempts"] + 1
            if delivered:
                self._settle(alert["alert_id"], NoticeState.SENT, now, attempts)
                counts[NoticeState.SENT] += 1
            elif attempts >= self.config.max_attempts:
                self._settle(alert["alert_id"], NoticeState.FAILED, now, attempts, error)
                counts[NoticeState.FAILED] += 1
            else:
                self.store.query(
                    "UPDATE alert_notices SET attempts = ?, due = ?, last_error = ? "
                    "WHERE alert_id = ?",
                    (
                        attempts,
                        now + self.config.retry_s,
                        error or "not delivered",
                        alert["alert_id"],
                    ),
                )
                counts[NoticeState.WAITING] += 1
        return counts

    def _settle(
        self, alert_id: int, state: NoticeState, now: float, attempts: int, error: str = ""
    ) -> None:
        self.store.query(
            "UPDATE alert_notices SET state = ?, attempts = ?, sent_at = ?, last_error = ? "
            "WHERE alert_id = ?",
            (
                str(state),
                attempts,
                now if state is NoticeState.SENT else None,
                error or None,
                alert_id,
            ),
        )


def notices(store: Store) -> Mapping[int, Row]:
    """Every alert's notice row by alert id (for the dashboard and tests)."""
    return {row["alert_id"]: row for row in store.query("SELECT * FROM alert_notices")}
