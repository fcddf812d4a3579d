"""好差评 ratings kept durably in the terminal's own SQLite database."""

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kiosk.ratings import REASONS, RatingRefused, RatingStore
from kiosk.storage import open_database

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_a_rating_survives_closing_and_reopening_the_database(tmp_path: Path) -> None:
    path = tmp_path / "terminal.sqlite3"
    conn = open_database(path)
    RatingStore(conn).record(
        service="water-bill", satisfied=True, reason=None, when=NOW, tx_id="t1"
    )
    conn.close()
    again = RatingStore(open_database(path))
    [rating] = again.ratings()
    assert (rating.tx_id, rating.service, rating.satisfied, rating.reason) == (
        "t1",
        "water-bill",
        True,
        None,
    )
    assert rating.time == "2026-11-23T10:00:00+08:00"


def test_a_transaction_can_be_rated_only_once(tmp_path: Path) -> None:
    store = RatingStore(open_database(tmp_path / "t.sqlite3"))
    store.record(service="water-bill", satisfied=True, reason=None, when=NOW, tx_id="t1")
    with pytest.raises(RatingRefused, match="rated already"):
        store.record(service="water-bill", satisfied=False, reason="other", when=NOW, tx_id="t1")
    assert len(store.ratings()) == 1


def test_a_dissatisfied_rating_needs_a_known_reason_and_a_satisfied_one_none(
    tmp_path: Path,
) -> None:
    store = RatingStore(open_database(tmp_path / "t.sqlite3"))
    with pytest.raises(RatingRefused, match="too_slow"):
        store.record(service="gas-bill", satisfied=False, reason=None, when=NOW)
    with pytest.raises(RatingRefused, match="too_slow"):
        store.record(service="gas-bill", satisfied=False, reason="rude", when=NOW)
    with pytest.raises(RatingRefused, match="no reason"):
        store.record(service="gas-bill", satisfied=True, reason="other", when=NOW)
    assert store.ratings() == []


def test_counts_give_satisfied_dissatisfied_and_reasons_per_service(tmp_path: Path) -> None:
    store = RatingStore(open_database(tmp_path / "t.sqlite3"))
    store.record(service="gas-bill", satisfied=True, reason=None, when=NOW)
    store.record(service="gas-bill", satisfied=False, reason="too_slow", when=NOW)
    store.record(service="water-bill", satisfied=False, reason="too_slow", when=NOW)
    counts = store.counts("gas-bill")
    assert (counts.satisfied, counts.dissatisfied) == (1, 1)
    assert counts.reasons == {**dict.fromkeys(REASONS, 0), "too_slow": 1}
    assert store.counts().reasons["too_slow"] == 2


def test_ratings_without_a_transaction_are_all_kept(tmp_path: Path) -> None:
    store = RatingStore(open_database(tmp_path / "t.sqlite3"))
    for _ in range(3):
        store.record(service="help", satisfied=True, reason=None, when=NOW)
    assert len(store.ratings()) == 3
