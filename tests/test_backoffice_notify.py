"""Alerts that reach people (issue #19 item 8), delivered by Apprise to a local HTTP endpoint
standing in for the group bot: WeCom's and DingTalk's bot URLs are fixed hosts Apprise
cannot be pointed elsewhere, so the stand-in receives Apprise's json:// notification, the
same delivery path (Apprise, its HTTP client, our policy and retries)."""

import datetime
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from backoffice.alerts import ALERT_KINDS
from backoffice.config import KindPolicy, NotifyConfig, parse_config
from backoffice.notify import DEFAULT_POLICIES, Notifier, QuietHours, check_urls, notices
from backoffice.service import BackofficeService
from backoffice.store import Store
from kiosk.errors import ConfigError
from simulators.fleet import SimulatedTerminal
from tests.fixtures.backoffice import Broker, service_config, wait_for

ZONE = "Asia/Shanghai"


class BotEndpoint:
    """A local HTTP server recording each POST; `failing` answers 500 like a bot that is down."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.failing = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if endpoint.failing:
                    endpoint.failing -= 1
                    self.send_response(500)
                else:
                    endpoint.received.append(json.loads(body))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/bot"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def bot() -> Iterator[BotEndpoint]:
    endpoint = BotEndpoint()
    yield endpoint
    endpoint.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = Store(f"sqlite:///{tmp_path / 'bo.db'}")
    yield made
    made.close()


class Clock:
    def __init__(self, local: str) -> None:
        self.now = datetime.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(ZONE)).timestamp()

    def __call__(self) -> float:
        return self.now


def raise_alert(store: Store, kind: str, at: float, terminal: str = "T-01") -> int:
    with store.transaction() as cursor:
        [row] = cursor.execute(
            "INSERT INTO alerts (station, terminal, kind, detail, raised) "
            "VALUES ('31010001', ?, ?, 'door', ?) RETURNING id",
            (terminal, kind, at),
        )
    return int(row["id"])


def notifier(store: Store, clock: Clock, **config: Any) -> Notifier:
    return Notifier(store, NotifyConfig(**config), ZONE, clock=clock)


def test_an_alert_raised_by_a_terminal_is_delivered_to_the_bot_in_chinese_then_english(
    tmp_path: Path,
    backoffice_broker: Broker,
    make_sim_terminal: Callable[..., SimulatedTerminal],
    bot: BotEndpoint,
) -> None:
    table = service_config(backoffice_broker, f"sqlite:///{tmp_path / 'bo.db'}", None)
    table["notify"] = {"urls": [bot.url], "poll_s": 0.2, "dashboard_url": "https://bo.example"}
    service = BackofficeService(parse_config(table))
    service.start()
    try:
        wait_for(service.ingest.connected.is_set, "the back office to connect")
        sim = make_sim_terminal()
        sim.start()
        sim.event("tamper", switch="door")
        [message] = wait_for(lambda: bot.received, "the notice at the bot")
        wait_for(
            lambda: [n["state"] for n in notices(service.store).values()] == ["sent"],
            "the notice recorded as sent",
        )
    finally:
        service.stop()
    assert "防拆开关触发" in message["title"] and "Tamper switch triggered" in message["title"]
    assert "31010001/T-01" in message["message"]
    assert "https://bo.example/terminal/31010001/T-01" in message["message"]
    assert message["message"].index("防拆开关触发") < message["message"].index("Tamper")


def test_quiet_hours_hold_a_condition_until_morning_but_tamper_goes_at_once(
    store: Store, bot: BotEndpoint
) -> None:
    clock = Clock("2026-12-07T23:30:00")
    paper = raise_alert(store, "paper_out", clock.now)
    tamper = raise_alert(store, "tamper", clock.now, terminal="T-02")
    notify = notifier(store, clock, urls=(bot.url,), quiet_hours="22:00-07:00")
    assert notify.run_once()["sent"] == 1
    assert [m["title"] for m in bot.received] == [bot.received[0]["title"]]
    assert "T-02" in bot.received[0]["title"]
    held = notices(store)[paper]
    assert held["state"] == "waiting"
    assert datetime.datetime.fromtimestamp(held["due"], ZoneInfo(ZONE)).isoformat() == (
        "2026-12-08T07:00:00+08:00"
    )
    clock.now += 3600  # 00:30: still quiet
    assert notify.run_once()["sent"] == 0
    clock.now += 7 * 3600  # 07:30
    assert notify.run_once()["sent"] == 1
    assert "T-01" in bot.received[1]["title"]
    assert {k: v["state"] for k, v in notices(store).items()} == {paper: "sent", tamper: "sent"}


def test_an_offline_that_clears_within_its_delay_is_never_sent_and_never_policies_hold(
    store: Store, bot: BotEndpoint
) -> None:
    clock = Clock("2026-12-07T10:00:00")
    offline = raise_alert(store, "offline", clock.now)
    paper_low = raise_alert(store, "paper_low", clock.now)
    notify = notifier(store, clock, urls=(bot.url,))
    assert notify.run_once()["sent"] == 0  # offline waits 10 minutes by default
    clock.now += 300
    with store.transaction() as cursor:
        cursor.execute("UPDATE alerts SET cleared = ? WHERE id = ?", (clock.now, offline))
    clock.now += 600
    assert notify.run_once() == {"waiting": 0, "sent": 0, "skipped": 1, "failed": 0}
    assert bot.received == []
    assert {k: v["state"] for k, v in notices(store).items()} == {
        offline: "skipped",
        paper_low: "skipped",
    }


def test_a_policy_per_kind_sends_to_its_own_urls_after_its_delay(
    store: Store, bot: BotEndpoint
) -> None:
    other = BotEndpoint()
    try:
        clock = Clock("2026-12-07T10:00:00")
        raise_alert(store, "low_float", clock.now)
        notify = notifier(
            store,
            clock,
            urls=(bot.url,),
            kinds={"low_float": KindPolicy("always", delay_s=60.0, urls=(other.url,))},
        )
        assert notify.run_once()["sent"] == 0
        clock.now += 61
        assert notify.run_once()["sent"] == 1
        assert bot.received == [] and len(other.received) == 1
    finally:
        other.close()


def test_a_bot_that_fails_is_tried_again_and_given_up_after_max_attempts(
    store: Store, bot: BotEndpoint
) -> None:
    clock = Clock("2026-12-07T10:00:00")
    first = raise_alert(store, "tamper", clock.now)
    bot.failing = 1
    notify = notifier(store, clock, urls=(bot.url,), retry_s=30.0, max_attempts=2)
    assert notify.run_once()["waiting"] == 1
    assert notices(store)[first]["attempts"] == 1
    clock.now += 10
    assert notify.run_once()["sent"] == 0  # not due yet
    clock.now += 30
    assert notify.run_once()["sent"] == 1
    assert len(bot.received) == 1
    second = raise_alert(store, "clone", clock.now)
    bot.failing = 5
    notify.run_once()
    clock.now += 31
    assert notify.run_once()["failed"] == 1
    assert notices(store)[second]["state"] == "failed"
    assert bot.received[1:] == []


def test_alerts_older_than_the_backfill_window_are_not_sent_at_first_start(
    store: Store, bot: BotEndpoint
) -> None:
    clock = Clock("2026-12-07T10:00:00")
    raise_alert(store, "tamper", clock.now - 7200)
    assert notifier(store, clock, urls=(bot.url,)).run_once()["sent"] == 0
    assert bot.received == []


def test_quiet_hours_within_a_day_and_across_midnight() -> None:
    zone = ZoneInfo(ZONE)
    night = QuietHours.parse("22:00-07:00")
    noon = QuietHours.parse("12:00-13:30")
    assert night is not None and noon is not None

    def at(text: str) -> datetime.datetime:
        return datetime.datetime.fromisoformat(f"2026-12-07T{text}").replace(tzinfo=zone)

    assert [night.covers(at(t)) for t in ("21:59", "22:00", "03:00", "06:59", "07:00")] == [
        False,
        True,
        True,
        True,
        False,
    ]
    assert [noon.covers(at(t)) for t in ("11:59", "12:00", "13:29", "13:30")] == [
        False,
        True,
        True,
        False,
    ]
    assert night.ends_after(at("23:00")) == at("07:00") + datetime.timedelta(days=1)
    assert night.ends_after(at("03:00")) == at("07:00")


def test_bad_notification_settings_are_one_clear_error_at_start() -> None:
    with pytest.raises(ConfigError, match="HH:MM-HH:MM"):
        parse_config({"store": "sqlite:////tmp/x.db", "notify": {"quiet_hours": "22-7"}})
    with pytest.raises(ConfigError, match="no alert kind 'paper'"):
        parse_config({"store": "sqlite:////tmp/x.db", "notify": {"kinds": {"paper": {}}}})
    with pytest.raises(ConfigError, match="'notify.kinds.tamper.when'"):
        parse_config(
            {"store": "sqlite:////tmp/x.db", "notify": {"kinds": {"tamper": {"when": "soon"}}}}
        )
    with pytest.raises(ConfigError, match="Apprise cannot use"):
        check_urls(NotifyConfig(urls=("nosuchscheme://x",)))
    check_urls(NotifyConfig(urls=("wecombot://abcdef0123456789", "mailto://u:p@example.com")))


def test_every_alert_kind_has_a_default_policy() -> None:
    # A new alert kind is a decision about waking people, not a silent default.
    assert set(DEFAULT_POLICIES) == set(ALERT_KINDS)
