"""The terminal's client of the operator platform: signed JSON over HTTP, bounded retries.

It owns the request envelope (station, terminal, request time, idempotency key), the
signature header, timeouts and retries, the strict reading of answers (amounts must echo
what was sent), and what each failure proves: PlatformRefused "not carried out",
OutcomeUnknown "may have been" (docs/platform-api.md, "What an error proves"). It never
decides what an unknown outcome means for a customer's money (the transaction engine does,
with payment_status). The only thing it keeps between calls is the platform's clock as
read from the last answer's Date header.
"""

import base64
import email.utils
import http.client
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple, NoReturn, TypeVar
from urllib.parse import urlsplit

from kiosk.clock import iso
from kiosk.money import check_fen, format_fen
from kiosk.payment_codes import PaymentCodeInvalid, PaymentScheme, scheme_of
from kiosk.platform.models import (
    MIN_DEPOSIT_FEN,
    MONEY_OPERATIONS,
    PATHS,
    PAYMENT_SPECIFIC_REFUSALS,
    SIGNATURE_HEADER,
    SLIP_NO_PATTERN,
    Bill,
    CardCredit,
    Deposit,
    FloatState,
    FloatStatement,
    Operation,
    Order,
    OrderState,
    PaymentState,
    PaymentStatus,
    PlatformError,
    PlatformRefused,
    PlatformUnavailable,
    Posting,
    Refund,
    Refusal,
    UnprovenRefusal,
    Voucher,
    VoucherState,
    malformed_answer,
    method_to_wire,
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


class _Answer(NamedTuple):
    status: int
    reason: str
    payload: bytes
    date_header: str | None  # the answer's HTTP Date: the platform's clock
    received_at: datetime  # the terminal's clock when the answer arrived


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
        # (local time of the answer, platform time minus local time); one tuple, so that a
        # reader on another thread never sees the time of one answer with the skew of another.
        self._clock_reading: tuple[datetime, timedelta] | None = None
        self._window: BoundedWindow | None = None

    # ------------------------------------------------------------ the platform's clock

    def clock_skew(self) -> timedelta | None:
        """The platform's time minus the terminal's, read from the last answer's Date header.

        None before any answer carried a readable Date. The Date header has whole seconds, so
        the figure is good to about one second plus the answer's transit time.
        """
        reading = self._clock_reading
        return None if reading is None else reading[1]

    @property
    def last_answer_at(self) -> datetime | None:
        """The terminal's time (UTC) when the answer clock_skew was read from arrived."""
        reading = self._clock_reading
        return None if reading is None else reading[0]

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

    def hold_float(self, hold_id: str, amount_fen: int, *, sent_before: bool = False) -> FloatState:
        """Reserve amount_fen of the float; idempotent by hold_id.

        InsufficientFloat when the available float (balance minus holds) is smaller: the
        credit line is zero, the float never goes negative. The hold expires on the platform
        after HOLD_LIFETIME unless consumed or released first.

        sent_before (on every money request): an earlier call with this key ended with its
        outcome unknown, so only a payment-specific refusal proves anything.
        """
        answer = self._call(
            Operation.HOLD,
            {"key": hold_id, "amount_fen": _positive(amount_fen, "hold")},
            sent_before=sent_before,
        )
        return FloatState.from_json(answer)

    def release_float(self, hold_id: str, *, sent_before: bool = False) -> FloatState:
        """Give a hold back; an unknown, expired or already consumed hold is not an error."""
        answer = self._call(Operation.RELEASE, {"key": hold_id}, sent_before=sent_before)
        return FloatState.from_json(answer)

    def post_payment(
        self,
        key: str,
        *,
        hold_id: str | None = None,
        order_key: str | None = None,
        service: str,
        biller: str,
        account: str,
        amount_fen: int,
        fee_fen: int,
        bill_id: str | None,
        sent_before: bool = False,
    ) -> Posting:
        """Post a payment, consuming the hold; the same key again returns the same Posting.

        Funded by exactly one of hold_id (the station's float) or order_key (a paid payment
        order of the station for amount + fee, which the posting then uses). An answer whose
        amount or fee is not the one sent is a MalformedAnswer.
        """
        answer = self._call(
            Operation.POST,
            {
                "key": key,
                **_funding(hold_id, order_key),
                "service": service,
                "biller": biller,
                "account": account,
                "amount_fen": _positive(amount_fen, "payment"),
                "fee_fen": check_fen(fee_fen),
                "bill_id": bill_id,
            },
            sent_before=sent_before,
        )
        posting = _same_key(Posting.from_json(answer), key)
        _check_echo("posting", posting.amount_fen, posting.fee_fen, amount_fen, fee_fen)
        return posting

    def authorize_card_credit(
        self,
        key: str,
        *,
        hold_id: str | None = None,
        order_key: str | None = None,
        service: str,
        biller: str,
        card_no: str,
        counter: int,
        amount_fen: int,
        fee_fen: int,
        sent_before: bool = False,
    ) -> CardCredit:
        """Post a prepaid card purchase and get the MAC crediting the card to counter + 1.

        Idempotent by key: the same key returns the same CardCredit (counter and MAC). An
        answer for another card, counter, amount or fee is a MalformedAnswer. Funded like
        post_payment: exactly one of hold_id and order_key.
        """
        if isinstance(counter, bool) or not isinstance(counter, int) or counter < 0:
            raise PlatformError(f"card purchase counter {counter!r} is not a whole number >= 0")
        answer = self._call(
            Operation.AUTHORIZE,
            {
                "key": key,
                **_funding(hold_id, order_key),
                "service": service,
                "biller": biller,
                "card_no": card_no,
                "counter": counter,
                "amount_fen": _positive(amount_fen, "card credit"),
                "fee_fen": check_fen(fee_fen),
            },
            sent_before=sent_before,
        )
        credit = _same_key(CardCredit.from_json(answer), key)
        if credit.card_no != card_no or credit.new_counter != counter + 1:
            raise malformed_answer(
                f"it authorised card {credit.card_no} to counter {credit.new_counter}, "
                f"not card {card_no} to counter {counter + 1}"
            )
        _check_echo("card credit", credit.amount_fen, credit.fee_fen, amount_fen, fee_fen)
        return credit

    def payment_status(self, key: str, *, amount_fen: int, fee_fen: int) -> PaymentStatus:
        """What the platform knows of a payment key: posted, reversed or not_found.

        amount_fen and fee_fen are those the terminal sent with the key: a posting of other
        amounts under it is a MalformedAnswer (in doubt: alert). A refusal of this query
        proves nothing about the payment itself.
        """
        answer = self._call(Operation.STATUS, {"key": key})
        status = _same_key(PaymentStatus.from_json(answer), key)
        if status.amount_fen is not None and status.fee_fen is not None:
            _check_echo(
                f"payment {status.state}", status.amount_fen, status.fee_fen, amount_fen, fee_fen
            )
        return status

    def reverse_payment(self, key: str, reason: str, *, sent_before: bool = False) -> PaymentStatus:
        """Reverse a posted payment and refund the float; idempotent.

        A key the platform never posted is fenced: it reports "reversed" (ref None) and a
        late-arriving post with that key is refused, so a reversal is final either way. An
        answer in any other state is a MalformedAnswer.
        """
        answer = self._call(
            Operation.REVERSE, {"key": key, "reason": reason}, sent_before=sent_before
        )
        status = _same_key(PaymentStatus.from_json(answer), key)
        if status.state is not PaymentState.REVERSED:
            raise malformed_answer(f"it answered a reversal with the state {status.state}")
        return status

    def float_state(self) -> FloatState:
        return FloatState.from_json(self._call(Operation.FLOAT, {}))

    def float_statement(self) -> FloatStatement:
        """The float account's cumulative figures (a query: it changes nothing)."""
        return FloatStatement.from_json(self._call(Operation.STATEMENT, {}))

    def deposit(
        self, key: str, amount_fen: int, *, slip_no: str, sent_before: bool = False
    ) -> Deposit:
        """Announce a float deposit made at a postal outlet, with its slip (存款凭证) number.

        It stays "pending" until the operator confirms it. Refused before sending: less than
        MIN_DEPOSIT_FEN, or a slip number that is not one.
        """
        check_fen(amount_fen)
        if amount_fen < MIN_DEPOSIT_FEN:
            raise PlatformRefused(
                Refusal.DEPOSIT_TOO_SMALL,
                f"a float deposit must be at least {format_fen(MIN_DEPOSIT_FEN)}, "
                f"not {format_fen(amount_fen)}: deposit a larger amount",
            )
        if not SLIP_NO_PATTERN.match(slip_no):
            raise PlatformRefused(
                Refusal.BAD_REQUEST,
                f"deposit slip number {slip_no!r} is not 4 to 32 letters, digits or '-': "
                "type it as printed on the slip",
            )
        answer = self._call(
            Operation.DEPOSIT,
            {"key": key, "amount_fen": amount_fen, "slip_no": slip_no},
            sent_before=sent_before,
        )
        deposit = _same_key(Deposit.from_json(answer), key)
        if (deposit.amount_fen, deposit.slip_no) != (amount_fen, slip_no):
            raise malformed_answer(
                f"it recorded a deposit of {deposit.amount_fen} fen on slip {deposit.slip_no}, "
                f"not the {amount_fen} on slip {slip_no} sent"
            )
        return deposit

    def deposit_status(self, key: str) -> Deposit:
        answer = self._call(Operation.DEPOSIT_STATUS, {"key": key})
        return _same_key(Deposit.from_json(answer), key)

    def issue_voucher(
        self,
        voucher_id: str,
        *,
        amount_fen: int,
        receipt_no: str,
        expires: date,
        sent_before: bool = False,
    ) -> Voucher:
        """Register a voucher this terminal printed, so that it can be paid out once.

        Idempotent by voucher_id: the same id with the same details answers the voucher as
        it is now; other details are refused (key_reused).
        """
        if isinstance(expires, datetime) or not isinstance(expires, date):
            raise PlatformError(f"voucher expiry {expires!r} is not a date")
        answer = self._call(
            Operation.VOUCHER_ISSUE,
            {
                "key": voucher_id,
                "amount_fen": _positive(amount_fen, "voucher"),
                "receipt_no": receipt_no,
                "expires": expires.isoformat(),
            },
            sent_before=sent_before,
        )
        voucher = _same_voucher(Voucher.from_json(answer), voucher_id, amount_fen)
        if (voucher.receipt_no, voucher.expires) != (receipt_no, expires):
            raise malformed_answer(
                f"it registered voucher {voucher_id} for receipt {voucher.receipt_no} until "
                f"{voucher.expires}, not receipt {receipt_no} until {expires}"
            )
        return voucher

    def redeem_voucher(
        self, key: str, *, voucher_id: str, amount_fen: int, sent_before: bool = False
    ) -> Voucher:
        """Pay a voucher out, once, centrally; idempotent by the redemption key.

        Refused (proven) as voucher_not_found, voucher_already_redeemed (by another key),
        voucher_expired or voucher_amount_mismatch. The answer must say "redeemed" by this
        terminal, with the amount asked.
        """
        answer = self._call(
            Operation.VOUCHER_REDEEM,
            {"key": key, "voucher_id": voucher_id, "amount_fen": _positive(amount_fen, "voucher")},
            sent_before=sent_before,
        )
        voucher = _same_voucher(Voucher.from_json(answer), voucher_id, amount_fen)
        if voucher.state is not VoucherState.REDEEMED or voucher.redeemed_by != self._terminal:
            raise malformed_answer(
                f"it answered the redemption of voucher {voucher_id} with state "
                f"{voucher.state} by {voucher.redeemed_by}, not redeemed by {self._terminal}"
            )
        return voucher

    def voucher_status(self, voucher_id: str) -> Voucher:
        answer = self._call(Operation.VOUCHER_STATUS, {"voucher_id": voucher_id})
        voucher = Voucher.from_json(answer)
        if voucher.voucher_id != voucher_id:
            raise malformed_answer(
                f"it answered for voucher {voucher.voucher_id!r} instead of {voucher_id!r}"
            )
        return voucher

    # ------------------------------------------------------------ payment orders

    def create_order(
        self,
        key: str,
        *,
        amount_fen: int,
        service: str,
        description: str,
        method: PaymentScheme | None,
        sent_before: bool = False,
    ) -> Order:
        """Open a payment order the resident pays by scanning its dynamic code (code_url).

        method is the wallet the resident chose, None for any. Idempotent by key: the same
        key again answers the order as it is now (perhaps paid, or closed). An answer for
        another amount or method is a MalformedAnswer; so is one without a code to show.
        """
        answer = self._call(
            Operation.ORDER_CREATE,
            {
                "key": key,
                "amount_fen": _positive(amount_fen, "payment order"),
                "service": service,
                "description": description,
                "method": method_to_wire(method),
            },
            sent_before=sent_before,
        )
        order = _order_of(answer, key, amount_fen)
        if order.state is OrderState.NOT_FOUND or order.method != method:
            raise malformed_answer(
                f"it answered order {key} as {order.state} for {method_to_wire(order.method)}, "
                f"not an order for {method_to_wire(method)}"
            )
        if order.state is OrderState.CREATED and order.code_url is None:
            raise malformed_answer(f"it opened order {key} without a code to show")
        return order

    def pay_order_by_code(
        self,
        key: str,
        *,
        auth_code: str,
        amount_fen: int,
        service: str,
        description: str,
        sent_before: bool = False,
    ) -> Order:
        """Charge the resident's payment code (付款码) for order key, opening it if needed.

        The answer is the order: paid, or pending while the resident confirms on the phone
        (then ask order_status). A code that is not a payment code is refused here, before
        sending (auth_code_invalid). Refusals that prove the code was not charged:
        payment_declined, auth_code_invalid, method_mismatch, order_pending, order_closed.
        Idempotent by key and code: the same request again answers the same.
        """
        try:
            scheme_of(auth_code)
        except PaymentCodeInvalid as exc:
            raise PlatformRefused(Refusal.AUTH_CODE_INVALID, str(exc)) from None
        answer = self._call(
            Operation.ORDER_PAY,
            {
                "key": key,
                "auth_code": auth_code,
                "amount_fen": _positive(amount_fen, "payment order"),
                "service": service,
                "description": description,
            },
            sent_before=sent_before,
        )
        order = _order_of(answer, key, amount_fen)
        if order.state is not OrderState.PENDING and not order.money_taken:
            raise malformed_answer(f"it answered a payment of order {key} with {order.state}")
        return order

    def order_status(self, key: str, *, amount_fen: int) -> Order:
        """What the platform knows of order key (state not_found if nothing).

        amount_fen is the one the terminal asked for: an order of another amount under the
        key is a MalformedAnswer. A refusal of this query proves nothing about the order.
        """
        return _order_of(self._call(Operation.ORDER_STATUS, {"key": key}), key, amount_fen)

    def close_order(
        self, key: str, reason: str, *, amount_fen: int, sent_before: bool = False
    ) -> Order:
        """Close an unpaid order so that it can never be paid; idempotent.

        The answer is closed, or, when the resident paid just before the close arrived, the
        order with its money taken (paid): the caller then completes or refunds. A key the
        platform never saw is fenced: closed, and a create or pay arriving later is refused
        (order_closed). Any other state is a MalformedAnswer.
        """
        answer = self._call(
            Operation.ORDER_CLOSE, {"key": key, "reason": reason}, sent_before=sent_before
        )
        order = _order_of(answer, key, amount_fen)
        if order.state is not OrderState.CLOSED and not order.money_taken:
            raise malformed_answer(f"it answered the close of order {key} with {order.state}")
        return order

    def refund_order(
        self,
        refund_key: str,
        *,
        order_key: str,
        amount_fen: int,
        reason: str,
        sent_before: bool = False,
    ) -> Refund:
        """Refund a paid order in full, to the method it was paid with; idempotent by
        refund_key. The refund may be processing (ask refund_status), succeeded or failed
        (a new refund key may try again; the order says refund_failed)."""
        answer = self._call(
            Operation.ORDER_REFUND,
            {
                "key": refund_key,
                "order_key": order_key,
                "amount_fen": _positive(amount_fen, "refund"),
                "reason": reason,
            },
            sent_before=sent_before,
        )
        return _refund_of(answer, refund_key, order_key, amount_fen)

    def refund_status(self, refund_key: str, *, order_key: str, amount_fen: int) -> Refund:
        """A refund as it stands; refund_not_found if the platform never made it."""
        answer = self._call(Operation.REFUND_STATUS, {"key": refund_key})
        return _refund_of(answer, refund_key, order_key, amount_fen)

    # ------------------------------------------------------------ transport

    def _call(
        self, operation: Operation, fields: Mapping[str, Any], *, sent_before: bool = False
    ) -> dict[str, Any]:
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
        # Whether an earlier attempt (or call) of this request may have been carried out:
        # then a refusal proves nothing unless it is payment-specific.
        maybe_done = sent_before
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
                answer = self._exchange(path, body, headers, timeout_s)
            except (OSError, http.client.HTTPException) as exc:
                if window is not None:
                    window.unanswered += 1
                # Timeouts and connection failures only; a retry is safe because every
                # money request is idempotent by its key and the others change nothing.
                maybe_done = True
                problem = f"{_describe(exc)} after {attempt} attempt{'s' if attempt > 1 else ''}"
                continue
            self._read_clock(answer)
            if answer.status >= 500:
                # An answer, but not a definite one: not retried (the platform is up and
                # failing; the customer should not wait through backoffs for it), and for a
                # money request its outcome is unknown all the same.
                problem = f"HTTP {answer.status} {answer.reason}"
                break
            return _interpret(
                operation,
                answer.status,
                answer.payload,
                maybe_done=maybe_done and operation in MONEY_OPERATIONS,
            )
        return self._unavailable(operation, problem)

    def _read_clock(self, answer: _Answer) -> None:
        if not answer.date_header:
            return
        try:
            platform_time = email.utils.parsedate_to_datetime(answer.date_header)
        except (TypeError, ValueError, IndexError):
            return  # no readable clock in this answer; keep the last reading
        if platform_time.tzinfo is None:  # "-0000": UTC, the sender's zone unknown
            platform_time = platform_time.replace(tzinfo=UTC)
        self._clock_reading = (answer.received_at, platform_time - answer.received_at)

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
    ) -> _Answer:
        connection: http.client.HTTPConnection
        if self._https:
            connection = http.client.HTTPSConnection(self._host, self._port, timeout=timeout_s)
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout_s)
        try:
            connection.request("POST", path, body=body, headers=dict(headers))
            response = connection.getresponse()
            received_at = datetime.now(UTC)
            payload = response.read(MAX_ANSWER_BYTES + 1)
            return _Answer(
                response.status, response.reason, payload, response.getheader("Date"), received_at
            )
        finally:
            connection.close()


