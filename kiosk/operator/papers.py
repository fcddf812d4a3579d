"""The station operator's papers: the day sheet (轧帐单) and the cash collection slip (清机单).

Owns their wording and layout, bilingual like every paper of the kiosk
(kiosk.receipts.lines; messages in operator.po). Each is made from the signed journal
record it prints (a day_close, a cash_collection), so a reprint says exactly what was
signed. Never talks to a printer: returns a kiosk.devices.ReceiptDocument.
"""

from collections.abc import Callable, Mapping

from kiosk.devices import ReceiptDocument, ReceiptLine
from kiosk.ledger.cash_box import Denomination
from kiosk.money import format_fen
from kiosk.receipts.layout import check_columns, station_header
from kiosk.receipts.lines import chinese, label, local_time, note, row, rule, title
from kiosk.receipts.model import StationInfo

DAY_SHEET = "Day close sheet"
COLLECTION_SLIP = "Cash collection slip"
BALANCED = "Balanced"
NOT_BALANCED = "Does not balance"
NOT_CHECKED = "Not checked"
KEEP_WITH_SLIPS = "Keep this sheet with the day's deposit slips (存款凭证)."
SIGN_HERE = "Counted by (signature):"
# Every label printed here; Chinese in operator.po.
MESSAGE_IDS = (
    DAY_SHEET,
    COLLECTION_SLIP,
    BALANCED,
    NOT_BALANCED,
    NOT_CHECKED,
    KEEP_WITH_SLIPS,
    SIGN_HERE,
    "Business day",
    "Closed at",
    "Closed by",
    "Float",
    "Opening float",
    "Deposits confirmed",
    "Debits, this terminal",
    "Debits, other terminals",
    "Reversals",
    "Closing float",
    "Platform float",
    "Difference",
    "Result",
    "Business by type",
    "Transactions",
    "Cash",
    "Cash taken today",
    "Cash in the box",
    "Counted at collection",
    "Count discrepancy",
    "Vouchers",
    "Issued",
    "Paid out",
    "Outstanding at the station",
    "Deposits recorded",
    "Time",
    "Handled by",
    "Expected",
    "Counted",
    "Discrepancy",
    "Unrecognised items kept",
    "pending",
    "confirmed",
    "refused",
)


def _fen(value: object) -> str:
    return format_fen(value) if isinstance(value, int) and not isinstance(value, bool) else "-"


def _balance_text(balanced: object) -> str:
    if balanced is True:
        return label(BALANCED)
    if balanced is False:
        return label(NOT_BALANCED)
    return label(NOT_CHECKED)


