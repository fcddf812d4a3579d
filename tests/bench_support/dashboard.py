"""The dashboard's bench (issue #19 "proven by"): the fleet page and the reports on
PostgreSQL with 100, 300 and 1,000 terminals x 31 days of records.

A private PostgreSQL 15 server (as tests/fixtures/postgres.py starts one) gets the back
office's schema from Store, then the fleet grows in three steps; at each step every
terminal has 31 business days of 148 paid `tx_close` records a day (1,000 terminals: 4.6
million), a `day_close` a day, a week of hourly health reports and a few alerts, made by
the server itself (INSERT ... SELECT over generate_series: minutes, not hours). A tx_close
record's JSON is a canonical text of a real close's length (the reports read its payment
method from it, backoffice.pay_methods), one in three paid by phone, the wallets in turn;
its figures are placeholders, since the reports sum the columns.
The dashboard then serves over real HTTP (its Werkzeug server, as `serve` runs it) and the
bench times, per size: 30 fleet pages (p50, p95, max; default order, sorted, filtered,
paged), 10 terminal pages, the trends page, and the monthly activity, commission, exit and
daily reconciliation reports (best and worst of three), then how each grew against the
fleet (time ratio over terminal ratio: 1.0 is linear). It prints figures, never asserts
a time. docs/benchmarks.md says how to read them.
"""

import contextlib
import datetime
import logging
import os
import pwd
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from backoffice.config import parse_config
from backoffice.store import Store
from backoffice.web import Dashboard, DashboardServer
from tests.fixtures.postgres import PG_BIN, _as_owner, _free_port

SIZES = (100, 300, 1000)
DAYS = 31
TX_PER_DAY = 148
TODAY = datetime.date(2026, 12, 7)
STATION_TERMINALS = 2  # terminals per station
# A tx_close's canonical text (sorted keys, no spaces), cash or paid by phone with each wallet.
_CLOSE = (
    '{"account_masked":"31****1234","amount_fen":1000,"business_day":"2026-11-05",'
    '"cash_in_fen":%s,"credited_fen":0,"fee_fen":100,"kind":"bill","outcome":"paid",'
    '"paid_in_fen":1100,%s"platform_ref":"P000000001234","prev_hash":"%s",'
    '"receipt_no":"T-01-00001234","refunded_fen":0,"service":"water","sig":"%s",'
    '"station":"31000001","terminal":"T-01","time":"2026-11-05T10:00:00+08:00",'
    '"turnover_fen":0,"tx_id":"0123456789abcdef0123456789abcdef","type":"tx_close",'
    '"voucher_fen":0}'
)
CLOSE_TEXTS = [
    _CLOSE % ("1100", '"payment_method":"cash",', "0" * 64, "A" * 96),
    *(
        _CLOSE % ("0", f'"paid_with":"{wallet}","payment_method":"qr",', "0" * 64, "A" * 96)
        for wallet in ("wechat", "alipay", "unionpay")
    ),
]


@contextlib.contextmanager
def postgres_server(workdir: Path) -> Iterator[str]:
    """A PostgreSQL 15 server of its own (owned by 'postgres' when run as root)."""
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"PostgreSQL 15 is not installed ({PG_BIN}): apt-get install postgresql")
    owner = None
    if os.geteuid() == 0:
        pwd.getpwnam("postgres")
        owner = "postgres"
    # In the temp directory: the postgres user must reach it (the project tree may be closed).
    base = Path(tempfile.mkdtemp(prefix="kiosk-pg-bench-"))
    data, sockets = base / "data", base / "run"
    sockets.mkdir()
    if owner:
        shutil.chown(base, owner)
        shutil.chown(sockets, owner)
    port = _free_port()
    run: dict[str, Any] = dict(check=True, capture_output=True, timeout=300)
    subprocess.run(
        _as_owner(
            owner,
            str(PG_BIN / "initdb"),
            *("-D", str(data), "-U", "kiosk", "-A", "trust", "-E", "UTF8", "--no-sync"),
            "--locale=C.UTF-8",
        ),
        **run,
    )
    subprocess.run(
        _as_owner(
            owner,
            str(PG_BIN / "pg_ctl"),
            *("-D", str(data), "-w", "-t", "60", "-l", str(base / "server.log"), "-o"),
            f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c shared_buffers=256MB "
            "-c max_wal_size=4GB",
            "start",
        ),
        **run,
    )
    try:
        yield f"postgresql://kiosk@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_owner(
                owner, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"
            ),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)


