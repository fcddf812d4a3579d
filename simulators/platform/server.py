"""The platform simulator's HTTP face: routing, signature checks, faults, clock, JSON answers.

A ThreadingHTTPServer from the standard library, on loopback unless told otherwise. Each
/v1 request is checked (envelope, freshness, signature against the terminal's registered
certificate), may be hit by an injected fault, and then runs as one ledger transaction.
The simulator keeps its own clock, which can be set apart from the terminal's: every answer
carries it in its HTTP Date header, and freshness and expiry are judged by it.
The /sim endpoints are the operator's and the tests' controls; they are unsigned, which is
why the server listens on loopback by default. Business rules live in the ledger and the
sample data, never here.
"""

import base64
import binascii
import email.utils
import json
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.x509.oid import NameOID

from kiosk.clock import Clock, SystemClock
from kiosk.errors import KioskError
from kiosk.money import MoneyError, check_fen
from kiosk.payment_codes import PaymentScheme
from kiosk.platform.models import (
    ANY_METHOD,
    HOLD_LIFETIME,
    MAX_CLOCK_SKEW,
    MONEY_OPERATIONS,
    ORDER_LIFETIME,
    PATHS,
    REFUSAL_HTTP_STATUS,
    SIGNATURE_HEADER,
    Operation,
    PlatformRefused,
    Refusal,
)
from kiosk.station_keys import StationKey, StationKeyError, station_key_of
from simulators.platform import sample_data
from simulators.platform.faults import FaultKind, FaultPlan, FaultRule, parse_fault
from simulators.platform.ledger import DEFAULT_OPENING_FLOAT_FEN, Ledger
from simulators.platform.orders import OrderBook
from simulators.platform.provider import ProviderPlan, parse_behaviour
from simulators.platform.revocation import RevocationList

log = logging.getLogger("platform_sim")

