"""`python -m tests.dashboard_screens --out build/screens`: a PNG of every dashboard page in
both languages, taken by headless Chromium (`make screens` runs it after the app's tour).

A demo fleet goes into a throw-away SQLite store: 24 terminals at 12 stations with a month
of paid transactions, a week of health reports and fleet samples, alerts, commands and staff
actions, so every page, table and chart has something to show. The dashboard serves it on
loopback; Chromium signs in as an admin through the proxy's header.
"""

import argparse
import datetime
import json
import logging
import random
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from backoffice.config import parse_config
from backoffice.store import Store
from backoffice.web import Dashboard, DashboardServer
from kiosk.settlement.pay_methods import payment_method_split

CHROMIUM = "/usr/bin/chromium"
PAGES = (
    ("fleet", "/"),
    ("fleet-paper", "/?attention=paper"),
    ("trends", "/overview"),
    ("terminal", "/terminal/31010003/T-01"),
    ("alerts", "/alerts"),
    ("report-daily", "/reports/daily"),
    ("report-activity", "/reports/activity?period=week"),
    ("report-exit", "/reports/exit"),
    ("report-commission", "/reports/commission"),
    ("staff", "/staff"),
    ("stations", "/stations"),
    ("station", "/station/31010003"),
    ("commission", "/commission"),
    ("follow-ups", "/follow-ups"),
    ("lookup", "/lookup?receipt=T-01-000001"),
    ("revenue", "/revenue?period=month"),
)


