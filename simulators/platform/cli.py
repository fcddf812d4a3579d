"""kiosk-platform-sim: run the simulated operator platform, or dump its ledger as JSON.

    kiosk-platform-sim --db PATH --port N [--host 127.0.0.1] [--fault SPEC ...] [--seed S]
                       [--clock-offset-s N] [--hold-lifetime-s N] [--crl FILE]
                       [--provider SPEC ...] [--order-lifetime-s N]
    kiosk-platform-sim dump --db PATH

Serving prints one line with the URL once it listens (port 0 picks a free port), then runs
until interrupted (Ctrl-C or SIGTERM).
"""

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from kiosk.command_line import CommandError, run_command
from kiosk.platform.models import HOLD_LIFETIME, ORDER_LIFETIME
from simulators.platform.ledger import DEFAULT_OPENING_FLOAT_FEN, Ledger
from simulators.platform.orders import OrderBook
from simulators.platform.server import PlatformSimulator


def serve(args: argparse.Namespace) -> int:
    if args.db is None:
        raise CommandError("--db PATH is needed: the file of the simulator's ledger")
    try:
        simulator = PlatformSimulator(
            Path(args.db),
            host=args.host,
            port=args.port,
            opening_float_fen=args.opening_float,
            faults=args.fault,
            seed=args.seed,
            auto_confirm_deposits=args.auto_confirm_deposits,
            clock_offset_s=args.clock_offset_s,
            hold_lifetime_s=args.hold_lifetime_s,
            provider=args.provider,
            order_lifetime_s=args.order_lifetime_s,
            crl_file=Path(args.crl) if args.crl else None,
        )
    except OSError as exc:
        raise CommandError(
            f"cannot listen on {args.host}:{args.port} ({exc.strerror}): choose another --port"
        ) from None
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        print(
            f"warning: listening on {args.host}; the /sim control endpoints are unauthenticated",
            file=sys.stderr,
        )
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s %(message)s",
    )

    def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    print(f"platform simulator listening on {simulator.url}", flush=True)
    try:
        simulator.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
    return 0


def dump(args: argparse.Namespace) -> int:
    path = Path(args.db)
    if not path.is_file():
        raise CommandError(f"no simulator ledger at {path}: give the --db the simulator used")
    ledger = {**Ledger(path).dump(), "payment_orders": OrderBook(path).dump()}
    print(json.dumps(ledger, ensure_ascii=False, sort_keys=True, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiosk-platform-sim",
        description="Run the simulated operator platform (bills, float, payments, deposits, "
        "vouchers).",
    )
    parser.add_argument("--db", help="SQLite file of the simulator's ledger (created if missing)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault, e.g. post:timeout_after_commit:p=0.2 or post:error:count=3",
    )
    parser.add_argument("--seed", type=int, help="seed of the fault RNG, for repeatable runs")
    parser.add_argument(
        "--opening-float",
        type=int,
        default=DEFAULT_OPENING_FLOAT_FEN,
        metavar="FEN",
        help="balance a newly registered station's float opens with, in fen: a balance "
        "carried over from an earlier system (default %(default)s: the credit line is zero, "
        "nothing sells until a deposit is confirmed)",
    )
    parser.add_argument(
        "--auto-confirm-deposits",
        action="store_true",
        help="credit deposits at once instead of waiting for the operator's confirmation",
    )
    parser.add_argument(
        "--clock-offset-s",
        type=_seconds,
        default=0.0,
        metavar="N",
        help="run the platform's clock N seconds ahead of this machine's (negative: behind)",
    )
    parser.add_argument(
        "--hold-lifetime-s",
        type=_positive_seconds,
        default=HOLD_LIFETIME.total_seconds(),
        metavar="N",
        help="seconds a float hold lives unless released or consumed (default %(default)g)",
    )
    parser.add_argument(
        "--provider",
        action="append",
        default=[],
        metavar="SPEC",
        help="how the payment provider behaves for new orders, e.g. pay_after:s=30 or "
        "refund_fail:count=1 (docs/platform-api.md, Provider behaviours)",
    )
    parser.add_argument(
        "--order-lifetime-s",
        type=_positive_seconds,
        default=ORDER_LIFETIME.total_seconds(),
        metavar="N",
        help="seconds a payment order stays payable unless paid or closed (default %(default)g)",
    )
    parser.add_argument(
        "--crl",
        metavar="FILE",
        help="refuse requests signed with a certificate this CRL revokes (read again on change)",
    )
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    parser.set_defaults(handler=serve)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    dump_parser = commands.add_parser("dump", help="print the ledger as JSON")
    dump_parser.add_argument("--db", required=True, help="SQLite file of the simulator's ledger")
    dump_parser.add_argument("--json", action="store_true", help="accepted; output is JSON")
    dump_parser.set_defaults(handler=dump)
    return parser


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    # Beyond a year is a typo, and a timedelta overflows far beyond that.
    if not abs(seconds) <= 366 * 86_400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds within a year")
    return seconds


def _positive_seconds(text: str) -> float:
    seconds = _seconds(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