MAX_BODY_BYTES = 64 * 1024
OPERATION_BY_PATH = {path: operation for operation, path in PATHS.items()}
ORDER_OPERATIONS = frozenset(
    {
        Operation.ORDER_CREATE,
        Operation.ORDER_PAY,
        Operation.ORDER_STATUS,
        Operation.ORDER_CLOSE,
        Operation.ORDER_REFUND,
        Operation.REFUND_STATUS,
    }
)
# The resident's side of a payment order, at POST /sim/orders/{key}/{action}.
ORDER_CONTROLS = ("pay", "confirm", "cancel", "behaviour")

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
        clock_offset_s: float = 0.0,
        hold_lifetime_s: float = HOLD_LIFETIME.total_seconds(),
        provider: Sequence[str] = (),
        order_lifetime_s: float = ORDER_LIFETIME.total_seconds(),
        crl_file: Path | None = None,
    ) -> None:
        check_fen(opening_float_fen)
        if not hold_lifetime_s > 0:
            raise KioskError(f"the hold lifetime must be positive, not {hold_lifetime_s} s")
        self.revocations = RevocationList(crl_file) if crl_file is not None else None
        self.ledger = Ledger(
            db_path,
            opening_float_fen=opening_float_fen,
            hold_lifetime=timedelta(seconds=hold_lifetime_s),
        )
        self.faults = FaultPlan([parse_fault(spec) for spec in faults], seed=seed)
        if not order_lifetime_s > 0:
            raise KioskError(f"the order lifetime must be positive, not {order_lifetime_s} s")
        self.provider = ProviderPlan([parse_behaviour(spec) for spec in provider])
        self.orders = OrderBook(
            db_path, self.provider, lifetime=timedelta(seconds=order_lifetime_s)
        )
        self.auto_confirm_deposits = auto_confirm_deposits
        self.clock: Clock = clock or SystemClock()
        # The platform's clock is the base clock plus this offset: a platform whose time
        # differs from the terminal's. One attribute, so a reader never sees half a change.
        self._clock_offset = timedelta(seconds=clock_offset_s)
        self._stopping = threading.Event()
        self._counts_lock = threading.Lock()
        self._requests: dict[str, int] = {}
        self._keys: dict[str, StationKey] = {}
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

    def dump(self) -> dict[str, Any]:
        """The ledger and the payment orders as of now (GET /sim/dump; the CLI's dump)."""
        now = self.now()
        return {**self.ledger.dump(now), "payment_orders": self.orders.dump(now)}

    def now(self) -> datetime:
        """The platform's time: what its answers' Date says and its rules go by."""
        return self.clock.now() + self._clock_offset

    @property
    def clock_offset(self) -> timedelta:
        return self._clock_offset

    def set_clock_offset(self, seconds: float) -> None:
        """Set the platform's clock this many seconds ahead of (or, negative, behind) the base
        clock; the terminal's clock is the base clock when both run on one machine."""
        self._clock_offset = timedelta(seconds=seconds)

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
            status = REFUSAL_HTTP_STATUS.get(refusal.code, HTTPStatus.BAD_REQUEST)
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
        now = self.now()
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
        if operation in ORDER_OPERATIONS:
            return self._carry_out_order(operation, request, station, terminal, key, now)
        ledger = self.ledger
        if operation is Operation.LOOKUP:
            bill = sample_data.find_bill(
                _text(request, "biller"), _text(request, "account"), now.date()
            )
            return bill.to_json()
        if operation is Operation.FLOAT:
            return ledger.float_state(station, now).to_json()
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
                hold_id=_optional_text(request, "hold_id"),
                order_key=_optional_text(request, "order_key"),
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
                hold_id=_optional_text(request, "hold_id"),
                order_key=_optional_text(request, "order_key"),
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
                station,
                terminal,
                key,
                amount,
                now,
                slip_no=_text(request, "slip_no"),
                auto_confirm=self.auto_confirm_deposits,
            )
            return deposit.to_json()
        if operation is Operation.STATEMENT:
            return ledger.statement(station, terminal, now).to_json()
        if operation is Operation.DEPOSIT_STATUS:
            return ledger.deposit_status(station, _text(request, "key")).to_json()
        if operation is Operation.VOUCHER_ISSUE:
            return ledger.issue_voucher(
                station,
                terminal,
                key,
                amount_fen=_fen(request, "amount_fen", positive=True),
                receipt_no=_text(request, "receipt_no"),
                expires=_date(request, "expires"),
                now=now,
            ).to_json()
        if operation is Operation.VOUCHER_REDEEM:
            return ledger.redeem_voucher(
                station,
                terminal,
                key,
                voucher_id=_text(request, "voucher_id"),
                amount_fen=_fen(request, "amount_fen", positive=True),
                now=now,
            ).to_json()
        if operation is Operation.VOUCHER_STATUS:
            voucher_id = _text(request, "voucher_id")
            return ledger.voucher_status(station, voucher_id, now).to_json()
        raise AssertionError(f"operation {operation} has no handler")  # pragma: no cover

    def _carry_out_order(
        self,
        operation: Operation,
        request: dict[str, Any],
        station: str,
        terminal: str,
        key: str,
        now: datetime,
    ) -> Any:
        """A payment-order request (simulators.platform/orders.py has the rules)."""
        orders = self.orders
        if operation is Operation.ORDER_CREATE:
            return orders.create(
                station,
                terminal,
                key,
                amount_fen=_fen(request, "amount_fen", positive=True),
                service=_text(request, "service"),
                description=_text(request, "description"),
                method=_method(request),
                now=now,
            ).to_json()
        if operation is Operation.ORDER_PAY:
            return orders.pay(
                station,
                terminal,
                key,
                auth_code=_text(request, "auth_code"),
                amount_fen=_fen(request, "amount_fen", positive=True),
                service=_text(request, "service"),
                description=_text(request, "description"),
                now=now,
            ).to_json()
        if operation is Operation.ORDER_STATUS:
            return orders.status(station, _text(request, "key"), now).to_json()
        if operation is Operation.ORDER_CLOSE:
            return orders.close(station, terminal, key, _text(request, "reason"), now).to_json()
        if operation is Operation.ORDER_REFUND:
            return orders.refund(
                station,
                terminal,
                key,
                order_key=_text(request, "order_key"),
                amount_fen=_fen(request, "amount_fen", positive=True),
                reason=_text(request, "reason"),
                now=now,
            ).to_json()
        if operation is Operation.REFUND_STATUS:
            return orders.refund_status(station, _text(request, "key"), now).to_json()
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

    def _registered_key(self, certificate: str) -> StationKey:
        key = self._keys.get(certificate)
        if key is None:
            loaded = x509.load_pem_x509_certificate(certificate.encode("ascii"))
            key = self._keys[certificate] = station_key_of(loaded)  # checked at registration
        return key

    @staticmethod
    def _verify(key: StationKey, body: bytes, signature: str | None) -> None:
        """The request signature by the certificate key's algorithm (ES256, RS256, SM2-SM3)."""
        if not signature:
            raise PlatformRefused(
                Refusal.BAD_SIGNATURE, f"the request has no {SIGNATURE_HEADER} header"
            )
        try:
            valid = key.verify(base64.b64decode(signature, validate=True), body)
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
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


def _date(request: dict[str, Any], name: str) -> date:
    text = _text(request, name)
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise _bad_request(f"field '{name}' must be a date YYYY-MM-DD, not {text!r}") from None


