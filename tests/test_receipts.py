"""Receipts: the record they come from, their QR code, its verification and the layout."""

import json
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
import segno
from hypothesis import given
from hypothesis import strategies as st

import kiosk.receipts.layout as layout
from kiosk.devices import ReceiptDocument
from kiosk.i18n import catalog
from kiosk.receipts import (
    ReceiptError,
    qr_payload,
    receipt_document,
    receipt_from_record,
    verify_receipt,
)
from kiosk.receipts.layout import display_width, wrap
from kiosk.receipts.qr import QR_MAX_VERSION, qr_symbol
from tests.fixtures.journal_bench import JournalBench, make_signer

STATION_NAME = "历下区泉城路便民服务站"


def receipt_of(record: dict[str, object], columns: int = 32, copy_no: int = 0) -> ReceiptDocument:
    receipt = receipt_from_record(record, station_name=STATION_NAME, service_name="国网电费")
    return receipt_document(receipt, record, columns=columns, copy_no=copy_no)


def texts(document: ReceiptDocument) -> list[str]:
    return [line.text for line in document.lines]


def has_line(document: ReceiptDocument, *parts: str) -> bool:
    return any(all(part in text for part in parts) for text in texts(document))


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
    assert receipt.seq == record["seq"]


def test_only_a_tx_close_record_makes_a_receipt(journal_bench: JournalBench) -> None:
    cash = journal_bench.append("cash_in", {"value_fen": 100})
    with pytest.raises(ReceiptError, match="from a tx_close record, not from 'cash_in'"):
        receipt_from_record(cash, station_name="x", service_name="y")


