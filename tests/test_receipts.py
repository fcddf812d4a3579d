"""Receipts: the record they come from, their compact QR code, its verification, the layout
of receipts and slips, and the codes printed for people to type."""

import base64
import json
import string
import tomllib
import unicodedata
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import base45
import cbor2
import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import kiosk.receipts.lines as lines_module
from drivers.printer.capabilities import MIN_QR_MODULE_DOTS, paper_for_width
from drivers.printer.render import PrintedPage, PrintedQr, PrintedText, render_page
from kiosk.config import parse_config
from kiosk.config_template import render_config
from kiosk.devices import ReceiptDocument
from kiosk.errors import ConfigError
from kiosk.i18n import catalog
from kiosk.journal import canonical_json
from kiosk.journal.store import receipt_no_of
from kiosk.receipts import (
    ReceiptCodeTooLarge,
    ReceiptError,
    StationInfo,
    claim_slip_document,
    compact,
    compact_fields,
    grouped_voucher_id,
    interim_slip_document,
    new_receipt_token,
    new_voucher_id,
    qr_payload,
    read_voucher_id,
    receipt_code,
    receipt_document,
    receipt_from_record,
    receipt_token_matches,
    verify_receipt,
)
from kiosk.receipts.identifiers import VOUCHER_ALPHABET
from kiosk.receipts.layout import OUTCOME_MESSAGES
from kiosk.receipts.lines import display_width, wrap
from kiosk.receipts.qr import QR_MAX_VERSION, qr_symbol
from tests.fixtures.journal_bench import (
    STATION,
    TERMINAL,
    VOUCHER_ID,
    JournalBench,
    OperatorCA,
    make_operator_ca,
    make_signer,
    worst_case,
)
from tests.fixtures.pty_printer import PtyPrinterBench

STATION_NAME = "历下区泉城路便民服务站"
STATION_INFO = StationInfo(
    name=STATION_NAME,
    address="历下区泉城路 188 号",
    phone="0531-86012345",
    hotline="11185",
)
QR_ALPHANUMERIC = set(string.digits + string.ascii_uppercase + " $%*+-./:")


def receipt_of(
    record: dict[str, object], columns: int = 32, copy_no: int = 0, **options: object
) -> ReceiptDocument:
    receipt = receipt_from_record(record, station=STATION_INFO, service_name="国网电费")
    return receipt_document(receipt, record, columns=columns, copy_no=copy_no, **options)  # type: ignore[arg-type]


def texts(document: ReceiptDocument) -> list[str]:
    return [line.text for line in document.lines]


def joined(document: ReceiptDocument, separator: str = "") -> str:
    """The document's text with its line breaks taken out (for wrapped sentences)."""
    return separator.join(texts(document))


def has_line(document: ReceiptDocument, *parts: str) -> bool:
    return any(all(part in text for part in parts) for text in texts(document))


def printed_png(document: ReceiptDocument, path: Path) -> Path:
    """The receipt drawn as the printer simulator draws it: 58 mm paper (384 dots), its QR
    code at 3 dots a module, the smallest module a phone reads from thermal paper."""
    assert document.qr_payload is not None
    page = PrintedPage(
        rows=[
            PrintedText(line.text, line.align, line.bold, 2 if line.double else 1)
            for line in document.lines
        ]
        + [
            PrintedQr(
                document.qr_payload.encode("ascii"), MIN_QR_MODULE_DOTS, document.qr_error_level
            )
        ],
        cut="partial",
    )
    image = render_page(page, paper_for_width(58))
    assert image.width == 384
    image.save(path, format="PNG")
    return path


def scanned(path: Path) -> zxingcpp.Barcode:
    """What a phone's QR reader (ZXing) makes of the printed page."""
    (found,) = zxingcpp.read_barcodes(Image.open(path), formats=zxingcpp.BarcodeFormat.QRCode)
    return found


# ------------------------------------------------------------------ the receipt's content


def test_a_receipt_takes_every_figure_from_the_tx_close_record(
    journal_bench: JournalBench,
) -> None:
    record = journal_bench.pay(7, amount_fen=12345)
    receipt = receipt_from_record(record, station_name=STATION_NAME, service_name="国网电费")
    assert receipt.receipt_no == "SD-JN-0001-000007"
    assert (receipt.amount_fen, receipt.fee_fen, receipt.total_fen) == (12345, 100, 12445)
    assert (receipt.cash_in_fen, receipt.voucher_fen, receipt.credited_fen) == (13345, 900, 0)
    assert receipt.platform_ref == "PLT202503010900000007"
    assert receipt.outcome == "paid" and receipt.signed and not receipt.sig_failed
    assert receipt.station_name == STATION_NAME and receipt.service_name == "国网电费"
    assert receipt.seq == record["seq"] and receipt.voucher_id is None


