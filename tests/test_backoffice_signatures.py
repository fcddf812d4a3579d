"""Every record's signature is verified at ingest against the terminal's registered station
certificate; bad ones are quarantined with an alert; the terminal's security records become
alerts and queries. On SQLite and on a real PostgreSQL server."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from backoffice import reports
from backoffice.alerts import open_alerts
from backoffice.cli import main
from backoffice.config import Thresholds
from backoffice.ingest import Ingestor, release_quarantine
from backoffice.signatures import CertificateRefused, register_certificate
from backoffice.store import Store
from kiosk.journal.record_types import RecordType
from simulators.fleet import SimulatedTerminal

STATION = "31010001"
NOW = 1_750_000_000.0


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def sim(tmp_path: Path) -> SimulatedTerminal:
    # Never started: its records are handed to the ingestor directly.
    return SimulatedTerminal(tmp_path, station=STATION, terminal="T-01", host="127.0.0.1", port=1)


class Rig:
    def __init__(self, store: Store, sim: SimulatedTerminal) -> None:
        self.store, self.sim = store, sim
        self.acks: list[int] = []
        self.ingestor = Ingestor(
            store,
            Thresholds(),
            lambda t, p, q: self.acks.append(json.loads(p)["upto_seq"]),
            clock=lambda: NOW,
        )

    def send(self, *records: dict[str, object]) -> None:
        self.ingestor.handle_batch(
            [
                (self.sim.topic("outbox"), self.sim.outbox_payload(int(str(r["seq"])), r))
                for r in records
            ]
        )

    def alerts(self) -> set[str]:
        with self.store.transaction() as cursor:
            return {row["kind"] for row in open_alerts(cursor)}

    def stored(self) -> dict[int, str]:
        rows = self.store.query("SELECT seq, signature FROM records ORDER BY seq")
        return {row["seq"]: row["signature"] for row in rows}

    def quarantined(self) -> dict[int, str]:
        rows = self.store.query("SELECT seq, reason FROM quarantine ORDER BY seq")
        return {row["seq"]: row["reason"] for row in rows}


@pytest.fixture
def rig(store: Store, sim: SimulatedTerminal) -> Rig:
    return Rig(store, sim)


def test_a_record_altered_after_signing_is_quarantined_with_an_alert_and_still_acknowledged(
    rig: Rig,
) -> None:
    rig.sim.register_with(rig.store)
    good = rig.sim.pay(1_000, 100)
    altered = {**rig.sim.pay(2_000, 100), "amount_fen": 200_000}
    after = rig.sim.pay(3_000, 100)
    rig.send(good, altered, after)
    assert rig.stored() == {good["seq"]: "verified", after["seq"]: "verified"}
    assert "altered after signing" in rig.quarantined()[int(str(altered["seq"]))]
    assert rig.alerts() == {"bad_signature"}
    # Kept in quarantine, the record need not come again: the ack covers it.
    assert rig.acks == [after["seq"]]
    assert reports.reconciliation(rig.store, rig.sim.today())[0]["received_fen"] == 4_200


def test_records_of_a_terminal_whose_certificate_is_not_registered_are_quarantined(
    rig: Rig, tmp_path: Path
) -> None:
    stranger = SimulatedTerminal(
        tmp_path / "other", station=STATION, terminal="T-01", host="127.0.0.1", port=1
    )
    rig.sim.register_with(rig.store)  # T-01's genuine certificate; stranger has its own key
    rig.sim = stranger
    record = stranger.pay(1_000)
    rig.send(record)
    assert rig.stored() == {}
    assert "another certificate" in rig.quarantined()[int(str(record["seq"]))]
    assert rig.alerts() == {"bad_signature"}


def test_legitimately_unsigned_records_are_stored_flagged_and_others_quarantined(
    rig: Rig,
) -> None:
    rig.sim.register_with(rig.store)
    outage = rig.sim.journal_record(
        RecordType.TX_CLOSE, {"outcome": "paid", "amount_fen": 500}, sig_failed=True
    )
    assert rig.alerts() == set()
    rig.send(outage)
    assert rig.alerts() == {"signer_outage"}
    clock = rig.sim.journal_record(
        RecordType.ALERT, {"alert": "clock_wrong", "detail": "off by 2 h"}, sign=False
    )
    asked = rig.sim.journal_record(
        RecordType.VOUCHER_PAYOUT,
        {"voucher_id": "V1", "amount_fen": 300, "operator": "op-7", "state": "asked"},
        sign=False,
    )
    unsigned_close = rig.sim.journal_record(
        RecordType.TX_CLOSE, {"outcome": "paid", "amount_fen": 700}, sign=False
    )
    rig.send(clock, asked, unsigned_close)
    stored = rig.stored()
    assert [stored[int(str(r["seq"]))] for r in (outage, clock, asked)] == ["unsigned"] * 3
    assert "must be signed" in rig.quarantined()[int(str(unsigned_close["seq"]))]
    assert rig.alerts() == {"signer_outage", "clock_wrong", "bad_signature"}


def test_the_terminals_security_records_become_alerts_and_queries(rig: Rig) -> None:
    rig.sim.register_with(rig.store)
    doubt = rig.sim.journal_record(RecordType.ALERT, {"alert": "tx_in_doubt", "tx_id": "T9"})
    suspense = rig.sim.journal_record(
        RecordType.CASH_SUSPENSE, {"tx_id": None, "event_id": 4, "detail": "note jammed"}
    )
    tamper = rig.sim.journal_record(
        RecordType.BOARD_EVENT,
        {"event_id": 8, "kind": "tamper", "board_time_ms": 1, "detail": {}},
        sign=False,
    )
    unprinted = rig.sim.journal_record(
        RecordType.TX_CLOSE,
        {"tx_id": "A1", "outcome": "paid", "amount_fen": 900, "awaiting_claim": True},
    )
    claimed = rig.sim.journal_record(
        RecordType.TX_CLOSE,
        {"tx_id": "A2", "outcome": "paid", "amount_fen": 800, "awaiting_claim": True},
    )
    claim = rig.sim.journal_record(
        RecordType.RECEIPT_CLAIMED, {"tx_id": "A2", "receipt_no": "R2", "by": "op-7"}
    )
    paid = rig.sim.journal_record(
        RecordType.VOUCHER_PAYOUT,
        {"voucher_id": "V1", "amount_fen": 300, "operator": "op-7", "state": "paid"},
    )
    rig.send(doubt, suspense, tamper, unprinted, claimed, claim, paid)
    assert rig.quarantined() == {}
    assert rig.alerts() == {"tx_in_doubt", "cash_suspense", "tamper"}
    assert [r["tx_id"] for r in reports.unclaimed_receipts(rig.store)] == ["A1"]
    today = rig.sim.today()
    payouts = reports.voucher_payouts(rig.store, today, today)
    assert [(p["voucher_id"], p["state"], p["amount_fen"], p["signature"]) for p in payouts] == [
        ("V1", "paid", 300, "verified")
    ]
    recovered_head = rig.store.query("SELECT acked_seq, acked_hash FROM terminals")[0]
    last = rig.store.query("SELECT record_hash FROM records WHERE seq = ?", (paid["seq"],))
    assert (recovered_head["acked_seq"], recovered_head["acked_hash"]) == (
        paid["seq"],
        last[0]["record_hash"],
    )


def test_the_acknowledged_head_is_what_an_auditor_reads(
    tmp_path: Path, sim: SimulatedTerminal, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'bo.db'}"
    config = tmp_path / "bo.toml"
    config.write_text(f'store = "{url}"\n')
    cert = tmp_path / "station.pem"
    cert.write_bytes(sim.certificate_pem())
    assert main(["head", "--config", str(config), "--station", STATION, "--terminal", "T-01"]) == 1
    assert "no acknowledged record" in capsys.readouterr().err
    register = ["cert", "register", "--config", str(config), "--station", STATION]
    assert main([*register, "--terminal", "T-01", "--cert", str(cert), "--by", "Li Na"]) == 0
    capsys.readouterr()
    store = Store(url)
    try:
        Rig(store, sim).send(sim.pay(1_000))
        digest = store.query("SELECT record_hash FROM records")[0]["record_hash"]
    finally:
        store.close()
    head = ["head", "--config", str(config), "--station", STATION, "--terminal", "T-01"]
    assert main([*head, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"seq": 2, "hash": digest}


def test_a_certificate_the_operator_ca_did_not_issue_is_refused(
    store: Store, sim: SimulatedTerminal, tmp_path: Path
) -> None:
    other = SimulatedTerminal(tmp_path / "ca", station=STATION, terminal="T-09", host="x", port=1)
    with pytest.raises(CertificateRefused, match="not issued by the operator CA"):
        register_certificate(
            store,
            STATION,
            "T-01",
            sim.certificate_pem(),
            by="Li Na",
            now=NOW,
            operator_ca=other.certificate_pem(),
        )
    # A self-signed station certificate is its own issuer: accepted with itself as the CA.
    assert register_certificate(
        store,
        STATION,
        "T-01",
        sim.certificate_pem(),
        by="Li Na",
        now=NOW,
        operator_ca=sim.certificate_pem(),
    )


def test_records_quarantined_before_the_certificate_was_registered_are_released_after(
    rig: Rig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = rig.sim.pay(1_000), rig.sim.pay(2_000)
    rig.send(first, second)
    assert sorted(rig.quarantined()) == [first["seq"], second["seq"]]
    assert rig.acks == [second["seq"]]  # kept here, so the terminal may forget them
    rig.sim.register_with(rig.store)
    assert release_quarantine(rig.store, NOW) == [
        (STATION, "T-01", first["seq"]),
        (STATION, "T-01", second["seq"]),
    ]
    assert rig.quarantined() == {}
    assert rig.stored() == {first["seq"]: "verified", second["seq"]: "verified"}
    # An altered one stays where it is.
    altered = {**rig.sim.pay(3_000), "amount_fen": 3}
    rig.send(altered)
    assert release_quarantine(rig.store, NOW) == []
    assert list(rig.quarantined()) == [altered["seq"]]
