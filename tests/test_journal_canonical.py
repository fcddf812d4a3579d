"""The journal's fast encoder writes exactly the RFC 8785 bytes of the rfc8785 library.

The writer uses encode_record (orjson with sorted keys, for the commit path); the
verifier, receipts and auditors use canonical_json (rfc8785). These tests hold the two equal
over the journal's whole subset and make them refuse the same records.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.journal.canonical import MAX_SAFE_INTEGER, JournalError, canonical_json, encode_record

# Text of every kind a record may hold: CJK names, control characters, quotes, U+2028, emoji.
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
ascii_keys = st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | any_text
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ascii_keys, inner, max_size=4),
    max_leaves=20,
)
records = st.dictionaries(ascii_keys, values, max_size=8)


@given(records)
def test_the_fast_encoder_writes_the_same_bytes_as_rfc8785(record: dict[str, object]) -> None:
    assert encode_record(record) == canonical_json(record)


def test_tuples_and_other_mappings_encode_as_arrays_and_objects_like_rfc8785() -> None:
    from types import MappingProxyType

    record = {"b": (1, "二"), "a": MappingProxyType({"z": None, "y": [True]})}
    assert encode_record(record) == canonical_json(record)


@pytest.mark.parametrize(
    ("record", "named"),
    [
        ({"amount": 1.5}, "float"),
        ({"n": 2**53}, "2**53"),
        ({"名": 1}, "non-ASCII key"),
        ({"x": {1: "a"}}, "non-text key"),
        ({"x": b"bytes"}, "bytes"),
        ({"x": "\ud800"}, "lone surrogate"),
    ],
)
def test_both_encoders_refuse_what_the_journal_cannot_hold(
    record: dict[str, object], named: str
) -> None:
    for encode in (encode_record, canonical_json):
        with pytest.raises(JournalError, match=named.replace("*", r"\*")):
            encode(record)
