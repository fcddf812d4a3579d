"""kiosk-backoffice: run the back office, simulate a fleet, make the command key, print reports.

Every subcommand has --help, exits 0 on success and prints one line on stderr otherwise
(kiosk.command_line). It only parses arguments and hands over to the modules that own the work.
"""

import argparse
import datetime
import getpass
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from backoffice import commission, follow_up, lookups, reports, stations
from backoffice.config import load_config
from backoffice.errors import BackofficeError
from backoffice.logs import configure_logging
from kiosk.command_line import CommandError, emit, run_command


def _serve(args: argparse.Namespace) -> int:
    return _run_service(args, dashboard=True)


def _ingest(args: argparse.Namespace) -> int:
    return _run_service(args, dashboard=False)


def _run_service(args: argparse.Namespace, *, dashboard: bool) -> int:
    """Run until SIGTERM as a systemd Type=notify service: READY once started, watchdog
    pings while the ingest worker goes round (none outside systemd)."""
    from backoffice.service import BackofficeService
    from kiosk.service_notify import ServiceNotifier

    # The configuration first: a command that fails on it leaves the process's logging alone
    # (run in-process, as the tests do, it would keep a handler on a closed stderr).
    config = load_config(Path(args.config))
    configure_logging()
    service = BackofficeService(config, dashboard=dashboard, client_id=args.client_id or None)
    notifier = ServiceNotifier()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    service.start()
    if dashboard:
        print(f"kiosk-backoffice: dashboard at {service.url}", flush=True)
    else:
        print(f"kiosk-backoffice: ingest worker {service.ingest.link.client_id}", flush=True)
    notifier.ready("ingesting")
    interval = notifier.watchdog_interval
    try:
        while not stop.wait(interval.total_seconds() if interval else None):
            if service.healthy():
                notifier.watchdog()
    finally:
        notifier.stopping()
        service.stop()
    return 0


def _make_key(args: argparse.Namespace) -> int:
    from backoffice.commands import create_signing_key

    key_file = Path(args.out)
    if key_file.exists():
        raise CommandError(f"{key_file} exists already: choose another file or remove it first")
    public_file = key_file.with_suffix(".pub.pem")
    create_signing_key(key_file, public_file)
    emit(
        args,
        {"key_file": str(key_file), "public_key_file": str(public_file)},
        f"command key written to {key_file}; give terminals {public_file}",
    )
    return 0


def _report(args: argparse.Namespace) -> int:
    from backoffice.store import Store

    config = load_config(Path(args.config))
    today = datetime.datetime.now(ZoneInfo(config.reports.timezone)).date()
    args.day = args.day or (today - datetime.timedelta(days=1)).isoformat()
    args.first = args.first or (today - datetime.timedelta(days=90)).isoformat()
    args.last = args.last or today.isoformat()
    store = Store(config.store)
    try:
        if args.name == "daily":
            rows = reports.reconciliation(store, datetime.date.fromisoformat(args.day))
        elif args.name in ("week", "month"):
            first = datetime.date.fromisoformat(args.first)
            last = datetime.date.fromisoformat(args.last)
            rows = reports.activity(store, args.name, first, last)
        elif args.name == "exit":
            rows = stations.exit_report(store, args.month, config.reports, today)
        elif args.name == "revenue":
            first = datetime.date.fromisoformat(args.first)
            last = datetime.date.fromisoformat(args.last)
            rows = lookups.revenue(store, args.period, first, last, by_method=args.by_method)
        elif args.name == "satisfaction":
            first_month = args.first[:7]
            last_month = args.last[:7]
            rows = follow_up.satisfaction(store, first_month, last_month)
        elif args.name == "unclaimed":
            rows = reports.unclaimed_receipts(store)
        elif args.name == "payouts":
            first = datetime.date.fromisoformat(args.first)
            last = datetime.date.fromisoformat(args.last)
            rows = reports.voucher_payouts(store, first, last)
        else:
            month = args.month or stations.last_completed_month(today)
            catalog = commission.load_commission_catalog(config.commission)
            statements = [
                commission.statement(store, catalog, config, number, month)
                for number in commission.stations_of_month(store, month)
            ]
            if not args.json:
                sys.stdout.flush()
                sys.stdout.buffer.write(commission.to_csv(statements))
                return 0
            rows = [commission.summary_row(each) for each in statements]
    except ValueError as exc:
        raise CommandError(
            f"wrong date: {exc}; write days as YYYY-MM-DD, months as YYYY-MM"
        ) from None
    finally:
        store.close()
    if args.json:
        emit(args, rows, "")
    else:
        sys.stdout.write(reports.to_csv(rows))
    return 0


