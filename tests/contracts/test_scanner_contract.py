"""What kiosk.devices.PaymentCodeScanner promises, checked against every scanner implementation.

The rigs (tests/fixtures/scanner.py) are the resident holding a phone under the scanner and
the technician's cable; the tests talk to the scanner only through the Protocol.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.devices import ScanMisread, ScannedCode, ScannerUnavailable
from kiosk.payment_codes import CodeProblem, PaymentScheme
from simulators.scanner import sample_code
from tests.fixtures.scanner import SCANNER_RIGS, ScannerRig

WAIT_S = 5.0  # a read that should find a code waits at most this; it returns at once when it does


@pytest.fixture(params=sorted(SCANNER_RIGS))
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ScannerRig]:
    rig = SCANNER_RIGS[request.param](tmp_path)
    rig.scanner.arm()
    yield rig
    rig.close()


def read(rig: ScannerRig) -> ScannedCode:
    code = rig.scanner.read(WAIT_S)
    assert code is not None, "no code came"
    return code


def misread(rig: ScannerRig) -> ScanMisread:
    with pytest.raises(ScanMisread) as raised:
        rig.scanner.read(WAIT_S)
    return raised.value


@pytest.mark.parametrize("scheme", list(PaymentScheme))
def test_a_scanned_payment_code_is_read_once_with_its_scheme(
    rig: ScannerRig, scheme: PaymentScheme
) -> None:
    code = sample_code(scheme, serial=7)
    rig.scan(code)

    scanned = read(rig)

    assert (scanned.code, scanned.scheme) == (code, scheme)
    assert rig.scanner.read(0) is None


def test_nothing_scanned_reads_as_none(rig: ScannerRig) -> None:
    assert rig.scanner.read(0) is None
    assert rig.scanner.read(0.05) is None


def test_a_code_scanned_twice_is_given_once_and_the_next_code_still_comes(rig: ScannerRig) -> None:
    rig.scan_twice(sample_code(serial=1))
    rig.scan(sample_code(serial=2))

    assert read(rig).code == sample_code(serial=1)
    assert read(rig).code == sample_code(serial=2)
    assert rig.scanner.read(0) is None


def test_nothing_scanned_while_disarmed_or_before_arming_is_given(rig: ScannerRig) -> None:
    rig.scanner.disarm()
    rig.scan(sample_code(serial=1))
    assert rig.scanner.read(0) is None
    rig.scan(sample_code(serial=2))  # held under the scanner before the payment waited

    rig.scanner.arm()
    rig.scan(sample_code(serial=3))

    assert read(rig).code == sample_code(serial=3)
    assert rig.scanner.read(0) is None


def test_disarming_drops_a_code_nobody_read(rig: ScannerRig) -> None:
    rig.scan(sample_code(serial=1))
    rig.scanner.disarm()
    rig.scanner.arm()
    assert rig.scanner.read(0) is None


def test_a_new_arming_gives_a_code_given_in_the_last_one_again(rig: ScannerRig) -> None:
    # A payment that failed (declined) may be tried again: the platform, not the scanner,
    # refuses a code that was already used.
    rig.scan(sample_code(serial=1))
    assert read(rig).code == sample_code(serial=1)
    rig.scanner.arm()
    rig.scan(sample_code(serial=1))
    assert read(rig).code == sample_code(serial=1)


def test_a_garbled_scan_is_a_misread_and_the_next_code_reads_whole(rig: ScannerRig) -> None:
    rig.scan_garbled(sample_code(serial=1))
    rig.scan(sample_code(serial=2))

    error = misread(rig)
    assert error.problem is CodeProblem.GARBLED
    assert sample_code(serial=1) not in str(error)  # a code is never shown whole
    assert read(rig).code == sample_code(serial=2)


def test_a_partial_scan_is_a_misread_and_does_not_stick_to_the_next(rig: ScannerRig) -> None:
    rig.scan_partial(sample_code(serial=1))
    rig.scan(sample_code(serial=2))

    assert misread(rig).problem is CodeProblem.PARTIAL
    assert read(rig).code == sample_code(serial=2)


@pytest.mark.parametrize(
    "barcode",
    [
        "6901234567892",  # a product's EAN-13
        "160000000000000001",  # 18 digits, but WeChat's prefixes end at 15
        "25000000000000000000000000",  # Alipay's prefix, 26 digits
        "620000000000000000",  # UnionPay's prefix, 18 digits
    ],
)
def test_digits_that_are_no_payment_code_are_a_misread(rig: ScannerRig, barcode: str) -> None:
    rig.scan(barcode)
    assert misread(rig).problem is CodeProblem.NOT_A_PAYMENT_CODE


def test_misreads_and_codes_come_in_the_order_they_were_scanned(rig: ScannerRig) -> None:
    rig.scan(sample_code(serial=1))
    rig.scan_garbled(sample_code(serial=2))
    rig.scan(sample_code(serial=3))

    assert read(rig).code == sample_code(serial=1)
    assert misread(rig).problem is CodeProblem.GARBLED
    assert read(rig).code == sample_code(serial=3)


def test_an_unplugged_scanner_says_so_and_reads_again_once_plugged_back(rig: ScannerRig) -> None:
    rig.unplug()

    with pytest.raises(ScannerUnavailable, match="not connected"):
        rig.scanner.read(0)
    assert rig.scanner.health()["connected"] is False

    rig.replug()
    rig.scan(sample_code(serial=4))
    assert read(rig).code == sample_code(serial=4)
    assert rig.scanner.health()["connected"] is True


def test_a_code_read_before_the_cable_went_is_still_given(rig: ScannerRig) -> None:
    rig.scan(sample_code(serial=1))
    rig.unplug()

    assert read(rig).code == sample_code(serial=1)
    with pytest.raises(ScannerUnavailable):
        rig.scanner.read(0)


def test_health_names_the_device_and_its_state(rig: ScannerRig) -> None:
    health = rig.scanner.health()
    assert health["device"] == "scanner"
    assert health["connected"] is True and health["armed"] is True
    rig.scan_garbled(sample_code(serial=1))
    misread(rig)
    assert rig.scanner.health()["misreads"] == 1


def test_a_negative_timeout_is_refused(rig: ScannerRig) -> None:
    with pytest.raises(ValueError):
        rig.scanner.read(-1)
