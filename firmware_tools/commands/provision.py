"""kiosk-tool provision: token, station key, certificate, configuration and registration.

Runs kiosk.provisioning's idempotent plan against the token named by the options (or by an
existing configuration), printing each step as it goes and a summary a technician checks
against the station's paperwork. `provision renew` re-certifies the same key before expiry
and archives the old certificate so the journal's older records stay verifiable.
"""

import argparse
import secrets
import sys
from pathlib import Path
from typing import Any

from drivers.token.csr import TokenEnrolment
from drivers.token.initialise import TokenSlots, read_so_pin
from drivers.token.keys import Sm2Mechanism
from drivers.token.pin import read_pin
from firmware_tools.tool_language import say, say_text, tool_translator
from kiosk.command_line import CommandError, emit
from kiosk.config import Config, load_config
from kiosk.config_template import render_config
from kiosk.message_text import MessageText
from kiosk.platform import PlatformClient, PlatformError
from kiosk.provisioning.archive import archive_dir, certificate_sha256
from kiosk.provisioning.plan import (
    AwaitingCertificate,
    CertificateFile,
    CertificateIssuer,
    DevCertificateAuthority,
    Identity,
    ProvisioningError,
    ProvisioningPlan,
    Step,
    station_certificate_step,
    token_initialisation_step,
)
from kiosk.signing import KeyType

RENEW_DAYS = 30


def _issuer(args: argparse.Namespace, csr_path: Path) -> CertificateIssuer:
    if args.cert and args.dev_ca:
        raise CommandError("give --cert or --dev-ca, not both")
    if args.cert:
        return CertificateFile(args.cert)
    if args.dev_ca:
        return DevCertificateAuthority(args.dev_ca.resolve())
    return AwaitingCertificate(csr_path)


def _softhsm_token(args: argparse.Namespace, token: dict[str, Any], identity: Identity) -> None:
    """A bench's SoftHSM2 token in --softhsm-dir, with its PIN files beside it (mode 600)."""
    from drivers.token.softhsm import init_softhsm_token

    directory: Path = args.softhsm_dir.resolve()
    pins = {}
    for name in ("user", "so"):
        path = directory / f"{name}.pin"
        if not path.exists():
            directory.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(f"{secrets.randbelow(10**8):08d}\n", encoding="ascii")
        pins[name] = path.read_text(encoding="ascii").strip()
    token["softhsm_conf"] = str(
        init_softhsm_token(
            directory,
            label=token["label"],
            so_pin=pins["so"],
            user_pin=pins["user"],
            institution_no=identity.institution_no,
            terminal_id=identity.terminal_id,
            station_name=identity.station_name,
            key_label=token["key_label"],
            key_type=KeyType(token["key_type"]),
        )
    )
    token["pin_source"] = f"file:{directory / 'user.pin'}"


def _config_text(args: argparse.Namespace, identity: Identity, token: dict[str, Any]) -> str:
    data_dir = args.data.resolve()
    mqtt = data_dir / "mqtt"
    return render_config(
        institution_no=identity.institution_no,
        station_name=identity.station_name,
        terminal_id=identity.terminal_id,
        data_dir=str(data_dir),
        platform_url=args.platform,
        token=token,
        devices=args.devices,
        # The MQTT files are issued by the operator's fleet CA (deploy/mosquitto/dev-ca.sh
        # for development) and placed in DATA/mqtt; telemetry stays off without --broker.
        broker_host=args.broker or "",
        mqtt_files={
            "ca_file": str(mqtt / "ca.pem"),
            "cert_file": str(mqtt / "terminal.pem"),
            "key_file": str(mqtt / "terminal.key"),
            "backoffice_key_file": str(mqtt / "backoffice-command.pub.pem"),
        },
    )


def _progress(index: int, total: int, step: Step) -> None:
    title = say_text(tool_translator(), step.title)
    print(f"({index}/{total}) {title} ...", file=sys.stderr, flush=True)


