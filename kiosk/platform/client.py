"""The terminal's client of the operator platform: signed JSON over HTTP, bounded retries.

It owns the request envelope (station, terminal, request time, idempotency key), the
signature header, timeouts and retries, and the strict reading of answers. It never decides
what a failure means for a customer's money: PlatformUnavailable says "outcome unknown" and
the transaction engine resolves it with payment_status. It keeps no state between calls.
"""

import base64
import http.client
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

from kiosk.clock import iso
from kiosk.money import check_fen, format_fen
from kiosk.platform.models import (
    MIN_DEPOSIT_FEN,
    MONEY_OPERATIONS,
    PATHS,
    SIGNATURE_HEADER,
    Bill,
    CardCredit,
    Deposit,
    FloatState,
    Operation,
    PaymentStatus,
    PlatformError,
    PlatformRefused,
    PlatformUnavailable,
    Posting,
    Refusal,
    malformed_answer,
    read_str,
    refusal_error,
)
from kiosk.signing import Signer

# An answer larger than this is not one of ours; refuse it rather than read it all.
MAX_ANSWER_BYTES = 1 << 20
# Backoff between attempts: short, because a customer is waiting at the screen.
FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 1.0

_Keyed = TypeVar("_Keyed", Posting, CardCredit, PaymentStatus, Deposit)


