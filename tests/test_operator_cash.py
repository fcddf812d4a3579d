"""The cash box (清机) and voucher payout at the operator's desk: what should be in the box,
a collection counted by denomination with its discrepancy journaled and alerted, and a
voucher redeemed once, centrally, its cash out recorded (seed 002: 账实相符).

The terminal core on simulated devices against the real platform simulator; the journal
checks run the auditor's verifier on the terminal's own export.
"""

import io
from datetime import timedelta
from pathlib import Path

import pytest

from drivers.token.software import create_software_identity
from kiosk.i18n import translator
from kiosk.journal import verify_jsonl
from kiosk.ledger.cash_box import CashCount, CountRefused, Denomination
from kiosk.operator import Actor, Role
from kiosk.operator.cash_count import CountUnreadable, parse_count
from kiosk.operator.desk import OperatorRefused
from kiosk.platform import PlatformClient, PlatformRefused
from kiosk.platform.models import RESIDENT_NOTICES, Refusal
from kiosk.receipts.identifiers import grouped_voucher_id
from tests.fixtures.journal_bench import JournalBench
from tests.fixtures.terminal import STATION, TerminalRig

OPERATOR = Actor("OP-0007", Role.OPERATOR)


def sell_topup(rig: TerminalRig, amount_fen: int, *notes: int) -> dict[str, object]:
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", amount_fen)
    rig.insert(progress.tx_id, *notes)
    rig.terminal.finish(progress.tx_id)
    return rig.closes()[-1]


def journal_sound(rig: TerminalRig) -> None:
    out = io.StringIO()
    rig.terminal.export_journal(out)
    report = verify_jsonl(out.getvalue().splitlines(keepends=True), rig.signer.certificate_pem())
    assert report.ok, report.problem


def test_the_box_holds_cash_in_less_vouchers_paid_out_and_a_count_empties_it(
    terminal_rig: TerminalRig,
) -> None:
    rig, desk = terminal_rig, terminal_rig.terminal.operator
    sell_topup(rig, 10_00, 10_00)
    close = sell_topup(rig, 30_00, 50_00)  # 20 yuan over: a voucher
    assert desk.cash_expected_fen(actor=OPERATOR) == 60_00

    voucher = desk.voucher_lookup(str(close["voucher_id"]), actor=OPERATOR)
    assert voucher.amount_fen == 20_00
    payout = desk.pay_voucher(grouped_voucher_id(str(close["voucher_id"])), actor=OPERATOR)
    assert payout.paid and payout.amount_fen == 20_00
    assert desk.cash_expected_fen(actor=OPERATOR) == 40_00

    count = parse_count(["note-20=1", "note-10 = 2"])
    result = desk.collect_cash(count, actor=OPERATOR)
    assert result.printed and result.problem is None
    record = result.record
    assert (record["expected_fen"], record["counted_fen"], record["discrepancy_fen"]) == (
        40_00,
        40_00,
        0,
    )
    assert record["count"] == {"note-10": 2, "note-20": 1} and "sig" in record
    assert (record["by"], record["role"]) == ("OP-0007", "operator")
    assert [r for r in rig.records_of("alert") if r["alert"] == "cash_count_discrepancy"] == []
    assert desk.cash_expected_fen(actor=OPERATOR) == 0
    slip = rig.last_paper()
    assert "清机单" in slip and "Cash collection slip" in slip and "¥20.00 x 1" in slip
    journal_sound(rig)


def test_a_count_that_differs_is_journaled_alerted_and_printed(terminal_rig: TerminalRig) -> None:
    rig, desk = terminal_rig, terminal_rig.terminal.operator
    sell_topup(rig, 15_00, 10_00, 5_00)
    sell_topup(rig, 11_50, 10_00, 1_00, 50)
    count = CashCount({Denomination.NOTE_10: 2, Denomination.NOTE_5: 1, Denomination.COIN_1: 1})
    result = desk.collect_cash(count, actor=OPERATOR)
    assert (result.record["expected_fen"], result.record["counted_fen"]) == (26_50, 26_00)
    assert result.record["discrepancy_fen"] == -50
    [alert] = [r for r in rig.records_of("alert") if r["alert"] == "cash_count_discrepancy"]
    assert (alert["expected_fen"], alert["counted_fen"], alert["discrepancy_fen"]) == (
        26_50,
        26_00,
        -50,
    )
    assert alert["by"] == "OP-0007" and alert["collection_seq"] == result.record["seq"]
    assert "-¥0.50" in rig.last_paper()
    report = rig.terminal.operator.close_day(actor=OPERATOR, print_sheet=False).record
    assert report["cash_discrepancy_fen"] == -50 and report["cash_expected_fen"] == 0
    journal_sound(rig)