def _summary(config: Config, enrolment: TokenEnrolment, results: list[Any]) -> dict[str, Any]:
    cert = enrolment.certificate_pem()
    summary: dict[str, Any] = {
        "config": config.source,
        "station": config.station.institution_no,
        "terminal": config.station.terminal_id,
        "station_name": config.station.name,
        "token_label": config.token.label,
        "platform": config.platform.url,
        "steps": [r.to_json() for r in results],
        "certificate_archive": str(archive_dir(config.data_path)),
    }
    if cert is not None:
        from cryptography import x509

        loaded = x509.load_pem_x509_certificate(cert)
        summary.update(
            cert_subject=loaded.subject.rfc4514_string(),
            cert_issuer=loaded.issuer.rfc4514_string(),
            cert_not_after=loaded.not_valid_after_utc.isoformat(timespec="seconds"),
            cert_sha256=certificate_sha256(cert),
        )
    return summary


def _summary_text(summary: dict[str, Any]) -> str:
    t = tool_translator()
    # Step status words and details as the core wrote them, said through the catalogs; the
    # summary's keys below are the --json field names, shown as they are.
    lines = [
        f"[{say_text(t, str(s['status']))}] {s['id']}: {say_text(t, s['detail'])}"
        for s in summary["steps"]
    ]
    for key in (
        "station",
        "terminal",
        "station_name",
        "token_label",
        "cert_subject",
        "cert_issuer",
        "cert_not_after",
        "cert_sha256",
        "platform",
        "config",
    ):
        if key in summary:
            lines.append(f"{key.ljust(14)} {summary[key]}")
    return "\n".join(lines)