class PlatformClient:
    def __init__(
        self,
        base_url: str,
        *,
        station: str,
        terminal: str,
        signer: Signer,
        timeout_s: float = 5.0,
        retries: int = 3,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PlatformError(
                f"platform URL {base_url!r} is not an http:// or https:// address: "
                "fix platform.url in the configuration"
            )
        if retries < 1:
            raise PlatformError(f"platform retries must be at least 1, not {retries}")
        if timeout_s <= 0:
            raise PlatformError(f"platform timeout must be positive, not {timeout_s}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._station = station
        self._terminal = terminal
        self._signer = signer
        self._timeout_s = timeout_s
        self._retries = retries
        self._window: BoundedWindow | None = None

    @contextmanager
    def bounded(self, timeout_s: float) -> Iterator["BoundedWindow"]:
        """Calls inside get one attempt of at most timeout_s; after the first call that got
        no answer, the others fail at once with PlatformUnavailable (nothing was sent).

        For housekeeping, which must never hold the terminal's thread for long
        (kiosk.runtime); a resident's own calls keep the configured timeout and retries.
        """
        window = BoundedWindow(min(timeout_s, self._timeout_s))
        previous, self._window = self._window, window
        try:
            yield window
        finally:
            self._window = previous

    # ------------------------------------------------------------ operations

    def register(self) -> None:
        """Send the station certificate; repeating it with the same certificate is harmless."""
        certificate = self._signer.certificate_pem().decode("ascii")
        self._call(Operation.REGISTER, {"certificate": certificate})

    def lookup_bill(self, biller: str, account: str) -> Bill:
        return Bill.from_json(self._call(Operation.LOOKUP, {"biller": biller, "account": account}))

    def hold_float(self, hold_id: str, amount_fen: int) -> FloatState:
        """Reserve amount_fen of the float; idempotent by hold_id.

        InsufficientFloat when the available float (balance minus holds) is smaller: the
        credit line is zero, the float never goes negative.
        """
        answer = self._call(
            Operation.HOLD, {"key": hold_id, "amount_fen": _positive(amount_fen, "hold")}
        )
        return FloatState.from_json(answer)

    def release_float(self, hold_id: str) -> FloatState:
        """Give a hold back; an unknown or already consumed hold is not an error."""
        return FloatState.from_json(self._call(Operation.RELEASE, {"key": hold_id}))

    def post_payment(
        self,
        key: str,
        *,
        hold_id: str,
        service: str,
        biller: str,
        account: str,
        amount_fen: int,
        fee_fen: int,
        bill_id: str | None,
    ) -> Posting:
        """Post a payment, consuming the hold; the same key again returns the same Posting."""
        answer = self._call(
            Operation.POST,
            {
                "key": key,
                "hold_id": hold_id,
                "service": service,
                "biller": biller,
                "account": account,
                "amount_fen": _positive(amount_fen, "payment"),
                "fee_fen": check_fen(fee_fen),
                "bill_id": bill_id,
            },
        )
        return _same_key(Posting.from_json(answer), key)

    def authorize_card_credit(
        self,
        key: str,
        *,
        hold_id: str,
        service: str,
        biller: str,
        card_no: str,
        counter: int,
        amount_fen: int,
        fee_fen: int,
    ) -> CardCredit:
        """Post a prepaid card purchase and get the MAC crediting the card to counter + 1.

        Idempotent by key: the same key returns the same CardCredit (counter and MAC).
        """
        if isinstance(counter, bool) or not isinstance(counter, int) or counter < 0:
            raise PlatformError(f"card purchase counter {counter!r} is not a whole number >= 0")
        answer = self._call(
            Operation.AUTHORIZE,
            {
                "key": key,
                "hold_id": hold_id,
                "service": service,
                "biller": biller,
                "card_no": card_no,
                "counter": counter,
                "amount_fen": _positive(amount_fen, "card credit"),
                "fee_fen": check_fen(fee_fen),
            },
        )
        credit = _same_key(CardCredit.from_json(answer), key)
        if credit.card_no != card_no or credit.new_counter != counter + 1:
            raise malformed_answer(
                f"it authorised card {credit.card_no} to counter {credit.new_counter}, "
                f"not card {card_no} to counter {counter + 1}"
            )
        return credit

    def payment_status(self, key: str) -> PaymentStatus:
        return _same_key(PaymentStatus.from_json(self._call(Operation.STATUS, {"key": key})), key)

    def reverse_payment(self, key: str, reason: str) -> PaymentStatus:
        """Reverse a posted payment and refund the float; idempotent.

        A key the platform never posted is fenced: it reports "reversed" and a late-arriving
        post with that key is refused, so a reversal is final either way.
        """
        answer = self._call(Operation.REVERSE, {"key": key, "reason": reason})
        return _same_key(PaymentStatus.from_json(answer), key)

    def float_state(self) -> FloatState:
        return FloatState.from_json(self._call(Operation.FLOAT, {}))

    def deposit(self, key: str, amount_fen: int) -> Deposit:
        """Announce a float deposit; it stays "pending" until the operator confirms it."""
        check_fen(amount_fen)
        if amount_fen < MIN_DEPOSIT_FEN:
            raise PlatformRefused(
                Refusal.DEPOSIT_TOO_SMALL,
                f"a float deposit must be at least {format_fen(MIN_DEPOSIT_FEN)}, "
                f"not {format_fen(amount_fen)}: deposit a larger amount",
            )
        answer = self._call(Operation.DEPOSIT, {"key": key, "amount_fen": amount_fen})
        return _same_key(Deposit.from_json(answer), key)

    def deposit_status(self, key: str) -> Deposit:
        answer = self._call(Operation.DEPOSIT_STATUS, {"key": key})
        return _same_key(Deposit.from_json(answer), key)

    # ------------------------------------------------------------ transport

    def _call(self, operation: Operation, fields: Mapping[str, Any]) -> dict[str, Any]:
        envelope = {
            "station": self._station,
            "terminal": self._terminal,
            "request_time": iso(datetime.now(UTC)),
            **fields,
        }
        body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: base64.b64encode(self._signer.sign(body)).decode("ascii"),
        }
        path = self._prefix + PATHS[operation]
        problem = ""
        window = self._window
        if window is not None and window.unanswered:
            # Not sent at all: an unanswered call earlier in this window says why.
            return self._unavailable(operation, "not sent: the platform did not answer just now")
        attempts = 1 if window is not None else self._retries
        timeout_s = window.timeout_s if window is not None else self._timeout_s
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                time.sleep(min(FIRST_BACKOFF_S * 2 ** (attempt - 2), MAX_BACKOFF_S))
            try:
                status, reason, payload = self._exchange(path, body, headers, timeout_s)
            except (OSError, http.client.HTTPException) as exc:
                if window is not None:
                    window.unanswered += 1
                # Timeouts and connection failures only; a retry is safe because every
                # money request is idempotent by its key and the others change nothing.
                problem = f"{_describe(exc)} after {attempt} attempt{'s' if attempt > 1 else ''}"
                continue
            if status >= 500:
                # An answer, but not a definite one: not retried (the platform is up and
                # failing), and for a money request its outcome is unknown all the same.
                problem = f"HTTP {status} {reason}"
                break
            return _interpret(operation, status, payload)
        return self._unavailable(operation, problem)

    def _unavailable(self, operation: Operation, problem: str) -> NoReturn:
        if operation in MONEY_OPERATIONS:
            raise PlatformUnavailable(
                f"the operator platform gave no definite answer to the {operation} request "
                f"({problem}); its outcome is unknown and will be checked with a status query"
            )
        raise PlatformUnavailable(
            f"the operator platform gave no definite answer to the {operation} request "
            f"({problem}); try again later"
        )

    def _exchange(
        self, path: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> tuple[int, str, bytes]:
        connection: http.client.HTTPConnection
        if self._https:
            connection = http.client.HTTPSConnection(self._host, self._port, timeout=timeout_s)
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout_s)
        try:
            connection.request("POST", path, body=body, headers=dict(headers))
            response = connection.getresponse()
            payload = response.read(MAX_ANSWER_BYTES + 1)
            return response.status, response.reason, payload
        finally:
            connection.close()


class BoundedWindow:
    """What PlatformClient.bounded allows, and whether a call in it went unanswered."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.unanswered = 0


def _positive(amount_fen: int, what: str) -> int:
    check_fen(amount_fen)
    if amount_fen == 0:
        raise PlatformError(f"a {what} of {format_fen(0)} makes no sense: give a positive amount")
    return amount_fen


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


def _interpret(operation: Operation, status: int, payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_ANSWER_BYTES:
        raise malformed_answer(f"{operation}: more than {MAX_ANSWER_BYTES} bytes")
    try:
        data = json.loads(payload, parse_constant=_refuse_constant)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise malformed_answer(f"{operation}: HTTP {status} without a JSON object")
    if 200 <= status < 300:
        return data
    if 400 <= status < 500:
        error = data.get("error")
        if not isinstance(error, dict):
            raise malformed_answer(f"{operation}: HTTP {status} without an error object")
        code = read_str(error, "code", "refusal")
        message = read_str(error, "message", "refusal")
        raise refusal_error(code, f"the operator platform refused {operation}: {message}")
    raise malformed_answer(f"{operation}: unexpected HTTP {status}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not allowed")


def _same_key(record: _Keyed, key: str) -> _Keyed:
    if record.key != key:
        raise malformed_answer(f"it answered for key {record.key!r} instead of {key!r}")
    return record