def test_a_receipt_names_its_voucher_and_its_expiry(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(
        1, numbered=True, voucher_id=VOUCHER_ID, voucher_expires="2026-03-01"
    )
    receipt = receipt_from_record(record, station=STATION_INFO, service_name="电费")
    assert (receipt.voucher_id, receipt.voucher_expires) == (VOUCHER_ID, "2026-03-01")
    assert receipt.station_info == STATION_INFO


def test_only_a_tx_close_record_makes_a_receipt(journal_bench: JournalBench) -> None:
    cash = journal_bench.append("cash_in", {"value_fen": 100})
    with pytest.raises(ReceiptError, match="from a tx_close record, not from 'cash_in'"):
        receipt_from_record(cash, station_name="x", service_name="y")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"cash_in_fen": None}, "'cash_in_fen' must be whole fen"),
        ({"voucher_expires": "1 March"}, "'voucher_expires' must be a date"),
        ({"voucher_id": 7}, "'voucher_id' must be text or null"),
    ],
)
def test_a_record_with_an_unusable_field_is_refused_by_name(
    journal_bench: JournalBench, change: dict[str, object], problem: str
) -> None:
    record = {**journal_bench.pay(1), **change}
    with pytest.raises(ReceiptError, match=problem):
        receipt_from_record(record, station_name="x", service_name="y")


def test_a_receipt_needs_its_station(journal_bench: JournalBench) -> None:
    with pytest.raises(ReceiptError, match="a receipt needs the station"):
        receipt_from_record(journal_bench.pay(1), service_name="y")


def test_station_info_comes_from_the_configuration() -> None:
    config = parse_config(
        {
            "data_dir": "/var/lib/kiosk",
            "station": {
                "institution_no": STATION,
                "name": STATION_NAME,
                "terminal_id": TERMINAL,
                "address": STATION_INFO.address,
                "phone": STATION_INFO.phone,
                "hotline": STATION_INFO.hotline,
            },
            "platform": {"url": "http://127.0.0.1:9/"},
            "token": {"kind": "software", "key_file": "k.pem"},
        }
    )
    assert StationInfo.from_config(config.station) == STATION_INFO


def test_config_init_writes_the_address_phone_and_hotline_keys() -> None:
    text = render_config(
        institution_no=STATION,
        station_name=STATION_NAME,
        terminal_id=TERMINAL,
        data_dir="/var/lib/kiosk",
        platform_url="http://127.0.0.1:9/",
        token={"kind": "software", "key_file": "k.pem"},
    )
    table = tomllib.loads(text)
    assert {"address", "phone", "hotline"} <= set(table["station"])
    assert StationInfo.from_config(parse_config(table).station) == StationInfo(STATION_NAME)


@pytest.mark.parametrize("key", ["phone", "hotline"])
def test_a_phone_number_that_is_not_one_is_refused_at_start(key: str) -> None:
    with pytest.raises(ConfigError, match=f"'station.{key}' must be a telephone number"):
        parse_config(
            {
                "data_dir": "/var/lib/kiosk",
                "station": {"institution_no": "1", "name": "n", "terminal_id": "T", key: "call"},
                "platform": {"url": "http://127.0.0.1:9/"},
                "token": {"kind": "software", "key_file": "k.pem"},
            }
        )


# ------------------------------------------------------------------ the compact code


def test_the_code_is_kr2_in_qr_alphanumeric_and_rebuilds_the_stored_record(
    journal_bench: JournalBench,
) -> None:
    record = journal_bench.pay(1, numbered=True)
    payload = qr_payload(record)
    assert payload.startswith("KR2:") and set(payload) <= QR_ALPHANUMERIC
    assert qr_symbol(payload).mode == "alphanumeric"
    check = verify_receipt(payload, journal_bench.cert_pem)
    assert check.genuine and check.problem == "" and check.record == record
    assert canonical_json(check.record).decode() + "\n" == journal_bench.export_lines()[-1]


def test_the_worst_case_record_fits_version_10_and_reads_back_from_paper_at_3_dots(
    journal_bench: JournalBench, tmp_path: Path
) -> None:
    record = worst_case(journal_bench)
    code = receipt_code(record)
    size = len(base45.b45decode(code.payload[4:]))
    print(
        f"worst-case receipt code: {size} bytes, {len(code.payload)} characters, "
        f"QR version {code.version}-{code.error_level}"
    )
    assert code.version <= QR_MAX_VERSION == 10
    assert code.error_level == "L"  # M would need version 11 or 12: see journal-format.md
    document = receipt_of(record)
    assert (document.qr_payload, document.qr_error_level) == (code.payload, "L")

    found = scanned(printed_png(document, tmp_path / "receipt.png"))
    assert found.text == code.payload
    assert (found.extra["Version"], found.extra["ECLevel"]) == (str(code.version), "L")
    check = verify_receipt(found.text, journal_bench.cert_pem)
    assert check.genuine, check.problem
    assert check.record == record


def test_a_receipt_printed_by_the_escpos_driver_reads_back_with_zxing(
    pty_printer_58: PtyPrinterBench, journal_bench: JournalBench
) -> None:
    """The real path: ESC/POS bytes on a pseudo-terminal, the simulator's PNG, a phone reader."""
    record = journal_bench.pay(
        1, numbered=True, voucher_id=VOUCHER_ID, voucher_expires="2026-03-01"
    )
    document = receipt_of(record)
    pty_printer_58.driver().print_receipt(document)
    (printed,) = pty_printer_58.complete_prints(document.job_id)
    found = scanned(printed.png_path)
    assert found.text == document.qr_payload
    assert int(found.extra["Version"]) <= 10
    assert verify_receipt(found.text, journal_bench.cert_pem).genuine


