"""Signed remote commands to terminals: build, sign, record and publish them.

Owns the command envelope of the MQTT contract: {"v","id","name","args","expires","nonce",
"sig"}, where sig is the base64 DER ECDSA P-256 signature over the RFC 8785 canonical JSON of
the command without "sig", made with the back-office key. It never reads results: ingest
stores cmd_result messages against the command's id.
"""

import base64
import datetime
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from backoffice.contract import topic_for
from backoffice.errors import CommandRefused
from backoffice.store import Cursor, Store
from kiosk.telemetry.commands import COMMAND_NAMES, command_signed_bytes, unsigned_command
from kiosk.telemetry.commands import sign_command as terminal_sign_command
from kiosk.telemetry.topics import TopicKind

# (topic, payload, expiry_s): published at QoS 1; the broker drops it once expired.
PublishCommand = Callable[[str, bytes, int], None]
# Called inside the transaction that stores the command (the dashboard records who sent it).
Audit = Callable[[Cursor, dict[str, Any]], None]


class FieldKind(StrEnum):
    WHOLE = "whole"  # a whole number between minimum and maximum
    TEXT = "text"  # up to max_length printable characters
    DATE = "date"  # YYYY-MM-DD
    TIME = "time"  # YYYY-MM-DDTHH:MM in the dashboard's time zone, sent with its UTC offset
    FILE = "file"  # an uploaded file, sent as base64
    YUAN = "yuan"  # money typed in 元 (up to two decimals), sent as whole fen


@dataclass(frozen=True)
class FormField:
    """One typed field of a command's form; `name` is the argument it becomes."""

    name: str
    kind: FieldKind
    label: str  # message id in backoffice.po
    required: bool = False
    minimum: int = 0
    maximum: int = 0
    max_length: int = 64


# The form of every command of contract v1 (docs/mqtt.md section 4): what the terminal's
# handler reads from args (kiosk.fleet_link), typed, so staff never write JSON by hand.
COMMAND_FORMS: dict[str, tuple[FormField, ...]] = {
    "set_heartbeat_interval": (
        FormField("seconds", FieldKind.WHOLE, "Seconds", True, minimum=10, maximum=3600),
    ),
    "enter_maintenance": (FormField("technician", FieldKind.TEXT, "Technician"),),
    "leave_maintenance": (),
    "close_day": (FormField("business_day", FieldKind.DATE, "Business day"),),
    "request_logs": (),
    "reboot": (),
    "install_catalog": (
        FormField("catalog_b64", FieldKind.FILE, "Signed catalog file", True, max_length=9000),
        FormField("sig_b64", FieldKind.FILE, "Catalog signature file", True, max_length=512),
    ),
    # A float deposit the station made at a postal outlet (docs/transactions.md, "Deposits"):
    # the terminal refuses less than 500 yuan itself; "by" is the staff member who sends it.
    "record_deposit": (
        FormField("amount_fen", FieldKind.YUAN, "Amount (yuan)", True, maximum=100_000_000),
        FormField("slip_no", FieldKind.TEXT, "Slip number", True, max_length=32),
    ),
    # The rollout order (kiosk.updates.rollout checks it again on the terminal).
    "update": (
        FormField("rollout", FieldKind.TEXT, "Rollout", True),
        FormField("version", FieldKind.TEXT, "Version", True, max_length=32),
        FormField("target", FieldKind.TEXT, "Bundle file", True, max_length=200),
        FormField(
            "cohort_percent",
            FieldKind.WHOLE,
            "Share of terminals (%)",
            True,
            minimum=1,
            maximum=100,
        ),
        FormField("not_before", FieldKind.TIME, "Not before", True),
        FormField("not_after", FieldKind.TIME, "Not after", True),
        FormField("max_starts", FieldKind.WHOLE, "Starts before rollback", minimum=1, maximum=10),
    ),
}
COMMAND_LABELS = {
    "set_heartbeat_interval": "Set the heartbeat interval",
    "enter_maintenance": "Enter maintenance",
    "leave_maintenance": "Leave maintenance",
    "close_day": "Close the business day",
    "request_logs": "Collect the logs",
    "reboot": "Restart the terminal",
    "install_catalog": "Install a service catalog",
    "update": "Update the software",
    "record_deposit": "Record a float deposit",
}
_YUAN = re.compile(r"^(\d{1,9})(?:\.(\d{1,2}))?\Z")