class BoundedWindow:
    """What PlatformClient.bounded allows, and whether a call in it went unanswered."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.unanswered = 0


def _funding(hold_id: str | None, order_key: str | None) -> dict[str, str]:
    """What pays for a posting: the float's hold, or a paid payment order (never both)."""
    if (hold_id is None) == (order_key is None):
        raise PlatformError("a posting is funded by exactly one of a hold id and an order key")
    return {"hold_id": hold_id} if hold_id is not None else {"order_key": str(order_key)}


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


def _interpret(
    operation: Operation, status: int, payload: bytes, *, maybe_done: bool
) -> dict[str, Any]:
    """The answer's JSON object, or the error it stands for.

    A 4xx refusal proves the request was not carried out (PlatformRefused) unless an earlier
    attempt of this money request may have been (maybe_done) and its code is not
    payment-specific: then it proves nothing (UnprovenRefusal). A 4xx that is not the
    platform's error object (a gateway's page) is a MalformedAnswer: outcome unknown.
    """
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
        if maybe_done and code not in PAYMENT_SPECIFIC_REFUSALS:
            raise UnprovenRefusal(
                code,
                f"the operator platform refused the {operation} request ({code}: {message}) "
                "after an earlier attempt got no answer; its outcome is unknown and will be "
                "checked with a status query",
                status,
            )
        raise refusal_error(code, f"the operator platform refused {operation}: {message}", status)
    raise malformed_answer(f"{operation}: unexpected HTTP {status}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not allowed")