def test_a_small_code_keeps_level_m(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(
        1,
        numbered=True,
        outcome="cancelled",
        amount_fen=0,
        fee_fen=0,
        platform_ref=None,
        reason="cancelled by the customer",
    )
    code = receipt_code(record)
    assert (code.error_level, code.version <= 10) == ("M", True)


def test_a_code_altered_in_any_one_character_is_not_genuine(
    journal_bench: JournalBench,
) -> None:
    payload = qr_payload(worst_case(journal_bench))
    alphabet = sorted(QR_ALPHANUMERIC)
    for index in range(len("KR2:"), len(payload)):
        other = alphabet[(alphabet.index(payload[index]) + 7) % len(alphabet)]
        altered = payload[:index] + other + payload[index + 1 :]
        check = verify_receipt(altered, journal_bench.cert_pem)
        assert not check.genuine, f"altering character {index} went unnoticed"
        assert check.problem


def test_an_altered_amount_is_named_as_not_genuine(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(1, numbered=True)
    code = compact.decode_code(qr_payload(record))
    fields = {**code.fields, compact.Field.AMOUNT_FEN: 22345}
    body = cbor2.dumps([1, code.prev + code.signature, fields], canonical=True)
    forged = compact.PREFIX + base45.b45encode(body).decode()
    check = verify_receipt(forged, journal_bench.cert_pem)
    assert not check.genuine and check.record is not None
    assert check.record["amount_fen"] == 22345
    assert check.problem == (
        f"receipt {record['receipt_no']} is not genuine: its signature does not match the "
        "station certificate given: the code was altered, or it is another station's receipt"
    )


def test_a_code_with_bytes_after_its_content_is_refused(journal_bench: JournalBench) -> None:
    payload = qr_payload(journal_bench.pay(1, numbered=True))
    body = base45.b45decode(payload[4:]) + b"\x00"
    check = verify_receipt("KR2:" + base45.b45encode(body).decode(), journal_bench.cert_pem)
    assert check.problem == "the receipt code is not in its canonical form: it was altered"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([9, bytes(32), {}], "signature algorithm 9, unknown to this version"),
        ([1, bytes(96), {99: 1}], "field number 99, unknown to this version"),
        ([1, bytes(31), {}], "its content has the wrong shape"),
        ([1, bytes(32), bytes(64), {}], "its content has the wrong shape"),
        ([1, bytes(95), {}], "its signature has the wrong length"),
        ([0, bytes(33), {}], "its signature has the wrong length"),
        ([1, bytes(96), {"station": "1"}], "it carries station itself"),
        ([1, bytes(96), {2: 1, "time": "x"}], "it carries time twice"),
        ([1, bytes(96), {2: 1, 6: 99}], "names a value (99) this version"),
        ([1, bytes(96), {0: 0, 2: 1}], "not in its canonical form"),
        ([1, bytes(96), {2: 1, 3: 480}], "not in its canonical form"),
        ([1, bytes(96), {2: 1, "kind": "bill"}], "not in its canonical form"),
    ],
)
def test_a_malformed_code_gets_one_clear_problem(
    journal_bench: JournalBench, body: list[object], problem: str
) -> None:
    text = "KR2:" + base45.b45encode(cbor2.dumps(body, canonical=True)).decode()
    check = verify_receipt(text, journal_bench.cert_pem)
    assert not check.genuine and problem in check.problem and "\n" not in check.problem


def test_a_receipt_of_another_station_is_not_genuine(journal_bench: JournalBench) -> None:
    payload = qr_payload(journal_bench.pay(1, numbered=True))
    other = make_signer(journal_bench.directory, "other").certificate_pem()
    check = verify_receipt(payload, other)
    assert not check.genuine
    assert "or it is another station's receipt" in check.problem


def test_a_certificate_bundle_verifies_with_whichever_certificate_signed(
    journal_bench: JournalBench,
) -> None:
    payload = qr_payload(journal_bench.pay(1, numbered=True))
    renewed = make_signer(journal_bench.directory, "renewed").certificate_pem()
    assert verify_receipt(payload, renewed + journal_bench.cert_pem).genuine


def test_a_receipt_checked_against_the_operator_ca(
    ca_journal_bench: tuple[JournalBench, OperatorCA], tmp_path: Path
) -> None:
    bench, ca = ca_journal_bench
    payload = qr_payload(bench.pay(1, numbered=True))
    assert verify_receipt(payload, bench.cert_pem, ca_pem=ca.pem).genuine
    stranger = make_operator_ca(tmp_path, "stranger")
    check = verify_receipt(payload, bench.cert_pem, ca_pem=stranger.pem)
    assert not check.genuine and "does not chain to the operator CA" in check.problem


