"""kiosk-tool token: export the station certificate and show the USBKey token's state.

Never prints, logs or asks for more than the configured PIN source gives, and never shows
the PIN.
"""

import argparse
from pathlib import Path

from drivers.token.factory import signer_from_config
from firmware_tools.tool_language import say, tool_translator
from kiosk.command_line import CommandError, emit
from kiosk.config import load_config
from kiosk.signing import Signer


def _signer(config_path: Path) -> Signer:
    return signer_from_config(load_config(config_path).token)


def _cert(args: argparse.Namespace) -> int:
    signer = _signer(args.config)
    pem = signer.certificate_pem()
    out: Path = args.out
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(pem)
    except OSError as exc:
        raise CommandError(
            "cannot write the certificate to {path}: {problem}", path=out, problem=exc.strerror
        ) from None
    health = signer.health()
    subject = health.get("cert_subject") or "station certificate"
    t = tool_translator()
    text = say(t, "wrote {subject} to {path}", subject=t(str(subject)), path=out)
    emit(args, {"out": str(out), "cert_subject": subject}, text)
    return 0


def _status_text(health: dict[str, object]) -> str:
    width = max(len(key) for key in health)
    return "\n".join(
        f"{key.ljust(width)}  {'-' if value is None else value}" for key, value in health.items()
    )


def _status(args: argparse.Namespace) -> int:
    health = _signer(args.config).health()
    emit(args, health, _status_text(health))
    if health.get("present") and health.get("logged_in"):
        return 0
    raise CommandError(
        "the token is not ready: {problem}", problem=health.get("last_error") or "not present"
    )


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    token = groups.add_parser(
        "token",
        help="the station's USBKey token: certificate and state",
        description="Export the station certificate and show the USBKey token's state.",
    )
    commands = token.add_subparsers(title="commands", metavar="COMMAND")

    cert = commands.add_parser(
        "cert",
        help="write the station certificate (PEM) read from the token",
        description="Write the station certificate (PEM) read from the token to a file.",
    )
    cert.add_argument("--config", type=Path, required=True, help="the terminal's TOML file")
    cert.add_argument("--out", type=Path, required=True, help="where to write the PEM file")
    cert.add_argument("--json", action="store_true", help="print the result as JSON")
    cert.set_defaults(handler=_cert)

    status = commands.add_parser(
        "status",
        help="show whether the token is present and logged in, and its certificate's dates",
        description=(
            "Show the token's state (present, logged in, serial, certificate subject and days"
            " left, PIN locked, last error). Exit code 0 only when the token is ready to sign."
        ),
    )
    status.add_argument("--config", type=Path, required=True, help="the terminal's TOML file")
    status.add_argument("--json", action="store_true", help="print the state as JSON")
    status.set_defaults(handler=_status)
