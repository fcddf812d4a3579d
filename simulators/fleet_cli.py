"""`python -m simulators.fleet_cli`: N simulated terminals publishing real telemetry.

Runs simulators.fleet against an MQTT broker (heartbeats, health, signed payments, and the
back office's remote commands answered), optionally registering their certificates in a
back office's store first, for a demo fleet, the dashboard's screenshots and load runs.
"""

import argparse
import signal
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from backoffice.config import load_config
from backoffice.store import Store
from kiosk.command_line import CommandError, run_command
from simulators.fleet import Fleet


def _broker(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise CommandError(f"--broker {text!r} must be HOST:PORT, e.g. 127.0.0.1:1883")
    return host, int(port)


def _run(args: argparse.Namespace) -> int:
    if args.terminals < 1:
        raise CommandError("--terminals must be at least 1")
    host, port = _broker(args.broker)
    public_key = None
    if args.command_public_key:
        loaded = serialization.load_pem_public_key(Path(args.command_public_key).read_bytes())
        if not isinstance(loaded, ec.EllipticCurvePublicKey):
            raise CommandError(f"{args.command_public_key} is not an EC public key")
        public_key = loaded
    with tempfile.TemporaryDirectory(prefix="kiosk-fleet-") as work:
        fleet = Fleet(
            Path(work), args.terminals, host=host, port=port, command_public_key=public_key
        )
        if args.register_config:
            store = Store(load_config(Path(args.register_config)).store)
            try:
                for terminal in fleet.terminals:
                    terminal.register_with(store, by="simulate-fleet")
            finally:
                store.close()
        try:
            fleet.start()
        except OSError as exc:
            raise CommandError(
                f"cannot reach the MQTT broker at {host}:{port}: {exc.strerror or exc}; "
                "start mosquitto or fix --broker"
            ) from None
        print(f"simulate-fleet: {args.terminals} simulated terminals on {host}:{port}", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            fleet.run(
                heartbeat_s=args.heartbeat_s,
                health_s=args.health_s,
                tx_per_hour=args.tx_per_hour,
                duration_s=args.duration,
                should_stop=stop.is_set,
            )
        finally:
            fleet.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    sim = argparse.ArgumentParser(
        prog="simulate-fleet", description="run N simulated terminals against a broker"
    )
    sim.add_argument("--terminals", type=int, default=10, help="how many terminals (default 10)")
    sim.add_argument("--broker", default="127.0.0.1:1883", help="HOST:PORT of the MQTT broker")
    sim.add_argument("--heartbeat-s", type=float, default=60.0, help="heartbeat period (60 s)")
    sim.add_argument("--health-s", type=float, default=300.0, help="health period (300 s)")
    sim.add_argument("--tx-per-hour", type=float, default=6.0, help="payments per terminal-hour")
    sim.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    sim.add_argument("--command-public-key", default="", help="verify commands with this PEM")
    sim.add_argument(
        "--register-config",
        default="",
        help="register the simulated terminals' certificates in this back office's store",
    )
    sim.set_defaults(handler=_run)
    return sim


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