def test_a_receipt_closed_during_an_outage_says_so(journal_bench: JournalBench) -> None:
    journal_bench.signer.failing = True
    record = journal_bench.pay(1, numbered=True)
    code = receipt_code(record)
    assert compact.decode_code(code.payload).algorithm is compact.Algorithm.UNSIGNED
    check = verify_receipt(code.payload, journal_bench.cert_pem)
    assert not check.genuine and check.record == record
    assert check.problem == (
        f"receipt {record['receipt_no']} was closed during a signature device outage and "
        "carries no signature: ask the station to check it in its journal"
    )


def test_a_large_signature_travels_with_its_algorithm_and_fails_the_size_clearly(
    journal_bench: JournalBench,
) -> None:
    """An RSA-2048 signature (256 bytes) cannot fit version 10: said, not printed unreadable."""
    record = {**journal_bench.pay(1, numbered=True), "sig": base64.b64encode(bytes(256)).decode()}
    payload = compact.encode_code(record)
    assert compact.decode_code(payload).algorithm is compact.Algorithm.STORED
    assert (
        compact.decode_record(
            compact.decode_code(payload), station=STATION, cert_sha256=str(record["cert_sha256"])
        )
        == record
    )
    with pytest.raises(
        ReceiptCodeTooLarge,
        match=r"signature algorithm STORED\) needs version 13-L, above version 10",
    ):
        receipt_code(record)
    document = receipt_of(record)
    assert document.qr_payload is None
    assert has_line(document, "本凭条的二维码过大")
    assert not has_line(document, "扫描二维码")


# Field values a tx_close may hold, including what the compact encodings cannot take.
_texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_odd_values = st.one_of(
    st.none(), st.booleans(), _texts, st.integers(-(2**53 - 1), 2**53 - 1), st.lists(_texts)
)


@settings(max_examples=150, deadline=None)
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "kind": st.sampled_from(["bill", "card_topup", "other_kind"]) | _odd_values,
            "service": _texts | _odd_values,
            "account_masked": st.sampled_from(["05******6789", "123", "**", "a*b*c", "05**9\n"])
            | _texts,
            "amount_fen": st.integers(0, 2**53 - 1) | _odd_values,
            "platform_ref": st.sampled_from(["SIM2025030100000007", "P000", "X0", "7", "S7\n"])
            | _odd_values,
            "business_day": st.sampled_from(["2025-02-28", "2025-3-1", "2099-12-31"]) | _odd_values,
            "voucher_id": st.sampled_from([VOUCHER_ID, VOUCHER_ID.lower(), "SHORT"]) | _odd_values,
            "reason": st.sampled_from(["cancelled by the customer", "平台拒绝"]) | _odd_values,
            "tx_id": st.sampled_from(
                [f"{TERMINAL}-0123456789abcdef", f"{TERMINAL}-ABC", f"{TERMINAL}-ab\n"]
            )
            | _odd_values,
            "time": st.sampled_from(
                ["2025-03-01T09:30:21+08:00", "2025-03-01T01:30:21+00:00", "yesterday"]
            ),
            "receipt_no": st.sampled_from(["R-1", receipt_no_of(TERMINAL, 5)]),
            "extra_field": _odd_values,
            "signer": st.sampled_from(["pkcs11", "software", "hsm"]),
        },
    )
)
def test_any_tx_close_record_survives_the_compact_code_exactly(fields: dict[str, object]) -> None:
    der = base64.b64encode(encode_dss_signature(2**255 - 19, 2**254 + 1)).decode()
    record: dict[str, object] = {
        "seq": 5,
        "prev": "ab" * 32,
        "type": "tx_close",
        "time": "2025-03-01T09:30:21+08:00",
        "station": STATION,
        "terminal": TERMINAL,
        "receipt_no": receipt_no_of(TERMINAL, 5),
        "signer": "pkcs11",
        "cert_sha256": "cd" * 32,
        "sig": der,
        **fields,
    }
    code = compact.decode_code(compact.encode_code(record))
    assert compact.decode_record(code, station=STATION, cert_sha256="cd" * 32) == record


@pytest.mark.parametrize(
    ("key", "value"),
    [("platform_ref", "SIM7\n"), ("tx_id", f"{TERMINAL}-ab\n"), ("account_masked", "05**9\n")],
)
def test_a_value_ending_in_a_newline_is_not_taken_for_its_compact_form(
    key: str, value: str
) -> None:
    record = {
        "seq": 5,
        "prev": "ab" * 32,
        "type": "tx_close",
        "time": "2025-03-01T09:30:21+08:00",
        "station": STATION,
        "terminal": TERMINAL,
        "receipt_no": receipt_no_of(TERMINAL, 5),
        "sig_failed": True,
        key: value,
    }
    code = compact.decode_code(compact.encode_code(record))  # checked both ways when made
    assert compact.decode_record(code, station=STATION, cert_sha256=None) == record


