"""Remote commands: who may command this terminal, and the handlers that carry commands out.

Owns the command's wire rules (docs/mqtt.md section 4): the back-office signature over the
canonical JSON, the binding to one station and terminal, expiry, and the durable store of
seen nonces (table telemetry_nonces). A refused command changes nothing here but the log.
It never performs a command itself: the terminal registers a handler per command name.
CommandRunner runs the handlers off the telemetry thread and reports what became of them.
"""

import base64
import binascii
import json
import logging
import math
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.clock import Clock, iso
from kiosk.errors import KioskError
from kiosk.journal.canonical import JournalError, canonical_json
from kiosk.storage import write_transaction
from kiosk.terminal_schema import TERMINAL

log = logging.getLogger(__name__)

COMMAND_NAMES = (
    "reboot",
    "enter_maintenance",
    "leave_maintenance",
    "close_day",
    "set_heartbeat_interval",
    "request_logs",
    "install_catalog",
    "update",
    # The station operator's money cycle from the back office (docs/transactions.md, "The
    # operator's day"): a float purchase made at the postal outlet, recorded with its slip.
    # args: {"amount_fen": int >= 50000, "slip_no": "4-32 letters, digits, -", "by": "who"}.
    "record_deposit",
)
COMMAND_KEYS = ("v", "id", "station", "terminal", "name", "args", "expires", "nonce", "sig")
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")
_NONCE = re.compile(r"^[0-9a-f]{16,64}\Z")
_MAX_PAYLOAD = 16 * 1024


class CommandRefused(KioskError):
    """A remote command was refused; the message is the reason sent back in cmd_result."""

    def __init__(self, reason: str, command_id: str | None = None) -> None:
        super().__init__(reason)
        self.command_id = command_id


class CommandFailed(KioskError):
    """A handler could not carry out an accepted command; the message says why."""


@dataclass(frozen=True)
class Command:
    id: str
    name: str
    args: dict[str, Any]
    expires: datetime
    nonce: str


CommandHandler = Callable[[Command], Mapping[str, Any] | None]


def command_signed_bytes(command: Mapping[str, Any]) -> bytes:
    """What a command's signature covers: RFC 8785 canonical JSON without "sig"."""
    return canonical_json({key: value for key, value in command.items() if key != "sig"})


def unsigned_command(
    *,
    station: str,
    terminal: str,
    name: str,
    args: Mapping[str, Any] | None = None,
    expires: datetime,
    command_id: str | None = None,
) -> dict[str, Any]:
    """A well-formed command without its signature, with a fresh random nonce."""
    return {
        "v": 1,
        "id": command_id or secrets.token_hex(8),
        "station": station,
        "terminal": terminal,
        "name": name,
        "args": dict(args or {}),
        "expires": iso(expires),
        "nonce": secrets.token_hex(16),
    }


def sign_command(
    command: Mapping[str, Any], private_key: ec.EllipticCurvePrivateKey
) -> dict[str, Any]:
    """The command with "sig" added: for the back office and for tests."""
    signature = private_key.sign(command_signed_bytes(command), ec.ECDSA(hashes.SHA256()))
    return {**command, "sig": base64.b64encode(signature).decode("ascii")}


def _parse_time(text: object, command_id: str | None) -> datetime:
    if not isinstance(text, str):
        raise CommandRefused("command expires must be an ISO 8601 time", command_id)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandRefused(
            f"command expires {text!r} is not an ISO 8601 time", command_id
        ) from None
    if moment.tzinfo is None:
        raise CommandRefused("command expires must carry a UTC offset", command_id)
    return moment


