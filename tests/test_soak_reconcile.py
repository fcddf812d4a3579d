"""The fault soak's reconciliation and plan catch what they claim to (tests/soak): balanced
books pass, and each kind of discrepancy the soak looks for is reported, on small made-up
books (pure functions: no process, no platform)."""

import dataclasses
from typing import Any

import pytest

from tests.soak.ledger import ElsewhereLoad
from tests.soak.plan import FORCED_WRONG_CLOCK, Intensity, SkewBand, SkewPlan, segment
from tests.soak.reconcile import (
    CONFLICT_FOR_A_HELD_CREDIT,
    Books,
    CardState,
    Redemption,
    reconcile,
)

TERMINAL, STATION, CARD = "T0001", "33078200001", "900000000001"
OPENING = 1_000_00


def close(tx: str, outcome: str, cash: int, amount: int = 0, voucher: int = 0) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "tx_close",
        "tx_id": tx,
        "outcome": outcome,
        "cash_in_fen": cash,
        "amount_fen": amount,
        "fee_fen": 0,
        "voucher_fen": voucher,
        "credited_fen": 0,
        "platform_ref": f"REF-{tx}" if outcome == "paid" else None,
    }
    if voucher:
        record["voucher_id"] = f"V-{tx}"
    return record


def cash_in(tx: str, n: int, value: int) -> dict[str, Any]:
    return {"type": "cash_in", "tx_id": tx, "event_id": f"cash-{n}", "value_fen": value}


def payment(tx: str, amount: int, kind: str = "bill", counter: int | None = None) -> dict[str, Any]:
    return {
        "key": f"{tx}-p",
        "terminal": TERMINAL,
        "kind": kind,
        "account": CARD if kind == "card_credit" else "3100000011",
        "amount_fen": amount,
        "fee_fen": 0,
        "card_counter": counter,
        "reference": f"REF-{tx}",
        "state": "posted",
    }


def balanced() -> Books:
    """A bill paid with a voucher for the surplus, a card credit written, a cancelled top-up
    with a voucher, and one load elsewhere on the card."""
    records = [
        cash_in("tx1", 1, 50_00),
        close("tx1", "paid", 50_00, amount=45_00, voucher=5_00),
        cash_in("tx2", 2, 20_00),
        {"type": "card_credit_written", "tx_id": "tx2"},
        close("tx2", "paid", 20_00, amount=20_00),
        cash_in("tx3", 3, 10_00),
        close("tx3", "cancelled", 10_00, voucher=10_00),
    ]
    dump = {
        "payments": [payment("tx1", 45_00), payment("tx2", 20_00, "card_credit", 0)],
        "holds": [
            {"hold_id": "h1", "station": STATION, "amount_fen": 45_00, "state": "consumed"},
            {"hold_id": "h3", "station": STATION, "amount_fen": 10_00, "state": "released"},
        ],
        "stations": [{"station": STATION, "balance_fen": OPENING - 65_00, "held_fen": 0}],
        "vouchers": [
            {"voucher_id": "V-tx1", "terminal": TERMINAL, "amount_fen": 5_00, "state": "redeemed"},
            {"voucher_id": "V-tx3", "terminal": TERMINAL, "amount_fen": 10_00, "state": "redeemed"},
        ],
    }
    card = CardState(
        CARD,
        balance_fen=20_00 + 30_00,
        purchase_counter=2,
        load_log=((2, 30_00, "GRID-01", "G1"), (1, 20_00, TERMINAL, "tx2-p")),
    )
    return Books(
        terminal_id=TERMINAL,
        station=STATION,
        opening_float_fen=OPENING,
        records=records,
        dump=dump,
        cards=[card],
        elsewhere=[ElsewhereLoad("G1", CARD, 30_00, "loaded", 2)],
        redemptions=[
            Redemption("V-tx1", 5_00, True, "", "voucher_already_redeemed"),
            Redemption("V-tx3", 10_00, True, "", "voucher_already_redeemed"),
        ],
        acceptor_events=[("cash-1", 50_00, True), ("cash-2", 20_00, True), ("cash-3", 10_00, True)],
        acceptor_counted=3,
        still_open={"open transactions": 0},
    )


def test_balanced_books_pass_every_check() -> None:
    result = reconcile(balanced())
    assert result.discrepancies == []
    for check in (
        "posted = one paid close",
        "money conserved (paid)",
        "money conserved (not paid)",
        "card balance = credits held + loads elsewhere",
        "card load log agrees",
        "voucher refused the second time",
        "voucher redeemed at the platform",
        "no hold left held",
    ):
        assert result.checks[check] > 0, check