def grow_fleet(url: str, first: int, last: int, now: float) -> None:
    """Terminals first..last-1 with a month of records, a week of health, a few alerts."""
    import psycopg

    start = (TODAY - datetime.timedelta(days=DAYS - 1)).isoformat()
    week = now - 7 * 86400
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO terminals (station, terminal, state, last_seen, paper, "
            "float_balance_fen, cert_days_left, outbox_backlog, health_at, software) "
            "SELECT (31000000 + n / %(per)s)::text, 'T-' || lpad((n %% %(per)s)::text, 2, '0'), "
            "CASE WHEN n %% 97 = 0 THEN 'offline' ELSE 'online' END, %(now)s - (n %% 50), "
            "CASE WHEN n %% 53 = 0 THEN 'out' WHEN n %% 31 = 0 THEN 'near_end' ELSE 'ok' END, "
            "20000 + (n * 7919) %% 900000, 10 + (n * 13) %% 700, n %% 3, %(now)s, '1.4.0' "
            "FROM generate_series(%(first)s, %(last)s - 1) n",
            {"per": STATION_TERMINALS, "now": now, "first": first, "last": last},
        )
        conn.execute(
            "INSERT INTO records (station, terminal, seq, type, time, business_day, outcome, "
            "service, amount_fen, fee_fen, receipt_no, record, record_hash, received, prev_seq) "
            "SELECT t.station, t.terminal, d * 200 + n, 'tx_close', "
            "to_char(%(start)s::date + d, 'YYYY-MM-DD') || 'T10:00:00+08:00', "
            "to_char(%(start)s::date + d, 'YYYY-MM-DD'), 'paid', 'water', "
            "1000 + (n * 37 + d) %% 20000, 100, t.terminal || '-' || (d * 200 + n), "
            "CASE WHEN n %% 3 > 0 THEN %(cash)s::text ELSE (ARRAY[%(wechat)s::text, "
            "%(alipay)s::text, %(unionpay)s::text])[1 + (n / 3) %% 3] END, "
            "md5(t.station || t.terminal || (d * 200 + n)), "
            "%(now)s, d * 200 + n - 1 "
            "FROM (SELECT station, terminal FROM terminals ORDER BY station, terminal "
            "OFFSET %(first)s LIMIT %(count)s) t, "
            "generate_series(0, %(days)s - 1) d, generate_series(1, %(tx)s) n",
            {
                "start": start,
                "now": now,
                "first": first,
                "count": last - first,
                "days": DAYS,
                "tx": TX_PER_DAY,
                "cash": CLOSE_TEXTS[0],
                "wechat": CLOSE_TEXTS[1],
                "alipay": CLOSE_TEXTS[2],
                "unionpay": CLOSE_TEXTS[3],
            },
        )
        conn.execute(
            "INSERT INTO records (station, terminal, seq, type, time, business_day, outcome, "
            "service, amount_fen, fee_fen, receipt_no, record, record_hash, received, prev_seq) "
            "SELECT t.station, t.terminal, d * 200 + 199, 'day_close', "
            "to_char(%(start)s::date + d, 'YYYY-MM-DD') || 'T23:00:00+08:00', "
            "to_char(%(start)s::date + d, 'YYYY-MM-DD'), NULL, NULL, 0, 0, NULL, "
            "json_build_object('paid_count', %(tx)s, 'paid_fen', 0)::text, md5(t.terminal), "
            "%(now)s, d * 200 + 148 "
            "FROM (SELECT station, terminal FROM terminals ORDER BY station, terminal "
            "OFFSET %(first)s LIMIT %(count)s) t, generate_series(0, %(days)s - 1) d",
            {
                "start": start,
                "now": now,
                "first": first,
                "count": last - first,
                "days": DAYS,
                "tx": TX_PER_DAY,
            },
        )
        conn.execute(
            "INSERT INTO health_history (station, terminal, received, time, paper, "
            "float_balance_fen, cert_days_left, outbox_backlog, payload) "
            "SELECT t.station, t.terminal, %(week)s + h * 3600, '2026-12-07T00:00:00+08:00', "
            "'ok', 500000 - h * 1000, 300, 0, '{}' "
            "FROM (SELECT station, terminal FROM terminals ORDER BY station, terminal "
            "OFFSET %(first)s LIMIT %(count)s) t, generate_series(0, 167) h",
            {"week": week, "first": first, "count": last - first},
        )
        conn.execute(
            "INSERT INTO alerts (station, terminal, kind, detail, raised, cleared) "
            "SELECT station, terminal, 'paper_low', 'paper near end', %(now)s - 86400 * 3, "
            "%(now)s - 86400 * 2 FROM (SELECT station, terminal FROM terminals "
            "ORDER BY station, terminal OFFSET %(first)s LIMIT %(count)s) t",
            {"now": now, "first": first, "count": last - first},
        )
        conn.execute(
            "INSERT INTO alerts (station, terminal, kind, detail, raised) "
            "SELECT station, terminal, 'paper_out', 'paper out', %(now)s - 600 FROM terminals "
            "WHERE paper = 'out' ON CONFLICT DO NOTHING",
            {"now": now},
        )
        conn.execute("ANALYZE")