def _cert_register(args: argparse.Namespace) -> int:
    from backoffice.signatures import load_operator_ca, register_certificate
    from backoffice.store import Store

    config = load_config(Path(args.config))
    try:
        pem = Path(args.cert).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {args.cert}: {exc.strerror}") from None
    operator_ca = load_operator_ca(config.certificates.operator_ca_file)
    store = Store(config.store)
    try:
        fingerprints = register_certificate(
            store,
            args.station,
            args.terminal,
            pem,
            by=args.by,
            now=time.time(),
            operator_ca=operator_ca,
        )
    finally:
        store.close()
    emit(
        args,
        {"station": args.station, "terminal": args.terminal, "cert_sha256": fingerprints},
        f"registered {', '.join(f[:16] + '...' for f in fingerprints)} for "
        f"{args.station}/{args.terminal}",
    )
    return 0


def _cert_list(args: argparse.Namespace) -> int:
    from backoffice.signatures import registered_certificates
    from backoffice.store import Store

    config = load_config(Path(args.config))
    store = Store(config.store)
    try:
        rows = registered_certificates(store, args.station, args.terminal)
    finally:
        store.close()
    if args.json:
        emit(args, rows, "")
    else:
        sys.stdout.write(reports.to_csv(rows))
    return 0


def _head(args: argparse.Namespace) -> int:
    from backoffice.store import Store

    config = load_config(Path(args.config))
    store = Store(config.store)
    try:
        rows = store.query(
            "SELECT acked_seq, acked_hash FROM terminals WHERE station = ? AND terminal = ?",
            (args.station, args.terminal),
        )
    finally:
        store.close()
    if not rows or rows[0]["acked_hash"] is None:
        raise CommandError(
            f"no acknowledged record of {args.station}/{args.terminal} is stored yet"
        )
    seq, digest = int(rows[0]["acked_seq"]), str(rows[0]["acked_hash"])
    emit(args, {"seq": seq, "hash": digest}, f"{seq}:{digest}")
    return 0


def _quarantine(args: argparse.Namespace) -> int:
    from backoffice.ingest import release_quarantine
    from backoffice.store import Store

    config = load_config(Path(args.config))
    store = Store(config.store)
    try:
        if args.release:
            released = release_quarantine(store, time.time())
            emit(
                args,
                [{"station": s, "terminal": t, "seq": q} for s, t, q in released],
                f"{len(released)} quarantined records now verify and were stored",
            )
            return 0
        rows = store.query(
            "SELECT station, terminal, seq, type, reason, received, record_hash FROM quarantine "
            "ORDER BY received, station, terminal, seq"
        )
    finally:
        store.close()
    if args.json:
        emit(args, rows, "")
    else:
        sys.stdout.write(reports.to_csv(rows))
    return 0


def _revocations(args: argparse.Namespace) -> "Any":
    from backoffice.revocation import Revocations
    from backoffice.store import Store

    config = load_config(Path(args.config))
    store = Store(config.store)
    try:
        return Revocations(store, config.revocation)
    except BackofficeError:
        store.close()
        raise


def _revoke(args: argparse.Namespace) -> int:
    from backoffice.revocation import Reason
    from backoffice.roles import Role
    from backoffice.staff import Staff

    revocations = _revocations(args)
    # Whoever can run this command on the back office's machine is its administrator.
    staff = Staff(args.by or f"cli:{getpass.getuser()}", Role.ADMIN)
    try:
        serials = revocations.revoke_terminal(
            args.station,
            args.terminal,
            staff,
            time.time(),
            serials=args.serial,
            reason=Reason(args.reason),
        )
    finally:
        revocations.store.close()
    emit(
        args,
        {"station": args.station, "terminal": args.terminal, "serials": serials},
        f"revoked {len(serials)} certificate(s) of {args.station}/{args.terminal}: "
        f"{', '.join(serials)}; CRL written to {revocations.config.crl_file}",
    )
    return 0


