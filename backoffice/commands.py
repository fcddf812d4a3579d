"""Signed remote commands to terminals: build, sign, record and publish them.

Owns the command envelope of the MQTT contract: {"v","id","name","args","expires","nonce",
"sig"}, where sig is the base64 DER ECDSA P-256 signature over the RFC 8785 canonical JSON of
the command without "sig", made with the back-office key. It never reads results: ingest
stores cmd_result messages against the command's id.
"""

import base64
import datetime
import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from backoffice.contract import topic_for
from backoffice.errors import CommandRefused
from backoffice.store import Store
from kiosk.telemetry.commands import COMMAND_NAMES, command_signed_bytes, unsigned_command
from kiosk.telemetry.commands import sign_command as terminal_sign_command
from kiosk.telemetry.topics import TopicKind

# (topic, payload, expiry_s): published at QoS 1; the broker drops it once expired.
PublishCommand = Callable[[str, bytes, int], None]


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
) -> dict[str, Any]:
    """Sign, record (before sending, so a result can never arrive for an unknown id), publish
    with an MQTT 5 message expiry equal to the command's own: a terminal that comes back
    later is not handed a command it would refuse as expired anyway."""
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
    publish(topic_for(station, terminal, TopicKind.CMD), payload.encode("utf-8"), ttl_s)
    return command
