"""One contract per wire: topics, record types and event kinds are spelled in one module
each (kiosk/telemetry/topics.py, records.py, event_kinds.py, kiosk/updates/events.py), which
the terminal and the back office both import; the JSON Schemas agree with them; and a literal
spelled anywhere else in the product fails here."""

import json
import re
from pathlib import Path

from kiosk.journal.record_types import OUTBOX_TYPES, RecordType, may_travel_unsigned
from kiosk.telemetry.event_kinds import FORWARDED_EVENTS, EventKind
from kiosk.telemetry.schemas import load_schema
from kiosk.telemetry.topics import TERMINAL_PUBLISHES, TopicKind
from kiosk.updates.events import RollbackReason, UpdateEventKind

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("kiosk", "station", "backoffice", "drivers", "ui", "firmware_tools", "simulators")
TOPIC_MODULE = Path("kiosk/telemetry/topics.py")
RECORD_MODULE = Path("kiosk/journal/record_types.py")
UPDATE_EVENT_MODULE = Path("kiosk/updates/events.py")
# Record types that are also words of other vocabularies (an alert kind, an event kind,
# the word "alert"): their literals cannot be told from those, so only the others are
# searched for.
# Words that are record types and also ordinary names elsewhere (an event kind, a screen).
SHARED_WORDS = {
    RecordType.ALERT,
    RecordType.CASH_SUSPENSE,
    RecordType.CARD_CREDIT_CONFLICT,
    RecordType.RATING,
    RecordType.COMPLAINT,
}
# Modules owned by other work in progress that still spell record types; each must move
# to kiosk.journal.record_types.RecordType, and the entry then goes (the test below fails on
# an entry whose file no longer needs it).
NOT_YET_MOVED: set[Path] = set()
# Released schema migrations are frozen text (docs/updates.md "Schema versions"): they spell
# the record type a partial index names, as SQLite stores it.
FROZEN_SQL = {Path("kiosk/terminal_schema.py")}


def product_files() -> list[Path]:
    return sorted(p.relative_to(ROOT) for d in PRODUCT for p in (ROOT / d).rglob("*.py"))


def literal(words: set[str]) -> re.Pattern[str]:
    alternatives = "|".join(sorted(map(re.escape, words)))
    return re.compile(rf"""["']({alternatives})["']""")


def test_no_topic_is_spelled_outside_the_topic_module() -> None:
    spelled = re.compile(r"""["'](\$share/[^"']*)?kiosk/v1""")
    offenders = [
        str(path)
        for path in product_files()
        if path != TOPIC_MODULE and spelled.search((ROOT / path).read_text())
    ]
    assert offenders == []


def test_no_record_type_is_spelled_outside_the_record_module() -> None:
    pattern = literal({str(t) for t in RecordType} - SHARED_WORDS)
    spelling = {
        path
        for path in product_files()
        if path != RECORD_MODULE and pattern.search((ROOT / path).read_text())
    }
    assert spelling - NOT_YET_MOVED - FROZEN_SQL == set()
    assert NOT_YET_MOVED - spelling == set(), "moved to RecordType: take it off NOT_YET_MOVED"


def test_the_literal_search_finds_what_it_looks_for(tmp_path: Path) -> None:
    pattern = literal({str(t) for t in RecordType} - SHARED_WORDS)
    assert pattern.search('journal.append("tx_close", fields)')
    assert not pattern.search("journal.append(RecordType.TX_CLOSE, fields)")


# "technician" is a rollback reason and an ordinary word (a role, a card, a form field).
UPDATE_WORDS = {str(kind) for kind in UpdateEventKind} | {str(RollbackReason.NOT_CONFIRMED)}


def test_no_update_event_is_spelled_outside_the_update_event_module() -> None:
    pattern = literal(UPDATE_WORDS)
    spelling = [
        str(path)
        for path in product_files()
        if path != UPDATE_EVENT_MODULE and pattern.search((ROOT / path).read_text())
    ]
    assert spelling == []


def test_the_update_event_search_finds_what_it_looks_for() -> None:
    pattern = literal(UPDATE_WORDS)
    assert pattern.search("store.record_event('update_progress', now)")
    assert pattern.search('reason="not_confirmed"')
    assert not pattern.search("store.record_event(UpdateEventKind.PROGRESS, now)")
    assert not pattern.search('"update_installed_at"')


def test_the_outbox_schema_admits_exactly_the_outbox_types() -> None:
    record = load_schema(TopicKind.OUTBOX)["properties"]["record"]
    assert record["properties"]["type"]["enum"] == list(OUTBOX_TYPES)


def test_the_event_schema_lists_the_contracts_event_kinds() -> None:
    examples = load_schema(TopicKind.EVENT)["properties"]["kind"]["examples"]
    assert set(examples) <= set(EventKind)
    assert FORWARDED_EVENTS <= set(EventKind)


def test_every_kind_terminals_publish_has_a_schema() -> None:
    for kind in TERMINAL_PUBLISHES:
        assert json.dumps(load_schema(kind))


def test_only_outages_clock_alerts_asked_payouts_and_board_events_travel_unsigned() -> None:
    assert may_travel_unsigned({"type": RecordType.TX_CLOSE, "sig_failed": True})
    assert may_travel_unsigned({"type": RecordType.ALERT, "alert": "clock_wrong"})
    assert not may_travel_unsigned({"type": RecordType.ALERT, "alert": "tx_in_doubt"})
    assert may_travel_unsigned({"type": RecordType.VOUCHER_PAYOUT, "state": "asked"})
    assert not may_travel_unsigned({"type": RecordType.VOUCHER_PAYOUT, "state": "paid"})
    assert may_travel_unsigned({"type": RecordType.BOARD_EVENT})
    assert not may_travel_unsigned({"type": RecordType.DAY_CLOSE})