def day_sheet_document(
    record: Mapping[str, object],
    *,
    station: StationInfo,
    columns: int,
    service_name: Callable[[str], str],
    copy_no: int = 0,
) -> ReceiptDocument:
    """The 轧帐单 of a signed day_close record (report_version 2)."""
    check_columns(columns)
    lines: list[ReceiptLine] = station_header(station, columns)
    lines += title(DAY_SHEET, columns)
    lines += row("Business day", str(record.get("business_day")), columns)
    lines += row("Closed at", local_time(str(record.get("time"))), columns)
    lines += row("Closed by", str(record.get("closed_by", "-")), columns)
    lines.append(rule(columns))
    lines += title("Float", columns)
    lines += row("Opening float", _fen(record.get("opening_float_fen")), columns)
    lines += row("Deposits confirmed", _fen(record.get("deposits_fen")), columns)
    lines += row("Debits, this terminal", _fen(record.get("own_debits_fen")), columns)
    lines += row("Debits, other terminals", _fen(record.get("other_terminals_debits_fen")), columns)
    lines += row("Reversals", _fen(record.get("reversals_fen")), columns)
    lines += row("Closing float", _fen(record.get("closing_float_fen")), columns)
    lines += row("Platform float", _fen(record.get("platform_float_fen")), columns)
    lines += row("Difference", _fen(record.get("float_difference_fen")), columns)
    lines += row("Result", _balance_text(record.get("balanced")), columns)
    lines.append(rule(columns))
    lines += title("Business by type", columns)
    services = record.get("services")
    if isinstance(services, Mapping):
        for code, figures in sorted(services.items()):
            if not isinstance(figures, Mapping):
                continue
            total = int(figures.get("amount_fen", 0)) + int(figures.get("fee_fen", 0))
            lines += row(
                service_name(str(code)), f"{figures.get('count')} / {_fen(total)}", columns
            )
    lines += row(
        "Transactions", f"{record.get('paid_count')} / {_fen(record.get('paid_fen'))}", columns
    )
    lines.append(rule(columns))
    lines += title("Cash", columns)
    lines += row("Cash taken today", _fen(record.get("cash_in_fen")), columns)
    lines += row("Cash in the box", _fen(record.get("cash_expected_fen")), columns)
    collections = record.get("cash_collections")
    if isinstance(collections, list):
        for collection in collections:
            if isinstance(collection, Mapping):
                lines += row("Counted at collection", _fen(collection.get("counted_fen")), columns)
                lines += row("Count discrepancy", _fen(collection.get("discrepancy_fen")), columns)
    lines.append(rule(columns))
    lines += title("Vouchers", columns)
    issued = f"{record.get('vouchers_issued_count')} / {_fen(record.get('vouchers_issued_fen'))}"
    paid = f"{record.get('vouchers_redeemed_count')} / {_fen(record.get('vouchers_redeemed_fen'))}"
    lines += row("Issued", issued, columns)
    lines += row("Paid out", paid, columns)
    lines += row(
        "Outstanding at the station", _fen(record.get("vouchers_outstanding_fen")), columns
    )
    deposits = record.get("deposits_recorded")
    if isinstance(deposits, list) and deposits:
        lines.append(rule(columns))
        lines += title("Deposits recorded", columns)
        latest: dict[str, Mapping[str, object]] = {}  # a slip's last state in the day
        for deposit in deposits:
            if isinstance(deposit, Mapping):
                latest[str(deposit.get("slip_no"))] = deposit
        for slip, deposit in latest.items():
            text = f"{_fen(deposit.get('amount_fen'))} {chinese(str(deposit.get('state')))}"
            lines += row(slip, text, columns)
    lines.append(rule(columns))
    lines += note(KEEP_WITH_SLIPS, columns)
    day = record.get("business_day")
    return ReceiptDocument(job_id=f"day-sheet/{day}/{copy_no}", lines=tuple(lines), cut="full")


def collection_slip_document(
    record: Mapping[str, object], *, station: StationInfo, columns: int
) -> ReceiptDocument:
    """The 清机单 of a signed cash_collection record: the count by denomination, what the
    journal expected and the discrepancy, with room for the counter's signature."""
    check_columns(columns)
    lines: list[ReceiptLine] = station_header(station, columns)
    lines += title(COLLECTION_SLIP, columns)
    lines += row("Time", local_time(str(record.get("time"))), columns)
    lines += row("Handled by", str(record.get("by")), columns)
    lines.append(rule(columns))
    count = record.get("count")
    if isinstance(count, Mapping):
        for denomination in Denomination:
            pieces = count.get(str(denomination))
            if isinstance(pieces, int) and pieces:
                value = format_fen(denomination.value_fen)
                subtotal = format_fen(denomination.value_fen * pieces)
                lines.append(ReceiptLine(_columns(f"{value} x {pieces}", subtotal, columns)))
    lines.append(rule(columns))
    lines += row("Counted", _fen(record.get("counted_fen")), columns)
    lines += row("Expected", _fen(record.get("expected_fen")), columns)
    lines += row("Discrepancy", _fen(record.get("discrepancy_fen")), columns)
    suspense = record.get("suspense_items")
    if isinstance(suspense, int) and suspense:
        lines += row("Unrecognised items kept", str(suspense), columns)
    lines.append(rule(columns))
    lines += note(SIGN_HERE, columns)
    lines.append(ReceiptLine(""))
    return ReceiptDocument(job_id=f"collection/{record.get('seq')}", lines=tuple(lines), cut="full")


def _columns(left: str, right: str, columns: int) -> str:
    gap = max(1, columns - len(left) - len(right))
    return left + " " * gap + right
