"""The operator scans a voucher slip (issue #18 item 1): the scanner's one owner, the purposes.

On the real app under Xvfb with the simulated payment-code scanner (drivers/scanner/
simulated.py, kept in the same ScanBuffer as the real serial and HID drivers) and the
simulated I/O board counting the resident's cash; the platform is the threaded simulator.
The slip's code is the QR payload the receipt prints (kiosk.receipts.qr.qr_payload of the
journaled tx_close record). Then the rules without a window: what a scan names
(kiosk.voucher_codes), how the buffer judges a scan for its arming, and how the terminal
chooses the purpose.
"""

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.scanner.assembly import RawScan
from drivers.scanner.buffer import ScanBuffer
from kiosk.devices import ScanMisread, ScannedCode, ScannedVoucher, ScanPurpose
from kiosk.events import Event
from kiosk.payment_codes import CodeProblem, PaymentScheme
from kiosk.receipts.identifiers import grouped_voucher_id, new_voucher_id
from kiosk.receipts.qr import qr_payload, reference_code
from kiosk.runtime import RuntimeEvent
from kiosk.voucher_codes import VoucherCodeInvalid, voucher_id_of_scan
from simulators.scanner import sample_code
from tests.fixtures.scanner import SCANNER_RIGS
from tests.fixtures.terminal import TerminalRig, started_rig
from tests.test_ui_operator import (
    OPERATOR_ID,
    PIN,
    log_in,
    opened,
    operator_card_in,
    sell_topup,
)
from tests.test_ui_qr import phone_to_code
from ui.operator_desk import SCAN_MESSAGE_IDS, VOUCHER_MISREAD, Entry

# Loggers that see a scanned voucher on its way from the scanner to the screen.
SCAN_PATH_LOGGERS = ("kiosk.runtime", "kiosk.terminal", "drivers.scanner", "ui")


@pytest.fixture
def scan_rig(tmp_path: Path, platform_sim: Any) -> Iterator[TerminalRig]:
    """The test terminal with the simulated I/O board (cash) and scanner (rig.sims.scanner)."""
    with started_rig(tmp_path / "terminal", platform_sim, ioboard="sim", scanner="sim") as rig:
        yield rig


def kinds(rig: TerminalRig) -> list[str]:
    return [event.kind for event in rig.terminal.events.history]


def paid_out(rig: TerminalRig) -> list[tuple[str, str, int]]:
    return [
        (r["voucher_id"], r["operator"], r["amount_fen"])
        for r in rig.records_of("voucher_payout")
        if r["state"] == "paid"
    ]


def voucher_slip(rig: TerminalRig) -> tuple[str, str]:
    """A phone top-up of 30 yuan paid with a 50-yuan note: its voucher id and slip code."""
    close = sell_topup(rig, 30_00, 50_00)
    return str(close["voucher_id"]), qr_payload(close)


def scanned_line(ui: Any) -> bool:
    return ui.controller.operator.error == VOUCHER_MISREAD


# ------------------------------------------------------------------ on the screens