def _same_key(record: _Keyed, key: str) -> _Keyed:
    if record.key != key:
        raise malformed_answer(f"it answered for key {record.key!r} instead of {key!r}")
    return record


def _check_echo(what: str, amount_fen: int, fee_fen: int, sent_amount: int, sent_fee: int) -> None:
    if (amount_fen, fee_fen) != (sent_amount, sent_fee):
        raise malformed_answer(
            f"{what} of {amount_fen} fen with a fee of {fee_fen} fen, not the {sent_amount} fen "
            f"with a fee of {sent_fee} fen sent"
        )


def _same_voucher(voucher: Voucher, voucher_id: str, amount_fen: int) -> Voucher:
    if (voucher.voucher_id, voucher.amount_fen) != (voucher_id, amount_fen):
        raise malformed_answer(
            f"it answered for voucher {voucher.voucher_id!r} of {voucher.amount_fen} fen, "
            f"not {voucher_id!r} of {amount_fen} fen"
        )
    return voucher


def _order_of(answer: dict[str, Any], key: str, amount_fen: int) -> Order:
    """The order in answer, for key, of the amount the terminal asked (if it knows one)."""
    order = Order.from_json(answer)
    if order.key != key:
        raise malformed_answer(f"it answered for order {order.key!r} instead of {key!r}")
    if order.amount_fen is not None and order.amount_fen != amount_fen:
        raise malformed_answer(
            f"order {key} of {order.amount_fen} fen, not the {amount_fen} fen asked"
        )
    return order


def _refund_of(answer: dict[str, Any], key: str, order_key: str, amount_fen: int) -> Refund:
    refund = Refund.from_json(answer)
    if (refund.key, refund.order_key, refund.amount_fen) != (key, order_key, amount_fen):
        raise malformed_answer(
            f"it answered refund {refund.key!r} of order {refund.order_key!r} for "
            f"{refund.amount_fen} fen, not {key!r} of {order_key!r} for {amount_fen} fen"
        )
    return refund