def timed_get(url: str) -> float:
    request = urllib.request.Request(url, headers={"X-Forwarded-User": "bench"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
        assert response.status == 200
    return time.perf_counter() - started


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(base: str) -> dict[str, float]:
    month = TODAY.isoformat()[:7]
    fleet_paths = [
        "/",
        "/?sort=float_balance_fen",
        "/?sort=last_seen&order=desc",
        "/?attention=paper",
        "/?q=3100001",
        "/?page=5",
    ]
    fleet = [timed_get(base + fleet_paths[i % len(fleet_paths)]) for i in range(30)]
    terminal = [timed_get(base + "/terminal/31000000/T-01") for _ in range(10)]
    figures = {
        "fleet_p50_ms": statistics.median(fleet) * 1000,
        "fleet_p95_ms": quantile(fleet, 0.95) * 1000,
        "fleet_max_ms": max(fleet) * 1000,
        "terminal_p50_ms": statistics.median(terminal) * 1000,
        "trends_ms": timed_get(base + "/overview") * 1000,
    }
    completed = (TODAY.replace(day=1) - datetime.timedelta(days=1)).isoformat()[:7]
    reports = {
        "report_monthly": f"/reports/activity?period=month&from={month}-01&to={TODAY}",
        # The commission statement and the exit report judge a completed month.
        "report_commission": f"/reports/commission?month={completed}",
        "report_exit": f"/reports/exit?month={completed}",
        "report_daily": f"/reports/daily?day={TODAY - datetime.timedelta(days=1)}",
    }
    for name, path in reports.items():
        runs = [timed_get(base + path) for _ in range(3)]
        figures[f"{name}_best_s"] = min(runs)
        figures[f"{name}_worst_s"] = max(runs)
    return {key: round(value, 3) for key, value in figures.items()}


def run_dashboard_bench(directory: Path, sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per request
    now = datetime.datetime.combine(
        TODAY, datetime.time(17, 0), datetime.timezone(datetime.timedelta(hours=8))
    ).timestamp()
    results: dict[str, Any] = {}
    with postgres_server(directory) as url:
        store = Store(url)
        config = parse_config({"store": url, "auth": {"users": {"bench": "viewer"}}})
        dashboard = Dashboard(store, config, None, clock=lambda: now)
        server = DashboardServer(dashboard, "127.0.0.1", 0)
        server.start()
        try:
            grown = 0
            for size in sizes:
                started = time.perf_counter()
                grow_fleet(url, grown, size, now)
                grown = size
                [count] = store.query("SELECT COUNT(*) AS n FROM records WHERE type = 'tx_close'")
                figures = measure(server.url)
                figures["tx_close_records"] = int(count["n"])
                figures["load_s"] = round(time.perf_counter() - started, 1)
                results[str(size)] = figures
                print(f"  {size} terminals: {figures}", flush=True)
        finally:
            server.stop()
            store.close()
    first, last = str(sizes[0]), str(sizes[-1])
    scale = sizes[-1] / sizes[0]
    results["growth_over_terminal_ratio"] = {
        key: round(results[last][key] / results[first][key] / scale, 2)
        for key in results[last]
        if key.endswith(("_ms", "_s")) and key != "load_s" and results[first][key] > 0
    }
    return results