def _write_crl(args: argparse.Namespace) -> int:
    revocations = _revocations(args)
    try:
        path = revocations.publish(time.time())
        count = len(revocations.revoked())
    finally:
        revocations.store.close()
    emit(
        args,
        {"crl_file": str(path), "revoked": count},
        f"CRL with {count} revoked certificate(s) written to {path}",
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiosk-backoffice",
        description="Back office for the terminal fleet: MQTT ingest, dashboard, alerts, reports.",
    )
    sub = parser.add_subparsers(title="commands")
    serve = sub.add_parser("serve", help="ingest the fleet's MQTT messages and serve the dashboard")
    serve.add_argument("--config", required=True, help="the back office's TOML file")
    serve.add_argument("--client-id", default="", help="MQTT client id (default [broker])")
    serve.set_defaults(handler=_serve)

    worker = sub.add_parser(
        "ingest", help="run one ingest worker alone (several share [broker] shared_group)"
    )
    worker.add_argument("--config", required=True, help="the back office's TOML file")
    worker.add_argument(
        "--client-id", default="", help="this worker's own MQTT client id (default [broker])"
    )
    worker.set_defaults(handler=_ingest)

    cert = sub.add_parser("cert", help="register and list terminals' station certificates")
    cert_sub = cert.add_subparsers(title="cert commands")
    register = cert_sub.add_parser(
        "register", help="register a terminal's station certificate (kiosk-tool token cert)"
    )
    register.add_argument("--config", required=True)
    register.add_argument("--station", required=True, help="the station's 机构号")
    register.add_argument("--terminal", required=True, help="the terminal id")
    register.add_argument("--cert", required=True, help="PEM file of the station certificate")
    register.add_argument("--by", required=True, help="who vouches for it (your name)")
    register.add_argument("--json", action="store_true")
    register.set_defaults(handler=_cert_register)
    listing = cert_sub.add_parser("list", help="a terminal's registered certificates")
    listing.add_argument("--config", required=True)
    listing.add_argument("--station", required=True)
    listing.add_argument("--terminal", required=True)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_cert_list)

    head = sub.add_parser(
        "head",
        help="the last acknowledged journal head of a terminal (for journal verify --expect-head)",
    )
    head.add_argument("--config", required=True)
    head.add_argument("--station", required=True)
    head.add_argument("--terminal", required=True)
    head.add_argument("--json", action="store_true")
    head.set_defaults(handler=_head)

    quarantined = sub.add_parser("quarantine", help="records quarantined for their signature")
    quarantined.add_argument("--config", required=True)
    quarantined.add_argument(
        "--release",
        action="store_true",
        help="verify the quarantined records again and store those that now verify",
    )
    quarantined.add_argument("--json", action="store_true")
    quarantined.set_defaults(handler=_quarantine)

    key = sub.add_parser("make-command-key", help="create the back office's command signing key")
    key.add_argument("--out", required=True, help="private key file; the .pub.pem goes beside it")
    key.add_argument("--json", action="store_true", help="print the file names as JSON")
    key.set_defaults(handler=_make_key)

    rep = sub.add_parser("report", help="print a report as CSV (or --json)")
    rep.add_argument(
        "name",
        choices=[
            "daily",
            "week",
            "month",
            "exit",
            "commission",
            "revenue",
            "satisfaction",
            "unclaimed",
            "payouts",
        ],
    )
    rep.add_argument(
        "--period",
        choices=["day", "week", "month"],
        default="day",
        help="revenue: per business day, ISO week or month",
    )
    rep.add_argument(
        "--by-method",
        action="store_true",
        help="revenue: split what was received by payment method (cash, each wallet)",
    )
    rep.add_argument("--config", required=True)
    # The defaults are days at the stations (reports.timezone), worked out once the
    # configuration is read: a server keeping UTC would otherwise name yesterday wrong for
    # eight hours of every day.
    rep.add_argument("--day", default=None, help="YYYY-MM-DD (daily: yesterday)")
    rep.add_argument(
        "--month", default=None, help="YYYY-MM (exit, commission: the last completed month)"
    )
    rep.add_argument("--from", dest="first", default=None, help="YYYY-MM-DD (90 days back)")
    rep.add_argument("--to", dest="last", default=None, help="YYYY-MM-DD (today)")
    rep.add_argument("--json", action="store_true")
    rep.set_defaults(handler=_report)

    term = sub.add_parser("terminal", help="cut a terminal off: revoke its certificates")
    term_sub = term.add_subparsers(title="terminal commands")
    revoke = term_sub.add_parser(
        "revoke", help="revoke a terminal's certificates and write the CRL the broker loads"
    )
    revoke.add_argument("station", help="the station number (机构号)")
    revoke.add_argument("terminal", help="the terminal id")
    revoke.add_argument("--config", required=True, help="the back office's TOML file")
    revoke.add_argument(
        "--serial",
        action="append",
        default=[],
        help="also revoke this certificate serial (hex); repeat for more",
    )
    revoke.add_argument(
        "--reason",
        default="key_compromise",
        choices=["key_compromise", "cessation_of_operation", "superseded"],
        help="the CRL's reason code (default key_compromise)",
    )
    revoke.add_argument("--by", default="", help="who revokes (default cli:<login name>)")
    revoke.add_argument("--json", action="store_true", help="print the result as JSON")
    revoke.set_defaults(handler=_revoke)
    crl = term_sub.add_parser(
        "crl", help="write the CRL again (renews its next-update time; run it daily)"
    )
    crl.add_argument("--config", required=True, help="the back office's TOML file")
    crl.add_argument("--json", action="store_true", help="print the result as JSON")
    crl.set_defaults(handler=_write_crl)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run_command(build_parser(), argv)
    finally:
        logging.shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