def spoil(books: Books, **changes: Any) -> list[str]:
    return reconcile(dataclasses.replace(books, **changes)).discrepancies


def test_a_posting_without_its_paid_close_is_reported() -> None:
    books = balanced()
    records = [r for r in books.records if r.get("tx_id") != "tx1" or r["type"] != "tx_close"]
    found = spoil(books, records=records)
    assert any(d.startswith("posted = one paid close: tx1-p") for d in found), found


def test_cash_that_is_neither_paid_nor_a_voucher_is_reported() -> None:
    books = balanced()
    records = [
        {**r, "voucher_fen": 4_00} if r.get("tx_id") == "tx1" and r["type"] == "tx_close" else r
        for r in books.records
    ]
    assert any(d.startswith("money conserved (paid): tx1") for d in spoil(books, records=records))


def test_a_hold_left_active_and_a_second_payout_are_reported() -> None:
    books = balanced()
    dump = {**books.dump, "holds": [{**books.dump["holds"][0], "state": "active"}]}
    twice = [dataclasses.replace(books.redemptions[0], second_refusal=None)]
    found = spoil(books, dump=dump, redemptions=[*twice, books.redemptions[1]])
    assert any(d.startswith("no hold left held: hold h1") for d in found), found
    assert any(d.startswith("voucher refused the second time: V-tx1") for d in found), found


def test_a_conflict_for_a_credit_the_card_holds_is_reported() -> None:
    books = balanced()
    records = [
        {"type": "card_credit_conflict", "tx_id": "tx2"}
        if r["type"] == "card_credit_written"
        else r
        for r in books.records
    ]
    found = spoil(books, records=records)
    assert [d.split(":")[0] for d in found] == [CONFLICT_FOR_A_HELD_CREDIT], found


def test_a_credit_missing_from_the_card_must_be_an_alerted_conflict() -> None:
    books = balanced()
    # The load elsewhere took counter 1 and the card never got tx2's credit.
    card = CardState(CARD, 30_00, 1, ((1, 30_00, "GRID-01", "G1"),))
    elsewhere = [ElsewhereLoad("G1", CARD, 30_00, "loaded", 1)]
    found = spoil(books, cards=[card], elsewhere=elsewhere)
    assert any(d.startswith("conflict = credit not on the card: tx2") for d in found), found
    conflict = [
        {"type": "card_credit_conflict", "tx_id": "tx2"},
        {"type": "alert", "alert": "card_credit_conflict", "tx_id": "tx2"},
    ]
    records = [r for r in books.records if r["type"] != "card_credit_written"] + conflict
    assert spoil(books, cards=[card], elsewhere=elsewhere, records=records) == []


def test_a_card_balance_nobody_accounts_for_is_reported() -> None:
    books = balanced()
    card = dataclasses.replace(books.cards[0], balance_fen=books.cards[0].balance_fen + 1)
    found = spoil(books, cards=[card])
    assert any(d.startswith("card balance = credits held + loads elsewhere") for d in found)


def test_a_voucher_paid_out_twice_by_the_terminal_is_reported() -> None:
    books = balanced()
    payout = {"type": "voucher_payout", "voucher_id": "V-tx3", "state": "paid"}
    found = spoil(books, records=[*books.records, payout, payout])
    assert any(d.startswith("voucher paid out at most once by the terminal: V-tx3") for d in found)


def test_cash_the_acceptor_counted_but_the_journal_lacks_is_reported() -> None:
    books = balanced()
    found = spoil(books, acceptor_events=[*books.acceptor_events, ("cash-4", 100, True)])
    assert any(d.startswith("acceptor cash journaled: cash-4") for d in found), found


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_soak_restarts_far_ahead_then_far_behind_and_right_lives_never_look_behind(
    seed: int,
) -> None:
    skew = SkewPlan()
    lives = [segment(seed, n, skew, Intensity()) for n in range(40)]
    assert [lives[n].band for n in FORCED_WRONG_CLOCK] == [SkewBand.BLOCKED, SkewBand.BLOCKED]
    assert lives[1].clock_error_s > 10 * 60 and lives[2].clock_error_s < -10 * 60
    assert all(abs(life.clock_error_s) <= 20 * 60 for life in lives)
    latest = 0
    for life in lives:
        if life.band in (SkewBand.RIGHT, SkewBand.ALERTED):
            assert life.clock_offset_s >= latest  # never behind a time used before
        latest = max(latest, life.clock_offset_s)
    # The plan is a function of the seed and the life's number alone.
    assert segment(seed, 0, SkewPlan(), Intensity()) == lives[0]