def test_no_collection_while_a_resident_is_inserting_cash(terminal_rig: TerminalRig) -> None:
    rig, desk = terminal_rig, terminal_rig.terminal.operator
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 30_00)
    rig.insert(progress.tx_id, 10_00)
    with pytest.raises(OperatorRefused, match="paying with cash right now"):
        desk.collect_cash(CashCount({Denomination.NOTE_10: 1}), actor=OPERATOR)
    assert rig.records_of("cash_collection") == []
    assert desk.cash_expected_fen(actor=OPERATOR) == 10_00  # counted the moment it came in


def test_cash_of_a_payment_in_doubt_is_in_the_box_already(terminal_rig: TerminalRig) -> None:
    rig, desk = terminal_rig, terminal_rig.terminal.operator
    rig.platform.set_faults(["post:timeout_after_commit:sleep_ms=2000", "status:error"])
    progress = rig.terminal.start_phone_topup("mobile-topup", "13800138000", 20_00)
    rig.insert(progress.tx_id, 20_00)
    assert rig.terminal.finish(progress.tx_id).outcome == "in_doubt"
    result = desk.collect_cash(CashCount({Denomination.NOTE_20: 1}), actor=OPERATOR)
    assert result.record["discrepancy_fen"] == 0
    rig.platform.clear_faults()
    rig.clock.advance(timedelta(hours=1))
    rig.terminal.tick()  # the payment settles as paid: its cash is not counted again
    assert rig.closes()[-1]["outcome"] == "paid"
    assert desk.cash_expected_fen(actor=OPERATOR) == 0
    journal_sound(rig)


@pytest.mark.parametrize(
    ("items", "complaint"),
    [
        (["note-100"], "is not a count"),
        (["note-3=1"], "is not a count"),
        (["note-10=-1"], "is not a count"),
        (["note-10=1.5"], "is not a count"),
        (["note-10=1", "NOTE-10=2"], "counted twice"),
    ],
)
def test_a_count_that_cannot_be_read_is_one_line_naming_it(
    items: list[str], complaint: str
) -> None:
    with pytest.raises(CountUnreadable, match=complaint) as refused:
        parse_count(items)
    assert "\n" not in str(refused.value)


def test_a_count_is_whole_pieces_of_known_denominations() -> None:
    assert parse_count([]).total_fen == 0
    assert parse_count(["coin-0.1=3", "coin-0.5=1", "note-1=2"]).total_fen == 2_80
    with pytest.raises(CountRefused):
        CashCount({Denomination.NOTE_1: 100_001})
    assert [d.value_fen for d in Denomination] == [
        100_00,
        50_00,
        20_00,
        10_00,
        5_00,
        1_00,
        1_00,
        50,
        10,
    ]


def test_a_voucher_is_paid_out_once_and_refused_the_second_time_anywhere(
    terminal_rig: TerminalRig, tmp_path: Path
) -> None:
    rig, desk = terminal_rig, terminal_rig.terminal.operator
    close = sell_topup(rig, 30_00, 50_00)
    code = str(close["voucher_id"])
    with pytest.raises(OperatorRefused, match="for ¥20.00, not ¥25.00"):
        desk.pay_voucher(code, 25_00, actor=OPERATOR)
    assert desk.pay_voucher(code, 20_00, actor=OPERATOR).paid
    with pytest.raises(OperatorRefused, match="already been paid out") as again:
        desk.pay_voucher(code, actor=OPERATOR)
    zh = translator("zh_CN")
    assert zh(RESIDENT_NOTICES[Refusal.VOUCHER_ALREADY_REDEEMED]) in again.value.translated(zh)
    # The neighbouring kiosk of the station asks the platform: refused too.
    signer = create_software_identity(
        tmp_path / "k2.pem",
        tmp_path / "c2.pem",
        institution_no=STATION,
        terminal_id="T0002",
        station_name="青山社区便民服务站",
    )
    other = PlatformClient(rig.platform.url, station=STATION, terminal="T0002", signer=signer)
    other.register()
    with pytest.raises(PlatformRefused) as refused:
        other.redeem_voucher("R-other", voucher_id=code, amount_fen=20_00)
    assert refused.value.code == "voucher_already_redeemed"
    paid = [r for r in rig.records_of("voucher_payout") if r["state"] == "paid"]
    assert [(r["voucher_id"], r["operator"], r["amount_fen"]) for r in paid] == [
        (code, "OP-0007", 20_00)
    ]
    assert desk.cash_expected_fen(actor=OPERATOR) == 30_00


