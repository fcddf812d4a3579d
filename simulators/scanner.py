"""The in-process payment-code scanner simulator, for the demo, the UI and the core's tests.

It satisfies kiosk.devices.PaymentCodeScanner exactly as the real drivers do (it keeps its
scans in the same ScanBuffer) and offers the resident's and the technician's side: a code
held under the scanner, a code scanned twice, a misread (garbled characters), a partial read,
and the scanner unplugged and plugged back in. Like a real scanner it keeps nothing across
a restart: a code read but not yet taken is gone with the process, which is safe, because
a payment code only moves money once the platform is asked with it.
"""

from drivers.scanner.assembly import RawScan
from drivers.scanner.buffer import ScanBuffer
from kiosk.devices import ScannedCode, ScannedVoucher, ScanPurpose
from kiosk.payment_codes import PaymentScheme

# The first digits and the length of a sample code of each scheme (kiosk.payment_codes).
_SAMPLE_FORM = {
    PaymentScheme.WECHAT: ("13", 18),
    PaymentScheme.ALIPAY: ("28", 18),
    PaymentScheme.UNIONPAY: ("62", 19),
}


def sample_code(scheme: PaymentScheme = PaymentScheme.WECHAT, serial: int = 1) -> str:
    """A well-formed payment code of scheme, different for every serial (for tests, demos)."""
    prefix, length = _SAMPLE_FORM[scheme]
    return prefix + str(serial).zfill(length - len(prefix))[-(length - len(prefix)) :]


def garbled(code: str) -> str:
    """code as line noise leaves it: some characters replaced by what is not a digit."""
    chars = list(code)
    for position in range(2, len(chars), 5):
        chars[position] = "?"
    return "".join(chars)


class SimulatedScanner:
    kind = "simulated"

    def __init__(self) -> None:
        self._buffer = ScanBuffer(self.kind, connected=True)
        self._plugged = True

    # ------------------------------------------------------------ PaymentCodeScanner

    def arm(self, purpose: ScanPurpose = ScanPurpose.PAYMENT) -> None:
        self._buffer.arm(purpose)

    def disarm(self) -> None:
        self._buffer.disarm()

    def read(self, timeout_s: float = 0.0) -> ScannedCode | ScannedVoucher | None:
        return self._buffer.take(timeout_s)

    def health(self) -> dict[str, object]:
        return self._buffer.health()

    def close(self) -> None:
        """Nothing to release; for symmetry with the real drivers."""

    # ------------------------------------------------------------ the resident's side

    def scan(self, code: str) -> bool:
        """The resident holds a code under the scanner; False if it is unplugged (lost)."""
        return self._send(RawScan(code, complete=True))

    def scan_twice(self, code: str) -> bool:
        """The same code read twice in a row (a phone held under the scanner)."""
        return self.scan(code) and self.scan(code)

    def scan_garbled(self, code: str) -> bool:
        """A misread: the code arrives with characters that are not digits."""
        return self._send(RawScan(garbled(code), complete=True))

    def scan_partial(self, code: str, keep: int | None = None) -> bool:
        """The scan stops part-way: the first keep characters (default half), no terminator."""
        keep = len(code) // 2 if keep is None else keep
        return self._send(RawScan(code[:keep], complete=False))

    # ------------------------------------------------------------ the technician's side

    def unplug(self) -> None:
        self._plugged = False
        self._buffer.set_connected(False, "unplugged (simulated)")

    def replug(self) -> None:
        self._plugged = True
        self._buffer.set_connected(True)

    def _send(self, scan: RawScan) -> bool:
        if not self._plugged:
            return False
        self._buffer.offer(scan)
        return True
