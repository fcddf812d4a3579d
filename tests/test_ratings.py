"""好差评 ratings and complaints: kept durably, journaled as signed records for the back office."""

from pathlib import Path

import pytest

from kiosk.journal.certificates import load_certificates
from kiosk.journal.verify import signature_problem
from kiosk.ratings import REASONS, RatingRefused, RatingStore, callback_phone_problem
from tests.fixtures.journal_bench import JournalBench, make_bench, make_signer


def signed_by_station(record: dict[str, object], bench: JournalBench) -> bool:
    return signature_problem(record, load_certificates(bench.cert_pem)) is None


@pytest.fixture
def bench(tmp_path: Path) -> JournalBench:
    return make_bench(tmp_path, make_signer(tmp_path))


def test_a_rating_survives_a_restart_and_is_a_signed_journal_record(bench: JournalBench) -> None:
    RatingStore(bench.conn, bench.journal).record(
        service="water-bill", satisfied=True, reason=None, tx_id="t1"
    )
    journal = bench.reopen()
    [rating] = RatingStore(bench.conn, journal).ratings()
    assert (rating.tx_id, rating.service, rating.satisfied, rating.reason) == (
        "t1",
        "water-bill",
        True,
        None,
    )
    [record] = list(journal.of_type("rating"))
    assert {k: record[k] for k in ("service", "satisfied", "reason", "tx_id")} == {
        "service": "water-bill",
        "satisfied": True,
        "reason": None,
        "tx_id": "t1",
    }
    assert record["time"] == rating.time
    assert signed_by_station(record, bench)


def test_a_transaction_can_be_rated_only_once_and_the_refusal_journals_nothing(
    bench: JournalBench,
) -> None:
    store = RatingStore(bench.conn, bench.journal)
    store.record(service="water-bill", satisfied=True, reason=None, tx_id="t1")
    with pytest.raises(RatingRefused, match="rated already"):
        store.record(service="water-bill", satisfied=False, reason="other", tx_id="t1")
    assert len(store.ratings()) == 1
    assert len(list(bench.journal.of_type("rating"))) == 1


def test_a_dissatisfied_rating_needs_a_known_reason_and_a_satisfied_one_none(
    bench: JournalBench,
) -> None:
    store = RatingStore(bench.conn, bench.journal)
    with pytest.raises(RatingRefused, match="too_slow"):
        store.record(service="gas-bill", satisfied=False, reason=None)
    with pytest.raises(RatingRefused, match="too_slow"):
        store.record(service="gas-bill", satisfied=False, reason="rude")
    with pytest.raises(RatingRefused, match="no reason"):
        store.record(service="gas-bill", satisfied=True, reason="other")
    assert store.ratings() == [] and list(bench.journal.of_type("rating")) == []


def test_counts_give_satisfied_dissatisfied_and_reasons_per_service(bench: JournalBench) -> None:
    store = RatingStore(bench.conn, bench.journal)
    store.record(service="gas-bill", satisfied=True, reason=None)
    store.record(service="gas-bill", satisfied=False, reason="too_slow")
    store.record(service="water-bill", satisfied=False, reason="too_slow")
    counts = store.counts("gas-bill")
    assert (counts.satisfied, counts.dissatisfied) == (1, 1)
    assert counts.reasons == {**dict.fromkeys(REASONS, 0), "too_slow": 1}
    assert store.counts().reasons["too_slow"] == 2


def test_ratings_without_a_transaction_are_all_kept(bench: JournalBench) -> None:
    store = RatingStore(bench.conn, bench.journal)
    for _ in range(3):
        store.record(service="help", satisfied=True, reason=None)
    assert len(store.ratings()) == 3


def test_a_complaint_with_a_call_back_number_is_a_signed_journal_record(
    bench: JournalBench,
) -> None:
    store = RatingStore(bench.conn, bench.journal)
    complaint = store.complain(
        service="mobile-topup",
        reasons=["cash_problem", "no_receipt", "cash_problem"],
        callback_phone="13800138000",
        tx_id="t9",
    )
    assert complaint.reasons == ("cash_problem", "no_receipt")
    [record] = list(bench.journal.of_type("complaint"))
    assert record["seq"] == complaint.seq
    assert {k: record[k] for k in ("service", "reasons", "callback_phone", "tx_id")} == {
        "service": "mobile-topup",
        "reasons": ["cash_problem", "no_receipt"],
        "callback_phone": "13800138000",
        "tx_id": "t9",
    }
    assert signed_by_station(record, bench)
    assert store.complaints() == [complaint]


def test_a_complaint_needs_known_reasons_and_a_callable_number_or_none(
    bench: JournalBench,
) -> None:
    store = RatingStore(bench.conn, bench.journal)
    with pytest.raises(RatingRefused, match="reasons"):
        store.complain(service="help", reasons=[])
    with pytest.raises(RatingRefused, match="reasons"):
        store.complain(service="help", reasons=["rude"])
    with pytest.raises(RatingRefused, match="call-back"):
        store.complain(service="help", reasons=["other"], callback_phone="12345")
    store.complain(service="help", reasons=["other"])  # no number: nobody calls back
    assert len(list(bench.journal.of_type("complaint"))) == 1


@pytest.mark.parametrize(
    ("phone", "callable_"),
    [
        ("13800138000", True),
        ("053188881234", True),  # area code and number
        ("88881234", True),  # a local landline
        ("1380013800", False),  # a mobile number one digit short
        ("23800138000", False),
        ("0531", False),
        ("", False),
    ],
)
def test_call_back_numbers(phone: str, callable_: bool) -> None:
    assert (callback_phone_problem(phone) is None) is callable_
