"""The terminal's journal: append-only, hash-chained, signed records, their export and audit.

Owns every record the terminal keeps as evidence (docs/journal-format.md). It never decides
business outcomes: the transaction engine says what to journal and when.
"""

from kiosk.journal.canonical import JournalError, canonical_json, record_hash
from kiosk.journal.export import export_jsonl
from kiosk.journal.store import Journal, receipt_no_of
from kiosk.journal.verify import VerifyReport, verify_jsonl

__all__ = [
    "Journal",
    "JournalError",
    "VerifyReport",
    "canonical_json",
    "export_jsonl",
    "receipt_no_of",
    "record_hash",
    "verify_jsonl",
]