def test_a_kr1_receipt_printed_before_still_verifies(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(1)
    legacy = "KR1:" + canonical_json(record).decode()
    assert verify_receipt(legacy, journal_bench.cert_pem).genuine
    forged = legacy.replace('"amount_fen":12345', '"amount_fen":22345')
    check = verify_receipt(forged, journal_bench.cert_pem)
    assert not check.genuine
    assert check.problem == (
        "receipt SD-JN-0001-000001 is not genuine: its signature does not match its content: "
        "it was altered after signing"
    )


def test_a_kr1_receipt_that_is_not_canonical_json_is_refused(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(1)
    spaced = "KR1:" + json.dumps(record, sort_keys=True, ensure_ascii=False)
    check = verify_receipt(spaced, journal_bench.cert_pem)
    assert not check.genuine and check.record == record
    assert check.problem == (
        "receipt SD-JN-0001-000001 is not genuine: its code is not in canonical JSON form, "
        "byte for byte, so it was edited"
    )
    escaped = "KR1:" + canonical_json(record).decode().replace("SD", "\\u0053D", 1)
    assert not verify_receipt(escaped, journal_bench.cert_pem).genuine


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("https://example.com/pay", "this is not a kiosk receipt code: it must start with KR2:"),
        ("KR1:{broken", "the receipt code is damaged: its content is not JSON"),
        ('KR1:{"type":"cash_in"}', "the receipt code does not hold a transaction record"),
        ('KR1:{"receipt_no":"R1","type":"tx_close"}', "receipt R1 carries no signature"),
        ("KR2:ÄÖ", "the receipt code is damaged: it is not base45 text (scan it again)"),
        ("KR2:A", "the receipt code is damaged: it is not base45 text (scan it again)"),
        ("KRREF:T0001-000042", "this code only names 'T0001-000042' (a slip, or the copy"),
    ],
)
def test_a_code_that_is_no_signed_receipt_gets_a_clear_problem(
    journal_bench: JournalBench, text: str, problem: str
) -> None:
    check = verify_receipt(text, journal_bench.cert_pem)
    assert not check.genuine and check.problem.startswith(problem), check.problem


def test_qr_symbol_refuses_what_phones_cannot_read_from_paper() -> None:
    assert qr_symbol("KR2:" + "A" * 300).version <= 10
    with pytest.raises(ReceiptCodeTooLarge, match="above version 10"):
        qr_symbol("x" * 300)


# ------------------------------------------------------------------ layout


def test_display_width_counts_a_chinese_character_as_two_columns() -> None:
    assert display_width("缴费 Receipt ¥1.00") == 4 + 1 + 7 + 1 + 5
    assert display_width("ｱ") == 1  # half-width katakana stays narrow