def fill_demo_fleet(store: Store, now: float, seed: int = 7) -> None:
    rng = random.Random(seed)
    zone = datetime.timezone(datetime.timedelta(hours=8))
    today = datetime.datetime.fromtimestamp(now, zone).date()
    terminals = [(f"3101{n // 2:04d}", f"T-{n % 2 + 1:02d}") for n in range(24)]
    with store.transaction() as cursor:
        for index, (station, terminal) in enumerate(terminals):
            paper = "out" if index == 5 else "near_end" if index in (9, 14) else "ok"
            state = "offline" if index in (3, 17) else "online"
            float_fen = 18_000 if index in (7, 8) else 120_000 + rng.randrange(900_000)
            cert = 12 if index == 11 else 200 + rng.randrange(500)
            cursor.execute(
                "INSERT INTO terminals (station, terminal, state, state_reason, last_seen, "
                "paper, float_balance_fen, cert_days_left, outbox_backlog, health_at, "
                "chain_seq, chain_hash, acked_seq, software, firmware) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    station,
                    terminal,
                    state,
                    "lost" if state == "offline" else None,
                    now - (3600 * 5 if state == "offline" else rng.randrange(60)),
                    paper,
                    float_fen,
                    cert,
                    0,
                    now - 120,
                    4000 + index,
                    "9f2c" * 16,
                    3990 + index,
                    "1.4.0",
                    "ioboard 0.9.2",
                ),
            )
            seq = 0
            for back in range(30, -1, -1):
                day = today - datetime.timedelta(days=back)
                count = rng.randrange(2, 12) if index != 20 else 0
                paid = 0
                closes = []
                for n in range(count):
                    seq += 1
                    amount = rng.randrange(2_000, 30_000)
                    paid += amount + 100
                    # One payment in three by phone, the wallets in turn (issue #21).
                    close = {"amount_fen": amount, "fee_fen": 100, "outcome": "paid"}
                    close |= {"business_day": day.isoformat(), "payment_method": "cash"}
                    if n % 3 == 2:
                        wallet = ("wechat", "alipay", "unionpay")[seq // 3 % 3]
                        close |= {"payment_method": "qr", "paid_with": wallet}
                    closes.append(close)
                    cursor.execute(
                        "INSERT INTO records (station, terminal, seq, type, time, business_day, "
                        "outcome, service, amount_fen, fee_fen, receipt_no, record, "
                        "record_hash, received, prev_seq) VALUES "
                        "(?, ?, ?, 'tx_close', ?, ?, 'paid', 'water', ?, 100, ?, ?, ?, ?, ?)",
                        (
                            station,
                            terminal,
                            seq,
                            f"{day}T10:00:00+08:00",
                            day.isoformat(),
                            amount,
                            f"{terminal}-{seq:08d}",
                            json.dumps(close, sort_keys=True, separators=(",", ":")),
                            f"{seq:064x}",
                            now,
                            seq - 1,
                        ),
                    )
                if back > 0:
                    seq += 1
                    reported = paid if index != 10 or back != 1 else paid + 500
                    cursor.execute(
                        "INSERT INTO records (station, terminal, seq, type, time, business_day, "
                        "record, record_hash, received, prev_seq) VALUES "
                        "(?, ?, ?, 'day_close', ?, ?, ?, ?, ?, ?)",
                        (
                            station,
                            terminal,
                            seq,
                            f"{day}T23:00:00+08:00",
                            day.isoformat(),
                            json.dumps(
                                {"paid_count": count, "paid_fen": reported}
                                | payment_method_split(closes, day.isoformat())
                            ),
                            f"{seq:064x}",
                            now,
                            seq - 1,
                        ),
                    )
            balance = float_fen + 300_000
            for hour in range(168, 0, -1):
                balance -= rng.randrange(0, 3_000)
                cursor.execute(
                    "INSERT INTO health_history (station, terminal, received, time, paper, "
                    "float_balance_fen, cert_days_left, outbox_backlog, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}')",
                    (
                        station,
                        terminal,
                        now - hour * 3600,
                        datetime.datetime.fromtimestamp(now - hour * 3600, zone).isoformat(),
                        paper if hour < 20 else "ok",
                        max(balance, float_fen),
                        cert + hour // 24,
                        rng.choice((0, 0, 0, 1, 2)),
                    ),
                )
        alerts = [
            (terminals[5], "paper_out", "paper out", 900),
            (terminals[3], "offline", "no heartbeat for 180 s", 5 * 3600),
            (terminals[17], "offline", "no heartbeat for 180 s", 5 * 3600),
            (terminals[7], "low_float", "float 18000 fen < 50000 fen", 7200),
            (terminals[11], "cert_expiring", "certificate expires in 12 days", 86400),
            (terminals[2], "tamper", '{"switch": "door"}', 1800),
        ]
        for (station, terminal), kind, detail, age in alerts:
            cursor.execute(
                "INSERT INTO alerts (station, terminal, kind, detail, raised) "
                "VALUES (?, ?, ?, ?, ?)",
                (station, terminal, kind, detail, now - age),
            )
        for days_back in range(1, 28):
            station, terminal = rng.choice(terminals)
            cursor.execute(
                "INSERT INTO alerts (station, terminal, kind, detail, raised, cleared) "
                "VALUES (?, ?, 'paper_low', 'paper near end', ?, ?)",
                (station, terminal, now - days_back * 86400, now - days_back * 86400 + 3600),
            )
        for step in range(7 * 48, -1, -1):
            at = now - step * 1800
            offline = 2 + (3 if 40 < step % 48 < 46 else 0)
            cursor.execute(
                "INSERT INTO fleet_samples (at, online, offline, unknown, open_alerts) "
                "VALUES (?, ?, ?, 0, ?)",
                (at, 24 - offline, offline, offline + 3),
            )
        cursor.execute(
            "INSERT INTO commands (id, station, terminal, name, args, sent, sent_by, expires, "
            "payload, result_ok, result, result_at) VALUES ('c-1', '31010003', 'T-01', "
            "'set_heartbeat_interval', '{\"seconds\": 120}', ?, 'zhao', "
            "'2026-12-07T18:00:00+08:00', '{}', 1, '{\"seconds\": 120}', ?)",
            (now - 600, now - 590),
        )
        cursor.execute(
            "INSERT INTO staff_actions (at, staff, role, action, station, terminal, detail) "
            "VALUES (?, 'zhao', 'admin', 'send_command', '31010003', 'T-01', ?)",
            (now - 600, json.dumps({"command": "c-1", "name": "set_heartbeat_interval"})),
        )


def take(out: Path, url: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            for lang in ("zh_CN", "en"):
                context = browser.new_context(
                    locale="zh-CN" if lang == "zh_CN" else "en-GB",
                    viewport={"width": 1400, "height": 900},
                    extra_http_headers={"X-Forwarded-User": "zhao"},
                )
                page = context.new_page()
                for name, path in PAGES:
                    joiner = "&" if "?" in path else "?"
                    page.goto(url + path + (f"{joiner}lang=en" if lang == "en" else ""))
                    target = out / f"dashboard-{name}-{lang}.png"
                    page.screenshot(path=str(target), full_page=True)
                    written.append(target)
                context.close()
        finally:
            browser.close()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.dashboard_screens", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=Path("build/screens"))
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"Chromium is missing ({CHROMIUM}): apt-get install chromium", file=sys.stderr)
        return 1
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime(2026, 12, 7, 9, 46, tzinfo=datetime.UTC).timestamp()
    with tempfile.TemporaryDirectory(prefix="dashboard-screens-") as work:
        url = f"sqlite:///{Path(work) / 'backoffice.db'}"
        store = Store(url)
        config = parse_config(
            {"store": url, "auth": {"users": {"zhao": "admin"}}, "revocation": {}}
        )
        dashboard = Dashboard(store, config, None, clock=lambda: now)
        fill_demo_fleet(store, now)
        server = DashboardServer(dashboard, "127.0.0.1", 0)
        server.start()
        try:
            written = take(args.out, server.url)
        finally:
            server.stop()
            store.close()
    print(f"{len(written)} dashboard pages written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