def test_a_voucher_slip_scanned_on_the_voucher_screen_is_looked_up_and_paid_once(
    scan_rig: TerminalRig, ui_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    rig = scan_rig
    caplog.set_level(logging.DEBUG)
    voucher_id, slip = voucher_slip(rig)
    ui = opened(rig, ui_harness)
    ui.tap("op-pay_voucher")
    ui.wait_screen("operator_voucher")
    assert any("QR code under the scanner" in text for text in ui.texts())
    assert rig.sims.scanner.scan(slip)
    form = ui.controller.operator.form
    ui.wait_for(lambda: form.voucher is not None, "the scanned voucher to be looked up")
    ui.wait_screen("operator_voucher")
    assert form.value(form.entry) == voucher_id  # the code fills the field
    assert form.voucher is not None and form.voucher.amount_fen == 20_00
    assert any(grouped_voucher_id(voucher_id) in text for text in ui.texts())
    assert paid_out(rig) == []  # looked up only: the operator confirms the payout
    ui.tap("pay-out")
    ui.wait_screen("operator_voucher")
    assert ui.controller.operator.form.paid is True
    assert paid_out(rig) == [(voucher_id, OPERATOR_ID, 20_00)]

    # The same slip read again (held under the scanner) pays nothing more; opened afresh,
    # the screen looks it up and the platform says it was paid out.
    rig.sims.scanner.scan(slip)
    ui.pump(10)
    ui.settle()
    assert paid_out(rig) == [(voucher_id, OPERATOR_ID, 20_00)]
    ui.tap("back")
    ui.wait_screen("operator_home")
    ui.tap("op-pay_voucher")
    ui.wait_screen("operator_voucher")
    rig.sims.scanner.scan(slip)
    operator = ui.controller.operator
    ui.wait_for(lambda: operator.form.refusal_code is not None, "the second look-up's refusal")
    assert operator.form.refusal_code == "voucher_already_redeemed"
    assert operator.form.voucher is None and "pay-out" not in ui.action_ids()
    assert paid_out(rig) == [(voucher_id, OPERATOR_ID, 20_00)]
    # Never logged whole on its way from the scanner to the screen.
    scan_path = [r for r in caplog.records if r.name.startswith(SCAN_PATH_LOGGERS)]
    assert scan_path and not [r for r in scan_path if voucher_id in r.getMessage()]


def test_a_scan_while_no_operator_screen_wants_codes_does_nothing(
    scan_rig: TerminalRig, ui_harness: Any
) -> None:
    rig = scan_rig
    voucher_id, slip = voucher_slip(rig)
    ui = ui_harness(rig.terminal, language="en")
    ui.wait_screen("idle")
    scanner = rig.sims.scanner
    scanner.scan(slip)  # nobody logged in
    ui.pump(10)
    assert ui.controller.screen == "idle"
    assert ui.controller.operator.form.voucher is None
    operator_card_in(rig)  # the same app: log in, stay on the home page, scan again
    log_in(ui)
    ui.wait_screen("operator_home")
    scanner.scan(slip)
    ui.pump(10)
    ui.settle()
    assert ui.controller.screen == "operator_home"
    assert ui.controller.operator.form.voucher is None
    events = kinds(rig)
    assert RuntimeEvent.VOUCHER_CODE_SCANNED not in events
    assert RuntimeEvent.VOUCHER_CODE_MISREAD not in events
    health = scanner.health()
    assert health["armed"] is False and health["ignored"] == 2  # read, and dropped
    assert paid_out(rig) == []

    # Leaving the voucher screen gives the codes up again.
    ui.tap("op-pay_voucher")
    ui.wait_screen("operator_voucher")
    assert scanner.health()["purpose"] == "voucher"
    ui.tap("back")
    ui.wait_screen("operator_home")
    ui.settle()
    ui.wait_for(lambda: scanner.health()["armed"] is False, "the scanner to be disarmed")
    scanner.scan(slip)
    ui.pump(10)
    assert RuntimeEvent.VOUCHER_CODE_SCANNED not in kinds(rig)
    assert ui.controller.operator.form.voucher is None and paid_out(rig) == []
    assert voucher_id  # issued, and never looked up


def test_a_misread_or_a_residents_payment_code_on_the_voucher_screen_shows_one_line(
    scan_rig: TerminalRig, ui_harness: Any
) -> None:
    rig = scan_rig
    _voucher_id, slip = voucher_slip(rig)
    ui = opened(rig, ui_harness)
    ui.tap("op-pay_voucher")
    ui.wait_screen("operator_voucher")
    scanner = rig.sims.scanner
    operator = ui.controller.operator
    for scan in (
        lambda: scanner.scan_partial(slip),
        lambda: scanner.scan(slip[:-6] + "??????"),  # damaged
        lambda: scanner.scan(sample_code(PaymentScheme.WECHAT, 4)),  # a resident's code
    ):
        operator.form.error = lambda _t: ""
        assert scan()
        ui.wait_for(lambda: scanned_line(ui), "the misread line")
        assert ui.controller.screen == "operator_voucher"
        assert "\n" not in operator.error and any(VOUCHER_MISREAD in t for t in ui.texts())
        assert operator.form.voucher is None
    events = kinds(rig)
    assert events.count(RuntimeEvent.VOUCHER_CODE_MISREAD) == 3
    assert RuntimeEvent.VOUCHER_CODE_SCANNED not in events
    assert RuntimeEvent.PAYMENT_CODE_SCANNED not in events
    assert paid_out(rig) == []
    # In Chinese too, one line.
    ui.controller.display.set_language("zh_CN")
    ui.pump(2)
    assert operator.error.startswith("未能识别兑付码")


def test_a_voucher_slip_scanned_while_a_payment_by_phone_waits_is_no_payment_code(
    scan_rig: TerminalRig, ui_harness: Any
) -> None:
    rig = scan_rig
    _voucher_id, slip = voucher_slip(rig)
    ui = ui_harness(rig.terminal, language="en")
    phone_to_code(ui)
    assert rig.sims.scanner.health()["purpose"] == "payment"
    rig.sims.scanner.scan(slip)
    ui.wait_for(lambda: bool(ui.controller.journey.qr_error), "the misread to be shown")
    assert ui.controller.screen == "qr_pay"
    events = kinds(rig)
    assert RuntimeEvent.PAYMENT_CODE_MISREAD in events
    assert RuntimeEvent.VOUCHER_CODE_SCANNED not in events
    assert RuntimeEvent.PAYMENT_CODE_SCANNED not in events
    assert paid_out(rig) == []


# ------------------------------------------------------------------ the terminal's choice


def test_the_terminal_arms_for_vouchers_only_while_an_operator_is_logged_in_and_payments_first(
    scan_rig: TerminalRig,
) -> None:
    rig = scan_rig
    terminal, scanner = rig.terminal, rig.sims.scanner
    terminal.want_codes(ScanPurpose.VOUCHER)
    assert terminal.code_purpose() is None and scanner.health()["armed"] is False
    operator_card_in(rig)
    terminal.operator.login(PIN)
    terminal.want_codes(ScanPurpose.VOUCHER)
    assert terminal.code_purpose() is ScanPurpose.VOUCHER
    assert scanner.health()["purpose"] == "voucher"
    scanner.scan(sample_code(PaymentScheme.ALIPAY, 9))  # read under the voucher arming...
    terminal.want_codes(ScanPurpose.PAYMENT)  # ...and forgotten when a payment waits
    assert terminal.code_purpose() is ScanPurpose.PAYMENT
    assert scanner.health()["purpose"] == "payment" and scanner.read(0) is None
    terminal.want_codes(ScanPurpose.PAYMENT, False)
    assert terminal.code_purpose() is ScanPurpose.VOUCHER
    terminal.operator.sessions.logout()
    assert terminal.code_purpose() is None and scanner.health()["armed"] is False


# ------------------------------------------------------------------ the rules


def test_a_scan_is_judged_for_the_purpose_the_scanner_is_armed_for() -> None:
    buffer = ScanBuffer("test", connected=True)
    voucher_id = new_voucher_id()
    payment = sample_code(PaymentScheme.UNIONPAY, 3)
    buffer.arm(ScanPurpose.VOUCHER)
    buffer.offer(RawScan(payment, complete=True))
    with pytest.raises(ScanMisread) as misread:
        buffer.take()
    assert misread.value.problem is CodeProblem.NOT_A_VOUCHER
    assert payment not in str(misread.value)  # masked
    buffer.offer(RawScan(grouped_voucher_id(voucher_id), complete=True))
    taken = buffer.take()
    assert isinstance(taken, ScannedVoucher) and taken.voucher_id == voucher_id
    assert voucher_id not in repr(taken)
    buffer.arm(ScanPurpose.PAYMENT)
    buffer.offer(RawScan(voucher_id, complete=True))
    with pytest.raises(ScanMisread):
        buffer.take()
    buffer.offer(RawScan(payment, complete=True))
    assert isinstance(buffer.take(), ScannedCode)


def test_what_a_scanned_code_names(scan_rig: TerminalRig) -> None:
    voucher_id, slip = voucher_slip(scan_rig)
    assert voucher_id_of_scan(slip) == voucher_id
    assert voucher_id_of_scan(grouped_voucher_id(voucher_id).lower()) == voucher_id
    no_voucher = sell_topup(scan_rig, 50_00, 50_00)
    cases = {
        qr_payload(no_voucher): CodeProblem.NOT_A_VOUCHER,  # a receipt without change
        reference_code(str(no_voucher["tx_id"])): CodeProblem.NOT_A_VOUCHER,  # a copy
        slip[:-6] + "??????": CodeProblem.GARBLED,
        sample_code(PaymentScheme.WECHAT, 2): CodeProblem.NOT_A_VOUCHER,
        "": CodeProblem.EMPTY,
        "兑付码": CodeProblem.GARBLED,
    }
    for text, problem in cases.items():
        with pytest.raises(VoucherCodeInvalid) as refused:
            voucher_id_of_scan(text)
        assert refused.value.problem is problem, text
        assert "\n" not in str(refused.value)


@pytest.mark.parametrize("kind", sorted(SCANNER_RIGS))
def test_every_scanner_kind_reads_a_voucher_slip_when_armed_for_vouchers(
    kind: str, scan_rig: TerminalRig, tmp_path: Path
) -> None:
    """The serial and HID drivers (through their simulators) pass the purpose on as the
    in-process simulator does: the slip's QR code (base45: capitals, digits, symbols) typed
    or sent whole is its voucher; a payment code is a misread."""
    voucher_id, slip = voucher_slip(scan_rig)
    rig = SCANNER_RIGS[kind](tmp_path / kind)
    try:
        rig.scanner.arm(ScanPurpose.VOUCHER)
        assert rig.scanner.health()["purpose"] == "voucher"
        rig.scan(slip)
        taken = rig.scanner.read(5.0)
        assert isinstance(taken, ScannedVoucher) and taken.voucher_id == voucher_id
        rig.scan(sample_code(PaymentScheme.WECHAT, 5))
        with pytest.raises(ScanMisread) as misread:
            rig.scanner.read(5.0)
        assert misread.value.problem is CodeProblem.NOT_A_VOUCHER
    finally:
        rig.close()


def test_the_voucher_screen_with_its_scanner_lines_fits_in_both_languages(
    scan_rig: TerminalRig, ui_harness: Any
) -> None:
    from tests.screen_tour import LANGUAGES

    ui = opened(scan_rig, ui_harness)
    ui.tap("op-pay_voucher")
    ui.wait_screen("operator_voucher")
    scan_rig.sims.scanner.scan_partial(qr_payload(sell_topup(scan_rig, 30_00, 50_00)))
    ui.wait_for(lambda: scanned_line(ui), "the misread line")
    for lang in LANGUAGES:
        ui.controller.display.set_language(lang)
        ui.pump(2)
        assert ui.layout_problems() == [], lang


def test_a_slip_scanned_while_a_look_up_runs_is_looked_up_when_the_screen_is_back(
    scan_rig: TerminalRig, ui_harness: Any
) -> None:
    """Two slips read back to back: the second's event can reach the screen while the
    first's look-up runs (the busy screen). The events are handed to the controller here
    in that order, as the runtime's subscription hands them over, because which turn of the
    runtime reads the second scan is up to the threads."""
    rig = scan_rig
    first_id, _first = voucher_slip(rig)
    second_id, _second = voucher_slip(rig)
    ui = opened(rig, ui_harness)
    ui.tap("op-pay_voucher")
    ui.wait_screen("operator_voucher")
    controller = ui.controller
    controller.on_core_event(Event(RuntimeEvent.VOUCHER_CODE_SCANNED, {"voucher_id": first_id}))
    assert controller.screen == "busy"
    controller.on_core_event(Event(RuntimeEvent.VOUCHER_CODE_SCANNED, {"voucher_id": second_id}))

    def form() -> Any:
        return controller.operator.form  # replaced by each look-up

    ui.wait_for(
        lambda: form().voucher is not None and form().voucher.voucher_id == second_id,
        "the second slip to be looked up after the first",
    )
    ui.wait_screen("operator_voucher")
    assert form().value(Entry.VOUCHER) == second_id != first_id
    assert paid_out(rig) == []


def test_every_scanner_line_of_the_voucher_screen_has_its_chinese_text() -> None:
    from kiosk.i18n import catalog

    chinese = catalog("zh_CN")
    assert all(chinese.get(message, message) != message for message in SCAN_MESSAGE_IDS)