# ---------------------------------------------------------------------- payments by phone


def qr_close(tx: str, outcome: str, amount: int, wallet: str = "alipay") -> dict[str, Any]:
    paid = outcome == "paid"
    record = close(tx, outcome, 0, amount=amount if paid else 0)
    record.update(
        payment_method="qr",
        paid_with=wallet,
        provider_ref=f"PR-{tx}",
        paid_in_fen=amount if outcome in ("paid", "refunded") else 0,
        refunded_fen=amount if outcome == "refunded" else 0,
    )
    if outcome == "cancelled":
        record.update(paid_with=None, provider_ref=None)
    return record


def order(tx: str, state: str, amount: int, used_by: str | None = None) -> dict[str, Any]:
    return {
        "key": f"{tx}-o",
        "terminal": TERMINAL,
        "state": state,
        "amount_fen": amount,
        "paid_with": None if state == "closed" else "alipay",
        "provider_ref": None if state == "closed" else f"PR-{tx}",
        "closed_reason": "terminal" if state == "closed" else None,
        "used_by": used_by,
    }


def with_qr() -> Books:
    """The balanced books plus a QR payment posted from its order, one refunded to the
    wallet, and one cancelled before anything was paid."""
    books = balanced()
    qr_posting = {**payment("q1", 30_00), "order_key": "q1-o"}
    dump = {
        **books.dump,
        "payments": [*books.dump["payments"], qr_posting],
        "payment_orders": {
            "orders": [
                order("q1", "paid", 30_00, used_by="q1-p"),
                order("q2", "refunded", 40_00),
                order("q3", "closed", 10_00),
            ],
            "refunds": [
                {
                    "key": "q2-r1",
                    "order_key": "q2-o",
                    "terminal": TERMINAL,
                    "state": "succeeded",
                    "amount_fen": 40_00,
                    "method": "alipay",
                    "automatic": 0,
                }
            ],
        },
    }
    records = [
        *books.records,
        qr_close("q1", "paid", 30_00),
        qr_close("q2", "refunded", 40_00),
        qr_close("q3", "cancelled", 0),
    ]
    return dataclasses.replace(books, dump=dump, records=records)


def test_balanced_books_with_payments_by_phone_pass() -> None:
    result = reconcile(with_qr())
    assert result.discrepancies == []
    for check in (
        "paid order = one paid close",
        "refunded order = one refunded close",
        "closed order = one cancelled close with no money",
        "refunded close = one platform refund",
        "no QR close has cash or a voucher",
        "money conserved (QR paid)",
        "money conserved (QR not paid)",
        "float = opening - posted",
    ):
        assert result.checks[check] > 0, check


def test_a_paid_order_without_its_paid_close_is_reported() -> None:
    books = with_qr()
    records = [r for r in books.records if r.get("tx_id") != "q1"]
    found = spoil(books, records=records)
    assert any(d.startswith("paid order = one paid close: order q1-o") for d in found), found


def test_a_qr_close_with_a_voucher_is_reported() -> None:
    books = with_qr()
    records = [
        {**r, "voucher_fen": 40_00, "voucher_id": "V-q2"} if r.get("tx_id") == "q2" else r
        for r in books.records
    ]
    found = spoil(books, records=records)
    assert any(d.startswith("no QR close has cash or a voucher: q2") for d in found), found


def test_a_refunded_close_the_platform_never_refunded_is_reported() -> None:
    books = with_qr()
    dump = {**books.dump, "payment_orders": {**books.dump["payment_orders"], "refunds": []}}
    found = spoil(books, dump=dump)
    assert any(d.startswith("refunded close = one platform refund") for d in found), found


def test_a_closed_order_whose_tx_was_paid_is_reported() -> None:
    books = with_qr()
    orders = [
        {**o, "state": "closed"} if o["key"] == "q1-o" else o
        for o in books.dump["payment_orders"]["orders"]
    ]
    dump = {**books.dump, "payment_orders": {**books.dump["payment_orders"], "orders": orders}}
    found = spoil(books, dump=dump)
    assert any(d.startswith("closed order = one cancelled close") for d in found), found


def test_a_qr_posting_counted_against_the_float_is_reported() -> None:
    books = with_qr()
    payments = [{**p, "order_key": None} for p in books.dump["payments"]]
    found = spoil(books, dump={**books.dump, "payments": payments})
    assert any(d.startswith("float = opening - posted") for d in found), found
