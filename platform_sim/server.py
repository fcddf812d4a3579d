"""The platform simulator's HTTP face: routing, signature checks, faults, JSON answers.

A ThreadingHTTPServer from the standard library, on loopback unless told otherwise. Each
/v1 request is checked (envelope, freshness, signature against the terminal's registered
certificate), may be hit by an injected fault, and then runs as one ledger transaction.
The /sim endpoints are the operator's and the tests' controls; they are unsigned, which is
why the server listens on loopback by default. Business rules live in the ledger and the
sample data, never here.
"""

import base64
import binascii
import json
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kiosk.clock import Clock, SystemClock
from kiosk.errors import KioskError
from kiosk.money import MoneyError, check_fen
from kiosk.platform.models import (
    MONEY_OPERATIONS,
    PATHS,
    SIGNATURE_HEADER,
    Operation,
    PlatformRefused,
    Refusal,
)
from platform_sim import sample_data
from platform_sim.faults import FaultKind, FaultPlan, parse_fault
from platform_sim.ledger import DEFAULT_OPENING_FLOAT_FEN, Ledger
from platform_sim.revocation import RevocationList

log = logging.getLogger("platform_sim")

MAX_BODY_BYTES = 64 * 1024
# A request whose time is further off than this is refused, so a terminal with a wrong
# clock is told so instead of signing records with a wrong time.
MAX_CLOCK_SKEW = timedelta(minutes=15)

REFUSAL_STATUS: dict[str, HTTPStatus] = {
    Refusal.BAD_REQUEST: HTTPStatus.BAD_REQUEST,
    Refusal.BAD_SIGNATURE: HTTPStatus.UNAUTHORIZED,
    Refusal.BAD_CERTIFICATE: HTTPStatus.BAD_REQUEST,
    Refusal.CERTIFICATE_CONFLICT: HTTPStatus.CONFLICT,
    Refusal.CERTIFICATE_REVOKED: HTTPStatus.FORBIDDEN,
    Refusal.NOT_REGISTERED: HTTPStatus.FORBIDDEN,
    Refusal.STALE_REQUEST: HTTPStatus.BAD_REQUEST,
    Refusal.UNKNOWN_BILLER: HTTPStatus.NOT_FOUND,
    Refusal.UNKNOWN_ACCOUNT: HTTPStatus.NOT_FOUND,
    Refusal.NO_BILL_DUE: HTTPStatus.NOT_FOUND,
    Refusal.UNKNOWN_BILL: HTTPStatus.CONFLICT,
    Refusal.BILL_ALREADY_PAID: HTTPStatus.CONFLICT,
    Refusal.INSUFFICIENT_FLOAT: HTTPStatus.UNPROCESSABLE_ENTITY,
    Refusal.HOLD_MISSING: HTTPStatus.CONFLICT,
    Refusal.HOLD_TOO_SMALL: HTTPStatus.UNPROCESSABLE_ENTITY,
    Refusal.KEY_REUSED: HTTPStatus.CONFLICT,
    Refusal.PAYMENT_REVERSED: HTTPStatus.CONFLICT,
    Refusal.CARD_COUNTER_USED: HTTPStatus.CONFLICT,
    Refusal.DEPOSIT_TOO_SMALL: HTTPStatus.UNPROCESSABLE_ENTITY,
    Refusal.DEPOSIT_NOT_FOUND: HTTPStatus.NOT_FOUND,
}
OPERATION_BY_PATH = {path: operation for operation, path in PATHS.items()}

Answer = tuple[int, dict[str, Any]]


