"""kiosk-tool config: write a complete configuration for a simulated terminal, or check one."""

import argparse
import secrets
from pathlib import Path
from typing import Any

from kiosk.command_line import CommandError, emit
from kiosk.config import load_config
from kiosk.config_template import render_config


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(value + "\n", encoding="ascii")


def _say(message_id: str, **values: Any) -> str:
    # Imported here, not at the top: the import block is being reworked on main (simulators).
    from firmware_tools.tool_language import say, tool_translator

    return say(tool_translator(), message_id, **values)


def _init(args: argparse.Namespace) -> int:
    if not args.sim:
        raise CommandError(
            "only simulated terminals can be set up with config init: add --sim "
            "(a real terminal is set up with kiosk-tool provision)"
        )
    out: Path = args.out
    if out.exists() and not args.force:
        raise CommandError("{path} exists already: choose another --out or add --force", path=out)
    data = args.data.resolve()
    token_dir = data / "token"
    token: dict[str, Any]
    if args.token == "softhsm":
        from drivers.token.softhsm import init_softhsm_token

        pin_file = token_dir / "user.pin"
        so_pin_file = token_dir / "so.pin"
        # A simulated terminal keeps its PINs beside the token so that it starts unattended;
        # a real one takes them from a technician or a protected file (docs/token.md).
        user_pin = (
            pin_file.read_text().strip() if pin_file.exists() else f"{secrets.randbelow(10**8):08d}"
        )
        so_pin = (
            so_pin_file.read_text().strip()
            if so_pin_file.exists()
            else f"{secrets.randbelow(10**8):08d}"
        )
        _write_secret(pin_file, user_pin)
        _write_secret(so_pin_file, so_pin)
        conf = init_softhsm_token(
            token_dir,
            label="kiosk",
            so_pin=so_pin,
            user_pin=user_pin,
            institution_no=args.institution_no,
            terminal_id=args.terminal_id,
            station_name=args.station_name,
        )
        token = {
            "kind": "pkcs11",
            "module": args.module,
            "label": "kiosk",
            "key_label": "station",
            "pin_source": f"file:{pin_file}",
            "softhsm_conf": str(conf),
        }
    else:
        from drivers.token.software import create_software_identity

        key_file, cert_file = token_dir / "station-key.pem", token_dir / "station-cert.pem"
        if not key_file.exists():
            create_software_identity(
                key_file,
                cert_file,
                institution_no=args.institution_no,
                terminal_id=args.terminal_id,
                station_name=args.station_name,
            )
        token = {"kind": "software", "key_file": str(key_file), "cert_file": str(cert_file)}
    text = render_config(
        institution_no=args.institution_no,
        station_name=args.station_name,
        terminal_id=args.terminal_id,
        data_dir=str(data),
        platform_url=args.platform,
        token=token,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    load_config(out)  # what we wrote must load: fail here, not at the terminal's start
    emit(
        args,
        {"config": str(out), "token": token["kind"], "data_dir": str(data)},
        _say(
            "wrote {path} (token: {token}, data: {data})",
            path=out,
            token=args.token,
            data=data,
        ),
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    emit(
        args,
        {"config": config.source, "terminal": config.station.terminal_id},
        _say(
            "{path}: configuration is valid (terminal {terminal})",
            path=config.source,
            terminal=config.station.terminal_id,
        ),
    )
    return 0


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = groups.add_parser("config", help="write or check a terminal configuration")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    init = sub.add_parser("init", help="write a complete configuration for a simulated terminal")
    init.add_argument("--sim", action="store_true", help="simulated devices (required)")
    init.add_argument(
        "--token",
        choices=["softhsm", "software"],
        default="softhsm",
        help="softhsm: a SoftHSM2 token with a fresh key on it; software: demo key",
    )
    init.add_argument("--data", type=Path, required=True, help="data directory of the terminal")
    init.add_argument("--platform", default="http://127.0.0.1:8700", help="platform URL")
    init.add_argument("--out", type=Path, required=True, help="configuration file to write")
    init.add_argument("--institution-no", default="33078200001", help="station 机构号")
    init.add_argument("--terminal-id", default="T0001")
    init.add_argument("--station-name", default="青山社区便民服务站")
    init.add_argument(
        "--module", default="/usr/lib/softhsm/libsofthsm2.so", help="PKCS#11 module of SoftHSM2"
    )
    init.add_argument("--force", action="store_true", help="overwrite --out")
    init.add_argument("--json", action="store_true")
    init.set_defaults(handler=_init)
    check = sub.add_parser("check", help="load a configuration and report the first problem")
    check.add_argument("--config", type=Path, required=True)
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=_check)