def _method(request: dict[str, Any]) -> str:
    method = _text(request, "method")
    if method != ANY_METHOD and method not in set(PaymentScheme):
        raise _bad_request(
            f"field 'method' must be any, {', '.join(PaymentScheme)}, not {method!r}"
        )
    return method


def _public_key(certificate: str, station: str, terminal: str, now: datetime) -> StationKey:
    """The key of a station certificate fit for this terminal, or a bad_certificate refusal."""

    def refuse(why: str) -> PlatformRefused:
        return PlatformRefused(Refusal.BAD_CERTIFICATE, f"the station certificate {why}")

    try:
        cert = x509.load_pem_x509_certificate(certificate.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise refuse("is not a PEM X.509 certificate") from None
    try:
        key = station_key_of(cert)
    except StationKeyError as exc:
        raise refuse(f"does not hold a station key (ECDSA P-256, RSA-2048 or SM2): {exc}") from None
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

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The HTTP Date of every answer: the platform's clock, not the machine's."""
        return email.utils.format_datetime(self.sim.now().astimezone(UTC), usegmt=True)

    @property
    def sim(self) -> PlatformSimulator:
        return self.server.simulator

    def do_GET(self) -> None:
        routes: dict[str, Callable[[], Answer]] = {
            "/sim/health": lambda: (HTTPStatus.OK, {"ok": True}),
            "/sim/dump": lambda: (HTTPStatus.OK, self.sim.dump()),
            "/sim/stats": lambda: (HTTPStatus.OK, {"requests": self.sim.requests_seen()}),
            "/sim/faults": self._faults_in_force,
            "/sim/clock": self._clock,
            "/sim/vouchers": lambda: (
                HTTPStatus.OK,
                {"vouchers": self.sim.ledger.vouchers(self.sim.now())},
            ),
            "/sim/orders": lambda: (HTTPStatus.OK, self.sim.orders.dump(self.sim.now())),
            "/sim/notifications": lambda: (
                HTTPStatus.OK,
                {"notifications": self.sim.orders.notifications(self.sim.now())},
            ),
            "/sim/provider": self._provider_in_force,
        }
        route = routes.get(self.path)
        if route is None:
            self._send(*_not_found(self.path))
        else:
            self._send(*route())

    def do_DELETE(self) -> None:
        if self.path == "/sim/provider":
            self.sim.provider.replace_rules([])
            self._send(*self._provider_in_force())
            return
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
        if self.path == "/sim/clock":
            self._send(*self._set_clock(body))
            return
        if self.path == "/sim/provider":
            self._send(*self._set_provider(body))
            return
        if self.path.startswith("/sim/orders/"):
            self._send(*self._order_control(body))
            return
        if self.path.startswith("/sim/stations/") and self.path.endswith("/deposits"):
            station = self.path.removeprefix("/sim/stations/").removesuffix("/deposits")
            self._send(*self._outlet_deposit(station, body))
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
            if fault.kind is FaultKind.DELAY:
                self.sim.pause(fault.delay_ms)
            elif not fault.kind.after_commit:
                self._fail(fault)  # nothing was done
                return
        status, answer = self.sim.answer(operation, body, self.headers.get(SIGNATURE_HEADER))
        if fault is not None and fault.kind is FaultKind.ALTER_AMOUNT:
            amount = answer.get("amount_fen")
            if isinstance(amount, int) and not isinstance(amount, bool):
                answer = {**answer, "amount_fen": amount + 1}
            self._send(status, answer)
            return
        if fault is not None and fault.kind.after_commit:
            self._fail(fault)  # the change is committed; its answer is lost or replaced
            return
        self._send(status, answer)

    def _fail(self, fault: FaultRule) -> None:
        """Answer as the fault says instead of with the platform's answer."""
        if fault.kind.is_timeout:
            self.sim.pause(fault.sleep_ms)
            self.close_connection = True  # no answer at all
        elif fault.kind.takes_code:
            assert fault.code is not None
            message = f"simulated fault: refused with {fault.code}"
            self._send(fault.http_status(), _error(fault.code, message))
        else:
            self._send_gateway_page(fault.http_status())

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

    def _provider_in_force(self) -> Answer:
        return HTTPStatus.OK, {"behaviours": [rule.spec() for rule in self.sim.provider.rules()]}

    def _set_provider(self, body: bytes) -> Answer:
        try:
            specs = json.loads(body)["behaviours"]
            if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
                raise ValueError("behaviours must be a list of spec strings")
            rules = [parse_behaviour(spec) for spec in specs]
        except (ValueError, KeyError, TypeError, KioskError) as exc:
            return HTTPStatus.BAD_REQUEST, _error(Refusal.BAD_REQUEST, str(exc))
        self.sim.provider.replace_rules(rules)
        return self._provider_in_force()

    def _order_control(self, body: bytes) -> Answer:
        """The resident pays, confirms or cancels on the phone; or an order's behaviours."""
        key, _, action = self.path.removeprefix("/sim/orders/").rpartition("/")
        key = unquote(key)
        if not key or action not in ORDER_CONTROLS:
            return _not_found(self.path)
        orders, now = self.sim.orders, self.sim.now()
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise ValueError("the body must be a JSON object")
            if action == "behaviour":
                specs = request.get("behaviours")
                if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
                    raise ValueError("behaviours must be a list of spec strings")
                chosen = orders.set_behaviour(key, specs, now)
                return HTTPStatus.OK, {"key": key, "behaviours": chosen}
            if action == "pay":
                wallet = request.get("wallet")
                paid_with = None if wallet is None else PaymentScheme(wallet)
                return HTTPStatus.OK, orders.resident_pays(key, paid_with, now).to_json()
            if action == "confirm":
                return HTTPStatus.OK, orders.resident_confirms(key, now).to_json()
            return HTTPStatus.OK, orders.resident_cancels(key, now).to_json()
        except PlatformRefused as refusal:
            return REFUSAL_HTTP_STATUS[refusal.code], _error(refusal.code, str(refusal))
        except (ValueError, KioskError) as exc:
            return HTTPStatus.BAD_REQUEST, _error(Refusal.BAD_REQUEST, str(exc))

    def _clock(self) -> Answer:
        return HTTPStatus.OK, {
            "offset_s": self.sim.clock_offset.total_seconds(),
            "now": self.sim.now().isoformat(),
        }

    def _set_clock(self, body: bytes) -> Answer:
        try:
            offset = json.loads(body)["offset_s"]
            if isinstance(offset, bool) or not isinstance(offset, int | float):
                raise ValueError(f"offset_s must be a number of seconds, not {offset!r}")
            # Beyond a year is a typo, and timedelta overflows far beyond that.
            if not abs(offset) <= 366 * 86_400:
                raise ValueError(f"offset_s {offset} is more than a year")
        except (ValueError, KeyError, TypeError) as exc:
            return HTTPStatus.BAD_REQUEST, _error(Refusal.BAD_REQUEST, str(exc))
        self.sim.set_clock_offset(offset)
        return self._clock()

    def _confirm_deposit(self, key: str) -> Answer:
        try:
            deposit = self.sim.ledger.confirm_deposit(key, self.sim.now())
        except PlatformRefused as refusal:
            return REFUSAL_HTTP_STATUS[refusal.code], _error(refusal.code, str(refusal))
        return HTTPStatus.OK, deposit.to_json()

    def _outlet_deposit(self, station: str, body: bytes) -> Answer:
        """The postal outlet recorded a deposit by 机构号 (confirmed by the operator at once)."""
        try:
            request = _parse_body(body)
            if not station.isdigit():
                raise _bad_request(f"station {station!r} is not an institution number")
            deposit = self.sim.ledger.outlet_deposit(
                station,
                _fen(request, "amount_fen", positive=True),
                _text(request, "slip_no"),
                self.sim.now(),
            )
        except PlatformRefused as refusal:
            status = REFUSAL_HTTP_STATUS.get(refusal.code, HTTPStatus.BAD_REQUEST)
            return status, _error(refusal.code, str(refusal))
        except MoneyError as exc:
            return HTTPStatus.BAD_REQUEST, _error(Refusal.BAD_REQUEST, str(exc))
        return HTTPStatus.OK, deposit.to_json()

    def _send(self, status: int, answer: dict[str, Any]) -> None:
        payload = json.dumps(answer, ensure_ascii=False, sort_keys=True).encode("utf-8")
        self._send_bytes(status, "application/json; charset=utf-8", payload)

    def _send_gateway_page(self, status: int) -> None:
        """What a reverse proxy in front of the platform answers: HTML, not the platform's
        error object."""
        try:
            title = f"{status} {HTTPStatus(status).phrase}"
        except ValueError:
            title = f"{status} Error"
        page = (
            f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1>"
            "</center><hr><center>gateway</center></body></html>\n"
        )
        self._send_bytes(status, "text/html", page.encode("ascii"))

    def _send_bytes(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _not_found(path: str) -> Answer:
    return HTTPStatus.NOT_FOUND, _error(Refusal.BAD_REQUEST, f"no endpoint {path}")