def _run(args: argparse.Namespace, config_path: Path, *, renew: bool) -> int:
    existing = load_config(config_path) if config_path.exists() else None
    if renew and existing is None:
        raise CommandError("{path} does not exist: provision the terminal first", path=config_path)
    if existing is not None:
        identity = Identity(
            existing.station.institution_no, existing.station.terminal_id, existing.station.name
        )
        token: dict[str, Any] = {
            "kind": existing.token.kind,
            "module": existing.token.module,
            "label": existing.token.label,
            "key_label": existing.token.key_label,
            "pin_source": existing.token.pin_source,
            "softhsm_conf": existing.token.softhsm_conf,
            "key_type": existing.token.key_type,
            "sm2_mechanism": existing.token.sm2_mechanism,
            "sm2_hash_on_host": existing.token.sm2_hash_on_host,
        }
        data_dir = existing.data_path
        if existing.token.kind != "pkcs11":
            raise CommandError("provision works on a PKCS#11 token: set token.kind = 'pkcs11'")
    else:
        missing = [
            f"--{name.replace('_', '-')}"
            for name in ("institution_no", "terminal_id", "station_name", "data")
            if not getattr(args, name)
        ]
        if missing:
            raise CommandError(
                "{path} does not exist yet: give {options}",
                path=config_path,
                options=", ".join(missing),
            )
        identity = Identity(args.institution_no, args.terminal_id, args.station_name)
        token = {
            "kind": "pkcs11",
            "module": args.module,
            "label": args.label,
            "key_label": args.key_label,
            "pin_source": args.pin_source,
            "softhsm_conf": "",
            "key_type": args.key_type,
            "sm2_mechanism": args.sm2_mechanism,
            "sm2_hash_on_host": args.sm2_hash_on_host,
        }
        data_dir = args.data.resolve()
        if args.softhsm_dir:
            _softhsm_token(args, token, identity)
    if token["softhsm_conf"]:
        import os

        os.environ["SOFTHSM2_CONF"] = token["softhsm_conf"]
    csr_path = data_dir / "provisioning" / "station.csr.pem"
    issuer = _issuer(args, csr_path)
    user_pin = read_pin(token["pin_source"])
    key_type = KeyType(token["key_type"])
    sm2_mechanism = (
        Sm2Mechanism(token["sm2_mechanism"], token["sm2_hash_on_host"])
        if token["sm2_mechanism"]
        else None
    )
    if key_type is KeyType.SM2 and sm2_mechanism is None:
        raise CommandError(
            "an SM2 station key needs the vendor's SM2 with SM3 mechanism: give --sm2-mechanism"
            " 0x80000xxx (from the USBKey vendor's documentation)"
        )
    if not token["sm2_mechanism"]:
        # Written to the configuration only when they apply.
        del token["sm2_mechanism"], token["sm2_hash_on_host"]
    enrolment = TokenEnrolment(
        token["module"],
        token["label"],
        token["key_label"],
        user_pin,
        key_type=key_type,
        sm2_mechanism=sm2_mechanism,
    )
    plan = ProvisioningPlan()

    def so_pin() -> str:
        if not args.so_pin_source:
            raise CommandError(
                "a blank token is to be initialised as '{label}': give the SO PIN to set on it "
                "with --so-pin-source env:NAME, file:/path or prompt",
                label=token["label"],
            )
        return read_so_pin(args.so_pin_source)

    token_initialisation_step(
        plan,
        TokenSlots(token["module"]),
        label=token["label"],
        so_pin=so_pin,
        user_pin=lambda: user_pin,
    )

    def token_present() -> str | None:
        if enrolment.present():
            return MessageText("USBKey token '{label}' present", label=token["label"])
        return None

    @plan.add("token", "USBKey token", token_present)
    def no_token() -> str:
        raise ProvisioningError(
            f"USBKey token '{token['label']}' is not present: plug in the station's token"
            " (for a bench, add --softhsm-dir DIR)"
        )

    def key_present() -> str | None:
        facts = enrolment.key_facts()
        if facts is None:
            return None
        if facts["extractable"] or not facts["sensitive"]:
            raise ProvisioningError(
                f"the key '{token['key_label']}' on the token can be exported: it cannot be the"
                " station key; delete it with the token vendor's tool and run provision again"
            )
        if facts["key_type_problem"] is not None:
            raise ProvisioningError(
                f"the key '{token['key_label']}' on the token: {facts['key_type_problem']}, but"
                f" the station key is to be {key_type.value}: give the right --key-type (or"
                " token.key_type), or delete the key with the token vendor's tool"
            )
        return MessageText(
            "{key_type} station key on the token (sensitive, never extractable)",
            key_type=key_type.value,
        )

    @plan.add("key", "Station key on the token", key_present)
    def generate() -> str:
        enrolment.generate_key()
        return MessageText(
            "{key_type} station key generated on the token (sensitive, never extractable)",
            key_type=key_type.value,
        )

    station_certificate_step(
        plan,
        enrolment,
        identity,
        issuer,
        csr_path=csr_path,
        data_dir=data_dir,
        renew_days=RENEW_DAYS,
        force=renew,
    )

    def config_written() -> str | None:
        return (
            MessageText("{config_path} present (kept as it is)", config_path=config_path)
            if config_path.exists()
            else None
        )

    @plan.add("config", "Terminal configuration", config_written)
    def write_config() -> str:
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(_config_text(args, identity, token), encoding="utf-8")
        load_config(config_path)
        return MessageText("wrote {config_path}", config_path=config_path)

    @plan.add("register", "Registration with the platform", lambda: None)
    def register() -> str:
        from station.composition import build_signer

        config = load_config(config_path)
        client = PlatformClient(
            config.platform.url,
            station=config.station.institution_no,
            terminal=config.station.terminal_id,
            signer=build_signer(config),
            timeout_s=config.platform.timeout_s,
            retries=config.platform.retries,
        )
        try:
            client.register()
        except PlatformError as exc:
            raise ProvisioningError(f"the platform did not register the terminal: {exc}") from None
        return MessageText(
            "registered with {url} (repeating it is harmless)", url=config.platform.url
        )

    results = plan.run(progress=None if args.json else _progress)
    summary = _summary(load_config(config_path), enrolment, results)
    emit(args, summary, _summary_text(summary))
    return 0