class PlatformSimulator:
    """A simulated operator platform on a loopback port, with its own SQLite ledger."""

    def __init__(
        self,
        db_path: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        opening_float_fen: int = DEFAULT_OPENING_FLOAT_FEN,
        faults: Sequence[str] = (),
        seed: int | None = None,
        auto_confirm_deposits: bool = False,
        clock: Clock | None = None,
        crl_file: Path | None = None,
    ) -> None:
        check_fen(opening_float_fen)
        self.revocations = RevocationList(crl_file) if crl_file is not None else None
        self.ledger = Ledger(db_path, opening_float_fen=opening_float_fen)
        self.faults = FaultPlan([parse_fault(spec) for spec in faults], seed=seed)
        self.auto_confirm_deposits = auto_confirm_deposits
        self.clock: Clock = clock or SystemClock()
        self._stopping = threading.Event()
        self._counts_lock = threading.Lock()
        self._requests: dict[str, int] = {}
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._httpd = _Server((host, port), _Handler)
        self._httpd.simulator = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Serve in a background thread (for tests and the demo)."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits at most this long
            name="platform-sim",
            daemon=True,
        )
        self._thread.start()

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving; requests sleeping in a timeout fault are woken and dropped."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def requests_seen(self) -> dict[str, int]:
        """How many requests arrived per operation, faulted or not (attempts, not outcomes)."""
        with self._counts_lock:
            return dict(self._requests)

    def pause(self, milliseconds: int) -> None:
        """Sleep for a fault, waking early when the simulator stops."""
        self._stopping.wait(milliseconds / 1000)

    def count_request(self, operation: Operation) -> None:
        with self._counts_lock:
            self._requests[operation] = self._requests.get(operation, 0) + 1

    # ------------------------------------------------------------ the API

    def answer(self, operation: Operation, body: bytes, signature: str | None) -> Answer:
        """Check and carry out one API request; the answer's status and JSON body."""
        try:
            return HTTPStatus.OK, self._carry_out(operation, body, signature)
        except PlatformRefused as refusal:
            status = REFUSAL_STATUS.get(refusal.code, HTTPStatus.BAD_REQUEST)
            return status, {"error": {"code": refusal.code, "message": str(refusal)}}
        except MoneyError as exc:
            return HTTPStatus.BAD_REQUEST, _error(Refusal.BAD_REQUEST, str(exc))
        except Exception:
            log.exception("%s failed inside the simulator", operation)
            return HTTPStatus.INTERNAL_SERVER_ERROR, _error(
                "internal", "the platform simulator failed; see its log"
            )

    def _carry_out(self, operation: Operation, body: bytes, signature: str | None) -> Any:
        request = _parse_body(body)
        station = _text(request, "station")
        terminal = _text(request, "terminal")
        request_time = _text(request, "request_time")
        now = self.clock.now()
        if operation is Operation.REGISTER:
            certificate = _text(request, "certificate")
            offered = _public_key(certificate, station, terminal, now)
            self._check_not_revoked(certificate, station, terminal)
            self._verify(offered, body, signature)
            self._check_fresh(request_time, now)
            self.ledger.register(station, terminal, certificate, now)
            return {"station": station, "terminal": terminal, "registered": True}
        registered = self.ledger.certificate(station, terminal)
        if registered is None:
            raise PlatformRefused(
                Refusal.NOT_REGISTERED,
                f"terminal {terminal} of station {station} is not registered: register first",
            )
        self._check_not_revoked(registered, station, terminal)
        self._verify(self._registered_key(registered), body, signature)
        # Only a signed request learns that its clock is wrong.
        self._check_fresh(request_time, now)
        key = _text(request, "key") if operation in MONEY_OPERATIONS else ""
        ledger = self.ledger
        if operation is Operation.LOOKUP:
            bill = sample_data.find_bill(
                _text(request, "biller"), _text(request, "account"), now.date()
            )
            return bill.to_json()
        if operation is Operation.FLOAT:
            return ledger.float_state(station).to_json()
        if operation is Operation.HOLD:
            amount = _fen(request, "amount_fen", positive=True)
            return ledger.hold(station, terminal, key, amount, now).to_json()
        if operation is Operation.RELEASE:
            return ledger.release(station, terminal, key, now).to_json()
        if operation is Operation.POST:
            return ledger.post_payment(
                station,
                terminal,
                key,
                hold_id=_text(request, "hold_id"),
                service=_text(request, "service"),
                biller=_text(request, "biller"),
                account=_text(request, "account"),
                amount_fen=_fen(request, "amount_fen", positive=True),
                fee_fen=_fen(request, "fee_fen"),
                bill_id=_optional_text(request, "bill_id"),
                now=now,
            ).to_json()
        if operation is Operation.AUTHORIZE:
            return ledger.authorize_card_credit(
                station,
                terminal,
                key,
                hold_id=_text(request, "hold_id"),
                service=_text(request, "service"),
                biller=_text(request, "biller"),
                card_no=_text(request, "card_no"),
                counter=_whole(request, "counter"),
                amount_fen=_fen(request, "amount_fen", positive=True),
                fee_fen=_fen(request, "fee_fen"),
                now=now,
            ).to_json()
        if operation is Operation.STATUS:
            return ledger.payment_status(station, _text(request, "key")).to_json()
        if operation is Operation.REVERSE:
            reason = _text(request, "reason")
            return ledger.reverse_payment(station, terminal, key, reason, now).to_json()
        if operation is Operation.DEPOSIT:
            amount = _fen(request, "amount_fen", positive=True)
            deposit = ledger.deposit(
                station, terminal, key, amount, now, auto_confirm=self.auto_confirm_deposits
            )
            return deposit.to_json()
        if operation is Operation.DEPOSIT_STATUS:
            return ledger.deposit_status(station, _text(request, "key")).to_json()
        raise AssertionError(f"operation {operation} has no handler")  # pragma: no cover

    def _check_not_revoked(self, certificate: str, station: str, terminal: str) -> None:
        if self.revocations is not None and self.revocations.revoked(certificate):
            raise PlatformRefused(
                Refusal.CERTIFICATE_REVOKED,
                f"the certificate of terminal {terminal} of station {station} is revoked: "
                "the operator cut this terminal off; a technician installs a new certificate",
            )

    def _check_fresh(self, request_time: str, now: datetime) -> None:
        try:
            sent = datetime.fromisoformat(request_time)
        except ValueError:
            sent = None
        if sent is None or sent.tzinfo is None:
            raise PlatformRefused(
                Refusal.BAD_REQUEST,
                f"request_time {request_time!r} is not an ISO 8601 time with an offset",
            )
        if abs(now - sent) > MAX_CLOCK_SKEW:
            raise PlatformRefused(
                Refusal.STALE_REQUEST,
                f"request time {request_time} is more than {MAX_CLOCK_SKEW} away from the "
                f"platform's time {now.isoformat(timespec='seconds')}: set the terminal's clock",
            )

    def _registered_key(self, certificate: str) -> ec.EllipticCurvePublicKey:
        key = self._keys.get(certificate)
        if key is None:
            loaded = x509.load_pem_x509_certificate(certificate.encode("ascii")).public_key()
            assert isinstance(loaded, ec.EllipticCurvePublicKey)  # checked at registration
            key = self._keys[certificate] = loaded
        return key

    @staticmethod
    def _verify(key: ec.EllipticCurvePublicKey, body: bytes, signature: str | None) -> None:
        if not signature:
            raise PlatformRefused(
                Refusal.BAD_SIGNATURE, f"the request has no {SIGNATURE_HEADER} header"
            )
        try:
            key.verify(base64.b64decode(signature, validate=True), body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            raise PlatformRefused(
                Refusal.BAD_SIGNATURE,
                "the request's signature does not verify with the terminal's registered "
                "certificate",
            ) from None


# ---------------------------------------------------------------- request reading


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _bad_request(message: str) -> PlatformRefused:
    return PlatformRefused(Refusal.BAD_REQUEST, message)


def _refuse_float(text: str) -> Any:
    raise ValueError(f"number {text} is not whole: amounts are integers in fen")


def _parse_body(body: bytes) -> dict[str, Any]:
    try:
        request = json.loads(body, parse_float=_refuse_float, parse_constant=_refuse_float)
    except ValueError as exc:
        raise _bad_request(f"the request body is not valid JSON ({exc})") from None
    if not isinstance(request, dict):
        raise _bad_request("the request body must be a JSON object")
    return request


def _text(request: dict[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value or len(value) > 4096:
        raise _bad_request(f"field '{name}' must be a non-empty text, not {value!r}")
    return value


def _optional_text(request: dict[str, Any], name: str) -> str | None:
    return None if request.get(name) is None else _text(request, name)


def _whole(request: dict[str, Any], name: str) -> int:
    value = request.get(name)
    # bool is an int subclass; true is not a number of anything.
    if type(value) is not int or value < 0:
        raise _bad_request(f"field '{name}' must be a whole number >= 0, not {value!r}")
    return value


def _fen(request: dict[str, Any], name: str, *, positive: bool = False) -> int:
    value = check_fen(_whole(request, name))
    if positive and value == 0:
        raise _bad_request(f"field '{name}' must be more than 0")
    return value


def _public_key(
    certificate: str, station: str, terminal: str, now: datetime
) -> ec.EllipticCurvePublicKey:
    """The key of a station certificate fit for this terminal, or a bad_certificate refusal."""

    def refuse(why: str) -> PlatformRefused:
        return PlatformRefused(Refusal.BAD_CERTIFICATE, f"the station certificate {why}")

    try:
        cert = x509.load_pem_x509_certificate(certificate.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise refuse("is not a PEM X.509 certificate") from None
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise refuse("does not hold an ECDSA P-256 key")
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise refuse(
            f"is valid only from {cert.not_valid_before_utc:%Y-%m-%d} "
            f"to {cert.not_valid_after_utc:%Y-%m-%d}: renew it"
        )
    serials = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if [a.value for a in serials] != [station] or [a.value for a in names] != [
        f"{station}-{terminal}"
    ]:
        raise refuse(f"is not issued to terminal {terminal} of station {station}")
    return key


# ---------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    simulator: PlatformSimulator


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "kiosk-platform-sim"

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)

    @property
    def sim(self) -> PlatformSimulator:
        return self.server.simulator

    def do_GET(self) -> None:
        routes: dict[str, Callable[[], Answer]] = {
            "/sim/health": lambda: (HTTPStatus.OK, {"ok": True}),
            "/sim/dump": lambda: (HTTPStatus.OK, self.sim.ledger.dump()),
            "/sim/stats": lambda: (HTTPStatus.OK, {"requests": self.sim.requests_seen()}),
            "/sim/faults": self._faults_in_force,
        }
        route = routes.get(self.path)
        if route is None:
            self._send(*_not_found(self.path))
        else:
            self._send(*route())

    def do_DELETE(self) -> None:
        if self.path != "/sim/faults":
            self._send(*_not_found(self.path))
            return
        self.sim.faults.clear()
        self._send(*self._faults_in_force())

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        if self.path == "/sim/faults":
            self._send(*self._set_faults(body))
            return
        if self.path.startswith("/sim/deposits/") and self.path.endswith("/confirm"):
            key = self.path.removeprefix("/sim/deposits/").removesuffix("/confirm")
            self._send(*self._confirm_deposit(key))
            return
        operation = OPERATION_BY_PATH.get(self.path)
        if operation is None:
            self._send(*_not_found(self.path))
            return
        self.sim.count_request(operation)
        fault = self.sim.faults.draw(operation)
        if fault is not None:
            log.info("injecting %s into %s", fault.spec(), operation)
            if fault.kind is FaultKind.ERROR:
                self._send(
                    HTTPStatus.SERVICE_UNAVAILABLE,
                    _error("unavailable", "simulated fault: the platform is unavailable"),
                )
                return
            if fault.kind is FaultKind.TIMEOUT_BEFORE:
                self.sim.pause(fault.sleep_ms)
                self.close_connection = True  # no answer at all; nothing was done
                return
            if fault.kind is FaultKind.DELAY:
                self.sim.pause(fault.delay_ms)
        status, answer = self.sim.answer(operation, body, self.headers.get(SIGNATURE_HEADER))
        if fault is not None and fault.kind is FaultKind.TIMEOUT_AFTER_COMMIT:
            self.sim.pause(fault.sleep_ms)
            self.close_connection = True  # the change is committed; the answer is lost
            return
        self._send(status, answer)

    def _read_body(self) -> bytes | None:
        length_text = self.headers.get("Content-Length", "0")
        if not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
            self._send(
                HTTPStatus.BAD_REQUEST,
                _error(Refusal.BAD_REQUEST, f"a body of at most {MAX_BODY_BYTES} bytes is needed"),
            )
            return None
        return self.rfile.read(int(length_text))

    def _faults_in_force(self) -> Answer:
        faults = self.sim.faults
        return HTTPStatus.OK, {
            "faults": [rule.spec() for rule in faults.rules()],
            "fired": faults.fired(),
        }

    def _set_faults(self, body: bytes) -> Answer:
        try:
            request = json.loads(body)
            specs = request["faults"]
            seed = request.get("seed")
            if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
                raise ValueError("faults must be a list of spec strings")
            if seed is not None and type(seed) is not int:
                raise ValueError("seed must be a whole number")
            rules = [parse_fault(spec) for spec in specs]
        except (ValueError, KeyError, TypeError, KioskError) as exc:
            return HTTPStatus.BAD_REQUEST, _error(Refusal.BAD_REQUEST, str(exc))
        self.sim.faults.replace_rules(rules, seed=seed)
        return self._faults_in_force()

    def _confirm_deposit(self, key: str) -> Answer:
        try:
            deposit = self.sim.ledger.confirm_deposit(key, self.sim.clock.now())
        except PlatformRefused as refusal:
            return REFUSAL_STATUS[refusal.code], _error(refusal.code, str(refusal))
        return HTTPStatus.OK, deposit.to_json()

    def _send(self, status: int, answer: dict[str, Any]) -> None:
        payload = json.dumps(answer, ensure_ascii=False, sort_keys=True).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _not_found(path: str) -> Answer:
    return HTTPStatus.NOT_FOUND, _error(Refusal.BAD_REQUEST, f"no endpoint {path}")