def args_from_form(
    name: str,
    form: Mapping[str, str],
    files: Mapping[str, bytes],
    zone: datetime.tzinfo = datetime.UTC,
) -> dict[str, Any]:
    """The command's args from its form's fields; CommandRefused naming the field otherwise.
    A time field is read in `zone` (the dashboard's) and sent with its UTC offset."""
    if name not in COMMAND_FORMS:
        raise CommandRefused(f"unknown command {name!r}; known: {', '.join(COMMAND_FORMS)}")
    args: dict[str, Any] = {}
    for spec in COMMAND_FORMS[name]:
        if spec.kind is FieldKind.FILE:
            data = files.get(spec.name, b"")
            if not data:
                if spec.required:
                    raise CommandRefused(f"{spec.name}: choose the file to send")
                continue
            if len(data) > spec.max_length:
                raise CommandRefused(
                    f"{spec.name}: the file has {len(data)} bytes; at most {spec.max_length} "
                    "fit in a command"
                )
            args[spec.name] = base64.b64encode(data).decode("ascii")
            continue
        text = (form.get(spec.name) or "").strip()
        if not text:
            if spec.required:
                raise CommandRefused(f"{spec.name}: fill it in")
            continue
        if spec.kind is FieldKind.WHOLE:
            if not text.isdigit() or not spec.minimum <= int(text) <= spec.maximum:
                raise CommandRefused(
                    f"{spec.name}: {text!r} is not a whole number from {spec.minimum} to "
                    f"{spec.maximum}"
                )
            args[spec.name] = int(text)
        elif spec.kind is FieldKind.YUAN:
            found = _YUAN.match(text.replace(",", ""))
            fen = (
                int(found.group(1)) * 100 + int((found.group(2) or "").ljust(2, "0"))
                if found
                else -1
            )
            if not 0 < fen <= spec.maximum:
                raise CommandRefused(
                    f"{spec.name}: {text!r} is not an amount in yuan like 800 or 800.50"
                )
            args[spec.name] = fen
        elif spec.kind is FieldKind.DATE:
            try:
                args[spec.name] = datetime.date.fromisoformat(text).isoformat()
            except ValueError:
                raise CommandRefused(f"{spec.name}: {text!r} is not a date YYYY-MM-DD") from None
        elif spec.kind is FieldKind.TIME:
            try:
                moment = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M")
            except ValueError:
                raise CommandRefused(
                    f"{spec.name}: {text!r} is not a date and time YYYY-MM-DDTHH:MM"
                ) from None
            args[spec.name] = moment.replace(tzinfo=zone).isoformat()
        else:
            if len(text) > spec.max_length or not text.isprintable():
                raise CommandRefused(f"{spec.name}: at most {spec.max_length} printable characters")
            args[spec.name] = text
    return args


def load_signing_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise CommandRefused(
            f"back-office command key {path} does not exist: create it with "
            "'kiosk-backoffice make-command-key --out FILE'"
        ) from None
    except ValueError:
        raise CommandRefused(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise CommandRefused(f"{path} must hold an EC P-256 key, the contract's command key")
    return key


def create_signing_key(key_file: Path, public_file: Path) -> None:
    """A new back-office command key (PEM, mode 0600) and its public key for terminals."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    public_file.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def sign_command(
    key: ec.EllipticCurvePrivateKey,
    name: str,
    args: Mapping[str, Any],
    *,
    station: str,
    terminal: str,
    now: datetime.datetime,
    ttl_s: int,
) -> dict[str, Any]:
    """A signed command for one terminal; naming it means it cannot be replayed to another.

    The command's form and signature are the terminal's own (kiosk.telemetry.commands), so
    the two sides cannot drift apart.
    """
    if name not in COMMAND_NAMES:
        raise CommandRefused(f"unknown command {name!r}; known: {', '.join(COMMAND_NAMES)}")
    command = unsigned_command(
        station=station,
        terminal=terminal,
        name=name,
        args=args,
        expires=now + datetime.timedelta(seconds=ttl_s),
        command_id=str(uuid.uuid4()),
    )
    return terminal_sign_command(command, key)


def signature_valid(public_key: ec.EllipticCurvePublicKey, command: Mapping[str, Any]) -> bool:
    """What a terminal checks first (tests use it to prove what is sent verifies)."""
    try:
        public_key.verify(
            base64.b64decode(str(command["sig"]), validate=True),
            command_signed_bytes(command),
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, ValueError, KeyError):
        return False
    return True


def send_command(
    store: Store,
    publish: PublishCommand,
    key: ec.EllipticCurvePrivateKey,
    *,
    station: str,
    terminal: str,
    name: str,
    args: Mapping[str, Any],
    sent_by: str,
    ttl_s: int,
    now: float,
    audit: Audit | None = None,
) -> dict[str, Any]:
    """Sign, record (before sending, so a result can never arrive for an unknown id), publish
    with an MQTT 5 message expiry equal to the command's own: a terminal that comes back
    later is not handed a command it would refuse as expired anyway.

    `audit` runs in the same transaction as the command's row, so a command is never sent
    without the record of who sent it."""
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC).astimezone()
    command = sign_command(
        key, name, args, station=station, terminal=terminal, now=moment, ttl_s=ttl_s
    )
    payload = json.dumps(command, ensure_ascii=False, separators=(",", ":"))
    with store.transaction() as cursor:
        cursor.execute(
            "INSERT INTO commands (id, station, terminal, name, args, sent, sent_by, expires, "
            "payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                command["id"],
                station,
                terminal,
                name,
                json.dumps(command["args"], ensure_ascii=False),
                now,
                sent_by,
                command["expires"],
                payload,
            ),
        )
        if audit is not None:
            audit(cursor, command)
    publish(topic_for(station, terminal, TopicKind.CMD), payload.encode("utf-8"), ttl_s)
    return command