def _provision(args: argparse.Namespace) -> int:
    if args.config is None:
        raise CommandError("give --config FILE: the configuration to write or use")
    return _run(args, args.config, renew=False)


def _renew(args: argparse.Namespace) -> int:
    return _run(args, args.config, renew=True)


def _mechanism_number(text: str) -> int:
    try:
        number = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            say(
                tool_translator(),
                "{value!r} is not a mechanism number: write it as 0x80000xxx or in decimal",
                value=text,
            )
        ) from None
    if not 0 < number <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError(
            say(
                tool_translator(),
                "{value} is not a 32-bit PKCS#11 mechanism number",
                value=text,
            )
        )
    return number


def _issuer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cert", type=Path, help="the certificate the operator's CA issued")
    parser.add_argument(
        "--dev-ca", type=Path, metavar="DIR", help="issue with a development CA (benches only)"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = groups.add_parser(
        "provision",
        help="set up the token, station certificate, configuration and registration",
        description=(
            "Provision a terminal: use the USBKey token present (or initialise the one blank"
            " token plugged in), generate the station key on"
            " it (never exportable), write a certificate request (CSR) for the 机构号 and"
            " terminal id, import the issued certificate, write the configuration and register"
            " with the platform. Every step checks whether it is done already, so running it"
            " again is safe."
        ),
    )
    parser.add_argument("--config", type=Path, help="configuration to write or use (required)")
    parser.add_argument("--data", type=Path, help="data directory (new terminals)")
    parser.add_argument("--institution-no", help="station 机构号 (new terminals)")
    parser.add_argument("--terminal-id", help="terminal id (new terminals)")
    parser.add_argument("--station-name", help="station name (new terminals)")
    parser.add_argument("--platform", default="http://127.0.0.1:8700", help="platform URL")
    parser.add_argument("--module", default="/usr/lib/softhsm/libsofthsm2.so")
    parser.add_argument("--label", default="kiosk", help="token label")
    parser.add_argument("--key-label", default="station")
    parser.add_argument(
        "--key-type",
        choices=[kind.value for kind in KeyType],
        default=KeyType.P256.value,
        help="the station key: ECDSA P-256, RSA-2048 or 国密 SM2 (new terminals)",
    )
    parser.add_argument(
        "--sm2-mechanism",
        type=_mechanism_number,
        default=0,
        help="SM2 keys: the vendor's PKCS#11 mechanism number for SM2 with SM3, e.g. 0x80000xxx",
    )
    parser.add_argument(
        "--sm2-hash-on-host",
        action="store_true",
        help="SM2 keys: the vendor mechanism signs SM3(Z || M) made on the host",
    )
    parser.add_argument("--pin-source", default="prompt", help="env:NAME, file:/path or prompt")
    parser.add_argument(
        "--so-pin-source",
        help="the SO PIN to set when a blank token is initialised: env:NAME, file:/path or prompt",
    )
    parser.add_argument("--devices", choices=["sim", "real"], default="real")
    parser.add_argument(
        "--broker",
        help="the fleet's MQTT broker host; its TLS files go in DATA/mqtt (docs/mqtt.md)",
    )
    parser.add_argument(
        "--softhsm-dir", type=Path, help="bench only: make a SoftHSM2 token in this directory"
    )
    _issuer_options(parser)
    parser.set_defaults(handler=_provision)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    renew = sub.add_parser(
        "renew",
        help="re-certify the station key before expiry, keeping old records verifiable",
        description=(
            "Request and import a new certificate for the same station key; the old one is"
            " kept in data_dir/certificates so journal records it signed stay verifiable."
        ),
    )
    renew.add_argument("--config", type=Path, required=True, help="the terminal's TOML file")
    _issuer_options(renew)
    renew.set_defaults(handler=_renew)