class CommandGate:
    """Admits a command only if it is well-formed, ours, signed, fresh and never seen."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        backoffice_public_pem: bytes,
        station: str,
        terminal: str,
        clock: Clock,
        max_lifetime_s: int = 86_400,
    ) -> None:
        try:
            key = serialization.load_pem_public_key(backoffice_public_pem)
        except ValueError:
            raise KioskError(
                "the back-office command key is not a PEM public key: "
                "check telemetry.backoffice_key_file"
            ) from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise KioskError(
                "the back-office command key must be an ECDSA P-256 public key: "
                "check telemetry.backoffice_key_file"
            )
        self._key = key
        self._conn = conn
        self._station = station
        self._terminal = terminal
        self._clock = clock
        self._max_lifetime = timedelta(seconds=max_lifetime_s)
        TERMINAL.migrate(conn)

    def admit(self, payload: bytes) -> Command:
        """The command, its nonce durably recorded; or CommandRefused with the reason."""
        command = self._well_formed(payload)
        command_id: str = command["id"]
        if (command["station"], command["terminal"]) != (self._station, self._terminal):
            raise CommandRefused(
                f"command is for {command['station']}/{command['terminal']}, "
                f"not this terminal {self._station}/{self._terminal}",
                command_id,
            )
        self._check_signature(command)
        expires = _parse_time(command["expires"], command_id)
        now = self._clock.now()
        if expires <= now:
            raise CommandRefused(f"command expired at {command['expires']}", command_id)
        if expires - now > self._max_lifetime:
            raise CommandRefused(
                f"command expires {command['expires']}, further ahead than the "
                f"{int(self._max_lifetime.total_seconds())} s this terminal accepts",
                command_id,
            )
        with write_transaction(self._conn):
            self._conn.execute(
                "DELETE FROM telemetry_nonces WHERE expires_at < ?", (int(now.timestamp()),)
            )
            try:
                self._conn.execute(
                    "INSERT INTO telemetry_nonces (nonce, expires_at, command_id) VALUES (?, ?, ?)",
                    (command["nonce"], math.ceil(expires.timestamp()), command_id),
                )
            except sqlite3.IntegrityError:
                raise CommandRefused(
                    f"command nonce {command['nonce']} was used before: a replay", command_id
                ) from None
        return Command(
            command_id, command["name"], dict(command["args"]), expires, command["nonce"]
        )

    def _well_formed(self, payload: bytes) -> dict[str, Any]:
        if len(payload) > _MAX_PAYLOAD:
            raise CommandRefused(f"command is {len(payload)} bytes, more than {_MAX_PAYLOAD}")
        try:
            command = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CommandRefused("command is not UTF-8 JSON") from None
        if not isinstance(command, dict):
            raise CommandRefused("command must be a JSON object")
        raw_id = command.get("id")
        command_id = raw_id if isinstance(raw_id, str) and _ID.match(raw_id) else None
        missing = [key for key in COMMAND_KEYS if key not in command]
        unknown = sorted(set(command) - set(COMMAND_KEYS))
        if missing:
            raise CommandRefused(f"command lacks {', '.join(missing)}", command_id)
        if unknown:
            raise CommandRefused(f"command has unknown keys {', '.join(unknown)}", command_id)
        if command_id is None:
            raise CommandRefused("command id must be 1-64 letters, digits or _ . : -")
        checks = (
            (command["v"] == 1 and not isinstance(command["v"], bool), "v must be 1"),
            (command["name"] in COMMAND_NAMES, f"name must be one of {', '.join(COMMAND_NAMES)}"),
            (isinstance(command["args"], dict), "args must be an object"),
            (isinstance(command["station"], str), "station must be text"),
            (isinstance(command["terminal"], str), "terminal must be text"),
            (
                isinstance(command["nonce"], str) and bool(_NONCE.match(command["nonce"])),
                "nonce must be 16-64 lower-case hex digits",
            ),
            (isinstance(command["sig"], str), "sig must be base64 text"),
        )
        for ok, problem in checks:
            if not ok:
                raise CommandRefused(f"command {problem}", command_id)
        return command

    def _check_signature(self, command: dict[str, Any]) -> None:
        command_id: str = command["id"]
        try:
            signature = base64.b64decode(command["sig"], validate=True)
            signed = command_signed_bytes(command)
        except (binascii.Error, ValueError, JournalError):
            raise CommandRefused(
                "command signature is not valid base64 or JSON", command_id
            ) from None
        try:
            self._key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise CommandRefused(
                "command signature does not verify with the back-office key", command_id
            ) from None


class CommandHandlers:
    """The terminal's handlers, one per command name; dispatch runs one admitted command."""

    def __init__(self) -> None:
        self._handlers: dict[str, CommandHandler] = {}

    def register(self, name: str, handler: CommandHandler) -> None:
        if name not in COMMAND_NAMES:
            raise ValueError(
                f"{name!r} is not a command of contract v1: {', '.join(COMMAND_NAMES)}"
            )
        if name in self._handlers:
            raise ValueError(f"a handler for command {name!r} is already registered")
        self._handlers[name] = handler

    def registered(self) -> tuple[str, ...]:
        return tuple(sorted(self._handlers))

    def dispatch(self, command: Command) -> dict[str, Any]:
        """The handler's result; CommandRefused without a handler; a failing handler raises."""
        handler = self._handlers.get(command.name)
        if handler is None:
            raise CommandRefused(
                f"command {command.name!r} is not supported by this terminal", command.id
            )
        result = handler(command)
        return dict(result or {})


# How long a command's handler may take before its result says "still running".
COMMAND_WAIT_S = 10.0
RUNNING = "running"

# ok, result, error: what cmd_result says (kiosk.telemetry.payloads.command_result).
Report = Callable[[str, bool, Mapping[str, Any] | None, str | None], None]


class CommandRunner:
    """Runs each admitted command on a thread of its own and reports its result.

    The telemetry worker hands a command over and goes on at once: heartbeats, health and
    the outbox never wait for a handler (which may wait for the terminal's thread while a
    resident pays). A handler still at work after wait_s is reported as running
    (`ok: true, result: {"state": "running"}`), never as failed or not run; its real result
    follows in a second cmd_result with the same id when it ends.
    """

    def __init__(
        self, handlers: CommandHandlers, report: Report, *, wait_s: float = COMMAND_WAIT_S
    ) -> None:
        self._handlers = handlers
        self._report = report
        self.wait_s = wait_s

    def run(self, command: Command) -> threading.Thread:
        done = threading.Event()
        lock = threading.Lock()

        def still_running() -> None:
            with lock:
                if not done.is_set():
                    log.warning(
                        "remote command %s (%s) still running after %.0f s",
                        command.name,
                        command.id,
                        self.wait_s,
                    )
                    self._report(
                        command.id, True, {"state": RUNNING, "waited_s": self.wait_s}, None
                    )

        timer = threading.Timer(self.wait_s, still_running)
        timer.daemon = True

        def work() -> None:
            ok, result, error = self._outcome(command)
            timer.cancel()
            with lock:
                done.set()
                self._report(command.id, ok, result, error)

        thread = threading.Thread(target=work, name=f"command-{command.id}", daemon=True)
        timer.start()
        thread.start()
        return thread

    def _outcome(self, command: Command) -> tuple[bool, Mapping[str, Any] | None, str | None]:
        try:
            return True, self._handlers.dispatch(command), None
        except KioskError as failed:
            log.warning("remote command %s (%s) failed: %s", command.name, command.id, failed)
            return False, None, str(failed)
        except Exception:
            log.exception("remote command %s (%s) crashed", command.name, command.id)
            return False, None, "the command failed inside the terminal: see its log"
