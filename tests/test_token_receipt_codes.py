"""Receipt codes of RSA-2048 and SM2 stations: the algorithm travels, SM2 fits version 10.

The printed-page helpers (receipt_of, printed_png, scanned) are those of tests/test_receipts.py:
the receipt is drawn as the printer simulator draws it and read back with ZXing.
"""

from collections.abc import Iterator
from pathlib import Path

import base45
import cbor2
import pytest

from kiosk.receipts import compact, verify_receipt
from kiosk.receipts.compact_fields import ALGS, Field
from kiosk.receipts.qr import QR_MAX_VERSION, ReceiptCodeTooLarge, receipt_code
from kiosk.signing import KeyType, SignatureAlgorithm
from tests.fixtures.journal_bench import JournalBench, make_bench, make_signer, worst_case
from tests.test_receipts import has_line, printed_png, receipt_of, scanned


@pytest.fixture
def sm2_bench(tmp_path: Path) -> Iterator[JournalBench]:
    bench = make_bench(tmp_path, make_signer(tmp_path, key_type=KeyType.SM2))
    yield bench
    bench.conn.close()


def test_the_alg_vocabulary_is_the_signature_algorithms() -> None:
    assert set(ALGS) == {algorithm.value for algorithm in SignatureAlgorithm}
    assert ALGS[0] == "ES256"  # indexes are for ever: appended only


def test_an_sm2_worst_case_fits_version_10_and_reads_back_from_paper(
    sm2_bench: JournalBench, tmp_path: Path
) -> None:
    record = worst_case(sm2_bench)
    assert record["alg"] == "SM2-SM3"
    code = receipt_code(record)
    size = len(base45.b45decode(code.payload[4:]))
    print(f"SM2 worst-case receipt code: {size} bytes, QR {code.version}-{code.error_level}")
    assert code.version <= QR_MAX_VERSION
    decoded = compact.decode_code(code.payload)
    assert decoded.algorithm is compact.Algorithm.SM2_SM3 and len(decoded.signature) == 64
    found = scanned(printed_png(receipt_of(record), tmp_path / "receipt.png"))
    assert found.text == code.payload
    check = verify_receipt(found.text, sm2_bench.cert_pem)
    assert check.genuine, check.problem
    assert check.record == record


def test_an_sm2_code_passed_off_as_p256_is_refused(sm2_bench: JournalBench) -> None:
    record = sm2_bench.pay(1, numbered=True)
    code = compact.decode_code(receipt_code(record).payload)
    body = cbor2.dumps([1, code.prev + code.signature, code.fields], canonical=True)
    check = verify_receipt(compact.PREFIX + base45.b45encode(body).decode(), sm2_bench.cert_pem)
    assert not check.genuine
    assert check.problem == (
        "the receipt code is damaged: its signature algorithm and the record's alg differ"
    )


def test_a_p256_code_carries_its_alg_under_its_number(journal_bench: JournalBench) -> None:
    record = journal_bench.pay(1, numbered=True)
    code = compact.decode_code(receipt_code(record).payload)
    assert code.algorithm is compact.Algorithm.ECDSA_P256
    assert code.fields[Field.ALG] == ALGS.index("ES256")
    assert verify_receipt(receipt_code(record).payload, journal_bench.cert_pem).genuine


def test_an_rsa_station_prints_its_receipt_without_a_code_and_says_why(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, make_signer(tmp_path, key_type=KeyType.RSA2048))
    try:
        record = bench.pay(1, numbered=True)
        assert record["alg"] == "RS256"
        payload = compact.encode_code(record)  # the code itself is sound ...
        assert compact.decode_code(payload).algorithm is compact.Algorithm.STORED
        assert verify_receipt(payload, bench.cert_pem).genuine
        with pytest.raises(ReceiptCodeTooLarge, match="signature algorithm STORED"):
            receipt_code(record)  # ... but too large for a phone to read from paper
        document = receipt_of(record)
        assert document.qr_payload is None
        assert has_line(document, "本凭条的二维码过大")
    finally:
        bench.conn.close()
