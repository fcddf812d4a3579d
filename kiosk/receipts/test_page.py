"""The printer test page: what a technician prints to see that a receipt printer works.

Owns its wording and layout (Chinese and English, bold and double size, a full-width digit
ruler, a QR code and a partial cut); kiosk-tool printer test and the maintenance screen both
print it. It never talks to a printer.
"""

import time

from kiosk.devices import ReceiptDocument, ReceiptLine
from kiosk.i18n import translator

TEST_QR_PAYLOAD = "KIOSK-PRINTER-TEST"


def printer_test_page(columns: int) -> ReceiptDocument:
    """Chinese and English lines, bold and double size, a QR code and a cut."""
    chinese = translator("zh_CN")
    rule = ReceiptLine("-" * columns)
    title = "Printer test"
    return ReceiptDocument(
        job_id=f"printer-test/{time.time_ns()}",
        lines=(
            ReceiptLine(chinese(title), bold=True, double=True, align="center"),
            ReceiptLine(title, bold=True, align="center"),
            rule,
            ReceiptLine(chinese("Chinese and English on one line:") + " OK"),
            ReceiptLine("Chinese and English on one line: OK"),
            ReceiptLine("1234567890" * (columns // 10) + "12"[: columns % 10]),
            ReceiptLine(chinese("Scan the code below with a phone."), align="center"),
            ReceiptLine("Scan the code below with a phone.", align="center"),
        ),
        qr_payload=TEST_QR_PAYLOAD,
        cut="partial",
    )