@given(
    st.text(st.sampled_from(list("缴费凭条 Receipt number，。abc-¥0123 "))),
    st.sampled_from([32, 48]),
)
def test_wrapped_lines_fit_and_keep_every_character(text: str, columns: int) -> None:
    lines = wrap(text, columns)
    assert all(display_width(line) <= columns for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_chinese_closing_punctuation_never_starts_a_line() -> None:
    assert wrap("请将卡片再次插入本终端，完成写卡。", 16) == [
        "请将卡片再次插入",
        "本终端，完成写",
        "卡。",
    ]


def test_english_wraps_between_words() -> None:
    assert wrap("Scan the QR code to check this receipt.", 16) == [
        "Scan the QR code",
        "to check this",
        "receipt.",
    ]


def fits(document: ReceiptDocument, columns: int) -> None:
    for line in document.lines:
        width = display_width(line.text) * (2 if line.double else 1)
        assert width <= columns, f"{line.text!r} is {width} columns wide"


@pytest.mark.parametrize("columns", [32, 48])
def test_every_line_fits_the_paper_by_display_width(
    journal_bench: JournalBench, columns: int
) -> None:
    record = worst_case(journal_bench)
    for copy_no in (0, 2):
        document = receipt_of(record, columns=columns, copy_no=copy_no, receipt_token="123456")
        fits(document, columns)
        assert f"{'-' * columns}" in texts(document)


@pytest.mark.parametrize("columns", [32, 48])
def test_amounts_line_up_at_the_right_edge(journal_bench: JournalBench, columns: int) -> None:
    document = receipt_of(journal_bench.pay(1), columns=columns)
    amount_lines = [text for text in texts(document) if "¥" in text]
    assert len(amount_lines) == 5  # amount, fee, total, cash received, voucher
    assert all(display_width(text) == columns for text in amount_lines)


def test_labels_are_chinese_first_then_english(journal_bench: JournalBench) -> None:
    document = receipt_of(journal_bench.pay(1), columns=48)
    assert has_line(document, "缴费金额 Amount", "¥123.45")
    assert has_line(document, "手续费 Fee", "¥1.00")
    assert has_line(document, "应付合计 Total", "¥124.45")
    assert has_line(document, "实收现金 Cash received", "¥133.45")
    assert has_line(document, "结果 Result", "缴费成功 Paid")
    assert has_line(document, "时间 Time", "2025-03-01 09:30:21")
    assert "缴费凭条 Receipt" in texts(document)


def test_the_station_address_phone_hotline_and_invoice_line_are_printed(
    journal_bench: JournalBench,
) -> None:
    document = receipt_of(journal_bench.pay(1), columns=48)
    assert texts(document)[0] == STATION_NAME and document.lines[0].double
    assert texts(document)[1] == "历下区泉城路 188 号"
    assert has_line(document, "电话 Phone", "0531-86012345")
    assert has_line(document, "服务热线 Help hotline", "11185")
    assert has_line(document, "如需发票，请持本凭条到邮政网点补打。")
    assert has_line(document, "For an invoice, bring this receipt to a post")


def test_a_station_without_address_or_phone_prints_neither(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(1)
    receipt = receipt_from_record(record, station_name=STATION_NAME, service_name="电费")
    document = receipt_document(receipt, record, columns=32)
    assert not has_line(document, "Phone") and not has_line(document, "Help hotline")
    assert has_line(document, "如需发票")  # the invoice line is on every receipt


def test_the_document_carries_the_code_and_a_job_id_per_copy(
    journal_bench: JournalBench,
) -> None:
    record = journal_bench.pay(1, voucher_fen=0, cash_in_fen=12445)
    original = receipt_of(record)
    copy = receipt_of(record, copy_no=3)
    assert original.qr_payload == copy.qr_payload == qr_payload(record)
    assert original.qr_error_level == receipt_code(record).error_level
    assert (original.job_id, copy.job_id) == ("SD-JN-0001-000001/0", "SD-JN-0001-000001/3")


def test_a_reprint_is_marked_as_a_copy_at_top_and_bottom(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(1)
    copy = receipt_of(record, copy_no=2)
    first, last = copy.lines[0], copy.lines[-1]
    assert first.text == last.text == "副本 COPY 2"
    assert first.bold and last.bold
    assert not has_line(receipt_of(record), "COPY")


def test_the_original_prints_the_voucher_id_grouped_and_its_code_carries_it(
    journal_bench: JournalBench,
) -> None:
    record = journal_bench.pay(
        1, numbered=True, voucher_id=VOUCHER_ID, voucher_expires="2026-03-01"
    )
    document = receipt_of(record, columns=48)
    assert has_line(document, "凭券号 Voucher no.", "7K3M-9QXR-2T4W-8Z6B")
    assert has_line(document, "有效期至 Valid until", "2026-03-01")
    assert has_line(document, "凭券号和二维码即为凭券")
    assert document.qr_payload is not None
    check = verify_receipt(document.qr_payload, journal_bench.cert_pem)
    assert check.genuine and check.record is not None
    assert check.record["voucher_id"] == VOUCHER_ID


def test_a_copy_of_a_voucher_receipt_carries_nothing_redeemable(
    journal_bench: JournalBench,
) -> None:
    record = journal_bench.pay(
        1, numbered=True, voucher_id=VOUCHER_ID, voucher_expires="2026-03-01"
    )
    copy = receipt_of(record, columns=48, copy_no=1)
    assert not any(VOUCHER_ID[:4] in text for text in texts(copy))
    assert not has_line(copy, "Voucher no.")
    assert copy.qr_payload == f"KRREF:{record['receipt_no']}"
    assert has_line(copy, "副本不能兑付")
    assert has_line(copy, "出具凭券 Voucher issued", "¥9.00")
    assert not verify_receipt(copy.qr_payload, journal_bench.cert_pem).genuine


def test_a_copy_of_an_older_voucher_receipt_without_an_id_carries_no_signed_record(
    journal_bench: JournalBench,
) -> None:
    """Before voucher ids the signed record itself was the voucher."""
    record = journal_bench.pay(1)
    assert record["voucher_fen"] and "voucher_id" not in record
    assert receipt_of(record, copy_no=1).qr_payload == "KRREF:SD-JN-0001-000001"
    original = receipt_of(record)
    assert "本凭条的二维码即为凭券" in joined(original) and not has_line(original, "凭券号")


def test_the_reprint_code_is_printed_on_the_original_only(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(1)
    original = receipt_of(record, columns=48, receipt_token="493027")
    assert has_line(original, "凭条查询码 Reprint code", "493027")
    copy = receipt_of(record, columns=48, copy_no=1, receipt_token="493027")
    assert not any("493027" in text for text in texts(copy))
    assert not has_line(receipt_of(record), "Reprint code")


def test_voucher_and_overpayment_credit_lines_appear_only_when_not_zero(
    journal_bench: JournalBench,
) -> None:
    plain = receipt_of(journal_bench.pay(1, voucher_fen=0, cash_in_fen=12445), columns=48)
    assert not has_line(plain, "Voucher") and not has_line(plain, "Credited")
    both = receipt_of(journal_bench.pay(2, voucher_fen=300, credited_fen=600), columns=48)
    assert has_line(both, "出具凭券 Voucher issued", "¥3.00")
    assert has_line(both, "多缴存入账户 Credited to account", "¥6.00")


def test_a_receipt_closed_during_a_signature_outage_says_the_device_failed(
    journal_bench: JournalBench,
) -> None:
    journal_bench.signer.failing = True
    document = receipt_of(journal_bench.pay(1), columns=48)
    start = texts(document).index("签名设备故障：本凭条暂未签名，设备恢复后终端将在")
    assert texts(document)[start + 1 : start + 3] == [
        "流水中补签。",
        "Signature device failed: this receipt is not",
    ]
    journal_bench.signer.failing = False
    assert journal_bench.journal.try_recover_signing() is not None
    signed = receipt_of(journal_bench.pay(2), columns=48)
    assert not has_line(signed, "签名设备故障")


def test_a_card_credit_still_pending_tells_the_resident_what_to_do(
    journal_bench: JournalBench,
) -> None:
    record = journal_bench.pay(1, card_no_masked="37**********0042", card_credit="pending")
    document = receipt_of(record, columns=48)
    assert has_line(document, "卡号 Card no.", "37**********0042")
    assert has_line(document, "写卡 Card credit", "尚未写卡 Not yet written")
    assert has_line(document, "请将卡片再次插入本终端")


def test_a_failed_payment_shows_its_reason_bilingually(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(
        1, outcome="failed", reason="payment not accepted by the platform", platform_ref=None
    )
    document = receipt_of(record, columns=48)
    assert has_line(document, "结果 Result", "缴费失败 Failed")
    assert has_line(document, "平台未接受此笔缴费")
    assert not has_line(document, "Platform ref.")


def test_a_long_station_name_is_wrapped_instead_of_printed_double(
    journal_bench: JournalBench,
) -> None:
    record = journal_bench.pay(1)
    receipt = receipt_from_record(
        record, station_name="历下区泉城路街道办事处第一社区便民服务站", service_name="电费"
    )
    document = receipt_document(receipt, record, columns=32)
    assert not any(line.double for line in document.lines)
    short = receipt_of(record, columns=48)
    assert short.lines[0].double and short.lines[0].text == STATION_NAME


def test_wrong_paper_width_or_record_is_refused(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(1)
    receipt = receipt_from_record(record, station_name="s", service_name="e")
    with pytest.raises(ReceiptError, match="for 32 or 48 columns, not 40"):
        receipt_document(receipt, record, columns=40)
    other = journal_bench.pay(2)
    with pytest.raises(ReceiptError, match="is not the record of receipt SD-JN-0001-000001"):
        receipt_document(receipt, other, columns=32)


# ------------------------------------------------------------------ slips


def interim(columns: int = 32, **changes: object) -> ReceiptDocument:
    values: dict[str, object] = {
        "tx_id": "SD-JN-0001-0123456789abcdef",
        "station": STATION_INFO,
        "service_name": "国网电费 Electricity bill",
        "account_masked": "05******6789",
        "amount_fen": 12345,
        "fee_fen": 100,
        "cash_in_fen": 13000,
        "time": "2025-03-01T09:30:21+08:00",
        "columns": columns,
    }
    values.update(changes)
    return interim_slip_document(**values)  # type: ignore[arg-type]


def test_the_interim_slip_gives_the_reference_figures_and_what_happens_next() -> None:
    slip = interim(48)
    assert has_line(slip, "缴费待确认 Payment pending")
    assert has_line(slip, "本凭据不是缴费凭条。")
    assert has_line(slip, "This slip is not a receipt.")
    assert has_line(slip, "交易参考号 Transaction ref.")
    assert has_line(slip, "SD-JN-0001-0123456789abcdef")
    assert has_line(slip, "时间 Time", "2025-03-01 09:30:21")
    assert has_line(slip, "户号 Account", "05******6789")
    assert has_line(slip, "缴费金额 Amount", "¥123.45")
    assert has_line(slip, "手续费 Fee", "¥1.00")
    assert has_line(slip, "实收现金 Cash received", "¥130.00")
    assert "终端将自动处理，请勿重复缴费。" in joined(slip)
    assert "collect the receipt or a refund voucher at this terminal" in joined(slip, " ")
    assert has_line(slip, "服务热线 Help hotline", "11185")
    assert slip.qr_payload == "KRREF:SD-JN-0001-0123456789abcdef"
    assert slip.job_id == "SD-JN-0001-0123456789abcdef/interim/0"


def test_a_slip_is_never_mistaken_for_a_receipt(journal_bench: JournalBench) -> None:
    slip = interim()
    assert not has_line(slip, "缴费凭条 Receipt") and not has_line(slip, "扫描二维码")
    assert slip.qr_payload is not None
    check = verify_receipt(slip.qr_payload, journal_bench.cert_pem)
    assert not check.genuine and "proves nothing by itself" in check.problem


@pytest.mark.parametrize("columns", [32, 48])
def test_slips_fit_the_paper(columns: int) -> None:
    fits(interim(columns, copy_no=1), columns)
    claim = claim_slip_document(
        tx_id="SD-JN-0001-0123456789abcdef",
        station=STATION_INFO,
        time=datetime(2025, 3, 1, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai")),
        columns=columns,
        claim_ref="S-000042",
    )
    fits(claim, columns)
    assert has_line(claim, "时间 Time", "2025-03-01 09:30:00")


def test_the_claim_slip_tells_that_the_staff_count_and_settle_the_cash() -> None:
    claim = claim_slip_document(
        tx_id="SD-JN-0001-0123456789abcdef",
        station=STATION_INFO,
        time="2025-03-01T09:30:21+08:00",
        columns=48,
    )
    assert has_line(claim, "现金认领凭据 Cash claim slip")
    assert has_line(claim, "本凭据不是缴费凭条。")
    assert has_line(claim, "交易参考号 Transaction ref.")
    assert has_line(claim, "SD-JN-0001-0123456789abcdef")
    assert has_line(claim, "终端未能识别的现金已被收存")
    assert has_line(claim, "Cash the machine could not recognise was kept.")
    assert has_line(claim, "服务热线 Help hotline", "11185")
    assert not has_line(claim, "Claim ref.")
    assert claim.qr_payload == "KRREF:SD-JN-0001-0123456789abcdef"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"amount_fen": -1}, "slip figure amount_fen must be whole fen"),
        ({"fee_fen": 1.5}, "slip figure fee_fen must be whole fen"),
        ({"tx_id": ""}, "a slip needs the transaction reference"),
        ({"columns": 40}, "for 32 or 48 columns, not 40"),
    ],
)
def test_a_slip_with_impossible_values_is_refused(changes: dict[str, object], problem: str) -> None:
    with pytest.raises(ReceiptError, match=problem):
        interim(**changes)


# ------------------------------------------------------------------ every message translated


def test_every_message_on_receipts_and_slips_has_a_chinese_translation(
    journal_bench: JournalBench, monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[str] = []
    for name in ("label", "chinese"):
        real = getattr(lines_module, name)

        def recording(message: str, real: Callable[[str], str] = real) -> str:
            used.append(message)
            return real(message)

        monkeypatch.setattr(lines_module, name, recording)
    too_large = {**journal_bench.pay(99), "sig": base64.b64encode(bytes(256)).decode()}
    receipt_of(too_large)
    journal_bench.signer.failing = True
    for number, outcome in enumerate(OUTCOME_MESSAGES, start=1):
        record = journal_bench.pay(
            number,
            outcome=outcome,
            credited_fen=1,
            card_no_masked="37****0042",
            card_credit="pending",
            reason="cancelled by the customer",
            voucher_id=VOUCHER_ID,
            voucher_expires="2026-03-01",
        )
        receipt_of(record, receipt_token="123456")
        receipt_of(record, copy_no=1)
    interim()
    claim_slip_document(
        tx_id="T-1",
        station=STATION_INFO,
        time="2025-03-01T09:30:21+08:00",
        columns=32,
        claim_ref="S-1",
    )
    missing = sorted(set(used) - set(catalog("zh_CN")))
    assert missing == []
    assert len(set(used)) >= 40


def test_every_translation_in_receipts_po_is_chinese() -> None:
    po = Path(lines_module.__file__).parent.parent / "locale/zh_CN/LC_MESSAGES/receipts.po"
    from babel.messages.pofile import read_po

    with po.open("rb") as handle:
        messages = [m for m in read_po(handle) if m.id]
    assert messages
    for message in messages:
        assert any(unicodedata.east_asian_width(c) == "W" for c in str(message.string)), message.id


def test_every_reason_the_compact_code_knows_is_translated() -> None:
    assert sorted(set(compact_fields.REASONS) - set(catalog("zh_CN"))) == []


# ------------------------------------------------------------------ codes people type


def test_a_voucher_id_is_16_unambiguous_characters() -> None:
    ids = {new_voucher_id() for _ in range(200)}
    assert len(ids) == 200
    for voucher_id in ids:
        assert len(voucher_id) == 16 and set(voucher_id) <= set(VOUCHER_ALPHABET)
    assert not set("ILOU") & set(VOUCHER_ALPHABET)


def test_a_typed_voucher_id_is_read_back_however_it_is_typed() -> None:
    printed = grouped_voucher_id(VOUCHER_ID)
    assert printed == "7K3M-9QXR-2T4W-8Z6B"
    assert read_voucher_id(printed) == VOUCHER_ID
    assert read_voucher_id(" 7k3m 9qxr-2t4w 8z6b ") == VOUCHER_ID
    assert read_voucher_id("O0I1L1" + "0" * 10) == "001111" + "0" * 10
    assert read_voucher_id("7K3M-9QXR-2T4W") is None
    assert read_voucher_id("7K3M-9QXR-2T4W-8Z6U") is None


def test_a_receipt_token_is_eight_random_digits_checked_as_typed() -> None:
    tokens = {new_receipt_token() for _ in range(200)}
    assert all(len(token) == 8 and token.isdigit() for token in tokens)
    assert len(tokens) > 190
    assert receipt_token_matches("049302", "049 302")
    assert not receipt_token_matches("049302", "049303")
    assert not receipt_token_matches("049302", "四九三")


def test_the_driver_prints_a_version_10_code_at_5_dots_a_module_on_58_mm(
    journal_bench: JournalBench,
) -> None:
    """The driver's rule: the largest module (up to 6 dots) that fits the line."""
    symbol = qr_symbol(qr_payload(worst_case(journal_bench)))
    assert 384 // symbol.symbol_size(border=4)[0] == 5