def test_a_code_that_is_no_voucher_is_refused_before_the_platform_is_asked(
    terminal_rig: TerminalRig,
) -> None:
    desk = terminal_rig.terminal.operator
    seen = terminal_rig.platform.requests_seen().get("voucher_status", 0)
    with pytest.raises(OperatorRefused, match="is not a voucher code"):
        desk.pay_voucher("hello", actor=OPERATOR)
    with pytest.raises(OperatorRefused, match="not known at this station"):
        desk.pay_voucher("ABCD-EFGH-JKLM-NPQR", actor=OPERATOR)
    assert terminal_rig.platform.requests_seen().get("voucher_status", 0) == seen + 1
    assert terminal_rig.records_of("voucher_payout") == []


def test_the_verifier_recomputes_the_cash_box_figure_of_a_collection(
    journal_bench: JournalBench,
) -> None:
    bench = journal_bench
    bench.pay(1, 10_000)  # 110.00 yuan of cash in
    bench.append(
        "voucher_payout", {"voucher_id": "V", "amount_fen": 900, "state": "paid"}, sign=True
    )
    bench.append(
        "cash_collection",
        {"expected_fen": 10_100, "counted_fen": 10_100, "discrepancy_fen": 0, "count": {}},
        sign=True,
    )
    assert verify_jsonl(bench.export_lines(), bench.cert_pem).ok
    bench.pay(2, 10_000)
    bench.append(
        "cash_collection",
        {"expected_fen": 10_000, "counted_fen": 10_000, "discrepancy_fen": 0, "count": {}},
        sign=True,
    )  # claims less than the 110.00 yuan that came in since the last collection
    report = verify_jsonl(bench.export_lines(), bench.cert_pem)
    assert not report.ok and "expected_fen is 10000" in report.problem
    assert "since the last cash collection gives 11000" in report.problem


def test_a_day_report_claiming_another_cash_figure_is_unsound(journal_bench: JournalBench) -> None:
    bench = journal_bench
    bench.pay(1, 10_000)
    bench.close_day(report_version=2, cash_expected_fen=11_000)
    assert verify_jsonl(bench.export_lines(), bench.cert_pem).ok
    bench.pay(2, 10_000)
    bench.close_day("2025-03-02", report_version=2, cash_expected_fen=11_000)
    report = verify_jsonl(bench.export_lines(), bench.cert_pem)
    assert not report.ok and "cash_expected_fen is 11000" in report.problem


def test_the_documented_openssl_audit_recomputes_an_operator_days_cash_box(
    terminal_rig: TerminalRig, tmp_path: Path
) -> None:
    from tests.test_journal_audit_openssl import run_reference_script

    rig, desk = terminal_rig, terminal_rig.terminal.operator
    close = sell_topup(rig, 30_00, 50_00)
    desk.pay_voucher(str(close["voucher_id"]), actor=OPERATOR)
    desk.collect_cash(CashCount({Denomination.NOTE_20: 1, Denomination.NOTE_10: 1}), actor=OPERATOR)
    sell_topup(rig, 10_00, 10_00)
    desk.close_day(actor=OPERATOR, print_sheet=False)
    export, cert = tmp_path / "journal.jsonl", tmp_path / "cert.pem"
    with export.open("w", encoding="utf-8", newline="") as out:
        rig.terminal.export_journal(out)
    cert.write_bytes(rig.signer.certificate_pem())
    result = run_reference_script(export, cert, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("journal sound")