def test_a_record_missing_a_figure_is_refused_by_name(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(1)
    del record["cash_in_fen"]
    with pytest.raises(ReceiptError, match="'cash_in_fen' must be whole fen"):
        receipt_from_record(record, station_name="x", service_name="y")


# ------------------------------------------------------------------ the QR code


def test_the_qr_payload_is_the_stored_record_behind_kr1(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(1)
    payload = qr_payload(record)
    assert payload.startswith("KR1:")
    assert payload[4:] + "\n" == journal_bench.export_lines()[-1]


def test_a_realistic_card_top_up_receipt_fits_the_qr_size_limit(
    journal_bench: JournalBench,
) -> None:
    # The longest tx_close the engine writes: a card top-up left pending, with a reason.
    record = journal_bench.pay(
        999999,
        amount_fen=99_999_999,
        kind="card_topup",
        service="electricity-card",
        card_no_masked="37**********0042",
        card_credit="pending",
        reason="the station's prepaid float cannot cover this payment",
    )
    payload = qr_payload(record)
    symbol = segno.make(payload, error="m", mode="byte", boost_error=False)
    print(f"realistic tx_close receipt code: {len(payload)} bytes, QR version {symbol.version}")
    assert symbol.version <= QR_MAX_VERSION
    assert symbol.error == "M" and symbol.mode == "byte"
    assert len(payload) < 997  # version 25-M capacity


def test_a_record_too_large_for_the_qr_limit_is_refused(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(1, reason="x" * 400)
    with pytest.raises(ReceiptError, match=f"needs QR version .* above {QR_MAX_VERSION}"):
        qr_payload(record)


def test_a_record_with_non_ascii_text_is_refused_for_the_qr(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(1, reason="客户取消")
    with pytest.raises(ReceiptError, match="holds non-ASCII text"):
        qr_payload(record)


def test_qr_symbol_refuses_what_no_qr_code_can_hold() -> None:
    with pytest.raises(ReceiptError, match="does not fit any QR code"):
        qr_symbol("x" * 3000)


# ------------------------------------------------------------------ verifying a receipt


def test_a_genuine_receipt_verifies_against_the_station_certificate(
    journal_bench: JournalBench,
) -> None:
    record = journal_bench.pay(1)
    check = verify_receipt(qr_payload(record) + "\n", journal_bench.cert_pem)
    assert check.genuine and check.problem == "" and check.record == record


def test_an_altered_receipt_is_not_genuine(journal_bench: JournalBench) -> None:
    payload = qr_payload(journal_bench.pay(1))
    forged = payload.replace('"amount_fen":12345', '"amount_fen":22345')
    check = verify_receipt(forged, journal_bench.cert_pem)
    assert not check.genuine and check.record is not None
    assert check.problem == (
        "receipt SD-JN-0001-000001 is not genuine: its signature does not match its content: "
        "it was altered after signing"
    )


def test_a_receipt_of_another_station_is_not_genuine(journal_bench: JournalBench) -> None:
    payload = qr_payload(journal_bench.pay(1))
    other = make_signer(journal_bench.directory, "other").certificate_pem()
    check = verify_receipt(payload, other)
    assert not check.genuine
    assert "signed with another certificate" in check.problem


def test_a_receipt_closed_during_an_outage_says_so(journal_bench: JournalBench) -> None:
    journal_bench.signer.failing = True
    payload = qr_payload(journal_bench.pay(1))
    check = verify_receipt(payload, journal_bench.cert_pem)
    assert not check.genuine
    assert check.problem == (
        "receipt SD-JN-0001-000001 was closed during a signature device outage and carries "
        "no signature: ask the station to check it in its journal"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("https://example.com/pay", "this is not a kiosk receipt code: it must start with KR1:"),
        ("KR1:{broken", "the receipt code is damaged: its content is not JSON"),
        ('KR1:{"type":"cash_in"}', "the receipt code does not hold a transaction record"),
        ('KR1:{"type":"tx_close","receipt_no":"R1"}', "receipt R1 carries no signature"),
    ],
)
def test_a_code_that_is_no_signed_receipt_gets_a_clear_problem(
    journal_bench: JournalBench, text: str, problem: str
) -> None:
    check = verify_receipt(text, journal_bench.cert_pem)
    assert (check.genuine, check.problem) == (False, problem)


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


@pytest.mark.parametrize("columns", [32, 48])
def test_every_line_fits_the_paper_by_display_width(
    journal_bench: JournalBench, columns: int
) -> None:
    record = journal_bench.pay(
        1, card_no_masked="37**********0042", card_credit="pending", credited_fen=55
    )
    document = receipt_of(record, columns=columns, copy_no=2)
    for line in document.lines:
        width = display_width(line.text) * (2 if line.double else 1)
        assert width <= columns, f"{line.text!r} is {width} columns wide"
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
    assert texts(document)[1] == "缴费凭条 Receipt"


def test_the_document_carries_the_qr_payload_and_a_job_id_per_copy(
    journal_bench: JournalBench,
) -> None:
    record = journal_bench.pay(1)
    original = receipt_of(record)
    copy = receipt_of(record, copy_no=3)
    assert original.qr_payload == qr_payload(record)
    assert (original.job_id, copy.job_id) == ("SD-JN-0001-000001/0", "SD-JN-0001-000001/3")


def test_a_reprint_is_marked_as_a_copy_at_top_and_bottom(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(1)
    copy = receipt_of(record, copy_no=2)
    first, last = copy.lines[0], copy.lines[-1]
    assert first.text == last.text == "副本 COPY 2"
    assert first.bold and last.bold
    assert not has_line(receipt_of(record), "COPY")


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


def test_every_message_on_a_receipt_has_a_chinese_translation(
    journal_bench: JournalBench, monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[str] = []
    for name in ("bilingual", "chinese"):
        real = getattr(layout, name)

        def recording(message: str, real: Callable[[str], str] = real) -> str:
            used.append(message)
            return real(message)

        monkeypatch.setattr(layout, name, recording)
    journal_bench.signer.failing = True
    for number, outcome in enumerate(layout.OUTCOME_MESSAGES, start=1):
        record = journal_bench.pay(
            number,
            outcome=outcome,
            credited_fen=1,
            card_no_masked="37****0042",
            card_credit="pending",
            reason="cancelled by the customer",
        )
        receipt_of(record, copy_no=1)
    missing = sorted(set(used) - set(catalog("zh_CN")))
    assert missing == []
    assert len(set(used)) >= 25


def test_every_translation_in_receipts_po_is_chinese() -> None:
    po = Path(layout.__file__).parent.parent / "locale/zh_CN/LC_MESSAGES/receipts.po"
    from babel.messages.pofile import read_po

    with po.open("rb") as handle:
        messages = [m for m in read_po(handle) if m.id]
    assert messages
    for message in messages:
        assert any(unicodedata.east_asian_width(c) == "W" for c in str(message.string)), message.id


def test_wrong_paper_width_or_record_is_refused(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(1)
    receipt = receipt_from_record(record, station_name="s", service_name="e")
    with pytest.raises(ReceiptError, match="for 32 or 48 columns, not 40"):
        receipt_document(receipt, record, columns=40)
    other = journal_bench.pay(2)
    with pytest.raises(ReceiptError, match="is not the record of receipt SD-JN-0001-000001"):
        receipt_document(receipt, other, columns=32)


def test_a_receipt_payload_survives_json_round_trip(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(1)
    assert json.loads(qr_payload(record)[4:]) == record
